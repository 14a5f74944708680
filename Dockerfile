# syntax=docker/dockerfile:1
# The container image: the production build (`--profile dist --all-features`, fat LTO) on a slim
# Debian, run as a non-root user. This project's machines have no container engine, so the image
# has never been built here: tests/packaging.sh lints this file (hadolint) and checks the
# settings below with the binary's own check-config. See the README, "Deploying".
#
#   docker build -t mcp-auth-server .
#   docker run -p 3000:3000 -e MCP_AUTH__SERVER__PUBLIC_URL=http://localhost:3000 \
#     -v "$PWD/deploy/keys:/var/lib/mcp-auth-server/keys:ro" mcp-auth-server
#
# - It listens on 0.0.0.0:3000, so MCP_AUTH__SERVER__PUBLIC_URL is required (the URL clients
#   use; the server refuses to start without it).
# - Keys: private.pem and public.pem in /var/lib/mcp-auth-server/keys, readable by uid 10001
#   (make them with openssl, see deploy/compose.yaml). None are generated in the image.
# - Settings: /etc/mcp-auth-server/mcp-auth-server.toml (deploy/mcp-auth-server.toml), and
#   MCP_AUTH__SECTION__KEY variables. `docker run IMAGE check-config` prints the effective ones.
# - Data: the SQLite store in /var/lib/mcp-auth-server (a volume); or set
#   MCP_AUTH__STORAGE__URL=redis://... for several instances (deploy/compose.yaml).
# - Nothing else is written: `docker run --read-only` works.

ARG RUST_VERSION=1.95
ARG DEBIAN=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN} AS build
WORKDIR /src
COPY . .
# The registry and target directory are build caches (BuildKit), so the binary is copied out in
# the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --profile dist --all-features --locked --bin mcp-auth-server \
    && install -m 0755 target/dist/mcp-auth-server /usr/local/bin/mcp-auth-server

FROM debian:${DEBIAN}-slim
# ca-certificates: to reach an identity provider or Redis over TLS; curl: the HEALTHCHECK.
# Versions follow the Debian release named above (security updates come with a rebuild).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin mcp \
    && install -d -o mcp -g mcp -m 0700 /var/lib/mcp-auth-server /var/lib/mcp-auth-server/keys
COPY --from=build /usr/local/bin/mcp-auth-server /usr/local/bin/mcp-auth-server
COPY deploy/mcp-auth-server.toml /etc/mcp-auth-server/mcp-auth-server.toml

# Where things are. (MCP_AUTH__JWT__PRIVATE_KEY is the key file's path, not the key.)
# hadolint ignore=DL3064
ENV MCP_AUTH_CONFIG_DIR=/etc/mcp-auth-server \
    MCP_AUTH__SERVER__BIND=0.0.0.0:3000 \
    MCP_AUTH__JWT__PRIVATE_KEY=/var/lib/mcp-auth-server/keys/private.pem \
    MCP_AUTH__JWT__PUBLIC_KEYS=/var/lib/mcp-auth-server/keys/public.pem \
    MCP_AUTH__STORAGE__URL=sqlite:///var/lib/mcp-auth-server/mcp-auth.db
VOLUME ["/etc/mcp-auth-server", "/var/lib/mcp-auth-server"]
WORKDIR /
USER 10001:10001
EXPOSE 3000
# Ready = keys loaded, the issuer's metadata fetched, the store reachable. Loopback Host names are
# always allowed, so the probe needs no public name.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:3000/health/ready"]
ENTRYPOINT ["/usr/local/bin/mcp-auth-server", "--config", "/etc/mcp-auth-server/mcp-auth-server.toml"]
CMD ["serve"]
