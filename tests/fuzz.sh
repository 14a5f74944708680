#!/usr/bin/env bash
# Runs every fuzz target briefly (FUZZ_SECONDS each, default 20) on its committed corpus, and
# fails on any crash. New corpus entries go to a scratch folder, not into the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${FUZZ_SECONDS:-20}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
# cargo fuzz has no --locked: check here that fuzz/Cargo.lock already names every dependency, so
# the build uses the committed versions instead of resolving new ones (cd fuzz && cargo update
# -w updates it after a dependency of the server changes).
cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null \
  || { echo "FAILED: fuzz/Cargo.lock is out of date (cd fuzz && cargo update -w)"; exit 1; }
# cargo fuzz runs on stable Rust with instrumentation but no sanitizer (-s none).
cargo fuzz build -s none
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in $(cargo fuzz list); do
  mkdir -p "$scratch/$target"
  echo "--- fuzz $target (${SECONDS_PER_TARGET}s)"
  cargo fuzz run "$target" -s none "$scratch/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -print_final_stats=1 2>&1 \
    | grep -E '^(stat::number_of_executed_units|stat::new_units_added)|Done|==[0-9]+==|panicked|SUMMARY' || true
  # A crash makes libFuzzer write an artifact and cargo fuzz exit non-zero; with the pipe
  # above, look for the artifact instead.
  if ls "fuzz/artifacts/$target"/crash-* >/dev/null 2>&1; then
    echo "FAILED: fuzz target $target crashed; see fuzz/artifacts/$target"
    exit 1
  fi
done
echo "fuzz: every target ran ${SECONDS_PER_TARGET}s without a crash"
