# syntax=docker/dockerfile:1
#
# dashbridge: OpenAI-compatible gateway in front of DashScope, as a small
# non-root container image.
#
#   docker build -t dashbridge:local .
#   docker run --rm -p 127.0.0.1:8080:8080 --stop-timeout 35 \
#       -e DASHSCOPE_API_KEY -e DASHBRIDGE_API_KEYS=<client key> dashbridge:local
#
# The image listens on 0.0.0.0: with the server-held DASHSCOPE_API_KEY it
# refuses to start (exit 64) without client keys (DASHBRIDGE_API_KEYS), unless
# DASHBRIDGE_ALLOW_ANONYMOUS=true says an open gateway is meant.
#
# `--stop-timeout 35` (or `stop_grace_period: 35s` in compose): Docker's
# default is 10 s before SIGKILL, shorter than the binary's drain window
# (DASHBRIDGE_SHUTDOWN_GRACE_SECS, default 30).
#
# Lint without a Docker engine: scripts/check-dockerfile.sh

ARG RUST_VERSION=1.95

# ---------------------------------------------------------------------------
# Builder: glibc 2.36 (bookworm), the same as the distroless debian12 runtime.
# aws-lc-sys (rustls' crypto) is compiled from C with the image's gcc; it
# needs no cmake on x86_64/aarch64 Linux.
# ---------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS builder

WORKDIR /build

# 1) Dependencies only: build the locked dependency graph against a dummy
#    main, so that this layer stays cached until Cargo.toml/Cargo.lock change.
#    benches/ comes along because Cargo.toml declares a [[bench]] target: the
#    manifest does not parse without its file (it is never built here).
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
RUN mkdir src \
    && printf 'fn main() {}\n' > src/main.rs \
    && cargo build --release --locked \
    && rm -rf src \
    && rm -rf target/release/.fingerprint/dashbridge-* \
              target/release/deps/dashbridge-* \
              target/release/dashbridge*

# 2) The crate itself. Its fingerprint was removed above, so cargo rebuilds
#    it whatever the mtimes of the copied sources are.
COPY src ./src
COPY config ./config
RUN cargo build --release --locked \
    && ./target/release/dashbridge --help > /dev/null

# ---------------------------------------------------------------------------
# Runtime: glibc, libgcc_s (panic unwinding), CA certificates (read by
# rustls-platform-verifier), no shell, no package manager.
# ---------------------------------------------------------------------------
FROM gcr.io/distroless/cc-debian12:nonroot

LABEL org.opencontainers.image.title="dashbridge" \
      org.opencontainers.image.description="OpenAI-compatible HTTP gateway in front of Alibaba Cloud DashScope"

COPY --from=builder /build/target/release/dashbridge /usr/local/bin/dashbridge
COPY config/dashbridge.toml /etc/dashbridge/dashbridge.toml

# 0.0.0.0 (the binary's own default is 127.0.0.1): see the note at the top.
ENV DASHBRIDGE_LISTEN=0.0.0.0:8080 \
    DASHBRIDGE_CONFIG=/etc/dashbridge/dashbridge.toml \
    DASHBRIDGE_LOG_FORMAT=json

# distroless "nonroot" (uid/gid 65532), given numerically so that Kubernetes'
# runAsNonRoot can verify it without resolving a user name.
USER 65532:65532

EXPOSE 8080

# SIGTERM: stop accepting, /readyz turns 503, in-flight streams finish within
# DASHBRIDGE_SHUTDOWN_GRACE_SECS, then exit 0.
STOPSIGNAL SIGTERM

# No shell or curl here: the binary probes its own /healthz
# (http://127.0.0.1:<port of DASHBRIDGE_LISTEN>/healthz, exit 0 on 200).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/dashbridge", "--healthcheck"]

ENTRYPOINT ["/usr/local/bin/dashbridge"]
