//! OTLP trace bodies (`POST /v1/traces`): the first byte picks protobuf or
//! JSON, the rest is the body. Decoding and mapping must return `Err` or
//! events, never panic, and never allocate without bound.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pulsestream::ingest::validate::{EventLimits, TimeWindow};
use pulsestream::otlp::decode::{Encoding, decode};
use pulsestream::otlp::map::map_request;
use pulsestream_storage::Micros;

/// Spans per request in the fuzzer: small, so a body of many empty spans
/// exercises the bound instead of the allocator.
const MAX_SPANS: usize = 1000;

fuzz_target!(|data: &[u8]| {
    let Some((first, body)) = data.split_first() else {
        return;
    };
    let encoding = if first & 1 == 0 {
        Encoding::Protobuf
    } else {
        Encoding::Json
    };
    if let Ok(req) = decode(body, encoding, MAX_SPANS) {
        let window = TimeWindow {
            now: Micros(1_800_000_000_000_000),
            retention_days: 30,
        };
        let mapped = map_request(&req, &EventLimits::default(), &window);
        assert!(mapped.events.len() + mapped.rejected as usize + mapped.ignored as usize <= MAX_SPANS);
        let _ = mapped.message();
    }
});
