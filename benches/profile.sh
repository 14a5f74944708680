#!/usr/bin/env bash
# Instruction counts of the hot path, repeatable on a shared machine (timings are not): the
# production server (dist), built with line tables (`--profile profiling`), runs under
# `valgrind --tool=callgrind`; a keep-alive client sends a warm-up, the counters are zeroed, then
# it sends exactly LOAD_REQUESTS authenticated `tools/call echo` requests and the counters are
# dumped. Prints instructions per request and the functions that cost the most.
#
#   bash benches/profile.sh [modern|legacy|pool|ceiling]
#   PROFILE_CACHE=1 bash benches/profile.sh modern     # also count cache misses (below)
#
# modern (the default): one token; pool: every token new (cache smaller than the pool);
# legacy: inside a session; ceiling: benches/ceiling.rs answering the same bytes, for reference.
#
# The profile stays in target/bench/profile/callgrind.out.* for callgrind_annotate or kcachegrind.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE="${1:-modern}"
REQUESTS="${LOAD_REQUESTS:-2000}"
PORT="${LOAD_PORT:-28190}"
work=target/bench/profile
rm -rf "$work" && mkdir -p "$work/config"
command -v valgrind >/dev/null || { echo "profile.sh needs valgrind (apt-get install valgrind)" >&2; exit 1; }

cargo build --profile profiling --quiet --features full --bin mcp-auth-server --example generate_token --example ceiling
export MCP_AUTH_CONFIG_DIR="$work/config"
export MCP_AUTH__JWT__PRIVATE_KEY="$work/keys/private.pem"
export MCP_AUTH__JWT__PUBLIC_KEYS="$work/keys/public.pem"
export MCP_AUTH__SERVER__BIND="127.0.0.1:$PORT"
# Rate limits that count but never refuse (one client sends everything).
for limit in PER_ADDRESS_PER_SEC PER_ADDRESS_BURST PER_CALLER_PER_SEC PER_CALLER_BURST; do
  export "MCP_AUTH__LIMITS__$limit=1000000000"
done
count=1
if [ "$MODE" = pool ]; then
  count=$((REQUESTS + 200))
  # Smaller than the pool: every request's token is one the cache has not kept.
  export MCP_AUTH__JWT__TOKEN_CACHE_SIZE=64
fi
target/profiling/examples/generate_token --username bench --scopes mcp:read,mcp:tools --count "$count" >"$work/tokens"

server_cmd=(target/profiling/mcp-auth-server)
if [ "$MODE" = ceiling ]; then
  # The bytes our server answers to the same call (what benches/load.sh hands the ceiling too).
  printf '%s' '{"id":1,"jsonrpc":"2.0","result":{"content":[{"text":"hello","type":"text"}],"resultType":"complete","_meta":{"mcp-auth-server/subject":"bench","io.modelcontextprotocol/serverInfo":{"name":"mcp-auth-server","title":"MCP Auth Server","version":"0.1.0"}}}}' >"$work/answer.json"
  server_cmd=(target/profiling/examples/ceiling --bind "127.0.0.1:$PORT" --body "$work/answer.json")
fi
# PROFILE_CACHE=1 adds callgrind's cache simulation: a 32 KiB L1 for code and one for data, and a
# 512 KiB last level, the L2 of one core of the AMD EPYC hosts these runs also land on (a pointer
# chase there, past it: 21-97 ns at 1 MiB, 190-290 ns at 4 MiB): misses per request count how
# much memory a call touches, which instruction counts do not show. Only this process is
# simulated, not the kernel that shares the cache, so the real misses are more.
# PROFILE_LL=size,ways,line sets another last level: sweeping it finds how much memory a call
# cycles through (at 8493e57: 183 code + 215 data misses per call at 512 KiB, 8 ways; 0 + 25
# at 1 MiB and none at 2 MiB, 16 ways).
cache_sim=()
if [ -n "${PROFILE_CACHE:-}" ]; then
  cache_sim=(--cache-sim=yes --I1=32768,8,64 --D1=32768,8,64 "--LL=${PROFILE_LL:-524288,8,64}")
