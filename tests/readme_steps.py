#!/usr/bin/env python3
"""Runs the README's step commands against the build each step names, so the README stays true.

Every shell block preceded by `<!-- step N: features=a,b -->` is run with bash (`set -euo
pipefail`) while the server built with exactly those features listens on 127.0.0.1:3000. A block
passes when it exits 0, prints something, prints every HTTP status line its comments promise
(`# HTTP/1.1 403 Forbidden`), and, unless it promises a refusal, no JSON it prints is a JSON-RPC
error. The step table's `cargo run` command for step N must name the same features as its
blocks.
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
PORT = 3000

MARKER = re.compile(r"<!-- step (\d+): features=([a-z,\-]*) -->\s*```sh\n(.*?)```", re.S)
TABLE_ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*`cargo run([^`]*)`", re.M)


def features_of(cargo_args: str) -> str:
    args = cargo_args.split()
    if "--all-features" in args:
        return "full"
    if "--features" in args:
        return ",".join(sorted(args[args.index("--features") + 1].split(",")))
    return ""


def wait_for_port(proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", PORT), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start listening")


def expected_statuses(body: str) -> list:
    """The HTTP status lines a block's comments promise (`# HTTP/1.1 403 Forbidden`)."""
    return [line[2:].strip() for line in body.splitlines() if line.startswith("# HTTP/")]


def json_errors(output: str) -> list:
    errors = []
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("data:"):
            line = line[5:].strip()
        if not line.startswith(("{", "[")):
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and "error" in item:
                errors.append(line)
    return errors


def main() -> int:
    blocks = [(int(n), ",".join(sorted(f for f in feats.split(",") if f)), body) for n, feats, body in MARKER.findall(README)]
    if not blocks:
        print("no step blocks found in README.md")
        return 1
    table = {int(n): features_of(args) for n, args in TABLE_ROW.findall(README)}
    failures = 0
    for step, features, _ in blocks:
        if table.get(step) != features:
            print(f"FAIL step {step}: table says features={table.get(step)!r}, block says {features!r}")
            failures += 1

    # Blocks may mint tokens with `cargo run --example`: build the examples first, so a block's
    # time limit is spent running them, not compiling.
    subprocess.run(["cargo", "build", "--quiet", "--examples"], cwd=ROOT, check=True)

    by_features = {}
    for step, features, body in blocks:
        by_features.setdefault(features, []).append((step, body))
    for features, steps in by_features.items():
        cargo = ["cargo", "build", "--quiet", "--no-default-features"] + (["--features", features] if features else [])
        subprocess.run(cargo, cwd=ROOT, check=True)
        env = dict(os.environ, MCP_AUTH__SERVER__BIND=f"127.0.0.1:{PORT}", MCP_AUTH__LOG__FILTER="warn")
        server = subprocess.Popen([str(ROOT / "target/debug/mcp-auth-server")], cwd=ROOT, env=env)
        try:
            wait_for_port(server)
            for step, body in steps:
                run = subprocess.run(["bash", "-euo", "pipefail", "-c", body], cwd=ROOT, capture_output=True, text=True, timeout=120)
                problems = []
                if run.returncode != 0:
                    problems.append(f"exit {run.returncode}: {run.stderr.strip()}")
                if not run.stdout.strip():
                    problems.append("printed nothing")
                expects_refusal = any(not status.split()[1].startswith("2") for status in expected_statuses(body))
                if not expects_refusal:
                    problems += [f"JSON-RPC error: {e}" for e in json_errors(run.stdout)]
                for status in expected_statuses(body):
                    if status.lower() not in run.stdout.lower():
                        problems.append(f"the README promises `{status}`")
                status = "FAIL" if problems else "ok"
                print(f"{status} step {step} (features={features or 'none'})")
                for problem in problems:
                    print(f"    {problem}")
                if problems:
                    print("    output: " + run.stdout.strip()[:400])
                    failures += 1
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"readme steps: {len(blocks) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
