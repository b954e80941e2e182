//! Request bodies of the ingest endpoints: any bytes, in any claimed
//! format and encoding, give `Ok` or `Err` — never a panic, never output
//! beyond the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulsestream::ingest::decode::{self, BodyFormat};
use pulsestream::ingest::validate::{EventLimits, TimeWindow, validate_item};
use pulsestream_storage::Micros;

/// Small, so bombs are caught quickly.
const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let limits = EventLimits::default();
    let window = TimeWindow {
        now: Micros(1_795_600_800_000_000),
        retention_days: 30,
    };
    if let Ok(item) = decode::parse_single(data) {
        let _ = validate_item(item, &limits, &window);
    }
    for format in [BodyFormat::Json, BodyFormat::Ndjson] {
        if let Ok(items) = decode::parse_batch(data, format) {
            for item in items {
                let _ = validate_item(item, &limits, &window);
            }
        }
    }
    for enc in ["gzip", "zstd"] {
        if let Ok(out) = decode::decompress(Some(enc), data, LIMIT) {
            assert!(out.len() <= LIMIT);
            let _ = decode::parse_batch(&out, BodyFormat::Ndjson);
        }
    }
});
