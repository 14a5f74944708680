#!/usr/bin/env bash
# The load benchmark: authenticated MCP `tools/call echo` against the production build (`dist`),
# side by side with a ceiling (bare axum answering the same bytes, benches/ceiling.rs), all in
# one invocation so the ratios compare runs made minutes apart on the same machine.
#
#   bash benches/load.sh            # about 2 minutes after the dist build
#
# Servers are pinned to one CPU and wrk to another (a 2-core machine: CPU 0 and CPU 1). Runs
# are interleaved round by round (ceiling, ours, ceiling + RS256, ours with a token pool, ours
# legacy, then again), each at a fixed concurrency with keep-alive after a short warm-up. A
# server's CPU per request is read from /proc/PID/stat, split into user space and kernel: the
# kernel's share (sockets) is much the same for every server, so what ours adds is in user space.
#
# Rows:
#   ceiling              bare axum, the fixed answer, no auth (the request still carries a token)
#   ceiling + RS256      the same, verifying an RS256 token per request (aws-lc-rs, key parsed once)
#   modern, one token    our server, 2026-07-28, one bearer token (the verified-token cache hits)
#   modern, token pool   our server, a pool of distinct tokens larger than its token cache
#                        (every token is a cache miss: signature checked every time)
#   legacy, session      our server, 2025-11-25, after initialize, in one Mcp-Session-Id session,
#                        sessions in memory (`storage.url = memory:`, as every row above)
#   legacy, sqlite/redis the same, sessions in an SQLite file / in a local redis-server
#   refresh              the refresh-token grant at /token (embedded authorization server), each
#                        connection following its own rotation chain (benches/refresh.lua): memory,
#                        then SQLite, then Redis (each refresh reads, spends and files records)
#   rmcp                 with LOAD_PEERS=rmcp: rmcp, the official Rust SDK, serving the same tool
#                        behind the ceiling's RS256 check (benches/peers/rmcp), modern era
# Then memory and start-up: idle RSS, cold start to the first 200 on /health, and RSS with
# LOAD_SESSIONS legacy sessions opened and left idle (bounded by mcp.max_sessions, expired by
# mcp.session_idle_timeout_secs, both set here).
#
# Knobs (environment): LOAD_DURATION (s per run, 8), LOAD_WARMUP (s, 1), LOAD_ROUNDS (2),
# LOAD_CONNECTIONS (32), LOAD_TOKEN_POOL (4096), LOAD_POOL_CACHE (token cache of the pool
# server, 256), LOAD_SESSIONS (10000), LOAD_IDLE_SECS (idle timeout of the session run, 6),
# LOAD_PORT (first of 8 ports, 28100: below the ephemeral range), LOAD_SERVER_CPU (0), LOAD_CLIENT_CPU (1),
# LOAD_PEERS (empty, or rmcp: adds the rmcp row; its first build takes some 2-3 minutes more).
# Needs wrk and redis-server (installed from Debian when missing).
# Every server this script starts is stopped by process id when it exits.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${LOAD_DURATION:-8}"
WARMUP="${LOAD_WARMUP:-1}"
ROUNDS="${LOAD_ROUNDS:-2}"
CONNECTIONS="${LOAD_CONNECTIONS:-32}"
POOL="${LOAD_TOKEN_POOL:-4096}"
POOL_CACHE="${LOAD_POOL_CACHE:-256}"
SESSIONS="${LOAD_SESSIONS:-10000}"
IDLE_SECS="${LOAD_IDLE_SECS:-6}"
PORT="${LOAD_PORT:-28100}"
SERVER_CPU="${LOAD_SERVER_CPU:-0}"
CLIENT_CPU="${LOAD_CLIENT_CPU:-1}"
PEERS="${LOAD_PEERS:-}"
case "$PEERS" in "" | rmcp) ;; *) echo "LOAD_PEERS: empty or rmcp, not '$PEERS'" >&2; exit 2 ;; esac

