//! Builds a segment's rollups from its rows at write time, and the rollup
//! section's binary form.
//!
//! Rollups of small segments hold nearly a row per event, so the section is
//! laid out to compress: column by column rather than row by row, latency
//! figures as exact scaled integers where the data allows, and a row with a
//! single latency stores that value once (its min, max, sum and sketch all
//! follow from it).
//!
//! Section layout (before zstd; varints are LEB128, "zz" zigzag):
//! - string table: uvarint count, each string length-prefixed. Keys refer
//!   to it as uvarint `index + 1`, 0 meaning "none".
//! - latency scale byte: `d` in 0..=6 when every latency figure below is
//!   stored as the zz-varint integer `value * 10^d`, or `RAW_LATENCIES`
//!   when they are f64 LE. Then a flag byte: 1 when one-latency rows store
//!   their figures in full like the others (see `encode_rollups`).
//! - by_minute: uvarint row count n; then n zz-varint minute-number deltas
//!   (minute / 60 s), n service refs, n event_type refs, n class bytes, then
//!   the aggregates.
//! - by_route: uvarint row count n; then n service refs, n endpoint refs,
//!   n method bytes (0 = none), n event_type refs, n class bytes, then the
//!   aggregates.
//! - aggregates of n rows: n uvarint counts, n uvarint errors, n uvarint
//!   latency counts; then per row with latency count 1 its latency, and per
//!   row with more its min, max and sum; then per row with more than one
//!   its sketch (`LatencySketch::encode`). With the flag set, one-latency
//!   rows are stored like the rows with more.

use std::collections::HashMap;

use super::encoding::scale_for;
use crate::codec::{Reader, put_bytes, put_ivarint, put_uvarint};
use crate::column::{Column, ColumnKey, ColumnSet, StrColumn};
use crate::error::{Result, StorageError};
use crate::event::{Method, is_error};
use crate::query::hash::SeededHash;
use crate::rollup::{MinuteKey, RollupAgg, Rollups, RouteKey, status_class};
use crate::types::Micros;

/// Scale byte meaning "latency figures are raw f64".
const RAW_LATENCIES: u8 = 0xff;
/// Latency sums are accumulated exactly in units of 10^-6 ms while every
/// latency is a whole number of those units (all real latencies are), then
/// rounded once: a sum that does not depend on the order rows were added.
const EXACT_SUM_SCALE: f64 = 1e6;
/// Beyond this an f64 no longer holds every integer, so exact sums stop.
const MAX_EXACT: i128 = 1 << 53;

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

/// An aggregate being built, with its exact latency sum while there is one.
#[derive(Default)]
struct Acc {
    agg: RollupAgg,
    /// Sum of latencies in units of 1/EXACT_SUM_SCALE ms; `None` once a
    /// latency is not a whole number of units.
    exact_sum: Option<i128>,
}

impl Acc {
    fn add(&mut self, latency: Option<f64>, err: bool) {
        if let Some(l) = latency.filter(|l| !l.is_nan()) {
            let units = (l * EXACT_SUM_SCALE).round();
            let exact = units.abs() < MAX_EXACT as f64
                && ((units as i64) as f64 / EXACT_SUM_SCALE).to_bits() == l.to_bits();
            self.exact_sum = match (self.agg.latency_count, self.exact_sum) {
                _ if !exact => None,
                (0, _) => Some(units as i128),
                (_, Some(s)) => Some(s + units as i128),
                (_, None) => None,
            };
        }
        self.agg.add(latency, err);
    }

    fn finish(mut self) -> RollupAgg {
        if let Some(s) = self.exact_sum.filter(|s| s.abs() < MAX_EXACT) {
            self.agg.latency_sum = s as f64 / EXACT_SUM_SCALE;
        }
        self.agg
    }
}

/// One input chunk's columns as rollups read them: strings as the chunk's
/// dictionary codes, all slices of the chunk's length.
pub struct ChunkColumns<'a> {
    pub timestamp: &'a [i64],
    pub service: &'a StrColumn,
    pub endpoint: &'a StrColumn,
    pub event_type: &'a StrColumn,
    /// `Method::code()`, or anything else for none.
    pub method: &'a [i64],
    pub status: &'a [i64],
    /// NaN for none.
    pub latency: &'a [f64],
}

