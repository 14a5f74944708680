"""The official Python MCP SDK (`mcp`) against mcp-auth-server and an authorization server: a real
identity provider (idp.mjs), or the server's own (feature `issuer`).

Usage:  python py_client.py ERA        ERA = modern (2026-07-28, forced) or legacy (initialize)

Flows, each printing `PASS <check>` or `FAIL <check>: <why>`, then a total line:
  bearer   a token obtained beforehand, sent as a plain Authorization header
  oauth    the SDK's own OAuth client: 401 -> protected-resource metadata -> authorization-server
           metadata -> dynamic registration -> authorization code + PKCE (a sign-in driver plays
           the person) -> token with `resource` -> tools/list, tools/call, prompts/get -> the
           access token expires -> refresh
  step-up  the person first approves only mcp:read; tools/call is refused with 403
           insufficient_scope, and the SDK re-authorizes for the larger scope by itself
  m2m      the SDK's client-credentials provider, for each machine client

Environment: MCP_URL, ISSUER, AUTHORIZATION_SERVER (`external`, the default, or `embedded`: which
entry of authorization_servers.json applies), NODE (a node binary for user.mjs). The refresh check
waits until the access token expires: give the authorization server a short access-token lifetime
(run.sh uses 8 s). Exits 1 when any check failed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
import traceback
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

MCP_URL = os.environ.get("MCP_URL", "http://127.0.0.1:27181/mcp")
ISSUER = os.environ.get("ISSUER", "http://127.0.0.1:27180")
NODE = os.environ.get("NODE", "node")
HERE = Path(__file__).parent
ROOT = HERE.parent.parent
# What differs between the authorization servers: registration path, sign-in driver, the person's
# credentials and roles, the machine clients and what their roles allow.
SERVER = json.loads((HERE / "authorization_servers.json").read_text())[os.environ.get("AUTHORIZATION_SERVER", "external")]
PERSON = SERVER["person"]
CALLBACK = "http://127.0.0.1:27188/callback"  # never listened on: the user agent stops at it
MODES = {"modern": "2026-07-28", "legacy": "legacy"}


class Report:
    """Prints one line per check and counts them."""

    def __init__(self, prefix: str) -> None:
        self.prefix, self.passed, self.failed = prefix, 0, 0

    def check(self, name: str, ok: bool, why: object = "") -> bool:
        if ok:
            self.passed += 1
            print(f"PASS {self.prefix} {name}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {self.prefix} {name}: {why}", flush=True)
        return ok


class MemoryStorage:
    """The SDK's TokenStorage, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


async def output_of(*command: str) -> str:
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{Path(command[1]).name} exited with {process.returncode} (its stderr is in the log)")
    return out.decode()


async def sign_in(authorization_url: str, approve: str) -> dict:
    """The person at the browser, over plain HTTP: signs in and consents, approving `approve`
    ("all", or some scopes), and returns {"callbackUrl", ...} at the redirect back to the client."""
    username, password, driver = PERSON["username"], PERSON["password"], str(ROOT / SERVER["sign_in"])
    if driver.endswith("user.mjs"):
        # idp.mjs: user.mjs ticks the scopes to approve on the consent page, and counts the
        # pages it saw ({"callbackUrl", "login", "consent", "approved"}).
        return json.loads(await output_of(NODE, driver, authorization_url, username, approve, password))
    # Our issuer: tests/issuer_login.py signs in, allows, and prints the callback URL. Its consent
    # page has no per-scope choice (it grants what the request asks for, within the user's
    # roles), so the person approves fewer scopes by asking for fewer: the request's `scope`,
    # narrowed before the page is opened, as anyone can in the address bar.
    if approve != "all":
        parts = urlparse(authorization_url)
        query = {**parse_qs(parts.query), "scope": [approve]}
        authorization_url = parts._replace(query=urlencode(query, doseq=True)).geturl()
    callback = await output_of(sys.executable, driver, authorization_url, "--user", username, "--password", password)
    return {"callbackUrl": callback.strip()}


class Person:
    """The SDK's redirect and callback handlers: sign in as the person of authorization_servers.json,
    approving `approve` on each successive consent page (the last entry is reused)."""

    def __init__(self, approve: list[str]) -> None:
        self.approve = approve
        self.visits: list[dict] = []  # authorization URL and what the sign-in reports, per sign-in

    async def redirect(self, authorization_url: str) -> None:
        approve = self.approve[min(len(self.visits), len(self.approve) - 1)]
        self.visits.append({"url": authorization_url, **await sign_in(authorization_url, approve)})

    async def callback(self) -> AuthorizationCodeResult:
        query = parse_qs(urlparse(self.visits[-1]["callbackUrl"]).query)
        one = lambda key: query.get(key, [None])[0]  # noqa: E731
        return AuthorizationCodeResult(code=one("code"), state=one("state"), iss=one("iss"))


