# sovamed tasks. `just` lists them; `just run` serves with demo data; `just test` is what CI runs.

# The app reads .env and .env.local itself (dotenvy), so just does not load them.
set dotenv-load := false
set shell := ["bash", "-euo", "pipefail", "-c"]

# Compose reads .env for interpolation by default; .env.local (secrets such as JWT_SECRET and
# POSTGRES_PASSWORD) is added when it exists.
compose := "docker compose --env-file .env" + if path_exists(".env.local") == "true" { " --env-file .env.local" } else { "" }

# List the recipes.
default:
    @just --list --unsorted

# Make sure PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) answer; start them with Docker if they do not.
services:
    #!/usr/bin/env bash
    set -euo pipefail
    tcp_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
    pg_up() {
        if command -v pg_isready >/dev/null; then pg_isready -q -h 127.0.0.1 -p 5432; else tcp_open 5432; fi
    }
    redis_up() {
        if command -v redis-cli >/dev/null; then
            [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]
        else
            tcp_open 6379
        fi
    }
    if pg_up && redis_up; then
        echo "services: PostgreSQL and Redis answer on 127.0.0.1"
        exit 0
    fi
    if ! docker info >/dev/null 2>&1; then
        pg_up || echo "services: PostgreSQL does not answer on 127.0.0.1:5432" >&2
        redis_up || echo "services: Redis does not answer on 127.0.0.1:6379" >&2
        cat >&2 <<'EOF'
    Start them, then run the recipe again. Either
      - with your OS packages, e.g. on Debian/Ubuntu:
          sudo apt-get install postgresql redis-server
          sudo pg_ctlcluster <version> main start     (or: sudo systemctl start postgresql)
          sudo systemctl start redis-server
        (the default DATABASE_URL connects as user postgres without a password: trust auth on
        127.0.0.1, or set DATABASE_URL in .env.local), or
      - with Docker: start the Docker daemon and run `just services` again; it runs
          docker compose -f docker-compose.yml -f docker-compose.dev.yml up -d pgsql redis
        (PostgreSQL 15 and Redis 7, published on 127.0.0.1 only).
    EOF
        exit 1
    fi
    echo "services: starting pgsql and redis with docker compose"
    # The app service's secrets and SMS gateway are required at interpolation even when only
    # these two start.
    JWT_SECRET="${JWT_SECRET:-not-used-by-pgsql-or-redis-0123456789}" \
    METRICS_TOKEN="${METRICS_TOKEN:-not-used-by-pgsql-or-redis-0123456789}" \
    SMS_PROVIDER="${SMS_PROVIDER:-log}" \
        {{ compose }} -f docker-compose.yml -f docker-compose.dev.yml up -d pgsql redis
    for _ in $(seq 60); do
        if pg_up && redis_up; then
            echo "services: PostgreSQL and Redis answer on 127.0.0.1"
            exit 0
        fi
        sleep 1
    done
    echo "services: PostgreSQL or Redis still does not answer after 60 s; see: docker compose logs pgsql redis" >&2
    exit 1

# Serve on http://127.0.0.1:8080 with demo accounts (printed at start).
run: services
    cargo run --release -- serve --demo

# Check Chromium and install the browser test's npm packages (tests/browser, `npm ci`).
browser-deps:
    #!/usr/bin/env bash
    set -euo pipefail
    chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
    if [ ! -x "$chromium" ]; then
        echo "browser-deps: no Chromium at $chromium; the browser test (tests/browser.rs) needs it." >&2
        echo "  Install it: sudo apt-get install chromium chromium-driver   (or set CHROMIUM_PATH)" >&2
        exit 1
    fi
    if ! node --version >/dev/null 2>&1 || ! npm --version >/dev/null 2>&1; then
        echo "browser-deps: the browser test needs Node.js 20 or newer with npm on PATH" >&2
        exit 1
    fi
    # npm ci when node_modules is missing, older than the lock file, or lacks axe-core.
    if [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ] \
        || [ ! -f tests/browser/node_modules/axe-core/axe.min.js ]; then
        npm ci --prefix tests/browser --no-audit --no-fund
    fi
    echo "browser-deps: $("$chromium" --version 2>/dev/null), node $(node --version)," \
        "playwright-core $(node -p 'require("./tests/browser/node_modules/playwright-core/package.json").version')," \
        "axe-core $(node -p 'require("./tests/browser/node_modules/axe-core/package.json").version')"