impl<'a> ChunkColumns<'a> {
    /// The columns of a chunk, `None` when it lacks one or holds one of
    /// another kind.
    pub fn of(cs: &'a ColumnSet) -> Option<ChunkColumns<'a>> {
        let str_col = |k: &ColumnKey| match cs.get(k) {
            Some(Column::Str(c)) => Some(c),
            _ => None,
        };
        let int_col = |k: &ColumnKey| match cs.get(k) {
            Some(Column::Int(v)) => Some(v.as_slice()),
            _ => None,
        };
        Some(ChunkColumns {
            timestamp: int_col(&ColumnKey::Timestamp)?,
            service: str_col(&ColumnKey::Service)?,
            endpoint: str_col(&ColumnKey::Endpoint)?,
            event_type: str_col(&ColumnKey::EventType)?,
            method: int_col(&ColumnKey::Method)?,
            status: int_col(&ColumnKey::StatusCode)?,
            latency: match cs.get(&ColumnKey::LatencyMs) {
                Some(Column::Float(v)) => v,
                _ => return None,
            },
        })
    }
}

/// A chunk-local group: (minute, service code, endpoint code, method,
/// event type code, status class).
type FineK = (i64, u32, u32, i64, u32, u8);

/// Accumulates rows into both rollup tables, borrowing the rows' strings.
/// Latency sums are exact where the latencies allow (see `EXACT_SUM_SCALE`),
/// otherwise summed in the order rows were added.
#[derive(Default)]
pub struct RollupBuilder<'a> {
    minute_slots: HashMap<MinuteK<'a>, usize, SeededHash>,
    route_slots: HashMap<RouteK<'a>, usize, SeededHash>,
    minutes: Vec<Acc>,
    routes: Vec<Acc>,
}

impl<'a> RollupBuilder<'a> {
    /// Where the aggregates of `key` live, made on first use.
    fn minute_slot(&mut self, key: MinuteK<'a>) -> usize {
        let accs = &mut self.minutes;
        *self.minute_slots.entry(key).or_insert_with(|| {
            accs.push(Acc::default());
            accs.len() - 1
        })
    }

    fn route_slot(&mut self, key: RouteK<'a>) -> usize {
        let accs = &mut self.routes;
        *self.route_slots.entry(key).or_insert_with(|| {
            accs.push(Acc::default());
            accs.len() - 1
        })
    }

    /// Adds one row (the row-at-a-time form `add_chunk` is tested against).
    pub fn add(&mut self, r: &RollupRow<'a>) {
        let class = status_class(r.status);
        let err = is_error(r.status, r.event_type);
        let minute = Micros(r.timestamp).floor_to(Micros::MINUTE).0;
        let m = self.minute_slot((minute, r.service, r.event_type, class));
        let t = self.route_slot((r.service, r.endpoint, r.method, r.event_type, class));
        self.minutes[m].add(r.latency, err);
        self.routes[t].add(r.latency, err);
    }

    /// Adds every row of a chunk, in order. Each distinct (minute, route,
    /// status class) of the chunk's dictionary codes is resolved to its two
    /// table slots once, by its strings; every row then costs one lookup
    /// of an integer key. Hashing each row's strings twice made rollups
    /// the costliest part of sealing.
    pub fn add_chunk(&mut self, c: &ChunkColumns<'a>) {
        let rows = c.timestamp.len();
        let lens = [
            c.service.codes.len(),
            c.endpoint.codes.len(),
            c.event_type.codes.len(),
            c.method.len(),
            c.status.len(),
            c.latency.len(),
        ];
        if lens.iter().any(|&n| n != rows) {
            // Not a well-formed chunk (the writer checks its input first).
            return;
        }
        let str_at = |col: &'a StrColumn, code: u32| -> Option<&'a str> {
            col.dict.get(code as usize).map(String::as_str)
        };
        // The error rule for rows without a status, per event type code.
        let error_without_status: Vec<bool> = c
            .event_type
            .dict
            .iter()
            .map(|t| is_error(None, t))
            .collect();
        let mut slots: HashMap<FineK, (usize, usize), SeededHash> = HashMap::default();
        for r in 0..rows {
            let status = u16::try_from(c.status[r]).ok();
            let et = c.event_type.codes[r];
            let err = match status {
                Some(_) => is_error(status, ""),
                None => error_without_status
                    .get(et as usize)
                    .copied()
                    .unwrap_or(false),
            };
            let key = (
                Micros(c.timestamp[r]).floor_to(Micros::MINUTE).0,
                c.service.codes[r],
                c.endpoint.codes[r],
                c.method[r],
                et,
                status_class(status),
            );
            let (m, t) = match slots.get(&key) {
                Some(&s) => s,
                None => {
                    let (minute, svc, ep, method, et, class) = key;
                    let service = str_at(c.service, svc);
                    let event_type = str_at(c.event_type, et).unwrap_or("");
                    let method = u8::try_from(method).ok().and_then(Method::from_code);
                    let s = (
                        self.minute_slot((minute, service, event_type, class)),
                        self.route_slot((
                            service,
                            str_at(c.endpoint, ep),
                            method,
                            event_type,
                            class,
                        )),
                    );
                    slots.insert(key, s);
                    s
                }
            };
            let latency = Some(c.latency[r]).filter(|l| !l.is_nan());
            self.minutes[m].add(latency, err);
            self.routes[t].add(latency, err);
        }
    }