started=$SECONDS
work=target/bench/load
rm -rf "$work/config" "$work/results" && mkdir -p "$work/config" "$work/results"
note() { printf '[%3ds] %s\n' $((SECONDS - started)) "$*" >&2; }

for tool in wrk redis-server; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    note "$tool not found; installing Debian's"
    apt-get install -y -qq "$tool" >/dev/null 2>&1 || { echo "load.sh needs $tool (apt-get install $tool)" >&2; exit 1; }
  fi
done

note "building (dist): the server as deployed, then the ceiling and the token minter"
# The server on its own, as `cargo build --profile dist --all-features` builds it (building the
# examples in the same invocation would unify the dev-dependencies' features into it).
cargo build --profile dist --quiet --all-features --bin mcp-auth-server
cargo build --profile dist --quiet --all-features --example ceiling --example generate_token --example hash_password
server_bin=target/dist/mcp-auth-server
ceiling_bin=target/dist/examples/ceiling
mint_bin=target/dist/examples/generate_token
hash_bin=target/dist/examples/hash_password
if [ "$PEERS" = rmcp ]; then
  note "building (release): the rmcp peer (its own crate and lock file)"
  cargo build --release --quiet --manifest-path benches/peers/rmcp/Cargo.toml --target-dir target/peers
fi

# Only the compiled-in defaults and these variables: no local config file changes the numbers.
export MCP_AUTH_CONFIG_DIR="$work/config"
export MCP_AUTH__JWT__PRIVATE_KEY="$work/keys/private.pem"
export MCP_AUTH__JWT__PUBLIC_KEYS="$work/keys/public.pem"
export MCP_AUTH__SERVER__PUBLIC_URL="http://127.0.0.1:$PORT"
# State in memory unless a row says otherwise.
export MCP_AUTH__STORAGE__URL=memory:
# One client sends everything here: rate limits far above what it can send, so their
# bookkeeping runs on every request but never refuses one.
for limit in PER_ADDRESS_PER_SEC PER_ADDRESS_BURST PER_CALLER_PER_SEC PER_CALLER_BURST; do
  export "MCP_AUTH__LIMITS__$limit=1000000000"
done
issuer="$MCP_AUTH__SERVER__PUBLIC_URL"
audience="$issuer/mcp"

note "minting tokens: 1, and a pool of $POOL distinct ones"
"$mint_bin" --username bench --scopes mcp:read,mcp:tools >"$work/token"
"$mint_bin" --username bench --scopes mcp:read,mcp:tools --count "$POOL" >"$work/pool"
token="$(cat "$work/token")"

