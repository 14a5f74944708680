"""A real OTLP/HTTP trace receiver: POST /v1/traces bodies decoded with OpenTelemetry's official
protobuf definitions (the `opentelemetry-proto` package), kept as plain dicts for the checks.

Run alone (`python receiver.py PORT`) it prints each span it receives as a JSON line.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def any_value(value):
    """An AnyValue as a Python value."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind) if kind else None


def attributes(key_values):
    return {kv.key: any_value(kv.value) for kv in key_values}


def decode(body):
    """The spans of one ExportTraceServiceRequest, each with its resource's attributes."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    {
                        "name": span.name,
                        "kind": span.kind,
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "attributes": attributes(span.attributes),
                        "status": span.status.code,
                        "links": [(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                        "resource": resource,
                        "scope": scope_spans.scope.name,
                    }
                )
    return spans


class Receiver:
    """Listens on 127.0.0.1 (a free port unless given) in a thread of its own."""

    def __init__(self, port=0, echo=False):
        self.spans = []
        self.requests = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.path != "/v1/traces" or self.headers.get("content-type") != "application/x-protobuf":
                    self.send_error(404 if self.path != "/v1/traces" else 415)
                    return
                try:
                    spans = decode(body)
                except Exception as error:  # a body that is no ExportTraceServiceRequest
                    self.send_error(400, str(error))
                    return
                with receiver.lock:
                    receiver.requests += 1
                    receiver.spans.extend(spans)
                if echo:
                    for span in spans:
                        print(json.dumps(span), flush=True)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()

    def received(self):
        with self.lock:
            return list(self.spans)


if __name__ == "__main__":
    receiver = Receiver(int(sys.argv[1]) if len(sys.argv) > 1 else 4318, echo=True)
    print(f"OTLP/HTTP receiver on 127.0.0.1:{receiver.port}/v1/traces", file=sys.stderr, flush=True)
    receiver.server.serve_forever()
