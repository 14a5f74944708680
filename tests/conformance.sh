#!/usr/bin/env bash
# Runs the official MCP conformance suite (both revisions) against examples/conformance_server
# on one process, and fails on any failed scored scenario, or on any of the unscored scenarios
# we hold ourselves to (json-schema-2020-12, http-header-validation,
# http-custom-header-server-validation, server-sse-polling, server-session-lifecycle).
# With CONFORMANCE_URL set, runs against that endpoint instead, starting nothing (tests/cluster:
# two instances behind a proxy).
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${CONFORMANCE_PORT:-3001}"
RUNNER="${CONFORMANCE_RUNNER:-../shared/conformance/run.sh}"
HELD=(json-schema-2020-12 http-header-validation http-custom-header-server-validation server-sse-polling server-session-lifecycle)

URL="${CONFORMANCE_URL:-}"
if [ -z "$URL" ]; then
  URL="http://127.0.0.1:$PORT/mcp"
  cargo build --quiet --example conformance_server --features tools
  MCP_AUTH__SERVER__BIND="127.0.0.1:$PORT" MCP_AUTH__LOG__FILTER=warn ./target/debug/examples/conformance_server &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
  done
fi

status=0
for revision in 2026-07-28 2025-11-25; do
  log="$(mktemp)"
  if ! "$RUNNER" "$URL" "$revision" 2>"$log"; then
    status=1
  fi
  unscored="$(grep '^not scored' "$log" || true)"
  echo "$unscored"
  for scenario in "${HELD[@]}"; do
    if printf '%s' "$unscored" | grep -q -- "$scenario"; then
      echo "FAILED (unscored, held): $scenario"
      status=1
    fi
  done
  grep -E '^(FAILED|    - )' "$log" || true
  rm -f "$log"
done
exit $status