declare -A PID
cleanup() {
  for pid in "${PID[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

wait_for() { # port
  for _ in $(seq 200); do
    curl -sf -o /dev/null "http://127.0.0.1:$1/health" && return 0
    sleep 0.05
  done
  return 1
}

# start NAME PORT COMMAND...: runs it on the server CPU, output discarded (the audit trail writes
# one line per call to stdout, as it would in production; here it goes to /dev/null).
start() {
  local name=$1 port=$2
  shift 2
  taskset -c "$SERVER_CPU" "$@" >/dev/null 2>"$work/results/$name.stderr" &
  PID[$name]=$!
  wait_for "$port" || { echo "$name did not start:" >&2; cat "$work/results/$name.stderr" >&2; exit 1; }
  sleep 0.2
  echo "$(rss "$name" VmRSS)" >"$work/results/$name.idle_kib"
}

rss() { awk -v key="$2:" '$1 == key { print $2 }' "/proc/${PID[$1]}/status"; } # NAME VmRSS|VmHWM (KiB)
user_ticks() { awk '{ print $14 }' "/proc/${PID[$1]}/stat"; } # CPU time in user space, then in the kernel
system_ticks() { awk '{ print $15 }' "/proc/${PID[$1]}/stat"; }

modern_body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'
legacy_body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"}}}'
modern_headers=(-H "Content-Type: application/json" -H "Accept: application/json, text/event-stream"
  -H "MCP-Protocol-Version: 2026-07-28" -H "Mcp-Method: tools/call" -H "Mcp-Name: echo")

# The refresh rows sign a person in at the embedded authorization server: one user and one
# public client, in a file given with --config to the servers of the legacy and refresh rows.
cat >"$work/refresh.toml" <<TOML
[issuer]
# One client address signs in for every chain.
authorize_per_address_per_minute = 1000000
max_pending_per_address = 1000000
[[issuer.users]]
username = "bench"
roles = ["user"]
password_hash = "$("$hash_bin" bench-password)"
[[issuer.clients]]
client_id = "bench-client"
name = "load.sh"
redirect_uris = ["http://127.0.0.1:9/callback"]
TOML
redis_port=$((PORT + 13))
note "redis-server on CPU $SERVER_CPU, port $redis_port (append-only, fsync every second)"
taskset -c "$SERVER_CPU" redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work" --save '' \
  --appendonly yes --appendfsync everysec >"$work/results/redis.log" 2>&1 &
PID[redis]=$!
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.05; done
rm -f "$work"/load.db*

note "starting servers on CPU $SERVER_CPU"
start modern $((PORT + 2)) env MCP_AUTH__SERVER__BIND="127.0.0.1:$((PORT + 2))" "$server_bin"
start pool $((PORT + 3)) env MCP_AUTH__SERVER__BIND="127.0.0.1:$((PORT + 3))" \
  MCP_AUTH__JWT__TOKEN_CACHE_SIZE="$POOL_CACHE" "$server_bin"
start legacy $((PORT + 4)) env MCP_AUTH__SERVER__BIND="127.0.0.1:$((PORT + 4))" "$server_bin" --config "$work/refresh.toml"
start sqlite $((PORT + 8)) env MCP_AUTH__SERVER__BIND="127.0.0.1:$((PORT + 8))" \
  MCP_AUTH__STORAGE__URL="sqlite://$work/load.db" "$server_bin" --config "$work/refresh.toml"
start redis_store $((PORT + 9)) env MCP_AUTH__SERVER__BIND="127.0.0.1:$((PORT + 9))" \
  MCP_AUTH__STORAGE__URL="redis://127.0.0.1:$redis_port/0" "$server_bin" --config "$work/refresh.toml"
declare -A BACKEND_PORT=([legacy]=$((PORT + 4)) [sqlite]=$((PORT + 8)) [redis_store]=$((PORT + 9)))

# What our server answers is what the ceiling answers, byte for byte.
curl -sf "http://127.0.0.1:$((PORT + 2))/mcp" -H "Authorization: Bearer $token" "${modern_headers[@]}" \
  -d "$modern_body" -o "$work/answer.json"
grep -q '"text":"hello"' "$work/answer.json" && ! grep -q '"isError"' "$work/answer.json" \
  || { echo "unexpected answer: $(cat "$work/answer.json")" >&2; exit 1; }
start ceiling $PORT "$ceiling_bin" --bind "127.0.0.1:$PORT" --body "$work/answer.json"
start ceiling_rs256 $((PORT + 1)) "$ceiling_bin" --bind "127.0.0.1:$((PORT + 1))" --body "$work/answer.json" \
  --verify "$work/keys/public.pem" --issuer "$issuer" --audience "$audience"
configs=(ceiling modern ceiling_rs256 pool legacy legacy_sqlite legacy_redis refresh refresh_sqlite refresh_redis)
if [ "$PEERS" = rmcp ]; then
  start rmcp $((PORT + 7)) target/peers/release/rmcp-peer --bind "127.0.0.1:$((PORT + 7))" \
    --verify "$work/keys/public.pem" --issuer "$issuer" --audience "$audience"
  curl -sf "http://127.0.0.1:$((PORT + 7))/mcp" -H "Authorization: Bearer $token" "${modern_headers[@]}" \
    -d "$modern_body" | grep -q '"text":"hello"' || { echo "the rmcp peer's call failed" >&2; exit 1; }
  configs+=(rmcp)
fi

# A legacy session on each backend's server: initialize, then notifications/initialized.
declare -A SESSION
for backend in legacy sqlite redis_store; do
  url="http://127.0.0.1:${BACKEND_PORT[$backend]}/mcp"
  session="$(curl -sf -D - -o /dev/null "$url" -H "Authorization: Bearer $token" \
    -H "Content-Type: application/json" -H "Accept: application/json, text/event-stream" \
    -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"load.sh","version":"1"}}}' |
    awk 'tolower($1) == "mcp-session-id:" { print $2 }' | tr -d '\r')"
  [ -n "$session" ] || { echo "initialize gave no session ($backend)" >&2; exit 1; }
  SESSION[$backend]=$session
  headers=(-H "Content-Type: application/json" -H "Accept: application/json, text/event-stream"
    -H "MCP-Protocol-Version: 2025-11-25" -H "Mcp-Session-Id: $session")
  curl -sf -o /dev/null "$url" -H "Authorization: Bearer $token" "${headers[@]}" \
    -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
  curl -sf "$url" -H "Authorization: Bearer $token" "${headers[@]}" -d "$legacy_body" |
    grep -q '"text":"hello"' || { echo "the legacy call failed ($backend)" >&2; exit 1; }
