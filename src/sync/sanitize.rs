//! HTML from the CMS is untrusted: bios and pages are cleaned with ammonia (no scripts, no
//! event-handler attributes, no `javascript:` URLs); plain-text fields lose all markup.

use std::sync::LazyLock;

static HTML: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder
        .url_schemes(["http", "https", "mailto", "tel"].into_iter().collect())
        .link_rel(Some("noopener noreferrer nofollow"));
    builder
});

/// Safe HTML for `|safe` output. Text that is not HTML is escaped into paragraphs.
pub fn clean_html(input: &str, is_html: bool) -> String {
    if is_html {
        HTML.clean(input).to_string()
    } else {
        input
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| format!("<p>{}</p>", escape_text(p)))
            .collect()
    }
}

fn escape_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Plain text: tags removed, entities decoded, whitespace collapsed. Templates escape it.
pub fn plain_text(input: &str) -> String {
    let stripped = ammonia::Builder::empty().clean(input).to_string();
    let decoded = stripped
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_handlers_and_javascript_urls_are_removed() {
        let dirty = r#"<p onclick="x()">Врач <b>высшей</b> категории</p><script>alert(1)</script>
            <img src="x" onerror="alert(1)"><a href="javascript:alert(1)">ссылка</a><a href="https://ok.ru">ок</a>"#;
        let clean = clean_html(dirty, true);
        for bad in ["<script", "onerror", "onclick", "javascript:"] {
            assert!(!clean.contains(bad), "{bad} survived: {clean}");
        }
        assert!(clean.contains("<b>высшей</b>"));
        assert!(clean.contains("https://ok.ru"));
    }

    #[test]
    fn plain_text_loses_markup_but_keeps_characters() {
        assert_eq!(
            plain_text("<p>O'Brien &amp; ёЁ <script>x</script></p>"),
            "O'Brien & ёЁ"
        );
        assert_eq!(clean_html("a < b\n\nc", false), "<p>a &lt; b</p><p>c</p>");
    }
}