fi
# On one CPU, as benches/load.sh runs the servers: tokio then starts one worker thread, and no
# task moves between threads (which would also make the allocator hand memory back across them).
taskset -c "${LOAD_SERVER_CPU:-0}" valgrind --tool=callgrind "${cache_sim[@]}" --callgrind-out-file="$work/callgrind.out.%p" "${server_cmd[@]}" \
  >"$work/server.log" 2>"$work/valgrind.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT

python3 - "$MODE" "$PORT" "$REQUESTS" "$work/tokens" "$server" <<'EOF'
import http.client, json, subprocess, sys, time
mode, port, requests, tokens_file, server = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
tokens = [line.strip() for line in open(tokens_file) if line.strip()]
for _ in range(600):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port)
        c.request("GET", "/health")
        if c.getresponse().status == 200:
            break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("the server did not start")
conn = http.client.HTTPConnection("127.0.0.1", port)
base = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
if mode == "legacy":
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "profile", "version": "1"}}}
    conn.request("POST", "/mcp", json.dumps(init), dict(base, Authorization=f"Bearer {tokens[0]}"))
    reply = conn.getresponse()
    reply.read()
    headers = dict(base, **{"MCP-Protocol-Version": "2025-11-25", "Mcp-Session-Id": reply.getheader("mcp-session-id")})
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "hello"}}})
else:
    headers = dict(base, **{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "echo"})
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "echo", "arguments": {"message": "hello"},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}})
n = 0
def call():
    global n
    token = tokens[n % len(tokens)]
    n += 1
    conn.request("POST", "/mcp", body, dict(headers, Authorization=f"Bearer {token}"))
    reply = conn.getresponse()
    data = reply.read()
    if reply.status != 200 or b'"text":"hello"' not in data:
        sys.exit(f"unexpected answer {reply.status}: {data[:300]!r}")
for _ in range(200):
    call()
subprocess.run(["callgrind_control", "--zero", server], check=True, capture_output=True)
for _ in range(requests):
    call()
subprocess.run(["callgrind_control", "--dump=measured", server], check=True, capture_output=True)
EOF

kill -TERM $server
for _ in $(seq 50); do kill -0 $server 2>/dev/null || break; sleep 0.1; done
kill -KILL $server 2>/dev/null || true
wait $server 2>/dev/null || true
trap - EXIT
profile="$(grep -l '^desc: Trigger: .*measured' "$work"/callgrind.out.* | head -1)"
total="$(awk '/^summary:|^totals:/ { print $2; exit }' "$profile")"
echo "mode $MODE: $REQUESTS requests, $total instructions, $((total / REQUESTS)) per request ($profile)"
if [ -n "${PROFILE_CACHE:-}" ]; then
  # events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw
  awk -v n="$REQUESTS" '/^events:/ { for (i = 2; i <= NF; i++) name[i] = $i }
    /^summary:|^totals:/ { for (i = 2; i <= NF; i++) v[name[i]] = $i; exit }
    END { printf "per request: L1 misses %d code + %d data; last-level (512 KiB) misses %d code + %d data\n",
      v["I1mr"] / n, (v["D1mr"] + v["D1mw"]) / n, v["ILmr"] / n, (v["DLmr"] + v["DLmw"]) / n }' "$profile"
fi
# --threshold=100: the default (99%) stops the list at the first entry, which the thread entry
# points (clone, start_thread) fill with 100%; --auto=no: no source annotation.
callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$profile" 2>/dev/null | sed -n '1,80p' >"$work/inclusive.txt"
callgrind_annotate --threshold=100 --auto=no "$profile" 2>/dev/null | sed -n '1,80p' >"$work/self.txt"
echo "top functions (self) in $work/self.txt, (inclusive) in $work/inclusive.txt"
