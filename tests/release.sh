#!/usr/bin/env bash
# The quick start's binary: `cargo build --release --all-features`, started on its own keys,
# answering /health and an authenticated `tools/call`. The other tests run debug builds; this is
# the one check that the optimised build works and serves.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${RELEASE_TEST_PORT:-3005}"
cargo build --release --quiet --all-features --bin mcp-auth-server
server_bin=target/release/mcp-auth-server

work="$(mktemp -d)"
server=
trap '[ -n "$server" ] && kill $server 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
export MCP_AUTH_CONFIG_DIR="$work"
export MCP_AUTH__JWT__PRIVATE_KEY="$work/private.pem"
export MCP_AUTH__JWT__PUBLIC_KEYS="$work/public.pem"
export MCP_AUTH__SERVER__PUBLIC_URL="http://127.0.0.1:$PORT"
export MCP_AUTH__SERVER__BIND="127.0.0.1:$PORT"
# The development token minter (a debug build, as the README runs it) makes the key pair the server loads.
token="$(cargo run --quiet --example generate_token -- --username release --scopes mcp:read,mcp:tools)"
"$server_bin" >"$work/server.log" 2>&1 &
server=$!
healthy=
for _ in $(seq 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/health" && { healthy=1; break; }
  sleep 0.1
done
if [ -z "$healthy" ]; then
  echo "the release binary did not answer /health within 10 s" >&2
  cat "$work/server.log" >&2
  exit 1
fi
answer="$(curl -sS "http://127.0.0.1:$PORT/mcp" -H "Authorization: Bearer $token" \
  -H "Content-Type: application/json" -H "Accept: application/json, text/event-stream" \
  -H "MCP-Protocol-Version: 2026-07-28" -H "Mcp-Method: tools/call" -H "Mcp-Name: echo" \
  -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}')"
if ! grep -q '"text":"hello"' <<<"$answer" || grep -q '"isError":true' <<<"$answer"; then
  echo "the release binary did not answer the call: $answer" >&2
  cat "$work/server.log" >&2
  exit 1
fi
echo "the release binary serves: /health and an authenticated tools/call"
