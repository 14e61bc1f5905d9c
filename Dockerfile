# syntax=docker/dockerfile:1
# sovamed: one static-ish binary (no libpq, no OpenSSL) on debian:bookworm-slim.
# Build: docker build -t sovamed .   Run it through docker-compose.yml (nginx in front).

# ---- builder -------------------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /build

# Dependencies first: a dummy crate with the real manifest and lock file, so this layer is
# rebuilt only when Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src

# The real source. migrations/, templates/ and static/ are compiled into the binary
# (diesel embed_migrations!, askama, rust-embed), so they are needed here and not at run time.
COPY src ./src
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
# Drop what the dummy build left of this crate, so cargo cannot take it as up to date.
RUN rm -rf target/release/.fingerprint/sovamed-* target/release/deps/sovamed-* \
        target/release/deps/libsovamed-* target/release/sovamed target/release/libsovamed.* \
    && cargo build --release --locked \
    && cp target/release/sovamed /usr/local/bin/sovamed

# ---- runtime -------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 sovamed \
    && useradd --system --uid 10001 --gid sovamed --home-dir /home/sovamed --create-home \
        --shell /usr/sbin/nologin sovamed
COPY --from=builder /usr/local/bin/sovamed /usr/local/bin/sovamed

# Everything else (DATABASE_URL, REDIS_URL, JWT_SECRET, TRUSTED_PROXIES, ...) comes from the
# environment; see docs/configuration.md. No .env is read from the image.
ENV APP_ENV=production \
    BIND_ADDR=0.0.0.0:8080
WORKDIR /home/sovamed
EXPOSE 8080
# The health check lives in docker-compose.yml (GET /healthz); the image has no curl.
USER sovamed
ENTRYPOINT ["sovamed"]
CMD ["serve"]