done

# Refresh chains: per backend, one file of $CONNECTIONS + 1 refresh tokens (each its own
# sign-in's grant; wrk's check of the script takes one) for each run, as a run leaves the tokens
# of its last requests in flight, spent.
note "signing in for the refresh rows: $(((ROUNDS + 1) * (CONNECTIONS + 1))) grants per backend"
for backend in legacy sqlite redis_store; do
  python3 - "http://127.0.0.1:${BACKEND_PORT[$backend]}" "$((CONNECTIONS + 1))" "$((ROUNDS + 1))" "$work/refresh-$backend" <<'EOF'
import base64, hashlib, json, os, secrets, sys, urllib.parse, urllib.request
from http.cookiejar import CookieJar
sys.path.insert(0, "tests")
from issuer_login import NoRedirect, form, request
base, per_run, runs, prefix = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()), NoRedirect)
callback = "http://127.0.0.1:9/callback"
def grant():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urllib.parse.urlencode({"response_type": "code", "client_id": "bench-client", "redirect_uri": callback,
                                    "code_challenge": challenge, "code_challenge_method": "S256", "state": "s",
                                    "scope": "mcp:read mcp:tools"})
    url = f"{base}/authorize?{query}"
    status, headers, page = request(opener, url)
    if 'name="password"' in page:  # the first time only: the sign-in is remembered (cookie)
        action, fields = form(page, url)
        status, headers, page = request(opener, action, {**fields, "username": "bench", "password": "bench-password"})
        url = urllib.parse.urljoin(action, headers["Location"])
        status, headers, page = request(opener, url)
    if status == 200:  # the consent page
        action, fields = form(page, url)
        status, headers, page = request(opener, action, {**fields, "decision": "allow"})
    code = urllib.parse.parse_qs(urllib.parse.urlparse(headers["Location"]).query)["code"][0]
    status, _, body = request(opener, f"{base}/token", {"grant_type": "authorization_code", "code": code,
                              "client_id": "bench-client", "redirect_uri": callback, "code_verifier": verifier})
    return json.loads(body)["refresh_token"]
for run in range(runs):
    with open(f"{prefix}.{run}", "w") as out:
        out.write("".join(grant() + "\n" for _ in range(per_run)))
EOF
done
declare -A REFRESH_RUN=([legacy]=0 [sqlite]=0 [redis_store]=0)

