# odoo-bridge in a container. Multi-stage: build with the Rust toolchain, run on a slim
# Debian as an unprivileged user, with the SQLite store on a volume.
#
# These development machines have no Docker engine, so this file is not built in CI; it
# uses nothing beyond the workspace itself and Debian's packages.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p odoo-bridge \
 && strip target/release/odoo-bridge

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --create-home odoo-bridge \
 && mkdir -p /app/data && chown odoo-bridge /app/data
COPY --from=build /src/target/release/odoo-bridge /usr/local/bin/odoo-bridge
USER odoo-bridge
WORKDIR /app
VOLUME /app/data
ENV POLLER_DB_PATH=/app/data/odoo-bridge.db \
    POLLER_LOG_LEVEL=INFO \
    ODOO_BRIDGE_LISTEN=0.0.0.0:9464
EXPOSE 9464
# Docker's own health check, with the binary itself (the slim image has no curl): GET /healthz
# on ODOO_BRIDGE_LISTEN's port over loopback, exit 0 or 1 only. Orchestrators with probes of
# their own (Kubernetes) ask /healthz (liveness) and /readyz (readiness) on port 9464 directly.
# A container running a one-off command instead of `run` (sync, connections …) has no
# listener: start it with --no-healthcheck.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["odoo-bridge", "healthcheck", "--timeout", "5"]
# tini forwards SIGTERM so the daemon finishes in-flight cycles and exits 0.
ENTRYPOINT ["/usr/bin/tini", "--", "odoo-bridge"]
CMD ["run"]
