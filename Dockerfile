# Multi-stage build: compile in the Rust image, run on a slim Debian as a non-root user.
#   docker build -t org-service .
#   docker run -p 8000:8000 -e SECRET_KEY=$(openssl rand -hex 32) -e MONGODB_URL=... org-service

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them. Cargo.toml names the benches,
# so a stand-in for each must exist too. (scripts/dockerfile-check.sh replays these steps.)
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir -p src benches && echo 'fn main() {}' > src/main.rs && echo '' > src/lib.rs \
    && echo 'fn main() {}' > benches/load.rs && echo 'fn main() {}' > benches/scale.rs \
    && cargo build --release --locked && rm -rf src benches
COPY src ./src
COPY assets ./assets
COPY benches ./benches
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /app app \
    && mkdir -p /data && chown app /data
COPY --from=build /src/target/release/org-service /usr/local/bin/org-service
USER app
WORKDIR /app
ENV HOST=0.0.0.0 \
    PORT=8000 \
    APP_ENV=production \
    DATABASE_PATH=/data/organizations.db \
    LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${PORT}/health/live" || exit 1
ENTRYPOINT ["org-service"]
CMD ["serve"]
