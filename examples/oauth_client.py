#!/usr/bin/env python3
"""A whole MCP client of the quick start, with the official Python SDK (`pip install mcp`):
discovery, registration, PKCE, your browser, the token, a tool call. Start the server first
(`cargo run --release --all-features`), then `python3 examples/oauth_client.py`.

Checked with `mcp` 2.3.0. On a machine without a browser,
`BROWSER="python3 tests/issuer_login.py --follow %s"` lets a script sign in as alice instead of you.
"""
import asyncio, threading, webbrowser
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

import httpx2
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata

SERVER, CALLBACK = "http://127.0.0.1:3000/mcp", "http://127.0.0.1:8765/callback"

class Memory:  # where the SDK keeps tokens and the client registration
    tokens = client = None
    async def get_tokens(self): return self.tokens
    async def set_tokens(self, tokens): self.tokens = tokens
    async def get_client_info(self): return self.client
    async def set_client_info(self, client): self.client = client

answer = {}
class Callback(BaseHTTPRequestHandler):  # the browser is sent back here, on this machine
    def do_GET(self):
        answer.update((k, v[0]) for k, v in parse_qs(urlparse(self.path).query).items())
        self.send_response(200); self.end_headers(); self.wfile.write(b"Signed in. You can close this tab.")
    def log_message(self, *args): pass

async def on_redirect(url):
    threading.Thread(target=HTTPServer(("127.0.0.1", 8765), Callback).handle_request, daemon=True).start()
    print("Sign in at:", url)
    webbrowser.open(url)

async def on_callback():
    while "code" not in answer and "error" not in answer:
        await asyncio.sleep(0.2)
    return AuthorizationCodeResult(code=answer["code"], state=answer.get("state"), iss=answer.get("iss"))

async def main():
    auth = OAuthClientProvider(
        server_url=SERVER,
        client_metadata=OAuthClientMetadata(client_name="README example", redirect_uris=[CALLBACK],
                                            grant_types=["authorization_code", "refresh_token"],
                                            token_endpoint_auth_method="none"),
        storage=Memory(), redirect_handler=on_redirect, callback_handler=on_callback)
    async with httpx2.AsyncClient(auth=auth) as http:
        async with Client(streamable_http_client(SERVER, http_client=http)) as client:
            result = await client.call_tool("echo", {"message": "hello"})
            print(result.content[0].text)  # hello

asyncio.run(main())
