#!/usr/bin/env bash
# Several instances behind a proxy, sharing one Redis (issue 25): what `README.md` ("Running
# several instances") describes, on loopback, started and stopped here.
#
#   redis-server   append-only file, fsync every second (what the README recommends: every
#                  write acknowledged is in the file before the answer, so a crash of Redis
#                  loses none of them; a crash of the machine, at most the last second)
#   two instances  storage.url = redis://..., server.public_url = the proxy, the same key files
#   nginx          deploy/nginx.conf: round-robin, no stickiness, no buffering (SSE),
#                  X-Forwarded-For replaced
#
# Through the proxy:
#   1. the official conformance suite, both revisions, against two examples/conformance_server;
#   2. the official clients (Python both eras, TypeScript, the Inspector CLI) doing the whole
#      OAuth flow with the embedded authorization server (tests/interop/run.sh cluster);
#   3. faults (faults.py): Redis killed and restarted (registration and refresh token kept, the
#      session too); one refresh token redeemed on both instances at once (one success); one
#      instance SIGKILLed in the middle of the Python SDK's run (it finishes without signing in
#      again, in the same session; the session's stream reopens on the other instance at once).
#
# Needs redis-server and nginx (installed from Debian when missing and running as root).
# Ports: CLUSTER_PORT_BASE (27200) .. +3. Logs in target/cluster/.
set -euo pipefail
cd "$(dirname "$0")/../.."

for tool in redis-server:redis-server nginx:nginx; do
  if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool##*:}" >/dev/null
    else
      echo "cluster: ${tool%%:*} is missing (apt-get install ${tool##*:})" >&2; exit 2
    fi
  fi
done
NGINX=$(command -v nginx)

BASE=${CLUSTER_PORT_BASE:-27200}
REDIS_PORT=$BASE A_PORT=$((BASE + 1)) B_PORT=$((BASE + 2)) PROXY_PORT=$((BASE + 3))
PROXY="http://127.0.0.1:$PROXY_PORT"
WORK=$PWD/target/cluster
started=$SECONDS
say() { printf -- '--- cluster: %s (%ds)\n' "$*" $((SECONDS - started)); }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { # wait_for SECONDS COMMAND...
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}
for port in "$REDIS_PORT" "$A_PORT" "$B_PORT" "$PROXY_PORT"; do
  if port_busy "$port"; then echo "cluster: port $port is in use; set CLUSTER_PORT_BASE" >&2; exit 2; fi
done

rm -rf "$WORK"
mkdir -p "$WORK/redis" "$WORK/nginx"
redis_pid="" a_pid="" b_pid="" nginx_pid=""
stop() { [ -n "$1" ] && kill "$1" 2>/dev/null && wait "$1" 2>/dev/null || true; }
cleanup() { stop "$a_pid"; stop "$b_pid"; stop "$nginx_pid"; stop "$redis_pid"; }
trap cleanup EXIT

start_redis() {
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK/redis" --save '' \
    --appendonly yes --appendfsync everysec >> "$WORK/redis.log" 2>&1 &
  redis_pid=$!
  wait_for 20 port_busy "$REDIS_PORT" || { cat "$WORK/redis.log" >&2; exit 2; }
}

# One instance of BIN on PORT, sharing Redis database DB, until it listens.
start_instance() { # start_instance NAME BIN PORT DB [VAR=VALUE...]
  local name=$1 bin=$2 port=$3 db=$4; shift 4
  env MCP_AUTH__SERVER__BIND="127.0.0.1:$port" \
    MCP_AUTH__SERVER__PUBLIC_URL="$PROXY" \
    MCP_AUTH__STORAGE__URL="redis://127.0.0.1:$REDIS_PORT/$db" \
    MCP_AUTH__LIMITS__TRUST_FORWARDED_FOR=true \
    MCP_AUTH__SERVER__MAX_CONNECTIONS_PER_ADDRESS=0 \
    MCP_AUTH__SERVER__HEALTH_DETAILS=true \
    "$@" "$bin" >> "$WORK/$name.log" 2>&1 &
  eval "${name}_pid=$!"
  wait_for 60 port_busy "$port" || { cat "$WORK/$name.log" >&2; exit 2; }
}

