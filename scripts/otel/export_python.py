"""Exports the spans of spans.json to PulseStream with the OpenTelemetry
Python SDK and its OTLP/HTTP protobuf exporter.

Usage: export_python.py URL API_KEY SERVICE
"""

import json
import os
import sys
import time

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

KINDS = {
    "server": SpanKind.SERVER,
    "consumer": SpanKind.CONSUMER,
    "client": SpanKind.CLIENT,
    "internal": SpanKind.INTERNAL,
}


def main() -> int:
    url, key, service = sys.argv[1], sys.argv[2], sys.argv[3]
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "spans.json")) as f:
        spans = json.load(f)["spans"]
    exporter = OTLPSpanExporter(
        endpoint=f"{url}/v1/traces",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("pulsestream.otel-clients")
    now_ns = time.time_ns()
    for s in spans:
        end = now_ns - s["end_ago_ms"] * 1_000_000
        start = end - s["ms"] * 1_000_000
        span = tracer.start_span(
            s["name"], kind=KINDS[s["kind"]], start_time=start, attributes=s["attributes"]
        )
        if s.get("error"):
            span.set_status(Status(StatusCode.ERROR, "failed"))
        span.end(end_time=end)
    if not provider.force_flush(timeout_millis=10_000):
        print("python: flush failed", file=sys.stderr)
        return 1
    provider.shutdown()
    print(f"python: exported {len(spans)} spans as {service}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
