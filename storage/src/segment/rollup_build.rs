//! Builds a segment's rollups from its rows at write time, and the rollup
//! section's binary form.
//!
//! Section layout (before zstd; varints are LEB128):
//! - string table: uvarint count, each string length-prefixed. Keys refer
//!   to it as uvarint `index + 1`, 0 meaning "none".
//! - by_minute: uvarint row count; per row zz-varint minute number delta
//!   (minute / 60 s, from the previous row), service ref, event_type ref,
//!   class byte, aggregate.
//! - by_route: uvarint row count; per row service ref, endpoint ref, method
//!   code byte (0 = none), event_type ref, class byte, aggregate.
//! - aggregate: uvarint count, errors, latency_count; when latency_count > 0
//!   the latency sum, min and max as f64 LE, then the sketch
//!   (`LatencySketch::encode`).

use std::collections::HashMap;

use crate::codec::{Reader, put_bytes, put_ivarint, put_uvarint};
use crate::error::{Result, StorageError};
use crate::event::{Method, is_error};
use crate::rollup::{MinuteKey, RollupAgg, Rollups, RouteKey, status_class};
use crate::types::Micros;

/// The fields of one row that rollups look at.
#[derive(Debug, Clone, Copy)]
pub struct RollupRow<'a> {
    pub timestamp: i64,
    pub service: Option<&'a str>,
    pub endpoint: Option<&'a str>,
    pub method: Option<Method>,
    pub event_type: &'a str,
    pub status: Option<u16>,
    pub latency: Option<f64>,
}

type MinuteK<'a> = (i64, Option<&'a str>, &'a str, u8);
type RouteK<'a> = (
    Option<&'a str>,
    Option<&'a str>,
    Option<Method>,
    &'a str,
    u8,
);

/// Accumulates rows (in the segment's row order, so float sums are
/// reproducible) into both rollup tables, borrowing the rows' strings.
#[derive(Default)]
pub struct RollupBuilder<'a> {
    by_minute: HashMap<MinuteK<'a>, RollupAgg>,
    by_route: HashMap<RouteK<'a>, RollupAgg>,
}

impl<'a> RollupBuilder<'a> {
    pub fn add(&mut self, r: &RollupRow<'a>) {
        let class = status_class(r.status);
        let err = is_error(r.status, r.event_type);
        let minute = Micros(r.timestamp).floor_to(Micros::MINUTE).0;
        self.by_minute
            .entry((minute, r.service, r.event_type, class))
            .or_default()
            .add(r.latency, err);
        self.by_route
            .entry((r.service, r.endpoint, r.method, r.event_type, class))
            .or_default()
            .add(r.latency, err);
    }

    /// The tables, sorted by key.
    pub fn finish(self) -> Rollups {
        let own = |s: Option<&str>| s.map(str::to_owned);
        let mut by_minute: Vec<(MinuteKey, RollupAgg)> = self
            .by_minute
            .into_iter()
            .map(|((m, svc, et, class), agg)| {
                let key = MinuteKey {
                    minute: Micros(m),
                    service: own(svc),
                    event_type: et.to_owned(),
                    status_class: class,
                };
                (key, agg)
            })
            .collect();
        by_minute.sort_by(|a, b| a.0.cmp(&b.0));
        let mut by_route: Vec<(RouteKey, RollupAgg)> = self
            .by_route
            .into_iter()
            .map(|((svc, ep, method, et, class), agg)| {
                let key = RouteKey {
                    service: own(svc),
                    endpoint: own(ep),
                    method,
                    event_type: et.to_owned(),
                    status_class: class,
                };
                (key, agg)
            })
            .collect();
        by_route.sort_by(|a, b| a.0.cmp(&b.0));
        Rollups {
            by_minute,
            by_route,
        }
    }
}

/// Interns the section's strings.
#[derive(Default)]
struct StringTable {
    strings: Vec<String>,
    index: HashMap<String, u64>,
}

impl StringTable {
    fn reference(&mut self, s: Option<&str>) -> u64 {
        let Some(s) = s else { return 0 };
        if let Some(&i) = self.index.get(s) {
            return i + 1;
        }
        let i = self.strings.len() as u64;
        self.strings.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i + 1
    }
}