# run CONFIG SECONDS [record]: one wrk run of a configuration.
run() {
  local config=$1 seconds=$2 record=${3:-}
  local server port tokens body headers script=benches/load.lua path=/mcp refresh=""
  case $config in
  ceiling) server=ceiling port=$PORT tokens="$work/token" body=$modern_body headers=("${modern_headers[@]}") ;;
  ceiling_rs256) server=ceiling_rs256 port=$((PORT + 1)) tokens="$work/pool" body=$modern_body headers=("${modern_headers[@]}") ;;
  modern) server=modern port=$((PORT + 2)) tokens="$work/token" body=$modern_body headers=("${modern_headers[@]}") ;;
  pool) server=pool port=$((PORT + 3)) tokens="$work/pool" body=$modern_body headers=("${modern_headers[@]}") ;;
  legacy | legacy_sqlite | legacy_redis)
    server=$(server_of "$config") port=${BACKEND_PORT[$(server_of "$config")]} tokens="$work/token" body=$legacy_body
    headers=(-H "Content-Type: application/json" -H "Accept: application/json, text/event-stream"
      -H "MCP-Protocol-Version: 2025-11-25" -H "Mcp-Session-Id: ${SESSION[$server]}") ;;
  refresh | refresh_sqlite | refresh_redis)
    server=$(server_of "$config") port=${BACKEND_PORT[$(server_of "$config")]} tokens="" body="" headers=()
    script=benches/refresh.lua path=/token refresh="$work/refresh-$server.${REFRESH_RUN[$server]}"
    REFRESH_RUN[$server]=$((REFRESH_RUN[$server] + 1)) ;;
  rmcp) server=rmcp port=$((PORT + 7)) tokens="$work/pool" body=$modern_body headers=("${modern_headers[@]}") ;;
  esac
  local user system out
  user=$(user_ticks "$server") system=$(system_ticks "$server")
  out="$(LOAD_BODY=$body LOAD_TOKENS=$tokens LOAD_REFRESH=$refresh LOAD_CLIENT=bench-client \
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"${seconds}s" \
    -s "$script" "${headers[@]}" "http://127.0.0.1:$port$path")"
  user=$(($(user_ticks "$server") - user)) system=$(($(system_ticks "$server") - system))
  if [ -n "$record" ]; then
    echo "$config $(grep '^RESULT' <<<"$out" | cut -d' ' -f2-) $user $system" >>"$work/results/runs"
  fi
}

# The server process of a configuration (the legacy and refresh rows share one per backend).
server_of() {
  case $1 in
  legacy | refresh) echo legacy ;;
  legacy_sqlite | refresh_sqlite) echo sqlite ;;
  legacy_redis | refresh_redis) echo redis_store ;;
  *) echo "$1" ;;
  esac
}

note "warm-up: ${WARMUP}s per configuration"
for config in "${configs[@]}"; do run "$config" "$WARMUP"; done
for round in $(seq "$ROUNDS"); do
  for config in "${configs[@]}"; do
    note "round $round/$ROUNDS: $config (${DURATION}s, $CONNECTIONS connections)"
    run "$config" "$DURATION" record
  done
done
for config in "${configs[@]}"; do
  server=$(server_of "$config")
  echo "$(rss "$server" VmHWM)" >"$work/results/$config.peak_kib"
  cp "$work/results/$server.idle_kib" "$work/results/$config.idle_kib" 2>/dev/null || true
done
for name in "${!PID[@]}"; do kill "${PID[$name]}"; unset "PID[$name]"; done

note "cold start: exec to the first 200 on /health, 5 times"
python3 - "$server_bin" $((PORT + 5)) "$SERVER_CPU" "$CLIENT_CPU" >"$work/results/cold_start_ms" <<'EOF'
import os, socket, statistics, subprocess, sys, time
binary, port, server_cpu, client_cpu = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
os.sched_setaffinity(0, {client_cpu})
env = dict(os.environ, MCP_AUTH__SERVER__BIND=f"127.0.0.1:{port}")
request = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
samples = []
for _ in range(5):
    t0 = time.perf_counter()
    server = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              preexec_fn=lambda: os.sched_setaffinity(0, {server_cpu}))
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(request)
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    break
        except OSError:
            pass
        if time.perf_counter() - t0 > 10:
            sys.exit("the server did not answer /health within 10 s")
    samples.append((time.perf_counter() - t0) * 1000)
    server.terminate()
    server.wait()
print(f"{statistics.median(samples):.1f} {max(samples):.1f}")
EOF

