//! Measures sealed-segment size and speed on generated NDJSON events:
//!
//! ```text
//! python3 shared/data/gen_events.py --events 1000000 --seed 42 --out /tmp/ev1m.ndjson
//! cargo run --release -p pulsestream-storage --example segment_size -- /tmp/ev1m.ndjson [zstd_level]
//! ```
//!
//! Events are grouped per tenant and hour (one segment each, as compaction
//! leaves a partition). `seq` is the line number (arrival order) and
//! `received_at` the latest timestamp seen so far in the file, a stand-in
//! for the arrival time the server would stamp. Prints bytes per event in
//! total and per column, and write/read throughput.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::sync::Arc;
use std::time::Instant;

use pulsestream_storage::column::{Column, ColumnKey, ColumnSet, NULL_CODE, NULL_INT, StrColumn};
use pulsestream_storage::event::Method;
use pulsestream_storage::scan::ScanUnit;
use pulsestream_storage::segment::{SegmentReader, WriteOptions, write_segment};
use pulsestream_storage::types::{Micros, PartitionStart, SegmentId, TenantId};
use serde_json::Value;

/// Columns of one (tenant, hour) being filled.
#[derive(Default)]
struct Builder {
    rows: usize,
    ints: HashMap<ColumnKey, Vec<i64>>,
    floats: HashMap<ColumnKey, Vec<f64>>,
    strs: HashMap<ColumnKey, StrBuilder>,
}

/// A string column being filled: dictionary, its index, codes.
type StrBuilder = (Vec<String>, HashMap<String, u32>, Vec<u32>);

impl Builder {
    fn int(&mut self, k: ColumnKey, v: Option<i64>) {
        let rows = self.rows;
        let col = self.ints.entry(k).or_insert_with(|| vec![NULL_INT; rows]);
        col.push(v.unwrap_or(NULL_INT));
    }
    fn float(&mut self, k: ColumnKey, v: Option<f64>) {
        let rows = self.rows;
        let col = self.floats.entry(k).or_insert_with(|| vec![f64::NAN; rows]);
        col.push(v.unwrap_or(f64::NAN));
    }
    fn str(&mut self, k: ColumnKey, v: Option<&str>) {
        let rows = self.rows;
        let (dict, index, codes) = self
            .strs
            .entry(k)
            .or_insert_with(|| (Vec::new(), HashMap::new(), vec![NULL_CODE; rows]));
        let code = match v {
            None => NULL_CODE,
            Some(s) => *index.entry(s.to_owned()).or_insert_with(|| {
                dict.push(s.to_owned());
                (dict.len() - 1) as u32
            }),
        };
        codes.push(code);
    }
    /// Ends a row: columns this row did not touch get a null.
    fn end_row(&mut self) {
        self.rows += 1;
        let n = self.rows;
        self.ints
            .values_mut()
            .filter(|c| c.len() < n)
            .for_each(|c| c.push(NULL_INT));
        self.floats
            .values_mut()
            .filter(|c| c.len() < n)
            .for_each(|c| c.push(f64::NAN));
        self.strs
            .values_mut()
            .filter(|c| c.2.len() < n)
            .for_each(|c| c.2.push(NULL_CODE));
    }
    fn finish(self) -> ColumnSet {
        let mut columns: HashMap<ColumnKey, Arc<Column>> = HashMap::new();
        for (k, v) in self.ints {
            columns.insert(k, Arc::new(Column::Int(v)));
        }
        for (k, v) in self.floats {
            columns.insert(k, Arc::new(Column::Float(v)));
        }
        for (k, (dict, _, codes)) in self.strs {
            columns.insert(
                k,
                Arc::new(Column::Str(StrColumn {
                    dict: Arc::new(dict),
                    codes,
                })),
            );
        }
        ColumnSet {
            rows: self.rows,
            columns,
        }
    }
}