class Recorder:
    """httpx2 event hooks: every request the SDK sends (its OAuth requests too) and the answer."""

    def __init__(self) -> None:
        self.exchanges: list[tuple[httpx2.Request, httpx2.Response]] = []

    async def on_response(self, response: httpx2.Response) -> None:
        self.exchanges.append((response.request, response))

    def find(self, method: str, url_prefix: str, status: int | None = None) -> list[tuple[httpx2.Request, httpx2.Response]]:
        return [
            (q, r)
            for q, r in self.exchanges
            if q.method == method and str(q.url).startswith(url_prefix) and (status is None or r.status_code == status)
        ]

    def form(self, request: httpx2.Request) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}

    def mcp_methods(self) -> list[str]:
        methods = []
        for q, _ in self.find("POST", MCP_URL):
            try:
                methods.append(json.loads(q.content).get("method", ""))
            except (ValueError, AttributeError):
                pass
        return methods


def is_as_metadata(url: str) -> bool:
    """RFC 8414 or OpenID discovery (not the protected-resource metadata, which our issuer shares an
    origin with)."""
    return "/.well-known/oauth-authorization-server" in url or "/.well-known/openid-configuration" in url


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def text_of(result) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


def http_client(recorder: Recorder, auth: httpx2.Auth | None = None, headers: dict | None = None) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        auth=auth, headers=headers, timeout=httpx2.Timeout(30, read=60), event_hooks={"response": [recorder.on_response]}
    )


def describe(error: BaseException) -> str:
    """One line for an exception, unwrapping the exception groups anyio raises; the traceback
    goes to stderr (kept in target/interop/logs)."""
    traceback.print_exception(error, file=sys.stderr)
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return f"{type(error).__name__}: {error}"


async def attempt(report: Report, name: str, call):
    """Awaits `call`, failing the check `name` with the exception when it raises."""
    try:
        return await call
    except Exception as e:  # noqa: BLE001 - any failure is a failed check
        report.check(name, False, describe(e))
        return None


async def check_era(report: Report, client: Client, recorder: Recorder, era: str) -> None:
    version = client.protocol_version
    if era == "modern":
        report.check("speaks 2026-07-28 without initialize", version == "2026-07-28" and "initialize" not in recorder.mcp_methods(), version)
    else:
        report.check("speaks a legacy revision after initialize", version != "2026-07-28" and "initialize" in recorder.mcp_methods(), version)


async def use_the_server(report: Report, client: Client, *, prompts: bool = True) -> None:
    """tools/list, tools/call echo, prompts/get greeting."""
    tools = await attempt(report, "tools/list", client.list_tools())
    if tools is not None:
        names = sorted(t.name for t in tools.tools)
        report.check("tools/list", {"echo", "get_time"} <= set(names), names)
    result = await attempt(report, "tools/call echo", client.call_tool("echo", {"message": "interop"}))
    if result is not None:
        report.check("tools/call echo", not result.is_error and "interop" in text_of(result), result)
    if prompts:
        prompt = await attempt(report, "prompts/get greeting", client.get_prompt("greeting", {"name": "Ada"}))
        if prompt is not None:
            report.check("prompts/get greeting", "Ada" in json.dumps(prompt.model_dump(mode="json")), prompt)


def client_credentials_token(client_id: str, secret: str) -> str:
    response = httpx2.post(
        f"{ISSUER}/token",
        auth=(client_id, secret),
        data={"grant_type": "client_credentials", "resource": MCP_URL, "scope": "mcp:read mcp:tools mcp:prompts"},
    )
    response.raise_for_status()
    return response.json()["access_token"]


# ------------------------------------------------------------------------------------ flows ---
async def bearer_flow(era: str) -> Report:
    report = Report(f"python/{era} bearer:")
    machine = SERVER["machine_clients"][0]
    token = client_credentials_token(machine["client_id"], machine["secret"])
    recorder = Recorder()
    async with http_client(recorder, headers={"Authorization": f"Bearer {token}"}) as http:
        async with Client(streamable_http_client(MCP_URL, http_client=http), mode=MODES[era], cache=None) as client:
            await check_era(report, client, recorder, era)
            await use_the_server(report, client, prompts=machine["prompts_get"])
    return report


