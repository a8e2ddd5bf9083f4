# The `loupe` binary (control plane, collector, console, CLI) and the built
# console frontend. Build from the repository root:
#   docker build -f deploy/docker/loupe.Dockerfile -t docker.io/loupe/loupe:0.1.0 .
# The manifests under deploy/kubernetes/ run it as `loupe control|collector|console`.

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# The frontend's WASM (scripts/build-frontend.sh adds the target and the
# wasm-bindgen-cli matching Cargo.lock), then the binary.
RUN scripts/build-frontend.sh \
 && cargo build --release --locked -p loupe \
 && cp target/release/loupe /usr/local/bin/loupe

FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /usr/local/bin/loupe /usr/local/bin/loupe
COPY --from=builder /src/frontend/dist /usr/share/loupe/frontend
USER 1337:1337
ENTRYPOINT ["/usr/local/bin/loupe"]
