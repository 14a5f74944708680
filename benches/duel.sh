#!/usr/bin/env bash
# Two builds of the server side by side, at the same time: which one costs less CPU per call?
#
#   bash benches/duel.sh OLD_BINARY [NEW_BINARY]   # NEW defaults to this tree's dist build
#
# Both servers run on CPU 0 together, each driven by its own wrk on CPU 1 (authenticated modern
# `tools/call echo`, keep-alive, concurrency 32 each). The kernel shares CPU 0 between them, so
# whatever the host does meanwhile (another guest, a frequency change) slows both alike, and the
# ratio of their CPU time per request holds where single runs do not: on the 2-core AMD hosts
# one binary's req/s moves by up to 40% between runs of load.sh, while the same binary against
# itself here reads 0.97-1.03. Use it for changes of a few percent; load.sh for the absolute table.
#
# Knobs (environment): DUEL_ROUNDS (6), DUEL_SECS (4 s per round), DUEL_STDOUT (null, or pipe:
# each server's stdout read by `cat` on CPU 1, as a container runtime or journald reads it),
# DUEL_TOKENS (one, or pool: 4,096 distinct tokens and a token cache of 256, every call a miss),
# DUEL_PORT (28700 and the next one). Each round swaps which server's load starts first.
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -ge 1 ] || { sed -n '2,4p' "$0" >&2; exit 2; }
ROUNDS="${DUEL_ROUNDS:-6}"
SECS="${DUEL_SECS:-4}"
STDOUT="${DUEL_STDOUT:-null}"
TOKENS="${DUEL_TOKENS:-one}"
PORT="${DUEL_PORT:-28700}"
old_bin=$1
if [ $# -ge 2 ]; then
  new_bin=$2
else
  cargo build --profile dist --quiet --all-features --bin mcp-auth-server
  new_bin=target/dist/mcp-auth-server
fi
command -v wrk >/dev/null || { echo "duel.sh needs wrk (apt-get install wrk)" >&2; exit 1; }
cargo build --profile dist --quiet --all-features --example generate_token

work=target/bench/duel
rm -rf "$work" && mkdir -p "$work/config"
export MCP_AUTH_CONFIG_DIR="$work/config"
export MCP_AUTH__JWT__PRIVATE_KEY="$work/keys/private.pem"
export MCP_AUTH__JWT__PUBLIC_KEYS="$work/keys/public.pem"
export MCP_AUTH__SERVER__PUBLIC_URL="http://127.0.0.1:$PORT"
# Limits that count every call but refuse none (one client sends everything).
for limit in PER_ADDRESS_PER_SEC PER_ADDRESS_BURST PER_CALLER_PER_SEC PER_CALLER_BURST; do
  export "MCP_AUTH__LIMITS__$limit=1000000000"
done
count=1 cache=10000
if [ "$TOKENS" = pool ]; then count=4096 cache=256; fi
target/dist/examples/generate_token --username bench --scopes mcp:read,mcp:tools --count "$count" \
  >"$work/tokens" 2>/dev/null

declare -a pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
start() { # BINARY PORT
  if [ "$STDOUT" = pipe ]; then
    MCP_AUTH__SERVER__BIND="127.0.0.1:$2" MCP_AUTH__JWT__TOKEN_CACHE_SIZE=$cache taskset -c 0 "$1" \
      > >(taskset -c 1 cat >/dev/null) 2>>"$work/stderr" &
  else
    MCP_AUTH__SERVER__BIND="127.0.0.1:$2" MCP_AUTH__JWT__TOKEN_CACHE_SIZE=$cache taskset -c 0 "$1" \
      >/dev/null 2>>"$work/stderr" &
  fi
  pids+=($!)
  for _ in $(seq 200); do curl -sf -o /dev/null "http://127.0.0.1:$2/health" && return 0; sleep 0.05; done
  echo "$1 did not start: $(cat "$work/stderr")" >&2
  exit 1
}
start "$old_bin" "$PORT"
start "$new_bin" $((PORT + 1))
old_pid=${pids[0]} new_pid=${pids[1]}

body='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'
headers=(-H "Content-Type: application/json" -H "Accept: application/json, text/event-stream"
  -H "MCP-Protocol-Version: 2026-07-28" -H "Mcp-Method: tools/call" -H "Mcp-Name: echo")
load() { # PORT SECONDS OUT
  LOAD_BODY=$body LOAD_TOKENS="$work/tokens" taskset -c 1 wrk -t1 -c32 -d"$2s" -s benches/load.lua "${headers[@]}" \
    "http://127.0.0.1:$1/mcp" >"$3"
}
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

echo "old: $old_bin"
echo "new: $new_bin"
echo "stdout: $STDOUT, tokens: $TOKENS, $ROUNDS rounds of $SECS s (and one of 1 s to warm up)"
: >"$work/rounds"
for round in $(seq 0 "$ROUNDS"); do
  secs=$SECS
  [ "$round" = 0 ] && secs=1
  old_ticks=$(ticks "$old_pid") new_ticks=$(ticks "$new_pid")
  if [ $((round % 2)) = 0 ]; then
    load "$PORT" "$secs" "$work/old.out" & first=$!
    load $((PORT + 1)) "$secs" "$work/new.out"
  else
    load $((PORT + 1)) "$secs" "$work/new.out" & first=$!
    load "$PORT" "$secs" "$work/old.out"
  fi
  wait "$first"
  [ "$round" = 0 ] && continue
  echo "$(grep '^RESULT' "$work/old.out") $(($(ticks "$old_pid") - old_ticks)) $(grep '^RESULT' "$work/new.out") $(($(ticks "$new_pid") - new_ticks))" >>"$work/rounds"
done

python3 - "$work/rounds" "$SECS" "$(getconf CLK_TCK)" <<'EOF'
import statistics, sys
rounds, secs, clk_tck = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
ratios = []
for line in open(rounds):
    f = line.split()
    # RESULT <requests> <duration_us> <p50> <p99> <socket errors> <non-2xx> <max> <ticks>, twice
    old, new = f[:9], f[9:]
    errors = sum(int(x) for x in old[5:7] + new[5:7])
    old_us = int(old[8]) / clk_tck * 1e6 / int(old[1])
    new_us = int(new[8]) / clk_tck * 1e6 / int(new[1])
    ratios.append(new_us / old_us)
    print(f"old {int(old[1]) / secs:8,.0f} req/s {old_us:6.1f} µs/req | new {int(new[1]) / secs:8,.0f} req/s "
          f"{new_us:6.1f} µs/req | new/old CPU per request {new_us / old_us:.3f}" + (f"  ERRORS {errors}" if errors else ""))
median = statistics.median(ratios)
print(f"\nCPU per request, new / old: median {median:.3f} (rounds {min(ratios):.3f}-{max(ratios):.3f}): "
      f"new is {abs(1 - median) * 100:.1f}% {'cheaper' if median < 1 else 'costlier'}")
EOF