def oauth_provider(storage: MemoryStorage, person: Person) -> OAuthClientProvider:
    metadata = OAuthClientMetadata(
        redirect_uris=[CALLBACK],
        grant_types=["authorization_code", "refresh_token"],
        token_endpoint_auth_method="none",
        client_name="interop python client",
    )
    return OAuthClientProvider(MCP_URL, metadata, storage, redirect_handler=person.redirect, callback_handler=person.callback)


async def oauth_flow(era: str) -> Report:
    report = Report(f"python/{era} oauth:")
    storage, person, recorder = MemoryStorage(), Person(["all"]), Recorder()
    async with http_client(recorder, auth=oauth_provider(storage, person)) as http:
        async with Client(streamable_http_client(MCP_URL, http_client=http), mode=MODES[era], cache=None) as client:
            # A pinned modern client sends nothing before its first operation, a legacy one
            # sends initialize: either way the first request to /mcp meets the 401.
            await use_the_server(report, client)
            await check_era(report, client, recorder, era)
            first = next((r for _, r in recorder.find("POST", MCP_URL)), None)
            challenge = first.headers.get("www-authenticate", "") if first is not None else ""
            report.check(
                "first request answered 401 with resource_metadata",
                first is not None and first.status_code == 401 and "resource_metadata=" in challenge,
                f"{first and first.status_code} {challenge}",
            )
            prm = recorder.find("GET", MCP_URL.split("/mcp")[0] + "/.well-known/oauth-protected-resource", 200)
            report.check("protected-resource metadata fetched", bool(prm), "no 200 from /.well-known/oauth-protected-resource")
            asm = [x for x in recorder.find("GET", ISSUER, 200) if is_as_metadata(str(x[0].url))]
            report.check("authorization-server metadata fetched from the issuer", bool(asm), "no 200 from its well-known URLs")
            registration = f"{ISSUER}{SERVER['registration_path']}"
            report.check("client registered dynamically", bool(recorder.find("POST", registration, 201)), f"no 201 from {registration}")
            query = parse_qs(urlparse(person.visits[0]["url"]).query) if person.visits else {}
            report.check(
                "authorization request: PKCE S256, resource, scopes from the challenge",
                query.get("code_challenge_method") == ["S256"]
                and query.get("resource") == [MCP_URL]
                and {"mcp:read", "mcp:tools", "mcp:prompts"} <= set(query.get("scope", [""])[0].split()),
                query,
            )
            visit = person.visits[0] if person.visits else {}
            callback = parse_qs(urlparse(visit.get("callbackUrl", "")).query)
            report.check(
                "signed in and consented over HTTP: code, state and iss in the callback",
                {"code", "state", "iss"} <= callback.keys() and callback["iss"] == [ISSUER]
                # user.mjs also counts the pages it saw: one sign-in, one consent
                and visit.get("login", 1) == 1 and visit.get("consent", 1) == 1,
                visit,
            )
            token_requests = [recorder.form(q) for q, _ in recorder.find("POST", f"{ISSUER}/token", 200)]
            code_request = next((f for f in token_requests if f.get("grant_type") == "authorization_code"), {})
            report.check(
                "token request with code_verifier and resource",
                bool(code_request.get("code_verifier")) and code_request.get("resource") == MCP_URL,
                code_request,
            )
            access = claims(storage.tokens.access_token) if storage.tokens else {}
            report.check(
                "access token is a JWT for our resource, with the user's roles",
                access.get("aud") == MCP_URL and access.get("roles") == PERSON["roles"] and access.get("iss") == ISSUER,
                access,
            )

            # Let the access token expire: the SDK must refresh it before its next request.
            old_token = storage.tokens.access_token if storage.tokens else None
            await asyncio.sleep(max(0.0, access.get("exp", 0) - time.time()) + 1.5)
            result = await attempt(report, "tools/call after expiry", client.call_tool("echo", {"message": "refreshed"}))
            refreshes = [
                f for f in (recorder.form(q) for q, _ in recorder.find("POST", f"{ISSUER}/token", 200))
                if f.get("grant_type") == "refresh_token"
            ]
            report.check(
                "expired token refreshed (grant_type=refresh_token, with resource)",
                bool(refreshes) and refreshes[-1].get("resource") == MCP_URL,
                refreshes or "no refresh request",
            )
            report.check(
                "refreshed token differs and is accepted",
                result is not None and "refreshed" in text_of(result) and storage.tokens.access_token != old_token,
                result,
            )
            report.check("no second sign-in was needed", len(person.visits) == 1, f"{len(person.visits)} sign-ins")
    return report


