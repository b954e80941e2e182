//! The per-span CPU cost of `POST /v1/traces` before the append: decoding
//! (protobuf with the wire prescan, or OTLP JSON) and mapping spans to
//! validated events, for 1,000 spans of `pulsestream loadgen` traffic (the
//! same events as the JSON benches), beside NDJSON parse + validate of the
//! same traffic.
//!
//! `cargo bench --bench otlp_decode`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pulsestream::ingest::decode::{self, BodyFormat};
use pulsestream::ingest::validate::{EventLimits, TimeWindow, validate_item};
use pulsestream::loadgen::otlp::{OtlpEncoding, body};
use pulsestream::loadgen::{Model, Rng};
use pulsestream::otlp::decode::{Encoding, decode as otlp_decode};
use pulsestream::otlp::map::map_request;
use pulsestream_storage::Micros;

const SPANS: usize = 1000;

fn bench(c: &mut Criterion) {
    let mut rng = Rng::new(42);
    let model = Model::new(&mut rng);
    let now = Micros::now();
    let events = model.body(&mut rng, SPANS, now, false);
    let ndjson = model.body(&mut rng, SPANS, now, true);
    let proto = body(&events, &mut rng, OtlpEncoding::Protobuf);
    let json = body(&events, &mut rng, OtlpEncoding::Json);
    let limits = EventLimits::default();
    let window = TimeWindow {
        now,
        retention_days: 30,
    };
    eprintln!(
        "bodies for {SPANS} spans: protobuf {} B, OTLP JSON {} B, NDJSON events {} B",
        proto.len(),
        json.len(),
        ndjson.len()
    );

    let mut g = c.benchmark_group("otlp_decode");
    g.throughput(Throughput::Elements(SPANS as u64));
    g.bench_function("protobuf_1000/decode", |b| {
        b.iter(|| otlp_decode(black_box(&proto), Encoding::Protobuf, 100_000).expect("decodes"))
    });
    g.bench_function("protobuf_1000/decode_map", |b| {
        b.iter(|| {
            let r = otlp_decode(black_box(&proto), Encoding::Protobuf, 100_000).expect("decodes");
            map_request(&r, &limits, &window).events.len()
        })
    });
    g.bench_function("json_1000/decode", |b| {
        b.iter(|| otlp_decode(black_box(&json), Encoding::Json, 100_000).expect("decodes"))
    });
    g.bench_function("json_1000/decode_map", |b| {
        b.iter(|| {
            let r = otlp_decode(black_box(&json), Encoding::Json, 100_000).expect("decodes");
            map_request(&r, &limits, &window).events.len()
        })
    });
    g.bench_function("ndjson_1000/parse_validate", |b| {
        b.iter(|| {
            let mut n = 0;
            decode::for_each_item(black_box(ndjson.as_bytes()), BodyFormat::Ndjson, |item| {
                if validate_item(item, &limits, &window).is_ok() {
                    n += 1;
                }
            })
            .expect("parses");
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
