// The sovamed documentation site. `just docs` serves it on http://127.0.0.1:5173,
// `just docs-build` builds it into docs/.vitepress/dist (and fails on a dead internal link:
// `ignoreDeadLinks` stays off on purpose).
import { defineConfig } from 'vitepress'
import { withMermaid } from 'vitepress-plugin-mermaid'

export default withMermaid(
  defineConfig({
    title: 'sovamed',
    description:
      'One Rust server for a clinic network: patient cabinet, staff desk, JSON API, MIS and CMS sync, SMS.',
    lang: 'en',
    cleanUrls: true,
    // Files in docs/ that are not pages of the site.
    srcExclude: ['README.md', 'scripts/**'],
    head: [['meta', { name: 'robots', content: 'noindex' }]],
    markdown: {
      // Fenced code in the pages is shell, JSON, SQL and config; `mermaid` fences become diagrams.
      lineNumbers: false,
    },
    themeConfig: {
      nav: [
        { text: 'Guide', link: '/getting-started' },
        { text: 'Architecture', link: '/architecture' },
        { text: 'Operations', link: '/operations' },
        { text: 'Website', link: '/website-quick-start' },
        { text: 'API', link: '/api/reference' },
      ],
      sidebar: [
        {
          text: 'Introduction',
          items: [
            { text: 'Overview', link: '/' },
            { text: 'Getting started', link: '/getting-started' },
          ],
        },
        {
          text: 'Design',
          items: [
            { text: 'Architecture', link: '/architecture' },
            { text: 'Flows', link: '/flows' },
            { text: 'Security', link: '/security' },
          ],
        },
        {
          text: 'Running it',
          items: [
            { text: 'Configuration', link: '/configuration' },
            { text: 'Operations', link: '/operations' },
            { text: 'Benchmarks', link: '/benchmarks' },
          ],
        },
        {
          text: 'Reference',
          items: [
            { text: 'Website quick start', link: '/website-quick-start' },
            { text: 'HTTP contract', link: '/http-contract' },
            { text: 'API reference (OpenAPI)', link: '/api/reference' },
          ],
        },
      ],
      outline: { level: [2, 3] },
      search: { provider: 'local' },
      docFooter: { prev: false, next: false },
    },
    vite: {
      // Mermaid is one large chunk, loaded only on pages with diagrams.
      build: { chunkSizeWarningLimit: 4096 },
    },
    mermaid: {
      // Diagrams use the page's fonts; securityLevel stays 'strict' (no HTML in labels).
      securityLevel: 'strict',
    },
  }),
)
