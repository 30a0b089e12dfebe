# syntax=docker/dockerfile:1
# Floe as a container job: `floe run` on the job file at /etc/floe/job.sql (mount one, or
# bake one in with FROM floe + COPY), configured by its options' ${VAR}s and FLOE_*.
#
#   docker build -t floe .
#   docker run --rm -p 9249:9249 -v "$PWD/examples/quickstart.sql:/etc/floe/job.sql:ro" floe

# --- Builder: dependencies first, in a layer that changes only with the manifests. ---
FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY catalog/Cargo.toml catalog/
COPY sinks/Cargo.toml sinks/
COPY sql/Cargo.toml sql/
COPY formats/Cargo.toml formats/
COPY devtools/Cargo.toml devtools/
COPY cli/Cargo.toml cli/
COPY engine/Cargo.toml engine/
COPY benches/Cargo.toml benches/
# Empty targets for every crate, so that `cargo build` compiles the dependencies only.
RUN for c in catalog sinks sql formats devtools engine; do mkdir -p "$c/src" && touch "$c/src/lib.rs"; done \
 && mkdir -p cli/src benches/src benches/benches tests/e2e \
 && touch tests/e2e/main.rs benches/benches/micro.rs \
 && echo 'fn main() {}' > cli/src/main.rs \
 && echo 'fn main() {}' > benches/src/main.rs \
 && cargo build --release --locked -p floe-cli --bin floe \
 && rm -rf catalog/src sinks/src sql/src formats/src devtools/src engine/src cli/src benches/src
COPY . .
# The sources are newer than the placeholder builds, so only Floe's crates are rebuilt.
RUN touch catalog/src/lib.rs sinks/src/lib.rs sql/src/lib.rs formats/src/lib.rs devtools/src/lib.rs \
    engine/src/lib.rs cli/src/main.rs \
 && cargo build --release --locked -p floe-cli --bin floe \
 && cp target/release/floe /usr/local/bin/floe

# --- Runtime: the binary, CA certificates and an unprivileged user. ---
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates=20230311* zlib1g=1:1.2.13* \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/floe --create-home floe
COPY --from=builder /usr/local/bin/floe /usr/local/bin/floe
USER 10001
WORKDIR /var/lib/floe
ENV FLOE_HOME=/var/lib/floe \
    FLOE_METRICS_ADDR=0.0.0.0:9249
EXPOSE 9249
ENTRYPOINT ["/usr/local/bin/floe", "run", "/etc/floe/job.sql"]