# Format check, cargo-deny (licenses, bans, sources), clippy and rustdoc with warnings denied, then the test suite (what CI runs).
test: services browser-deps
    cargo fmt --all -- --check
    @cargo deny --version >/dev/null 2>&1 || { echo "test: cargo-deny is missing; install it: cargo install cargo-deny --version '~0.20' --locked" >&2; exit 1; }
    cargo deny --locked check --hide-inclusion-graph licenses bans sources
    cargo clippy --all-targets -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --no-deps
    cargo test

# All four cargo-deny checks (deny.toml), advisories included: that one fetches the RustSec database from GitHub, so it needs github.com.
deny:
    cargo deny --locked check advisories licenses bans sources

# Format check, clippy and rustdoc with warnings denied.
lint:
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --no-deps

# Format the code.
fmt:
    cargo fmt --all

# Create the database if missing and apply pending migrations.
migrate: services
    cargo run -- migrate

# Sync directories and schedules from the MIS and the CMS: `just sync` runs `sync all`; `just sync schedules --days 3` one kind. Needs INFOCLINICA_URL / BITRIX_URL (see `just emulate`).
sync *args: services
    cargo run -- sync {{ if args == "" { "all" } else { args } }}

# Run the MIS, CMS and SMS emulators on 127.0.0.1:8081-8083 and print the settings that point a server at them.
emulate *args:
    cargo run -- emulate {{ args }}

# Build the release binary (target/release/sovamed).
build:
    cargo build --release

# Benchmarks S1 (cached schedule read), the doctor pages and S5 (anonymous booking) on the release build, beside baselines from the same run; table also in target/bench/report.md (~7-8 min after the release build; BENCH_ONLY=s1 or s5: ~3).
bench: services
    bash bench/run.sh

# Build and start the whole stack in Docker (nginx on http://127.0.0.1:8080); needs JWT_SECRET in .env.local.
up:
    {{ compose }} up -d --build

# The stack plus Prometheus and Grafana (http://127.0.0.1:3000, user admin, GRAFANA_ADMIN_PASSWORD).
up-monitoring:
    {{ compose }} --profile monitoring up -d --build

# The stack with two app replicas behind the `ha` load balancer (http://127.0.0.1:8090, HA_HTTP_PORT).
up-ha:
    {{ compose }} --profile ha up -d --build

# Stop the Docker stack (the pgdata volume is kept).
down:
    JWT_SECRET="${JWT_SECRET:-not-needed-to-stop-the-stack-0123456789}" METRICS_TOKEN="${METRICS_TOKEN:-not-needed-to-stop-the-stack}" SMS_PROVIDER="${SMS_PROVIDER:-log}" {{ compose }} -f docker-compose.yml -f docker-compose.dev.yml --profile monitoring --profile docs --profile ha down

# Serve the documentation site on http://127.0.0.1:5173 (VitePress; `npm ci` in docs/ when needed).
docs:
    #!/usr/bin/env bash
    set -euo pipefail
    cd docs
    if [ package-lock.json -nt node_modules/.package-lock.json ]; then
        npm ci --no-audit --no-fund
    fi
    npm run docs:dev -- --host 127.0.0.1 --port 5173

# Export the OpenAPI document (`sovamed openapi`) into docs/public, then build the site into docs/.vitepress/dist (fails on dead links).
docs-build:
    #!/usr/bin/env bash
    set -euo pipefail
    # Through a temporary file, so a failed export never leaves a truncated document behind.
    tmp="$(mktemp docs/public/openapi.json.XXXXXX)"
    trap 'rm -f "$tmp"' EXIT
    cargo run --quiet -- openapi > "$tmp"
    mv "$tmp" docs/public/openapi.json
    cd docs
    if [ package-lock.json -nt node_modules/.package-lock.json ]; then
        npm ci --no-audit --no-fund
    fi
    npm run docs:build

# Write docs/public/my-data.schema.json anew from the data export's Rust types (`domain::data_rights`); after changing them, run it and commit the file (a unit test compares the two).
my-data-schema:
    UPDATE_SCHEMAS=1 cargo test --lib committed_schema

# Fuzz the JSON API with schemathesis against a demo instance (no 5xx, answers match the OpenAPI document).
api-fuzz:
    ./scripts/api-fuzz.sh

# Regenerate the TypeScript client's types (clients/ts/src/schema.d.ts) from docs/public/openapi.json; after an API change, run it after `just docs-build` and commit both.
ts-client:
    ./scripts/ts-client.sh generate

# Check the TypeScript client (clients/ts): npm ci, its types match docs/public/openapi.json, tsc over the client and its example (what CI runs).
ts-client-check:
    ./scripts/ts-client.sh check

# Run the TypeScript client's example (log in as the demo patient, book a free slot, cancel it) against a running server.
ts-client-example url="http://127.0.0.1:8080":
    ./scripts/ts-client.sh run-example {{ url }}
