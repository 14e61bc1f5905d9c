#!/usr/bin/env bash
# The typed TypeScript client in clients/ts (see its README.md).
#
#   scripts/ts-client.sh generate              regenerate clients/ts/src/schema.d.ts from docs/public/openapi.json
#   scripts/ts-client.sh check                 npm ci; fail if schema.d.ts is not what the document generates; tsc --noEmit
#   scripts/ts-client.sh run-example BASE_URL  compile example/book.ts into a temp dir and run it with node against BASE_URL
#
# `just ts-client` is `generate`, `just ts-client-check` is `check`; CI runs `check` (.ci/run) and
# `run-example` against the demo server of scripts/api-fuzz.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

client=clients/ts
document=docs/public/openapi.json
schema=src/schema.d.ts

die() {
    echo "ts-client: $*" >&2
    exit 1
}

usage() {
    echo "usage: scripts/ts-client.sh generate | check | run-example BASE_URL" >&2
    exit 2
}

need_node() {
    if ! node --version >/dev/null 2>&1 || ! npm --version >/dev/null 2>&1; then
        die "the client needs Node.js 20 or newer with npm on PATH"
    fi
    local major
    major="$(node -p 'process.versions.node.split(".")[0]')"
    [ "$major" -ge 20 ] || die "the client needs Node.js 20 or newer; this is $(node --version)"
}

# npm ci when node_modules is missing or older than the lock file (as the justfile does for docs/).
npm_ci_if_stale() {
    if [ "$client/package-lock.json" -nt "$client/node_modules/.package-lock.json" ]; then
        npm_ci
    fi
}

npm_ci() {
    echo "ts-client: npm ci in $client"
    npm ci --prefix "$client" --no-audit --no-fund --loglevel=error
}

# openapi-typescript DOCUMENT -o OUT, run inside clients/ts (OUT: absolute, or relative to it).
generate_to() {
    [ -f "$document" ] || die "$document is missing"
    (cd "$client" && ./node_modules/.bin/openapi-typescript "../../$document" -o "$1" >/dev/null) ||
        die "openapi-typescript failed on $document"
}

mode="${1:-}"
case "$mode" in
generate)
    need_node
    npm_ci_if_stale
    generate_to "$schema"
    echo "ts-client: wrote $client/$schema from $document"
    ;;
check)
    need_node
    npm_ci
    tmp="$(mktemp --suffix=.d.ts)"
    trap 'rm -f "$tmp"' EXIT
    generate_to "$tmp"
    if ! cmp -s "$tmp" "$client/$schema"; then
        echo "ts-client: $client/$schema differs from what openapi-typescript generates from $document;" >&2
        echo "    run \`just ts-client\` (scripts/ts-client.sh generate) and commit $client/$schema" >&2
        echo "    (and adapt $client/example/book.ts if the shapes it uses changed)" >&2
        diff -u "$client/$schema" "$tmp" | head -n 40 >&2 || true
        exit 1
    fi
    rm -f "$tmp"
    echo "ts-client: $client/$schema matches $document"
    (cd "$client" && ./node_modules/.bin/tsc --noEmit -p tsconfig.json) ||
        die "tsc found type errors in $client/src or $client/example (above); if the API changed, adapt them to $client/$schema"
    echo "ts-client: tsc --noEmit passes (src and example)"
    ;;
run-example)
    [ $# -eq 2 ] || usage
    base_url="$2"
    need_node
    npm_ci_if_stale
    out="$(mktemp -d)"
    trap 'rm -rf "$out"' EXIT
    (cd "$client" && ./node_modules/.bin/tsc -p tsconfig.json --noEmit false --outDir "$out") ||
        die "tsc could not compile $client/example/book.ts (above)"
    # The compiled example imports openapi-fetch (ESM): give it the client's node_modules and
    # mark the folder as ESM.
    ln -s "$PWD/$client/node_modules" "$out/node_modules"
    printf '{"type": "module"}\n' > "$out/package.json"
    echo "ts-client: running example/book.ts against $base_url"
    node "$out/example/book.js" "$base_url" || die "example/book.ts failed against $base_url (above)"
    echo "ts-client: the example booked and cancelled a visit"
    ;;
*)
    usage
    ;;
esac
