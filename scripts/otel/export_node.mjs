// Exports the spans of spans.json to PulseStream with the OpenTelemetry Node
// SDK (@opentelemetry/sdk-trace-node) and @opentelemetry/exporter-trace-otlp-http
// (OTLP/HTTP JSON).
//
// Usage: node export_node.mjs URL API_KEY SERVICE

import { readFileSync } from 'node:fs';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';

const [url, key, service] = process.argv.slice(2);
const { spans } = JSON.parse(readFileSync(new URL('./spans.json', import.meta.url), 'utf8'));
const KINDS = {
  server: SpanKind.SERVER,
  consumer: SpanKind.CONSUMER,
  client: SpanKind.CLIENT,
  internal: SpanKind.INTERNAL,
};

let failures = 0;
const exporter = new OTLPTraceExporter({
  url: `${url}/v1/traces`,
  headers: { 'X-API-Key': key },
  timeoutMillis: 10000,
});
// Counts failed exports: the SDK only logs them.
const exportOnce = exporter.export.bind(exporter);
exporter.export = (items, done) =>
  exportOnce(items, (result) => {
    if (result.code !== 0) {
      failures += 1;
      console.error('node: export failed', result.error);
    }
    done(result);
  });
const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({ 'service.name': service }),
  spanProcessors: [new SimpleSpanProcessor(exporter)],
});
const tracer = provider.getTracer('pulsestream.otel-clients');

// [seconds, nanoseconds] times keep whole milliseconds exact.
const nowMs = Date.now();
const hr = (ms) => [Math.floor(ms / 1000), (ms % 1000) * 1e6];
for (const s of spans) {
  const end = nowMs - s.end_ago_ms;
  const span = tracer.startSpan(s.name, {
    kind: KINDS[s.kind],
    startTime: hr(end - s.ms),
    attributes: s.attributes,
  });
  if (s.error) span.setStatus({ code: SpanStatusCode.ERROR, message: 'failed' });
  span.end(hr(end));
}
await provider.forceFlush();
await provider.shutdown();
if (failures > 0) process.exit(1);
console.log(`node: exported ${spans.length} spans as ${service}`);