note "memory: $SESSIONS legacy sessions opened and left idle (idle timeout ${IDLE_SECS}s)"
mem_port=$((PORT + 6))
start sessions $mem_port env MCP_AUTH__SERVER__BIND="127.0.0.1:$mem_port" MCP_AUTH__SERVER__HEALTH_DETAILS=true \
  MCP_AUTH__MCP__MAX_SESSIONS="$SESSIONS" MCP_AUTH__MCP__MAX_SESSIONS_PER_CALLER="$SESSIONS" \
  MCP_AUTH__MCP__SESSION_IDLE_TIMEOUT_SECS="$IDLE_SECS" "$server_bin"
sessions_now() { curl -sf "http://127.0.0.1:$mem_port/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["mcp"]["sessions"])'; }
init_body='{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"load.sh","version":"1"}}}'
# Opening: as fast as wrk goes, until the store is full (beyond it initialize answers 503).
opening=$SECONDS
until [ "$(sessions_now)" -ge "$SESSIONS" ]; do
  [ $((SECONDS - opening)) -lt 30 ] || { echo "could not open $SESSIONS sessions" >&2; exit 1; }
  LOAD_BODY=$init_body LOAD_TOKENS="$work/token" taskset -c "$CLIENT_CPU" wrk -t1 -c4 -d1s -s benches/load.lua \
    -H "Content-Type: application/json" -H "Accept: application/json, text/event-stream" \
    "http://127.0.0.1:$mem_port/mcp" >/dev/null
done
sleep 0.2
echo "$(sessions_now) $(rss sessions VmRSS)" >"$work/results/sessions_open"
refused="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mem_port/mcp" -H "Authorization: Bearer $token" \
  -H "Content-Type: application/json" -H "Accept: application/json, text/event-stream" -d "$init_body")"
expiring=$SECONDS
until [ "$(sessions_now)" -eq 0 ]; do
  [ $((SECONDS - expiring)) -lt $((IDLE_SECS + 10)) ] || break
  sleep 0.5
done
echo "$(sessions_now) $(rss sessions VmRSS) $((SECONDS - expiring)) $refused" >"$work/results/sessions_expired"
kill "${PID[sessions]}"
unset "PID[sessions]"

note "done"
python3 - "$work/results" "$DURATION" "$ROUNDS" "$CONNECTIONS" "$POOL" "$POOL_CACHE" "$SESSIONS" "$IDLE_SECS" \
  "$(getconf CLK_TCK)" "$((SECONDS - started))" <<'EOF'
import collections, os, platform, statistics, subprocess, sys, time
results, duration, rounds, conns, pool, pool_cache, sessions, idle, clk_tck, elapsed = sys.argv[1:]
clk_tck = int(clk_tck)
runs = collections.defaultdict(list)
for line in open(os.path.join(results, "runs")):
    config, *fields = line.split()
    requests, duration_us, p50, p99, socket_errors, status_errors, max_us, user, system = map(int, fields)
    per_request = lambda ticks: ticks / clk_tck * 1e6 / max(requests, 1)
    runs[config].append(dict(rps=requests / (duration_us / 1e6), p50=p50, p99=p99, errors=socket_errors + status_errors,
                             cpu_us=per_request(user + system), user_us=per_request(user), system_us=per_request(system)))
def kib(name, kind):
    return int(open(os.path.join(results, f"{name}.{kind}_kib")).read()) / 1024
mean = lambda config, key: statistics.mean(r[key] for r in runs[config])
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
print(f"\n## Load benchmark — {time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} CPUs ({model}), "
      f"{platform.system()} {platform.release()}, commit {rev}")
print(f"authenticated `tools/call echo`, wrk -t1 -c{conns}, {rounds} interleaved rounds of {duration} s "
      f"(mean shown), server on one CPU, wrk on the other\n")