fn put_agg(out: &mut Vec<u8>, a: &RollupAgg) {
    put_uvarint(out, a.count);
    put_uvarint(out, a.errors);
    put_uvarint(out, a.latency_count);
    if a.latency_count > 0 {
        for v in [a.latency_sum, a.latency_min, a.latency_max] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        a.sketch.encode(out);
    }
}

/// The rollup section's bytes (before compression).
pub fn encode_rollups(r: &Rollups) -> Vec<u8> {
    let mut table = StringTable::default();
    let mut body = Vec::new();
    put_uvarint(&mut body, r.by_minute.len() as u64);
    let mut prev = 0i64;
    for (k, agg) in &r.by_minute {
        let m = k.minute.0.div_euclid(Micros::MINUTE);
        put_ivarint(&mut body, m.wrapping_sub(prev));
        prev = m;
        put_uvarint(&mut body, table.reference(k.service.as_deref()));
        put_uvarint(&mut body, table.reference(Some(&k.event_type)));
        body.push(k.status_class);
        put_agg(&mut body, agg);
    }
    put_uvarint(&mut body, r.by_route.len() as u64);
    for (k, agg) in &r.by_route {
        put_uvarint(&mut body, table.reference(k.service.as_deref()));
        put_uvarint(&mut body, table.reference(k.endpoint.as_deref()));
        body.push(k.method.map_or(0, Method::code));
        put_uvarint(&mut body, table.reference(Some(&k.event_type)));
        body.push(k.status_class);
        put_agg(&mut body, agg);
    }
    let mut out = Vec::with_capacity(body.len() + 64 * table.strings.len());
    put_uvarint(&mut out, table.strings.len() as u64);
    for s in &table.strings {
        put_bytes(&mut out, s.as_bytes());
    }
    out.extend_from_slice(&body);
    out
}

fn bad(what: &'static str, offset: usize) -> StorageError {
    StorageError::Decode { what, offset }
}

fn get_ref<'s>(r: &mut Reader<'_>, strings: &'s [String]) -> Result<Option<&'s String>> {
    let at = r.position();
    match r.uvarint("rollup string ref")? {
        0 => Ok(None),
        i => strings
            .get((i - 1) as usize)
            .map(Some)
            .ok_or_else(|| bad("rollup string ref", at)),
    }
}

fn get_class(r: &mut Reader<'_>) -> Result<u8> {
    let at = r.position();
    let c = r.u8("status class")?;
    if c > 5 {
        return Err(bad("status class", at));
    }
    Ok(c)
}

fn get_agg(r: &mut Reader<'_>) -> Result<RollupAgg> {
    let at = r.position();
    let count = r.uvarint("rollup count")?;
    let errors = r.uvarint("rollup errors")?;
    let latency_count = r.uvarint("rollup latency count")?;
    if errors > count || latency_count > count || count == 0 {
        return Err(bad("rollup counts", at));
    }
    // Fields without latencies keep `RollupAgg::default()`'s values, as
    // the builder leaves them, so a decoded table equals the built one.
    let mut a = RollupAgg {
        count,
        errors,
        latency_count,
        ..RollupAgg::default()
    };
    if latency_count > 0 {
        a.latency_sum = r.f64_le("latency sum")?;
        a.latency_min = r.f64_le("latency min")?;
        a.latency_max = r.f64_le("latency max")?;
        a.sketch = crate::sketch::LatencySketch::decode(r)?;
    }
    Ok(a)
}

