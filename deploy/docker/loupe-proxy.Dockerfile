# `loupe-proxy`: the sidecar, its capture init step (`loupe-proxy iptables`,
# which needs the iptables binaries) and the ingress gateway. Build from the
# repository root:
#   docker build -f deploy/docker/loupe-proxy.Dockerfile -t docker.io/loupe/loupe-proxy:0.1.0 .

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p loupe-proxy \
 && cp target/release/loupe-proxy /usr/local/bin/loupe-proxy

FROM debian:bookworm-slim
# iptables for the init container (it runs as root with NET_ADMIN/NET_RAW);
# versions follow the Debian release rather than being pinned.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates iptables \
 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /usr/local/bin/loupe-proxy /usr/local/bin/loupe-proxy
# The sidecar's UID: the capture rules exempt its own traffic by it.
USER 1337:1337
ENTRYPOINT ["/usr/local/bin/loupe-proxy"]
