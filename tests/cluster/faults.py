"""Faults of a deployment of several instances (tests/cluster/run.sh runs each step in order):

  sign-in              register a client, sign in as alice, get tokens, open a legacy session
  after-redis-restart  (Redis was SIGKILLed and restarted) the session, registration and refresh
                       token are all still there
  concurrent-refresh   one refresh token redeemed on both instances at once: exactly one success,
                       and the reuse revokes the grant
  instance-killed      the official Python SDK (legacy era, OAuth) works through the proxy; the
                       instance holding its GET stream is SIGKILLed in the middle; it finishes without
                       signing in again, in the same session, and its GET stream, held by the
                       killed instance, reopens on the other at once

Environment: PROXY, A_URL, B_URL (the instances, bypassing the proxy), STATE (a JSON file carried
between steps), A_PID and B_PID (instance-killed: the instance holding the SDK's stream is killed,
and its name written to the file `killed` next to STATE). Prints PASS/FAIL lines; exits 1 on any FAIL.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

PROXY = os.environ["PROXY"]
os.environ.update(MCP_URL=f"{PROXY}/mcp", ISSUER=PROXY, AUTHORIZATION_SERVER="embedded")
ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "interop"))

import httpx2  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from py_client import CALLBACK, MCP_URL, MemoryStorage, Person, Recorder, Report, claims, http_client, oauth_provider, text_of  # noqa: E402

STATE = Path(os.environ["STATE"])
LEGACY = "2025-11-25"
report = Report("cluster")


def load() -> dict:
    return json.loads(STATE.read_text())


def save(state: dict) -> None:
    STATE.write_text(json.dumps(state))


def token_request(base: str, fields: dict) -> httpx2.Response:
    return httpx2.post(f"{base}/token", data=fields, timeout=30)


def mcp_post(token: str, body: dict, session: str | None = None) -> httpx2.Response:
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": LEGACY,
    }
    if session:
        headers["Mcp-Session-Id"] = session
    return httpx2.post(MCP_URL, headers=headers, json=body, timeout=30)


def echo(token: str, session: str, message: str) -> tuple[bool, str]:
    body = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": message}}}
    response = mcp_post(token, body, session)
    return response.status_code == 200 and message in response.text, f"{response.status_code} {response.text[:200]}"


def sign_in() -> None:
    registration = httpx2.post(
        f"{PROXY}/register",
        json={
            "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "client_name": "cluster faults",
        },
        timeout=30,
    )
    if not report.check("client registered", registration.status_code == 201, registration.text):
        return
    client_id = registration.json()["client_id"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "s",
        "resource": MCP_URL,
        "scope": "mcp:read mcp:tools mcp:prompts",
    }
    callback = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "issuer_login.py"), f"{PROXY}/authorize?{urlencode(query)}", "--user", "alice", "--password", "wonderland"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()
    code = parse_qs(urlparse(callback).query).get("code", [None])[0]
    if not report.check("signed in through the proxy", code is not None, callback):
        return
    fields = {"grant_type": "authorization_code", "code": code, "client_id": client_id, "redirect_uri": CALLBACK, "code_verifier": verifier, "resource": MCP_URL}
    tokens = token_request(PROXY, fields)
    if not report.check("code redeemed", tokens.status_code == 200, tokens.text):
        return
    tokens = tokens.json()
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "faults", "version": "1"}}}
    opened = mcp_post(tokens["access_token"], init)
    session = opened.headers.get("mcp-session-id")
    if not report.check("legacy session opened", opened.status_code == 200 and session, opened.text):
        return
    mcp_post(tokens["access_token"], {"jsonrpc": "2.0", "method": "notifications/initialized"}, session)
    report.check("tools/call in the session", *echo(tokens["access_token"], session, "before"))
    save({"client_id": client_id, "access": tokens["access_token"], "refresh": tokens["refresh_token"], "session": session})


def after_redis_restart() -> None:
    state = load()
    # The access token may have expired (8 s): refresh first, which is itself the check that the
    # registration and the refresh token survived.
    refreshed = token_request(PROXY, {"grant_type": "refresh_token", "client_id": state["client_id"], "refresh_token": state["refresh"]})
    if not report.check("after the Redis restart: registration and refresh token kept", refreshed.status_code == 200, refreshed.text):
        return
    tokens = refreshed.json()
    report.check("after the Redis restart: the legacy session kept", *echo(tokens["access_token"], state["session"], "after"))
    save({**state, "access": tokens["access_token"], "refresh": tokens["refresh_token"]})


def concurrent_refresh() -> None:
    state = load()
    fields = {"grant_type": "refresh_token", "client_id": state["client_id"], "refresh_token": state["refresh"]}
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda base: token_request(base, fields), [os.environ["A_URL"], os.environ["B_URL"]]))
    statuses = sorted(a.status_code for a in answers)
    report.check("one refresh token on both instances at once: exactly one success", statuses == [200, 400], [a.text for a in answers])
    lost = next((a for a in answers if a.status_code == 400), None)
    report.check("the other is told of the reuse", lost is not None and "already used" in lost.text, lost and lost.text)
    won = next((a for a in answers if a.status_code == 200), None)
    successor = won.json().get("refresh_token") if won is not None else None
    if successor:
        again = token_request(PROXY, {**fields, "refresh_token": successor})
        report.check("the reuse revoked the grant: the winner's new refresh token is refused", again.status_code == 400, again.text)


async def instance_killed() -> None:
    storage, person, recorder = MemoryStorage(), Person(["all"]), Recorder()
    async with http_client(recorder, auth=oauth_provider(storage, person)) as http:
        async with Client(streamable_http_client(MCP_URL, http_client=http), mode="legacy", cache=None) as client:
            for i in range(4):
                result = await client.call_tool("echo", {"message": f"before {i}"})
                report.check(f"SDK: tools/call {i} before the kill", f"before {i}" in text_of(result), result)
            sessions = {r.headers.get("mcp-session-id") for _, r in recorder.find("POST", MCP_URL, 200)} - {None}
            report.check("SDK: one session", len(sessions) == 1, sessions)
            session = next(iter(sessions), "")

            # The SDK holds the session's GET stream on one instance: that one is killed.
            def open_streams(base: str) -> int:
                return httpx2.get(f"{base}/health", timeout=5).json()["mcp"]["open_streams"]

            bases = {"A": os.environ["A_URL"], "B": os.environ["B_URL"]}
            holder = next((name for name, base in bases.items() if open_streams(base) > 0), None)
            if not report.check("SDK: its GET stream is open on one instance", holder is not None, "no open stream"):
                return
            survivor = "B" if holder == "A" else "A"
            gets_before = len(recorder.find("GET", MCP_URL, 200))
            os.kill(int(os.environ[f"{holder}_PID"]), signal.SIGKILL)
            print(f"NOTE instance {holder} (holding the GET stream) SIGKILLed", flush=True)
            Path(os.environ["STATE"]).with_name("killed").write_text(holder)
            # The SDK reconnects after the retry hint (3 s) and gives up on a second failure: the
            # survivor must take the stream over at once, not refuse it (409) until the killed
            # instance's claim expires.
            reopened = False
            for _ in range(100):
                await asyncio.sleep(0.1)
                if len(recorder.find("GET", MCP_URL, 200)) > gets_before and open_streams(bases[survivor]) > 0:
                    reopened = True
                    break
            refused = [r.status_code for _, r in recorder.find("GET", MCP_URL) if r.status_code != 200]
            report.check("SDK: its GET stream reopened on the survivor within 10 s", reopened, f"refusals: {refused}")

            for i in range(4):
                result = await client.call_tool("echo", {"message": f"after {i}"})
                report.check(f"SDK: tools/call {i} after the kill", f"after {i}" in text_of(result), result)
            access = claims(storage.tokens.access_token)
            await asyncio.sleep(max(0.0, access.get("exp", 0) - time.time()) + 1.5)
            result = await client.call_tool("echo", {"message": "refreshed"})
            report.check("SDK: tools/call after the token expired (refreshed on the survivor)", "refreshed" in text_of(result), result)
            refreshes = [f for f in (recorder.form(q) for q, _ in recorder.find("POST", f"{PROXY}/token", 200)) if f.get("grant_type") == "refresh_token"]
            report.check("SDK: the expired token was refreshed", bool(refreshes), "no refresh request")
            posts = recorder.find("POST", MCP_URL)
            # (The first initialize met the 401 that started the sign-in, and was sent again.)
            initializes = sum(1 for q, r in posts if b'"initialize"' in q.content and r.status_code == 200)
            report.check("SDK: no second initialize", initializes == 1, initializes)
            after = {q.headers.get("mcp-session-id") for q, _ in posts if b'"initialize"' not in q.content}
            report.check("SDK: every request in the same session", after == {session}, after)
            report.check("SDK: no second sign-in", len(person.visits) == 1, f"{len(person.visits)} sign-ins")


STEPS = {
    "sign-in": sign_in,
    "after-redis-restart": after_redis_restart,
    "concurrent-refresh": concurrent_refresh,
    "instance-killed": lambda: asyncio.run(instance_killed()),
}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in STEPS:
        sys.exit(__doc__)
    try:
        STEPS[sys.argv[1]]()
    except Exception as error:  # noqa: BLE001 - a crashed step is a failed check
        report.check(f"{sys.argv[1]} ran to the end", False, repr(error))
    print(f"cluster {sys.argv[1]}: {report.passed} passed, {report.failed} failed", flush=True)
    sys.exit(1 if report.failed else 0)
