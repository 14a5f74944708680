#!/usr/bin/env bash
# The admin listener's /metrics read by a real Prometheus (Debian's `prometheus`, installed when
# missing): the server (all features) with admin.bind set serves some successful MCP calls and some
# authentication failures; Prometheus, on loopback with a throwaway config and storage, scrapes the
# admin listener every second; then PromQL over its HTTP API (/api/v1/query) must find a non-zero
# series of MCP calls and one of authentication failures. Everything it started is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v prometheus >/dev/null 2>&1; then
  echo "--- prometheus: installing Debian's prometheus"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
cargo build --quiet --all-features --bin mcp-auth-server --example generate_token

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT="$(free_port)"
ADMIN="$(free_port)"
PROM="$(free_port)"
work="$(mktemp -d)"
server= prom=
cleanup() {
  [ -n "$prom" ] && kill "$prom" 2>/dev/null
  [ -n "$server" ] && kill "$server" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "prometheus: $*" >&2
  echo "--- server log" >&2; cat "$work/server.log" >&2 || true
  echo "--- prometheus log" >&2; tail -20 "$work/prometheus.log" >&2 || true
  echo "prometheus: 0 passed, 1 failed"
  exit 1
}
wait_for() { # wait_for SECONDS COMMAND...: retries COMMAND every 0.2 s
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

# The server, on its own keys and an empty config directory, with the admin listener on.
export MCP_AUTH_CONFIG_DIR="$work"
export MCP_AUTH__JWT__PRIVATE_KEY="$work/private.pem"
export MCP_AUTH__JWT__PUBLIC_KEYS="$work/public.pem"
export MCP_AUTH__SERVER__BIND="127.0.0.1:$PORT"
export MCP_AUTH__ADMIN__BIND="127.0.0.1:$ADMIN"
token="$(target/debug/examples/generate_token --username prom --scopes mcp:read,mcp:tools)"
target/debug/mcp-auth-server >"$work/server.log" 2>&1 &
server=$!
wait_for 30 curl -sf -o /dev/null "http://127.0.0.1:$ADMIN/health/ready" || fail "the admin listener did not come up"

# Traffic: successful tool calls, then requests without a token and with a forged one.
call() { # call AUTHORIZATION_HEADER: a modern tools/call of echo; prints the HTTP status
  curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/mcp" -H "$1" \
    -H "Content-Type: application/json" -H "Accept: application/json, text/event-stream" \
    -H "MCP-Protocol-Version: 2026-07-28" -H "Mcp-Method: tools/call" -H "Mcp-Name: echo" \
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'
}
for _ in 1 2 3; do [ "$(call "Authorization: Bearer $token")" = 200 ] || fail "a tool call was not answered"; done
for _ in 1 2; do [ "$(call "X-No-Token: 1")" = 401 ] || fail "a call without a token was not refused"; done
[ "$(call "Authorization: Bearer ${token%.*}.c2lnbmF0dXJl")" = 401 ] || fail "a forged token was not refused"

# Prometheus: loopback only, scraping the admin listener every second, storage thrown away.
cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: mcp-auth-server
    static_configs:
      - targets: ["127.0.0.1:$ADMIN"]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --web.listen-address="127.0.0.1:$PROM" >"$work/prometheus.log" 2>&1 &
prom=$!

query() { # query PROMQL: the first value of an instant query, or nothing
  curl -sf "http://127.0.0.1:$PROM/api/v1/query" --data-urlencode "query=$1" | python3 -c '
import json, sys
answer = json.load(sys.stdin)
result = answer["data"]["result"] if answer.get("status") == "success" else []
print(result[0]["value"][1] if result else "")'
}
positive() { local value; value="$(query "$1" 2>/dev/null)"; [ -n "$value" ] && python3 -c "import sys; sys.exit(0 if float('$value') > 0 else 1)"; }

wait_for 60 positive 'up{job="mcp-auth-server"}' || fail "Prometheus never scraped the admin listener"
passed=0
for promql in \
  'sum(mcp_server_operation_duration_seconds_count{job="mcp-auth-server",mcp_method_name="tools/call",gen_ai_tool_name="echo",outcome="ok"})' \
  'sum(mcp_auth_authentication_failures_total{job="mcp-auth-server"})' \
  'sum(mcp_auth_authentication_failures_total{job="mcp-auth-server",reason="missing"})' \
  'histogram_quantile(0.5, sum by (le) (mcp_server_operation_duration_seconds_bucket{job="mcp-auth-server"}))'; do
  wait_for 10 positive "$promql" || fail "no non-zero series for: $promql (= '$(query "$promql")')"
  echo "PASS $promql = $(query "$promql")"
  passed=$((passed + 1))
done
echo "prometheus: $passed passed, 0 failed"