rows = [("ceiling", "bare axum, fixed answer, no auth (ceiling)", "ceiling"),
        ("ceiling_rs256", "bare axum + RS256 verify per request", "ceiling_rs256"),
        ("modern", "ours, modern, one token (cache hit)", "ceiling"),
        ("pool", f"ours, modern, {pool} distinct tokens (cache {pool_cache}: all misses)", "ceiling_rs256"),
        ("legacy", "ours, legacy 2025-11-25, one session (memory)", "ceiling"),
        ("legacy_sqlite", "ours, legacy, one session, storage sqlite://", "legacy"),
        ("legacy_redis", "ours, legacy, one session, storage redis://", "legacy"),
        ("refresh", "ours, refresh-token grant (memory)", "ceiling_rs256"),
        ("refresh_sqlite", "ours, refresh-token grant, storage sqlite://", "refresh"),
        ("refresh_redis", "ours, refresh-token grant, storage redis://", "refresh")]
if runs["rmcp"]:
    rows.append(("rmcp", "rmcp 3.11 (official Rust SDK) + the same RS256 check, modern", "ceiling_rs256"))
print("| server | req/s | ratio | p50 ms | p99 ms | errors | CPU µs/req (user + kernel) | peak RSS MiB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for config, label, against in rows:
    ratio = "1.00" if config == against else f"{mean(config, 'rps') / mean(against, 'rps'):.2f}× {against.replace('_rs256', ' + RS256').replace('refresh', 'refresh, memory').replace('legacy', 'legacy, memory')}"
    print(f"| {label} | {mean(config, 'rps'):,.0f} | {ratio} | {mean(config, 'p50') / 1000:.2f} | "
          f"{mean(config, 'p99') / 1000:.2f} | {sum(r['errors'] for r in runs[config])} | "
          f"{mean(config, 'cpu_us'):.1f} ({mean(config, 'user_us'):.1f} + {mean(config, 'system_us'):.1f}) | "
          f"{kib(config, 'peak'):.1f} |")
print(f"\np99 ours (modern, one token) / ceiling: {mean('modern', 'p99') / mean('ceiling', 'p99'):.2f}×")
# The mean above follows whichever server had a stall; each round's own ratio shows whether one did.
p99_ratios = [m["p99"] / c["p99"] for m, c in zip(runs["modern"], runs["ceiling"])]
print("the same, round by round: " + ", ".join(f"{r:.2f}×" for r in p99_ratios)
      + f" (median {statistics.median(p99_ratios):.2f}×)")
if runs["rmcp"]:
    print(f"ours / rmcp, req/s: {mean('modern', 'rps') / mean('rmcp', 'rps'):.2f}× with one token (cache hit), "
          f"{mean('pool', 'rps') / mean('rmcp', 'rps'):.2f}× with every token verified, as rmcp's are")
print("per-round req/s: " + "; ".join(f"{c}: " + ", ".join(f"{r['rps']:,.0f}" for r in runs[c]) for c, _, _ in rows))
cold_median, cold_max = open(os.path.join(results, "cold_start_ms")).read().split()
open_count, open_kib = open(os.path.join(results, "sessions_open")).read().split()
left, after_kib, waited, refused = open(os.path.join(results, "sessions_expired")).read().split()
idle_kib = int(open(os.path.join(results, "sessions.idle_kib")).read())
print("\n| memory and start-up | value |\n|---|---:|")
print(f"| idle RSS, ours (ceiling) | {kib('modern', 'idle'):.1f} MiB ({kib('ceiling', 'idle'):.1f} MiB) |")
print(f"| cold start to first 200 on /health (median, max of 5) | {cold_median} ms, {cold_max} ms |")
print(f"| {open_count} idle legacy sessions: RSS, extra over idle | {int(open_kib) / 1024:.1f} MiB, "
      f"+{(int(open_kib) - idle_kib) / 1024:.1f} MiB |")
print(f"| initialize beyond mcp.max_sessions = {sessions} | HTTP {refused} |")
print(f"| after the {idle} s idle timeout: sessions left, RSS | {left} after {waited} s, {int(after_kib) / 1024:.1f} MiB |")
print(f"\ncommand: bash benches/load.sh  (took {elapsed} s)")
EOF
