#!/usr/bin/env bash
# Regenerates benches/symbol-order.txt: the functions the release server runs, hottest first, which
# build.rs hands the linker so they sit together at the front of the executable's code.
#
#   bash benches/symbol-order.sh     # after a dependency or toolchain update; needs valgrind
#
# Why: the kernel maps an executable's code in 64 KiB windows around each page it faults in.
# Start-up and one request run about 2 MB of code, but spread over the 10 MB of code the linker
# lays out in crate order they touch most windows, and the idle server kept ~7 MiB of code
# resident. Packed together, the same functions cost their own size (see README, Performance).
#
# How: the release server runs under `valgrind --tool=callgrind` twice: started with no settings
# files and asked for its health and metadata; then started with the repository's config/, asked
# the same, and made to serve modern calls (one token, then new tokens), a legacy session and its
# calls. Every function of the executable that ran is listed by the instructions it spent.
# Symbols carry hashes that change with dependency versions and the compiler; a stale entry is
# skipped by the linker (the order degrades, the build does not break), so regenerate then.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${LOAD_PORT:-28180}"
work=target/bench/symbol-order
rm -rf "$work" && mkdir -p "$work"
command -v valgrind >/dev/null || { echo "symbol-order.sh needs valgrind (apt-get install valgrind)" >&2; exit 1; }

# The server binary as deployed (`cargo build --release --all-features`), built on its own: building
# an example in the same invocation unifies the dev-dependencies' features, which changes every
# crate's hash and so every symbol name (benches/load.sh builds it the same way).
cargo build --release --quiet --all-features --bin mcp-auth-server
cargo build --release --quiet --all-features --example generate_token
server_bin=target/release/mcp-auth-server
# Keys, address and limits come from the environment, whichever settings files are read.
export MCP_AUTH__JWT__PRIVATE_KEY="$work/keys/private.pem"
export MCP_AUTH__JWT__PUBLIC_KEYS="$work/keys/public.pem"
export MCP_AUTH__SERVER__BIND="127.0.0.1:$PORT"
export MCP_AUTH__SERVER__PUBLIC_URL="http://127.0.0.1:$PORT"
# One client sends everything: rate limits it cannot reach.
for limit in PER_ADDRESS_PER_SEC PER_ADDRESS_BURST PER_CALLER_PER_SEC PER_CALLER_BURST; do
  export "MCP_AUTH__LIMITS__$limit=1000000000"
done
target/release/examples/generate_token --username bench --scopes mcp:read,mcp:tools --count 50 >"$work/tokens"

# profile NAME CONFIG_DIR DRIVE: one server under callgrind, driven by the client below (DRIVE
# `start`: health and metadata only; `calls`: everything), then stopped.
profile() {
  MCP_AUTH_CONFIG_DIR=$2 valgrind --tool=callgrind --demangle=no --compress-strings=no --compress-pos=no \
    --callgrind-out-file="$work/callgrind.$1" "$server_bin" >/dev/null 2>"$work/valgrind.$1.log" &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  python3 - "$PORT" "$work/tokens" "$3" <<'EOF'
import http.client, json, sys, time
port, tokens, drive = int(sys.argv[1]), [t.strip() for t in open(sys.argv[2]) if t.strip()], sys.argv[3]
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
def send(method, path, body=None, headers={}, expect=200):
    conn.request(method, path, body, headers)
    reply = conn.getresponse()
    reply.read()
    if reply.status != expect:
        sys.exit(f"{method} {path}: {reply.status}, expected {expect}")
    return reply
for path in ("/health", "/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-authorization-server"):
    send("GET", path)
if drive == "start":
    sys.exit(0)
base = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
modern = dict(base, **{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "echo"})
call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "hello"}}}
modern_call = json.dumps(dict(call, params=dict(call["params"], _meta=meta)))
for i in range(200):  # one token: the cache hits
    send("POST", "/mcp", modern_call, dict(modern, Authorization=f"Bearer {tokens[0]}"))
for token in tokens[1:]:  # new tokens: the signature is checked
    send("POST", "/mcp", modern_call, dict(modern, Authorization=f"Bearer {token}"))
init = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "symbol-order", "version": "1"}}}
reply = send("POST", "/mcp", json.dumps(init), dict(base, Authorization=f"Bearer {tokens[0]}"))
legacy = dict(base, **{"MCP-Protocol-Version": "2025-11-25", "Mcp-Session-Id": reply.getheader("mcp-session-id"),
                       "Authorization": f"Bearer {tokens[0]}"})
send("POST", "/mcp", json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}), legacy, expect=202)
send("POST", "/mcp", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}), legacy)
for i in range(200):
    send("POST", "/mcp", json.dumps(call), legacy)
EOF
  kill -INT "$server"
  wait "$server" || true
  trap - EXIT
}
# Start-up both with the repository's config/ (default.toml, then dev.toml: users, clients) and
# with no settings files at all (benches/load.sh; compiled-in defaults and the environment).
mkdir -p "$work/no-config"
profile bare "$work/no-config" start
profile full config calls

# Self cost per function of the executable: the cost lines of each `fn=` block, except the line
# after a `calls=` line (that one is the callee's inclusive cost).
python3 - "$server_bin" "$work"/callgrind.bare "$work"/callgrind.full >benches/symbol-order.txt <<'EOF'
import collections, fileinput, subprocess, sys
binary, profiles = sys.argv[1], sys.argv[2:]
defined = {fields[2] for fields in (line.split() for line in subprocess.run(
    ["nm", binary], capture_output=True, text=True, check=True).stdout.splitlines())
    if len(fields) == 3 and fields[1] in "tT"}
cost, ours, function, skip = collections.Counter(), False, None, False
for line in fileinput.input(profiles):
    if line.startswith("ob="):
        ours = line[3:].strip().endswith("/mcp-auth-server")
    elif line.startswith("fn="):
        function = line[3:].strip() if ours else None
    elif line.startswith("calls="):
        skip = True
    elif line[:1].isdigit() or line[:1] in "+-*":
        if function and not skip:
            cost[function] += int(line.split()[1])
        skip = False
for function, _ in sorted(cost.items(), key=lambda item: (-item[1], item[0])):
    if function in defined:
        print(function)
EOF
echo "benches/symbol-order.txt: $(wc -l <benches/symbol-order.txt) functions" >&2