    /// The tables, sorted by key.
    pub fn finish(self) -> Rollups {
        let own = |s: Option<&str>| s.map(str::to_owned);
        let mut minutes: Vec<Option<Acc>> = self.minutes.into_iter().map(Some).collect();
        let mut routes: Vec<Option<Acc>> = self.routes.into_iter().map(Some).collect();
        let mut by_minute: Vec<(MinuteKey, RollupAgg)> = self
            .minute_slots
            .into_iter()
            .filter_map(|((m, svc, et, class), slot)| {
                let key = MinuteKey {
                    minute: Micros(m),
                    service: own(svc),
                    event_type: et.to_owned(),
                    status_class: class,
                };
                Some((key, minutes.get_mut(slot)?.take()?.finish()))
            })
            .collect();
        by_minute.sort_by(|a, b| a.0.cmp(&b.0));
        let mut by_route: Vec<(RouteKey, RollupAgg)> = self
            .route_slots
            .into_iter()
            .filter_map(|((svc, ep, method, et, class), slot)| {
                let key = RouteKey {
                    service: own(svc),
                    endpoint: own(ep),
                    method,
                    event_type: et.to_owned(),
                    status_class: class,
                };
                Some((key, routes.get_mut(slot)?.take()?.finish()))
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
    index: HashMap<String, u64, SeededHash>,
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

/// True when an aggregate stores min, max, sum and sketch rather than its
/// single latency.
fn stores_full(latency_count: u64, full_singles: bool) -> bool {
    latency_count > 1 || (latency_count == 1 && full_singles)
}

/// The latency figures an aggregate stores, in order.
fn latency_figures(a: &RollupAgg, full_singles: bool) -> Vec<f64> {
    match a.latency_count {
        0 => vec![],
        n if stores_full(n, full_singles) => vec![a.latency_min, a.latency_max, a.latency_sum],
        _ => vec![a.latency_min],
    }
}

/// True when a one-latency aggregate is exactly what adding that latency
/// gives, so the value alone restores it.
fn single_is_plain(a: &RollupAgg) -> bool {
    let mut s = crate::sketch::LatencySketch::new();
    s.add(a.latency_min);
    a.latency_min.to_bits() == a.latency_max.to_bits()
        && a.latency_min.to_bits() == a.latency_sum.to_bits()
        && s == a.sketch
}

fn put_latency(out: &mut Vec<u8>, v: f64, scale: Option<f64>) {
    match scale {
        Some(s) => put_ivarint(out, (v * s).round() as i64),
        None => out.extend_from_slice(&v.to_le_bytes()),
    }
}

fn put_aggs<'r>(
    out: &mut Vec<u8>,
    aggs: impl Iterator<Item = &'r RollupAgg> + Clone,
    scale: Option<f64>,
    full_singles: bool,
) {
    for a in aggs.clone() {
        put_uvarint(out, a.count);
    }
    for a in aggs.clone() {
        put_uvarint(out, a.errors);
    }
    for a in aggs.clone() {
        put_uvarint(out, a.latency_count);
    }
    for a in aggs.clone() {
        for v in latency_figures(a, full_singles) {
            put_latency(out, v, scale);
        }
    }
    for a in aggs.filter(|a| stores_full(a.latency_count, full_singles)) {
        a.sketch.encode(out);
    }
}

/// The rollup section's bytes (before compression).
pub fn encode_rollups(r: &Rollups) -> Vec<u8> {
    // One-latency rows store only their value. If any is not what adding
    // that value gives (a -0.0 latency sums to +0.0; or a table not made by
    // `RollupBuilder`), a flag makes every row store its figures in full.
    let aggs = r
        .by_minute
        .iter()
        .map(|(_, a)| a)
        .chain(r.by_route.iter().map(|(_, a)| a));
    let full_singles = !aggs
        .clone()
        .filter(|a| a.latency_count == 1)
        .all(single_is_plain);
    let figures: Vec<f64> = aggs
        .flat_map(|a| latency_figures(a, full_singles))
        .collect();
    let decimals = scale_for(&figures);
    let scale = decimals.map(|d| 10f64.powi(i32::from(d)));

    let mut table = StringTable::default();
    let mut body = Vec::new();
    body.push(decimals.unwrap_or(RAW_LATENCIES));
    body.push(u8::from(full_singles));

    put_uvarint(&mut body, r.by_minute.len() as u64);
    let mut prev = 0i64;
    for (k, _) in &r.by_minute {
        let m = k.minute.0.div_euclid(Micros::MINUTE);
        put_ivarint(&mut body, m.wrapping_sub(prev));
        prev = m;
    }
    let refs: Vec<(u64, u64)> = r
        .by_minute
        .iter()
        .map(|(k, _)| {
            (
                table.reference(k.service.as_deref()),
                table.reference(Some(&k.event_type)),
            )
        })
        .collect();
    refs.iter().for_each(|r| put_uvarint(&mut body, r.0));
    refs.iter().for_each(|r| put_uvarint(&mut body, r.1));
    body.extend(r.by_minute.iter().map(|(k, _)| k.status_class));
    put_aggs(
        &mut body,
        r.by_minute.iter().map(|(_, a)| a),
        scale,
        full_singles,
    );

    put_uvarint(&mut body, r.by_route.len() as u64);
    let refs: Vec<[u64; 3]> = r
        .by_route
        .iter()
        .map(|(k, _)| {
            [
                table.reference(k.service.as_deref()),
                table.reference(k.endpoint.as_deref()),
                table.reference(Some(&k.event_type)),
            ]
        })
        .collect();
    refs.iter().for_each(|r| put_uvarint(&mut body, r[0]));
    refs.iter().for_each(|r| put_uvarint(&mut body, r[1]));
    body.extend(
        r.by_route
            .iter()
            .map(|(k, _)| k.method.map_or(0, Method::code)),
    );
    refs.iter().for_each(|r| put_uvarint(&mut body, r[2]));
    body.extend(r.by_route.iter().map(|(k, _)| k.status_class));
    put_aggs(
        &mut body,
        r.by_route.iter().map(|(_, a)| a),
        scale,
        full_singles,
    );

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

fn get_ref(r: &mut Reader<'_>, strings: &[String]) -> Result<Option<String>> {
    let at = r.position();
    match r.uvarint("rollup string ref")? {
        0 => Ok(None),
        i => strings
            .get((i - 1) as usize)
            .cloned()
            .map(Some)
            .ok_or_else(|| bad("rollup string ref", at)),
    }
}

fn get_refs(r: &mut Reader<'_>, strings: &[String], n: usize) -> Result<Vec<Option<String>>> {
    (0..n).map(|_| get_ref(r, strings)).collect()
}

fn get_classes(r: &mut Reader<'_>, n: usize) -> Result<Vec<u8>> {
    let at = r.position();
    let c = r.take(n, "status classes")?;
    if c.iter().any(|&c| c > 5) {
        return Err(bad("status class", at));
    }
    Ok(c.to_vec())
}

fn get_latency(r: &mut Reader<'_>, scale: Option<f64>) -> Result<f64> {
    match scale {
        Some(s) => Ok(r.ivarint("latency")? as f64 / s),
        None => r.f64_le("latency"),
    }
}

/// Reads `n` aggregates.
fn get_aggs(
    r: &mut Reader<'_>,
    n: usize,
    scale: Option<f64>,
    full_singles: bool,
) -> Result<Vec<RollupAgg>> {
    let mut aggs: Vec<RollupAgg> = Vec::with_capacity(n);
    for _ in 0..n {
        let count = r.uvarint("rollup count")?;
        aggs.push(RollupAgg {
            count,
            ..RollupAgg::default()
        });
    }
    for a in aggs.iter_mut() {
        a.errors = r.uvarint("rollup errors")?;
    }
    for a in aggs.iter_mut() {
        let at = r.position();
        a.latency_count = r.uvarint("rollup latency count")?;
        if a.errors > a.count || a.latency_count > a.count || a.count == 0 {
            return Err(bad("rollup counts", at));
        }
    }
    for a in aggs.iter_mut() {
        if stores_full(a.latency_count, full_singles) {
            a.latency_min = get_latency(r, scale)?;
            a.latency_max = get_latency(r, scale)?;
            a.latency_sum = get_latency(r, scale)?;
        } else if a.latency_count == 1 {
            let v = get_latency(r, scale)?;
            (a.latency_min, a.latency_max, a.latency_sum) = (v, v, v);
            a.sketch.add(v);
        }
    }
    for a in aggs
        .iter_mut()
        .filter(|a| stores_full(a.latency_count, full_singles))
    {
        a.sketch = crate::sketch::LatencySketch::decode(r)?;
    }
    Ok(aggs)
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
    let at = r.position();
    let scale = match r.u8("latency scale")? {
        RAW_LATENCIES => None,
        d if d <= 6 => Some(10f64.powi(i32::from(d))),
        _ => return Err(bad("latency scale", at)),
    };
    let at = r.position();
    let full_singles = match r.u8("full singles flag")? {
        0 => false,
        1 => true,
        _ => return Err(bad("full singles flag", at)),
    };

    let n = r.len_prefix("minute rows")?;
    let mut minutes = Vec::with_capacity(n);
    let mut prev = 0i64;
    for _ in 0..n {
        let at = r.position();
        prev = prev.wrapping_add(r.ivarint("minute delta")?);
        minutes.push(
            prev.checked_mul(Micros::MINUTE)
                .ok_or_else(|| bad("minute", at))?,
        );
    }
    let services = get_refs(&mut r, &strings, n)?;
    let types = get_refs(&mut r, &strings, n)?;
    let classes = get_classes(&mut r, n)?;
    let aggs = get_aggs(&mut r, n, scale, full_singles)?;
    let mut by_minute = Vec::with_capacity(n);
    for ((((minute, service), et), class), agg) in minutes
        .into_iter()
        .zip(services)
        .zip(types)
        .zip(classes)
        .zip(aggs)
    {
        let key = MinuteKey {
            minute: Micros(minute),
            service,
            event_type: et.ok_or_else(|| bad("minute event type", 0))?,
            status_class: class,
        };
        by_minute.push((key, agg));
    }

    let n = r.len_prefix("route rows")?;
    let services = get_refs(&mut r, &strings, n)?;
    let endpoints = get_refs(&mut r, &strings, n)?;
    let at = r.position();
    let methods = r
        .take(n, "route methods")?
        .iter()
        .map(|&c| match c {
            0 => Ok(None),
            c => Method::from_code(c)
                .map(Some)
                .ok_or_else(|| bad("route method", at)),
        })
        .collect::<Result<Vec<_>>>()?;
    let types = get_refs(&mut r, &strings, n)?;
    let classes = get_classes(&mut r, n)?;
    let aggs = get_aggs(&mut r, n, scale, full_singles)?;
    let mut by_route = Vec::with_capacity(n);
    for (((((service, endpoint), method), et), class), agg) in services
        .into_iter()
        .zip(endpoints)
        .zip(methods)
        .zip(types)
        .zip(classes)
        .zip(aggs)
    {
        let key = RouteKey {
            service,
            endpoint,
            method,
            event_type: et.ok_or_else(|| bad("route event type", 0))?,
            status_class: class,
        };
        by_route.push((key, agg));
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

    /// A chunk's columns from generated rows: (minute-ish time, service,
    /// endpoint, method code, event type, status, latency).
    type GenRow = (i64, u8, u8, u8, u8, i64, Option<u16>);

    fn dict_col(values: &[Option<String>]) -> StrColumn {
        let mut dict: Vec<String> = Vec::new();
        let codes = values
            .iter()
            .map(|v| match v {
                None => crate::column::NULL_CODE,
                Some(s) => match dict.iter().position(|d| d == s) {
                    Some(i) => i as u32,
                    None => {
                        dict.push(s.clone());
                        (dict.len() - 1) as u32
                    }
                },
            })
            .collect();
        StrColumn {
            dict: std::sync::Arc::new(dict),
            codes,
        }
    }

    proptest::proptest! {
        /// Adding a chunk through its codes gives exactly the tables of
        /// adding its rows one by one (same order, so even inexact sums).
        #[test]
        fn add_chunk_equals_adding_rows(rows in proptest::collection::vec(
            (0i64..400, 0u8..4, 0u8..4, 0u8..12, 0u8..4, -1i64..4, proptest::option::of(0u16..2000)),
            1..300,
        )) {
            let services = [None, Some("auth"), Some("pay"), Some("")];
            let endpoints = [None, Some("/a"), Some("/b/{id}"), Some("/c")];
            let types = [None, Some("api_call"), Some("error"), Some("user_action")];
            let statuses = [crate::column::NULL_INT, 200, 404, 503, 99];
            let ts: Vec<i64> = rows.iter().map(|r: &GenRow| r.0 * 1_000_000).collect();
            let svc = dict_col(&rows.iter().map(|r| services[r.1 as usize].map(str::to_owned)).collect::<Vec<_>>());
            let ep = dict_col(&rows.iter().map(|r| endpoints[r.2 as usize].map(str::to_owned)).collect::<Vec<_>>());
            let et = dict_col(&rows.iter().map(|r| types[r.4 as usize].map(str::to_owned)).collect::<Vec<_>>());
            let method: Vec<i64> = rows.iter().map(|r| i64::from(r.3)).collect();
            let status: Vec<i64> = rows.iter().map(|r| statuses[(r.5 + 1) as usize]).collect();
            // Quarter-millisecond steps are exact; thirds are not.
            let latency: Vec<f64> = rows
                .iter()
                .map(|r| r.6.map_or(f64::NAN, |l| if l % 3 == 0 { f64::from(l) / 3.0 } else { f64::from(l) / 4.0 }))
                .collect();
            let mut by_chunk = RollupBuilder::default();
            by_chunk.add_chunk(&ChunkColumns {
                timestamp: &ts,
                service: &svc,
                endpoint: &ep,
                event_type: &et,
                method: &method,
                status: &status,
                latency: &latency,
            });
            let mut by_row = RollupBuilder::default();
            for i in 0..rows.len() {
                by_row.add(&RollupRow {
                    timestamp: ts[i],
                    service: svc.get(i),
                    endpoint: ep.get(i),
                    method: u8::try_from(method[i]).ok().and_then(Method::from_code),
                    event_type: et.get(i).unwrap_or(""),
                    status: u16::try_from(status[i]).ok(),
                    latency: Some(latency[i]).filter(|l| !l.is_nan()),
                });
            }
            let (a, b) = (by_chunk.finish(), by_row.finish());
            let same = |x: &RollupAgg, y: &RollupAgg| {
                x.count == y.count
                    && x.errors == y.errors
                    && x.latency_count == y.latency_count
                    && x.latency_sum.to_bits() == y.latency_sum.to_bits()
                    && (x.latency_count == 0
                        || (x.latency_min == y.latency_min && x.latency_max == y.latency_max))
                    && x.sketch == y.sketch
            };
            proptest::prop_assert_eq!(a.by_minute.len(), b.by_minute.len());
            for ((ka, x), (kb, y)) in a.by_minute.iter().zip(&b.by_minute) {
                proptest::prop_assert_eq!(ka, kb);
                proptest::prop_assert!(same(x, y), "{ka:?}: {x:?} vs {y:?}");
            }
            proptest::prop_assert_eq!(a.by_route.len(), b.by_route.len());
            for ((ka, x), (kb, y)) in a.by_route.iter().zip(&b.by_route) {
                proptest::prop_assert_eq!(ka, kb);
                proptest::prop_assert!(same(x, y), "{ka:?}: {x:?} vs {y:?}");
            }
        }
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
