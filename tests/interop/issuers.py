"""Several trusted issuers against real identity providers: two independent oidc-provider
instances (idp.mjs on two ports, each with its own signing key), and mcp-auth-server trusting
both through [[jwt.issuers]] (run.sh's `issuers` mode starts them all).

Checks: a client-credentials token from each provider is accepted and becomes a principal of
that issuer; a token from one provider relabelled with the other's `iss` (so: claiming issuer A,
signed with B's key) is refused; a token naming an issuer not listed is refused; B's opaque
token is introspected at B and accepted, an unknown one refused; the protected-resource metadata
names both providers. Standard library only; PASS/FAIL lines.
"""

import base64
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

A, B, MCP_URL = os.environ["ISSUER_A"], os.environ["ISSUER_B"], os.environ["MCP_URL"]
failed = 0


def check(ok, what):
    global failed
    print(("PASS " if ok else "FAIL ") + what)
    failed += 0 if ok else 1


def token(issuer, client="m2m-admin"):
    body = urllib.parse.urlencode(
        {"grant_type": "client_credentials", "resource": MCP_URL, "scope": "mcp:read mcp:tools"}
    ).encode()
    request = urllib.request.Request(f"{issuer}/token", data=body)
    basic = base64.b64encode(f"{client}:{client}-secret".encode()).decode()
    request.add_header("Authorization", f"Basic {basic}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["access_token"]


def whoami(access_token):
    """(status, structuredContent or None) of tools/call whoami with this token."""
    call = {
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "whoami", "arguments": {}, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}}},
    }
    request = urllib.request.Request(MCP_URL, data=json.dumps(call).encode())
    for name, value in {
        "Authorization": f"Bearer {access_token}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": "whoami",
    }.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("WWW-Authenticate", "")
    data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
    message = json.loads(data[-1] if data else text)
    return status, message.get("result", {}).get("structuredContent")


def relabel(access_token, iss):
    """The token with its payload's `iss` replaced; header and signature kept."""
    header, payload, signature = access_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["iss"] = iss
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{payload}.{signature}"


from_a, from_b = token(A), token(B)
for name, issuer, access_token in (("A", A, from_a), ("B", B, from_b)):
    status, seen = whoami(access_token)
    check(status == 200 and isinstance(seen, dict) and seen.get("issuer") == issuer,
          f"a client-credentials token from provider {name} is accepted as {name}'s ({status}, {seen})")

status, challenge = whoami(relabel(from_b, A))
check(status == 401 and 'error="invalid_token"' in str(challenge),
      f"B's token claiming A's iss (B's key, B's kid) is refused ({status}, {challenge})")
status, challenge = whoami(relabel(from_a, "http://127.0.0.1:9/not-listed"))
check(status == 401 and "wrong issuer" in str(challenge),
      f"a token naming an issuer not listed is refused ({status}, {challenge})")

# Opaque tokens: B's reference token for m2m-opaque, introspected at B by the server (RFC 7662).
opaque = token(B, "m2m-opaque")
check(opaque.count(".") == 0, f"B issues m2m-opaque an opaque token ({opaque[:12]}...)")
status, seen = whoami(opaque)
check(status == 200 and isinstance(seen, dict) and seen.get("issuer") == B and seen.get("subject") == "m2m-opaque"
      and seen.get("roles") == ["admin"] and "mcp:tools" in seen.get("scopes", []),
      f"B's opaque token is introspected and accepted as B's client m2m-opaque ({status}, {seen})")
status, challenge = whoami("not-a-token-B-ever-issued")
check(status == 401 and 'error="invalid_token"' in str(challenge),
      f"an opaque token B calls inactive is refused ({status}, {challenge})")

prm_url = MCP_URL.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
with urllib.request.urlopen(prm_url, timeout=10) as response:
    servers = json.load(response).get("authorization_servers")
check(servers == [A, B], f"the protected-resource metadata names both providers ({servers})")

print(f"issuers: {failed} failed")
sys.exit(1 if failed else 0)
