#!/usr/bin/env bash
# The sign-in and consent pages in a real browser: builds the server with every feature, starts it
# with the dev profile (alice / wonderland) on 127.0.0.1:$BROWSER_TEST_PORT, and runs
# login_consent.mjs (playwright-core driving Debian's Chromium, keyboard only, JavaScript off).
# Screenshots land in target/browser/. Needs /usr/bin/chromium (`apt-get install -y chromium`).
set -euo pipefail
cd "$(dirname "$0")/../.."

PORT="${BROWSER_TEST_PORT:-3005}"
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || { echo "no Chromium at ${CHROMIUM:-/usr/bin/chromium}" >&2; exit 1; }
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
cargo build --quiet --all-features

MCP_AUTH__SERVER__BIND="127.0.0.1:$PORT" MCP_AUTH__LOG__FILTER=warn ./target/debug/mcp-auth-server &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done

node tests/browser/login_consent.mjs "http://127.0.0.1:$PORT" alice wonderland