/// Decodes a rollup section. Row counts are bounded by the bytes left (each
/// row takes at least one byte), so forged counts cannot allocate much.
pub fn decode_rollups(data: &[u8]) -> Result<Rollups> {
    let mut r = Reader::new(data);
    let n = r.len_prefix("rollup strings")?;
    let mut strings = Vec::with_capacity(n);
    for _ in 0..n {
        strings.push(r.str("rollup string")?.to_owned());
    }
    let n = r.len_prefix("minute rows")?;
    let mut by_minute = Vec::with_capacity(n);
    let mut prev = 0i64;
    for _ in 0..n {
        let at = r.position();
        prev = prev.wrapping_add(r.ivarint("minute delta")?);
        let minute = prev
            .checked_mul(Micros::MINUTE)
            .ok_or_else(|| bad("minute", at))?;
        let service = get_ref(&mut r, &strings)?.cloned();
        let event_type = get_ref(&mut r, &strings)?
            .cloned()
            .ok_or_else(|| bad("minute event type", at))?;
        let status_class = get_class(&mut r)?;
        let key = MinuteKey {
            minute: Micros(minute),
            service,
            event_type,
            status_class,
        };
        by_minute.push((key, get_agg(&mut r)?));
    }
    let n = r.len_prefix("route rows")?;
    let mut by_route = Vec::with_capacity(n);
    for _ in 0..n {
        let at = r.position();
        let service = get_ref(&mut r, &strings)?.cloned();
        let endpoint = get_ref(&mut r, &strings)?.cloned();
        let method = match r.u8("route method")? {
            0 => None,
            c => Some(Method::from_code(c).ok_or_else(|| bad("route method", at))?),
        };
        let event_type = get_ref(&mut r, &strings)?
            .cloned()
            .ok_or_else(|| bad("route event type", at))?;
        let status_class = get_class(&mut r)?;
        let key = RouteKey {
            service,
            endpoint,
            method,
            event_type,
            status_class,
        };
        by_route.push((key, get_agg(&mut r)?));
    }
    if !r.is_empty() {
        return Err(bad("trailing bytes in rollups", r.position()));
    }
    Ok(Rollups {
        by_minute,
        by_route,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Rollups {
        let rows = [
            (
                61_000_000,
                Some("auth"),
                Some("/a"),
                Some(Method::Get),
                "api_call",
                Some(200),
                Some(3.5),
            ),
            (
                62_000_000,
                Some("auth"),
                Some("/a"),
                Some(Method::Get),
                "api_call",
                Some(503),
                Some(9.0),
            ),
            (125_000_000, None, None, None, "error", None, None),
            (
                -5,
                Some("x"),
                Some("/b"),
                Some(Method::Post),
                "user_action",
                Some(404),
                Some(0.25),
            ),
        ];
        let mut b = RollupBuilder::default();
        for (ts, svc, ep, m, et, st, lat) in rows {
            b.add(&RollupRow {
                timestamp: ts,
                service: svc,
                endpoint: ep,
                method: m,
                event_type: et,
                status: st,
                latency: lat,
            });
        }
        b.finish()
    }

    #[test]
    fn builder_groups_by_minute_and_route() {
        let r = sample();
        // Minutes: -1 (x), 1 (auth 2xx), 1 (auth 5xx), 2 (error).
        assert_eq!(r.by_minute.len(), 4);
        assert_eq!(r.by_minute[0].0.minute, Micros(-Micros::MINUTE));
        let auth5 = r
            .by_minute
            .iter()
            .find(|(k, _)| k.status_class == 5)
            .unwrap();
        assert_eq!((auth5.1.count, auth5.1.errors), (1, 1));
        let err = r
            .by_route
            .iter()
            .find(|(k, _)| k.event_type == "error")
            .unwrap();
        assert_eq!((err.1.errors, err.1.latency_count), (1, 0));
        assert_eq!(r.by_route.len(), 4);
    }

    #[test]
    fn section_round_trips_and_rejects_damage() {
        let r = sample();
        let bytes = encode_rollups(&r);
        let back = decode_rollups(&bytes).unwrap();
        assert_eq!(back.by_minute.len(), r.by_minute.len());
        for ((ka, a), (kb, b)) in back.by_minute.iter().zip(&r.by_minute) {
            assert_eq!(ka, kb);
            assert_eq!(a, b);
        }
        assert_eq!(back, r);
        for cut in 0..bytes.len() {
            assert!(decode_rollups(&bytes[..cut]).is_err());
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x5a;
            let _ = decode_rollups(&b);
        }
    }
}
