#!/usr/bin/env bash
# Traces checked by a real OTLP/HTTP receiver that decodes them with OpenTelemetry's official
# protobuf definitions (tests/otlp/check.py, receiver.py): installs the pinned `opentelemetry-proto`
# into a venv under target/otlp, builds the server (all features) and the token minter, runs the
# checks. Prints "otlp: N passed, M failed" and fails on any failed check.
set -euo pipefail
cd "$(dirname "$0")/../.."

HERE=tests/otlp
VENV=target/otlp/venv
stamp="$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)"
if [ ! -f "$VENV/.installed" ] || [ "$(cat "$VENV/.installed")" != "$stamp" ]; then
  echo "--- otlp: python venv (opentelemetry-proto, pinned)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
  echo "$stamp" > "$VENV/.installed"
fi

cargo build --quiet --all-features --bin mcp-auth-server --example generate_token
"$VENV/bin/python" "$HERE/check.py" target/debug/mcp-auth-server target/debug/examples/generate_token