async def step_up_flow(era: str) -> Report:
    report = Report(f"python/{era} step-up:")
    storage, recorder = MemoryStorage(), Recorder()
    person = Person(["mcp:read", "all"])  # first consent: only mcp:read; then everything
    async with http_client(recorder, auth=oauth_provider(storage, person)) as http:
        async with Client(streamable_http_client(MCP_URL, http_client=http), mode=MODES[era], cache=None) as client:
            tools = await attempt(report, "tools/list with mcp:read", client.list_tools())
            if tools is not None:
                report.check("tools/list with mcp:read", True)
            scope = storage.tokens.scope if storage.tokens else None
            report.check("first token holds only mcp:read", scope == "mcp:read", scope)
            result = await attempt(report, "tools/call steps up by itself", client.call_tool("echo", {"message": "stepped up"}))
            refused = [r for _, r in recorder.find("POST", MCP_URL, 403)]
            challenge = refused[0].headers.get("www-authenticate", "") if refused else ""
            report.check(
                "server answered 403 insufficient_scope naming mcp:tools",
                'error="insufficient_scope"' in challenge and "mcp:tools" in challenge,
                challenge or "no 403",
            )
            second = parse_qs(urlparse(person.visits[1]["url"]).query) if len(person.visits) > 1 else {}
            report.check(
                "SDK re-authorized with the larger scope",
                "mcp:tools" in second.get("scope", [""])[0].split(),
                second.get("scope") or f"{len(person.visits)} sign-ins",
            )
            if result is not None:
                report.check("tools/call steps up by itself", "stepped up" in text_of(result), result)
            scope = storage.tokens.scope if storage.tokens else ""
            report.check("new token holds mcp:tools", "mcp:tools" in (scope or "").split(), scope)
    return report


async def m2m_flow(era: str) -> Report:
    report = Report(f"python/{era} m2m:")
    for machine in SERVER["machine_clients"]:
        client_id, role = machine["client_id"], " ".join(machine["roles"])
        storage, recorder = MemoryStorage(), Recorder()
        provider = ClientCredentialsOAuthProvider(MCP_URL, storage, client_id, machine["secret"], issuer=ISSUER)
        async with http_client(recorder, auth=provider) as http:
            async with Client(streamable_http_client(MCP_URL, http_client=http), mode=MODES[era], cache=None) as client:
                tools = await attempt(report, f"{client_id} tools/list", client.list_tools())
                if tools is not None:
                    names = sorted(t.name for t in tools.tools)
                    report.check(f"{client_id} tools/list shows only usable tools", names == machine["tools"], names)
                access = claims(storage.tokens.access_token) if storage.tokens else {}
                report.check(
                    f"{client_id} token: aud = resource, roles = {machine['roles']}",
                    access.get("aud") == MCP_URL and access.get("roles") == machine["roles"] and access.get("sub") == client_id,
                    access,
                )
                operations = {
                    "tools/call": lambda: client.call_tool("echo", {"message": "m2m"}),
                    "prompts/get": lambda: client.get_prompt("greeting", {"name": "Ada"}),
                }
                for method, call in operations.items():
                    refusals = len(recorder.find("POST", MCP_URL, 403))
                    try:
                        result = await call()
                        done = not getattr(result, "is_error", False)
                    except Exception as e:  # noqa: BLE001
                        done, result = False, e
                    if machine[method.replace("/", "_")]:
                        report.check(f"{client_id} {method} allowed (role {role})", done, result)
                    else:
                        refused = len(recorder.find("POST", MCP_URL, 403)) > refusals
                        report.check(f"{client_id} {method} refused with 403 (role {role})", not done and refused, result)
    return report


async def main(era: str) -> int:
    passed = failed = 0
    for flow in (bearer_flow, oauth_flow, step_up_flow, m2m_flow):
        try:
            report = await flow(era)
        except Exception as e:  # noqa: BLE001 - a crashed flow is one failed check
            report = Report(f"python/{era} {flow.__name__}:")
            report.check("flow ran to the end", False, describe(e))
        passed, failed = passed + report.passed, failed + report.failed
    print(f"python/{era}: {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in MODES:
        sys.exit(__doc__)
    sys.exit(asyncio.run(main(sys.argv[1])))
