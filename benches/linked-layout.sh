#!/usr/bin/env bash
# How a release server binary was linked by build.rs: how many of the functions in
# benches/symbol-order.txt the linker placed first (a stale list is not an error, it only orders
# fewer; regenerate it with benches/symbol-order.sh) and whether relative relocations are packed.
# Used by benches/load.sh and tests/release.sh.
#
#   bash benches/linked-layout.sh [BINARY]     # default target/release/mcp-auth-server
set -euo pipefail
cd "$(dirname "$0")/.."

binary="${1:-target/release/mcp-auth-server}"
placed="$(nm "$binary" | awk 'NR == FNR { listed[$1]; n++; next } $2 ~ /^[tT]$/ && ($3 in listed) { found++ }
  END { printf "%d of the %d functions listed", found, n }' benches/symbol-order.txt -)"
relr=no
# grep reads to the end (no -q): an early exit would fail readelf with SIGPIPE under pipefail.
readelf -S "$binary" | grep '\.relr\.dyn' >/dev/null && relr=yes
echo "$placed placed first; relative relocations packed: $relr"
