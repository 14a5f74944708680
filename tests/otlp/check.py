"""Traces as an OpenTelemetry collector sees them (issue 28): the server binary exports to a real
OTLP/HTTP receiver (receiver.py, the official protobuf definitions), and the decoded spans are
checked: one per HTTP request and one per MCP request, their parents (a `traceparent` sent in
`params._meta`, one sent as an HTTP header), and their attributes (MCP semantic conventions).

Usage: check.py SERVER_BINARY TOKEN_BINARY   (tests/otlp/run.sh builds both and runs this)
Prints PASS/FAIL per check and "otlp: N passed, M failed"; exits 1 on a failure.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from receiver import Receiver

MODERN = "2026-07-28"
LEGACY = "2025-11-25"
SERVER_KIND = 2  # Span.SpanKind.SPAN_KIND_SERVER
STATUS_ERROR = 2  # Status.StatusCode.STATUS_CODE_ERROR

# The callers' spans, as an MCP client and an HTTP client would send them.
META_PARENT = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
HEADER_PARENT = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
HEADER_ONLY_PARENT = ("5b8aa5a2d2c872e8321cf37308d69df2", "051581bf3cb55c13")
SESSION_PARENT = ("c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6", "a1a2a3a4a5a6a7a8")

passed, failed = 0, 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def traceparent(parent):
    return f"00-{parent[0]}-{parent[1]}-01"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The server binary with its own keys and config directory, exporting to `endpoint`."""

    def __init__(self, binary, token_binary, endpoint, work, extra_env=None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_AUTH") and k != "RUST_LOG"}
        env.update(
            {
                "MCP_AUTH_CONFIG_DIR": work,
                "MCP_AUTH__JWT__PRIVATE_KEY": os.path.join(work, "private.pem"),
                "MCP_AUTH__JWT__PUBLIC_KEYS": os.path.join(work, "public.pem"),
                "MCP_AUTH__SERVER__BIND": f"127.0.0.1:{self.port}",
                "MCP_AUTH__TELEMETRY__OTLP_ENDPOINT": endpoint,
            }
        )
        env.update(extra_env or {})
        self.token = subprocess.run(
            [token_binary, "--username", "ada", "--scopes", "mcp:read,mcp:tools"],
            env=env, check=True, capture_output=True, text=True,
        ).stdout.strip()
        self.log = open(os.path.join(work, f"server-{self.port}.log"), "w")
        self.process = subprocess.Popen([binary], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.base}/health/live", timeout=1).read()
                break
            except OSError:
                if time.time() > deadline or self.process.poll() is not None:
                    raise SystemExit(f"otlp: the server did not start (log: {self.log.name})")
                time.sleep(0.1)

    def post(self, body, headers=None):
        """POSTs a JSON-RPC message to /mcp; returns (status, headers, parsed body or None)."""
        request = urllib.request.Request(
            f"{self.base}/mcp",
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "content-type": "application/json",
                "accept": "application/json, text/event-stream",
                "authorization": f"Bearer {self.token}",
                **(headers or {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                data = response.read()
                return response.status, response.headers, json.loads(data) if data else None
        except urllib.error.HTTPError as error:
            data = error.read()
            return error.code, error.headers, json.loads(data) if data else None

    def modern(self, request_id, method, params, meta=None, headers=None):
        params = dict(params)
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
            **(meta or {}),
        }
        routing = {"mcp-protocol-version": MODERN, "mcp-method": method}
        if "name" in params:
            routing["mcp-name"] = params["name"]
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        return self.post(body, {**routing, **(headers or {})})

    def stop(self):
        """SIGTERM: a graceful shutdown, which sends the spans still buffered."""
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self.log.close()
        return code


def spans_named(spans, name):
    return [s for s in spans if s["name"] == name]


def by_request_id(spans, request_id):
    found = [s for s in spans if s["attributes"].get("jsonrpc.request.id") == str(request_id)]
    return found[0] if len(found) == 1 else None


def main():
    binary, token_binary = sys.argv[1], sys.argv[2]
    receiver = Receiver().start()
    endpoint = f"http://127.0.0.1:{receiver.port}"
    work = tempfile.mkdtemp(prefix="otlp-")

    # 1. The default settings: no subject on spans.
    server = Server(binary, token_binary, endpoint, work)
    echo = {"name": "echo", "arguments": {"message": "traced"}}
    # Both parents sent: the MCP span takes _meta's, the HTTP span the header's.
    status, _, _ = server.modern(
        11, "tools/call", echo,
        meta={"traceparent": traceparent(META_PARENT), "tracestate": "vendor=1"},
        headers={"traceparent": traceparent(HEADER_PARENT)},
    )
    check("a traced tools/call is answered", status == 200, status)
    # Only the HTTP header: the MCP span is a child of the HTTP span, in the caller's trace.
    status, _, _ = server.modern(12, "tools/list", {}, headers={"traceparent": traceparent(HEADER_ONLY_PARENT)})
    check("a tools/list with an HTTP traceparent is answered", status == 200, status)
    # An unknown tool: an error span.
    status, _, _ = server.modern(13, "tools/call", {"name": "no-such-tool", "arguments": {}})
    check("a call of an unknown tool is refused", status == 400, status)
    # A legacy session, then a call in it with a _meta parent.
    status, headers, _ = server.post(
        {"jsonrpc": "2.0", "id": 14, "method": "initialize",
         "params": {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "otlp", "version": "1"}}}
    )
    session = headers.get("mcp-session-id")
    check("a legacy session opens", status == 200 and session, status)
    status, _, _ = server.post(
        {"jsonrpc": "2.0", "id": 15, "method": "tools/call",
         "params": {**echo, "_meta": {"traceparent": traceparent(SESSION_PARENT)}}},
        {"mcp-session-id": session or "", "mcp-protocol-version": LEGACY},
    )
    check("a call in the session is answered", status == 200, status)
    exit_code = server.stop()
    check("the server exits cleanly after exporting", exit_code == 0, exit_code)

    spans = receiver.received()
    check("spans arrived, decoded as ExportTraceServiceRequest", len(spans) >= 10, len(spans))
    check(
        "every span names the service",
        all(s["resource"].get("service.name") == "mcp-auth-server" for s in spans),
        {s["resource"].get("service.name") for s in spans},
    )
    mcp = [s for s in spans if "mcp.method.name" in s["attributes"]]
    http = [s for s in spans if s["attributes"].get("url.path") == "/mcp"]
    check("one MCP span per MCP request", len(mcp) == 5, [s["name"] for s in mcp])
    check("one HTTP span per POST /mcp", len(http) == 5, [s["name"] for s in http])
    check("every span is a server span", all(s["kind"] == SERVER_KIND for s in spans), [s["kind"] for s in spans])

    call = by_request_id(mcp, 11)
    http_call = next((s for s in http if s["trace_id"] == HEADER_PARENT[0]), None)
    check("the MCP span is named after method and tool", call and call["name"] == "tools/call echo", call)
    check(
        "its parent is the traceparent of params._meta",
        call and (call["trace_id"], call["parent_span_id"]) == META_PARENT,
        call and (call["trace_id"], call["parent_span_id"]),
    )
    check(
        "the HTTP span's parent is the traceparent header",
        http_call and http_call["parent_span_id"] == HEADER_PARENT[1] and http_call["name"] == "POST /mcp",
        http_call,
    )
    check(
        "the MCP span links the HTTP span (the transport's context)",
        call and http_call and call["links"] == [(http_call["trace_id"], http_call["span_id"])],
        call and call["links"],
    )
    attributes = call["attributes"] if call else {}
    expected = {
        "mcp.method.name": "tools/call",
        "gen_ai.tool.name": "echo",
        "gen_ai.operation.name": "execute_tool",
        "mcp.protocol.version": MODERN,
        "jsonrpc.request.id": "11",
        "network.transport": "tcp",
        "network.protocol.name": "http",
    }
    check(
        "the MCP span carries the semantic conventions' attributes",
        all(attributes.get(k) == v for k, v in expected.items()),
        attributes,
    )
    check("no error on a successful call", call and "error.type" not in attributes and call["status"] != STATUS_ERROR)
    check("no subject unless telemetry.include_subject", all("enduser.id" not in s["attributes"] for s in spans))
    check(
        "the HTTP span carries route and status",
        http_call
        and http_call["attributes"].get("http.route") == "/mcp"
        and http_call["attributes"].get("http.response.status_code") == 200,
        http_call and http_call["attributes"],
    )

    listed = by_request_id(mcp, 12)
    http_listed = next((s for s in http if s["trace_id"] == HEADER_ONLY_PARENT[0]), None)
    check(
        "without _meta, the MCP span is a child of the HTTP span, in the header's trace",
        listed and http_listed
        and listed["trace_id"] == HEADER_ONLY_PARENT[0]
        and listed["parent_span_id"] == http_listed["span_id"]
        and http_listed["parent_span_id"] == HEADER_ONLY_PARENT[1]
        and listed["links"] == [],
        (listed, http_listed),
    )

    failed_call = by_request_id(mcp, 13)
    check(
        "an error is error.type with the JSON-RPC code and an error status",
        failed_call
        and failed_call["attributes"].get("error.type") == "-32602"
        and failed_call["attributes"].get("rpc.response.status_code") == "-32602"
        and failed_call["status"] == STATUS_ERROR
        and failed_call["name"] == "tools/call",
        failed_call,
    )

    initialize = by_request_id(mcp, 14)
    in_session = by_request_id(mcp, 15)
    check(
        "initialize carries the new session's id and the negotiated version",
        initialize
        and initialize["attributes"].get("mcp.session.id") == session
        and initialize["attributes"].get("mcp.protocol.version") == LEGACY,
        initialize,
    )
    check(
        "a call in a session carries its id, and its _meta parent",
        in_session
        and in_session["attributes"].get("mcp.session.id") == session
        and (in_session["trace_id"], in_session["parent_span_id"]) == SESSION_PARENT,
        in_session,
    )

    # 2. With telemetry.include_subject: the caller's subject as enduser.id.
    before = len(receiver.received())
    server = Server(binary, token_binary, endpoint, work, {"MCP_AUTH__TELEMETRY__INCLUDE_SUBJECT": "true"})
    server.modern(21, "tools/list", {})
    server.stop()
    listed = by_request_id(receiver.received()[before:], 21)
    check(
        "with telemetry.include_subject the MCP span names the subject",
        listed and listed["attributes"].get("enduser.id") == "ada",
        listed,
    )

    receiver.stop()
    print(f"otlp: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
