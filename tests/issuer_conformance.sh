#!/usr/bin/env bash
# The official MCP conformance suite's authorization-server scenarios against the embedded
# authorization server (`conformance authorization`): authorization-server-metadata-endpoint and
# authorization-code-grant. The second needs a person to sign in; tests/issuer_login.py plays that
# part over plain HTTP (alice / wonderland, the dev profile). Fails unless both scenarios pass,
# including the suite's check that client ID metadata documents are advertised.
#
# Installs the suite the way ../shared/conformance/run.sh does (same cache folder, same pins),
# when that has not happened yet.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${ISSUER_CONFORMANCE_PORT:-3003}"
CALLBACK_PORT="${ISSUER_CONFORMANCE_CALLBACK_PORT:-3004}"
CONFORMANCE_HOME="${CONFORMANCE_HOME:-$HOME/.cache/mcp-conformance}"
VERSION="${CONFORMANCE_VERSION:-0.2.0-alpha.12}"
NODE_MAJOR="${CONFORMANCE_NODE_MAJOR:-22}"
SDK="${CONFORMANCE_SDK_VERSION-1.32.2}"
DIR="$CONFORMANCE_HOME/conformance-$VERSION-node$NODE_MAJOR${SDK:+-sdk$SDK}"
CLI="$DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"
case "$(uname -m)" in aarch64|arm64) arch=arm64 ;; *) arch=x64 ;; esac
NODE="${CONFORMANCE_NODE:-$DIR/node_modules/node-linux-$arch/bin/node}"

if [ ! -f "$DIR/.installed" ] || [ ! -f "$CLI" ] || [ ! -x "$NODE" ]; then
  echo "installing @modelcontextprotocol/conformance@$VERSION into $DIR (one time)" >&2
  mkdir -p "$DIR"
  [ -f "$DIR/package.json" ] || printf '{\n  "name": "mcp-conformance-cache",\n  "private": true\n}\n' > "$DIR/package.json"
  packages=("@modelcontextprotocol/conformance@$VERSION" "node-linux-$arch@$NODE_MAJOR")
  [ -n "$SDK" ] && packages+=("@modelcontextprotocol/sdk@$SDK")
  (cd "$DIR" && npm install --no-audit --no-fund --loglevel=error --save-exact "${packages[@]}" >&2)
  date -u +%Y-%m-%dT%H:%M:%SZ > "$DIR/.installed"
fi

cargo build --quiet --all-features
base="http://127.0.0.1:$PORT"
MCP_AUTH__SERVER__BIND="127.0.0.1:$PORT" MCP_AUTH__LOG__FILTER=warn ./target/debug/mcp-auth-server &
server=$!
work="$(mktemp -d)"
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done

# The suite needs a registered client whose redirect URI is its callback listener: register one
# (RFC 7591), public, as an MCP host would.
client_id="$(curl -sf "$base/register" -H 'content-type: application/json' -d "{
  \"client_name\": \"MCP conformance suite\", \"token_endpoint_auth_method\": \"none\",
  \"redirect_uris\": [\"http://127.0.0.1:$CALLBACK_PORT/callback\"]}" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["client_id"])')"

log="$work/cli.log"
set +e
timeout 300 "$NODE" "$CLI" authorization --url "$base" --client-id "$client_id" --resource "$base/mcp" \
  --port "$CALLBACK_PORT" -o "$work/results" > "$log" 2>&1 &
cli=$!
python3 tests/issuer_login.py --wait-for-url "$log" --follow --user alice --password wonderland > "$work/login.log" 2>&1
login=$?
wait $cli
cli_status=$?
set -e

# One line per check, from the checks.json files the suite wrote.
summary="$(python3 - "$work/results" <<'PY'
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).glob("*/checks.json")):
    for check in json.loads(path.read_text()):
        print(f"{check['status']:8} {check['id']}: {check.get('errorMessage') or check.get('description', '')}")
PY
)"
echo "$summary"
status=0
for id in authorization-server-metadata authorization-server-metadata-cimd authorization-code-grant; do
  if ! grep -q "^SUCCESS  $id:" <<<"$summary"; then
    echo "FAILED: $id"
    status=1
  fi
done
if [ "$cli_status" -ne 0 ] || [ "$login" -ne 0 ] || [ "$status" -ne 0 ]; then
  echo "--- conformance CLI output (exit $cli_status)"; cat "$log"
  echo "--- login driver (exit $login)"; cat "$work/login.log"
  exit 1
fi
echo "issuer-conformance: 2 passed, 0 failed"