/// "2026-11-25T00:00:00.018362Z" -> micros since the epoch.
fn parse_ts(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut micros = 0i64;
    if b.get(19) == Some(&b'.') {
        let frac: String = s[20..].chars().take_while(|c| c.is_ascii_digit()).collect();
        micros = format!("{frac:0<6}")[..6].parse().ok()?;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + mi) * 60_000_000 + sec * 1_000_000 + micros)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .map(String::as_str)
        .unwrap_or("/tmp/ev1m.ndjson");
    let level: i32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let file = std::fs::File::open(path).expect("open the NDJSON file");
    let mut groups: BTreeMap<(String, i64), Builder> = BTreeMap::new();
    let mut received = i64::MIN;
    let mut events = 0u64;
    let mut ndjson_bytes = 0u64;
    for (seq, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.expect("read a line");
        ndjson_bytes += line.len() as u64 + 1;
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let Some(ts) = v["timestamp"].as_str().and_then(parse_ts) else {
            continue;
        };
        received = received.max(ts);
        let tenant = v["tenant"].as_str().unwrap_or("t000").to_owned();
        let b = groups
            .entry((tenant, Micros(ts).floor_to(Micros::HOUR).0))
            .or_default();
        let s = |k: &str| v[k].as_str();
        let i = |k: &str| v[k].as_i64();
        b.int(ColumnKey::Timestamp, Some(ts));
        b.int(ColumnKey::Seq, Some(seq as i64));
        b.int(ColumnKey::ReceivedAt, Some(received));
        b.str(ColumnKey::EventType, s("event_type"));
        b.str(ColumnKey::Service, s("service"));
        b.str(ColumnKey::Endpoint, s("endpoint"));
        b.int(
            ColumnKey::Method,
            s("method")
                .and_then(Method::parse)
                .map(|m| i64::from(m.code())),
        );
        b.int(ColumnKey::StatusCode, i("status_code"));
        b.float(ColumnKey::LatencyMs, v["latency_ms"].as_f64());
        b.int(ColumnKey::Severity, None);
        b.int(ColumnKey::RequestBytes, i("request_bytes"));
        b.int(ColumnKey::ResponseBytes, i("response_bytes"));
        b.str(ColumnKey::UserId, s("user_id"));
        b.str(ColumnKey::Region, s("region"));
        b.str(ColumnKey::TraceId, s("trace_id"));
        b.str(ColumnKey::Message, s("message"));
        if let Some(attrs) = v["attributes"].as_object() {
            for (k, a) in attrs {
                match a {
                    Value::String(x) => b.str(ColumnKey::AttrStr(k.clone()), Some(x)),
                    Value::Number(n) => b.float(ColumnKey::AttrNum(k.clone()), n.as_f64()),
                    Value::Bool(x) => b.int(ColumnKey::AttrBool(k.clone()), Some(i64::from(*x))),
                    _ => {}
                }
            }
        }
        b.end_row();
        events += 1;
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let opts = WriteOptions {
        block_rows: 1 << 16,
        zstd_level: level,
        threads: pulsestream_storage::segment::default_threads(),
        sealed_through: 0,
        level: 0,
    };
    let sets: Vec<((String, i64), ColumnSet)> =
        groups.into_iter().map(|(k, b)| (k, b.finish())).collect();
    let started = Instant::now();
    let mut files = Vec::new();
    let mut total_bytes = 0u64;
    for (n, ((tenant, hour), set)) in sets.iter().enumerate() {
        let p = dir.path().join(format!("{tenant}-{hour}.seg"));
        let tenant = TenantId::new(tenant).expect("tenant id");
        let s = write_segment(
            &p,
            SegmentId(n as u64),
            &tenant,
            PartitionStart(Micros(*hour)),
            std::slice::from_ref(set),
            &opts,
        )
        .expect("write segment");
        total_bytes += s.bytes;
        files.push(p);
    }
    let write_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut per_column: BTreeMap<String, (u64, BTreeMap<&'static str, u64>)> = BTreeMap::new();
    let (mut rollups, mut overhead, mut rows_read) = (0u64, 0u64, 0u64);
    for (n, p) in files.iter().enumerate() {
        let r = SegmentReader::open(p, SegmentId(n as u64)).expect("open segment");
        let keys = r.column_keys();
        for b in 0..r.block_count() {
            rows_read += r.read(b, &keys).expect("read block").rows as u64;
        }
        r.rollups().expect("rollups");
        let l = r.layout();
        for (k, bytes, enc) in l.columns {
            let e = per_column.entry(format!("{k:?}")).or_default();
            e.0 += bytes;
            *e.1.entry(enc).or_default() += 1;
        }
        rollups += l.rollups;
        overhead += l.overhead;
    }
    let read_s = started.elapsed().as_secs_f64();

    // One big segment: every hour of the busiest tenant (a seal of many
    // rows, or what compaction of a day would write).
    let mut by_tenant: HashMap<&str, Vec<ColumnSet>> = HashMap::new();
    for ((tenant, _), set) in &sets {
        by_tenant
            .entry(tenant.as_str())
            .or_default()
            .push(set.clone());
    }
    if let Some((tenant, chunks)) = by_tenant
        .into_iter()
        .max_by_key(|(_, c)| c.iter().map(|s| s.rows).sum::<usize>())
    {
        let rows: usize = chunks.iter().map(|s| s.rows).sum();
        let p = dir.path().join("big.seg");
        let started = Instant::now();
        let s = write_segment(
            &p,
            SegmentId(u64::MAX),
            &TenantId::new(tenant).expect("tenant"),
            PartitionStart(Micros(0)),
            &chunks,
            &opts,
        )
        .expect("write big segment");
        let secs = started.elapsed().as_secs_f64();
        let r = SegmentReader::open(&p, SegmentId(u64::MAX)).expect("open big segment");
        let keys = r.column_keys();
        let started = Instant::now();
        for b in 0..r.block_count() {
            r.read(b, &keys).expect("read block");
        }
        let read_secs = started.elapsed().as_secs_f64();
        let l = r.layout();
        println!(
            "one segment of tenant {tenant}'s {rows} rows: {:.2} B/event (rollups {:.2}, footer {:.2}); write {:.0} rows/s, read all columns {:.0} rows/s",
            s.bytes as f64 / rows as f64,
            l.rollups as f64 / rows as f64,
            l.overhead as f64 / rows as f64,
            rows as f64 / secs,
            rows as f64 / read_secs
        );
    }

    let per = |b: u64| b as f64 / events as f64;
    println!(
        "events {events}, segments {}, zstd level {level}",
        files.len()
    );
    println!(
        "NDJSON {:.1} B/event; segments {:.2} B/event ({} bytes)",
        per(ndjson_bytes),
        per(total_bytes),
        total_bytes
    );
    let mut cols: Vec<_> = per_column.into_iter().collect();
    cols.sort_by_key(|c| std::cmp::Reverse(c.1.0));
    for (k, (bytes, encs)) in cols {
        println!("  {k:<28} {:>6.2} B/event  {encs:?}", per(bytes));
    }
    println!("  {:<28} {:>6.2} B/event", "rollups", per(rollups));
    println!(
        "  {:<28} {:>6.2} B/event",
        "footer+header+trailer",
        per(overhead)
    );
    println!(
        "write: {:.0} events/s ({write_s:.2} s); read all columns + rollups: {:.0} events/s ({read_s:.2} s)",
        events as f64 / write_s,
        rows_read as f64 / read_s
    );
}
