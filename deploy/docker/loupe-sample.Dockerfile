# `loupe-sample`: the demo's bookinfo-like services and load generator.
#   docker build -f deploy/docker/loupe-sample.Dockerfile -t docker.io/loupe/loupe-sample:0.1.0 .

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p loupe-samples --bin loupe-sample \
 && cp target/release/loupe-sample /usr/local/bin/loupe-sample

FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /usr/local/bin/loupe-sample /usr/local/bin/loupe-sample
USER 1337:1337
ENTRYPOINT ["/usr/local/bin/loupe-sample"]
