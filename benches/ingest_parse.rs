//! Parsing ingest bodies: the per-event CPU cost at the front door, and the
//! JSON parser choice behind it.
//!
//! One NDJSON body and one JSON-array body of 1,000 `pulsestream loadgen`
//! events (the distributions of `gen_events.py`). The lenient, borrowing
//! event model of `ingest::decode` is driven by serde_json (what the server
//! uses) and, through the same `Deserialize` impls, by sonic-rs; then
//! parse + validate into storage `Event`s, the whole per-event work before
//! the append.
//!
//! `cargo bench --bench ingest_parse`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pulsestream::ingest::decode::{self, BodyFormat, Item};
use pulsestream::ingest::validate::{EventLimits, TimeWindow, validate_item};
use pulsestream::loadgen::{Model, Rng};
use pulsestream_storage::Micros;

const EVENTS: usize = 1000;

fn bench(c: &mut Criterion) {
    let mut rng = Rng::new(42);
    let model = Model::new(&mut rng);
    let now = Micros::now();
    let ndjson = model.body(&mut rng, EVENTS, now, true);
    let array = model.body(&mut rng, EVENTS, now, false);
    let limits = EventLimits::default();
    let window = TimeWindow {
        now,
        retention_days: 30,
    };

    let mut g = c.benchmark_group("ingest_parse");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.bench_function("ndjson_1000/serde_json", |b| {
        b.iter(|| {
            decode::parse_batch(black_box(ndjson.as_bytes()), BodyFormat::Ndjson)
                .expect("parses")
                .len()
        })
    });
    g.bench_function("ndjson_1000/sonic_rs", |b| {
        b.iter(|| {
            black_box(&ndjson)
                .lines()
                .map(|l| sonic_rs::from_str::<Item>(l).expect("parses"))
                .filter(|item| matches!(item, Item::Event(_)))
                .count()
        })
    });
    g.bench_function("array_1000/serde_json", |b| {
        b.iter(|| {
            decode::parse_batch(black_box(array.as_bytes()), BodyFormat::Json)
                .expect("parses")
                .len()
        })
    });
    g.bench_function("array_1000/sonic_rs", |b| {
        b.iter(|| {
            sonic_rs::from_str::<Vec<Item>>(black_box(&array))
                .expect("parses")
                .len()
        })
    });
    g.bench_function("ndjson_1000/serde_json+validate", |b| {
        b.iter(|| {
            let mut ok = 0;
            decode::for_each_item(black_box(ndjson.as_bytes()), BodyFormat::Ndjson, |item| {
                ok += usize::from(validate_item(item, &limits, &window).is_ok());
            })
            .expect("parses");
            assert_eq!(ok, EVENTS);
            ok
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