say "building the service (all features) and examples/conformance_server (tools, store-redis)"
cargo build --quiet --all-features
cargo build --quiet --example conformance_server --features tools,store-redis
SERVER_BIN=$PWD/target/debug/mcp-auth-server
CONFORMANCE_BIN=$PWD/target/debug/examples/conformance_server

say "redis-server on $REDIS_PORT (append-only), nginx on $PROXY_PORT in front of $A_PORT and $B_PORT"
start_redis
# deploy/nginx.conf, the one the README and compose use, moved to loopback ports, logging which
# instance served each request.
sed -e "s#server mcp-1:3000;#server 127.0.0.1:$A_PORT;#" -e "s#server mcp-2:3000;#server 127.0.0.1:$B_PORT;#" \
  -e "s#listen 8080;#listen 127.0.0.1:$PROXY_PORT;#" \
  -e "s#access_log /dev/stdout;#log_format upstream '\$request \$status \$upstream_addr'; access_log $WORK/nginx/access.log upstream;#" \
  deploy/nginx.conf > "$WORK/nginx/nginx.conf"
"$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" -g "daemon off; pid $WORK/nginx/nginx.pid;" &
nginx_pid=$!
wait_for 20 port_busy "$PROXY_PORT" || { cat "$WORK/nginx/error.log" >&2; exit 2; }

status=0

say "1. conformance, both revisions, through the proxy to two conformance_server instances"
start_instance a "$CONFORMANCE_BIN" "$A_PORT" 0 MCP_AUTH__LOG__FILTER=warn
start_instance b "$CONFORMANCE_BIN" "$B_PORT" 0 MCP_AUTH__LOG__FILTER=warn
CONFORMANCE_URL="$PROXY/mcp" bash tests/conformance.sh || status=1
served_a=$(grep -c " 127.0.0.1:$A_PORT" "$WORK/nginx/access.log" || true)
served_b=$(grep -c " 127.0.0.1:$B_PORT" "$WORK/nginx/access.log" || true)
echo "requests served: instance A $served_a, instance B $served_b"
if [ "$served_a" -eq 0 ] || [ "$served_b" -eq 0 ]; then echo "FAIL: the proxy did not use both instances"; status=1; fi
stop "$a_pid"; stop "$b_pid"; a_pid="" b_pid=""

# The service as deployed, twice. Keys: the same files (keys/, generated by the first instance
# at its first start, then read by the second). Access tokens live 8 s, so the clients refresh.
service() { # service NAME PORT
  start_instance "$1" "$SERVER_BIN" "$2" 1 \
    MCP_AUTH__ISSUER__ACCESS_TOKEN_TTL_SECS=8 MCP_AUTH__JWT__LEEWAY_SECS=0
}
say "2. the official clients, OAuth with the embedded authorization server, through the proxy"
service a "$A_PORT"
service b "$B_PORT"
INTEROP_CLUSTER_URL="$PROXY" bash tests/interop/run.sh cluster || status=1

say "3. faults"
PY=$PWD/target/interop/venv/bin/python
export PROXY A_URL="http://127.0.0.1:$A_PORT" B_URL="http://127.0.0.1:$B_PORT" STATE="$WORK/faults.json"
"$PY" tests/cluster/faults.py sign-in || status=1
say "redis-server SIGKILLed and started again on its append-only file"
kill -9 "$redis_pid"; wait "$redis_pid" 2>/dev/null || true
start_redis
"$PY" tests/cluster/faults.py after-redis-restart || status=1
"$PY" tests/cluster/faults.py concurrent-refresh || status=1
A_PID=$a_pid B_PID=$b_pid "$PY" tests/cluster/faults.py instance-killed || status=1
case "$(cat "$WORK/killed" 2>/dev/null)" in
  A) wait "$a_pid" 2>/dev/null || true; a_pid="" ;;
  B) wait "$b_pid" 2>/dev/null || true; b_pid="" ;;
esac

say "done"
[ "$status" -eq 0 ] && echo "cluster: all passed" || { echo "cluster: FAILED (logs in $WORK)"; exit 1; }
