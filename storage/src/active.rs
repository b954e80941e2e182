//! Active segments: a tenant's not-yet-sealed rows, in memory, columnar.
//!
//! Rows are turned into columns at append time (strings interned into a
//! per-chunk dictionary), so a query reads them exactly like a sealed block.
//! Per partition, rows go to a mutable tail; every `CHUNK_ROWS` rows the tail
//! is frozen into an immutable `Chunk` shared by `Arc`. A query's snapshot is
//! the frozen chunks (pointer copies) plus a copy of the small tail, so a
//! reader holds the tenant's lock only for that copy and never blocks
//! appenders for long.
//!
//! This module owns no I/O and no locks; `store.rs` decides when to seal and
//! guards each tenant's `ActiveTenant` with its own mutex.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::column::{Column, ColumnKey, ColumnSet, ColumnStats, NULL_CODE, NULL_INT, StrColumn};
use crate::error::{Result, StorageError};
use crate::event::{AttrValue, Event};
use crate::query::hash::{FxHashMap, SeededHash};
use crate::rollup::{MinuteKey, RollupAgg, Rollups, status_class};
use crate::scan::ScanUnit;
use crate::types::{Micros, PartitionStart, TenantId};

/// Rows per frozen chunk (one block of an active unit). Small enough that
/// copying the tail for a snapshot is cheap (tens of µs); large enough that
/// a query's per-block overhead stays negligible.
pub const CHUNK_ROWS: usize = 8192;

/// Memory charged per row slot before strings: 8 ints, 1 float, 7 string
/// codes. Charged per slot of capacity, not per row: the columns grow by
/// doubling, and a tail of 5,000 rows holds room for 8,192.
const FIXED_ROW_BYTES: usize = 8 * 8 + 8 + 7 * 4;
/// Memory charged once per tail (later the chunk made from it) besides its
/// rows: the tail's own struct (~1.3 KB of vectors, builders and maps), the
/// frozen chunk's column map with an `Arc` per column (~2 KB) and the
/// partition's map entry. With a day's backfill over 50 tenants there are
/// over a thousand partitions, so this is tens of MB.
const CHUNK_OVERHEAD_BYTES: usize = 4096;
/// Memory charged per distinct string on top of its bytes (String header,
/// hash-index entry).
const STRING_OVERHEAD_BYTES: usize = 40;

/// An immutable run of rows of one partition.
#[derive(Debug)]
pub struct Chunk {
    /// Every core column plus the attribute columns seen in the chunk.
    pub set: ColumnSet,
    pub min_ts: Micros,
    pub max_ts: Micros,
    pub bytes: usize,
    /// True for chunks that never change again (full chunks, and tails
    /// frozen for sealing); false for a snapshot's copy of the live tail,
    /// which is rebuilt on the next append and so is not worth summarising.
    pub frozen: bool,
    /// The whole-chunk pre-aggregate (`ScanUnit::block_summary`), built on
    /// first use by a query and then shared by every later snapshot.
    pub summary: OnceLock<Arc<Rollups>>,
}

impl Chunk {
    /// The chunk's rows aggregated by (service, event_type, status class),
    /// every key carrying the chunk's first minute. A chunk of 8,192 rows
    /// of the generated data has about a hundred such groups, so a query
    /// that needs nothing finer folds ~80x fewer rows in.
    pub fn summary(&self) -> Arc<Rollups> {
        self.summary
            .get_or_init(|| Arc::new(self.build_summary()))
            .clone()
    }

    fn build_summary(&self) -> Rollups {
        let rows = self.set.rows;
        let str_col = |k: &ColumnKey| match self.set.get(k) {
            Some(Column::Str(c)) if c.codes.len() == rows => Some(c),
            _ => None,
        };
        let (types, services) = (str_col(&ColumnKey::EventType), str_col(&ColumnKey::Service));
        let status = match self.set.get(&ColumnKey::StatusCode) {
            Some(Column::Int(v)) if v.len() == rows => Some(v),
            _ => None,
        };
        let latency = match self.set.get(&ColumnKey::LatencyMs) {
            Some(Column::Float(v)) if v.len() == rows => Some(v),
            _ => None,
        };
        let code_of = |c: Option<&StrColumn>, r: usize| c.map_or(NULL_CODE, |c| c.codes[r]);
        fn str_of(c: Option<&StrColumn>, code: u32) -> Option<&str> {
            c.and_then(|c| c.dict.get(code as usize))
                .map(String::as_str)
        }
        // Keyed by dictionary codes: one hash of three small ints per row,
        // strings are only looked at once per group.
        let mut groups: FxHashMap<(u32, u32, u8), RollupAgg> = FxHashMap::default();
        for r in 0..rows {
            let (t, sv) = (code_of(types, r), code_of(services, r));
            let code = status.map_or(NULL_INT, |v| v[r]);
            let status_code = u16::try_from(code).ok();
            let event_type = str_of(types, t).unwrap_or("");
            let err = crate::event::is_error(status_code, event_type);
            let key = (t, sv, status_class(status_code));
            groups
                .entry(key)
                .or_default()
                .add(latency.map(|v| v[r]), err);
        }
        let minute = self.min_ts.floor_to(Micros::MINUTE);
        let mut by_minute: Vec<(MinuteKey, RollupAgg)> = groups
            .into_iter()
            .map(|((t, sv, class), agg)| {
                let key = MinuteKey {
                    minute,
                    service: str_of(services, sv).map(str::to_owned),
                    event_type: str_of(types, t).unwrap_or("").to_owned(),
                    status_class: class,
                };
                (key, agg)
            })
            .collect();
        by_minute.sort_by(|a, b| a.0.cmp(&b.0));
        Rollups {
            by_minute,
            by_route: Vec::new(),
        }
    }
}

/// Hashes a `u64` that already is a (keyed) hash: identity.
#[derive(Default, Clone, Copy)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed; fold anything else in for completeness.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type HashIndex = HashMap<u64, u32, BuildHasherDefault<PreHashed>>;

#[derive(Default, Clone)]
struct StrBuilder {
    /// Seeded hash of the value → code. Keeps no copy of the string: the
    /// dictionary is the only one.
    index: HashIndex,
    /// Values whose hash is taken by a different value (rare without the
    /// key; a SipHash map, so even crafted collisions stay cheap).
    collided: HashMap<String, u32>,
    keys: SeededHash,
    dict: Vec<String>,
    codes: Vec<u32>,
    /// For columns whose values are nearly all distinct (trace ids,
    /// messages): append without deduplicating, which saves a hash and an
    /// allocation per row and costs nothing in size (the segment writer
    /// builds its own dictionary). Dictionaries may then repeat a value,
    /// which `StrColumn` allows.
    unique: bool,
}

impl StrBuilder {
    fn unique() -> StrBuilder {
        StrBuilder {
            unique: true,
            ..StrBuilder::default()
        }
    }

    /// Returns the bytes newly charged.
    fn push(&mut self, s: Option<&str>) -> usize {
        let Some(s) = s else {
            self.codes.push(NULL_CODE);
            return 0;
        };
        let new = self.dict.len() as u32;
        let c = if self.unique {
            new
        } else {
            let h = self.keys.hash_one(s);
            match self.index.get(&h) {
                Some(&c) if self.dict[c as usize] == s => c,
                Some(_) => *self.collided.entry(s.to_owned()).or_insert(new),
                None => {
                    self.index.insert(h, new);
                    new
                }
            }
        };
        self.codes.push(c);
        if c == new {
            self.dict.push(s.to_owned());
            s.len() + STRING_OVERHEAD_BYTES
        } else {
            0
        }
    }
    fn pad(&mut self, rows: usize) {
        self.codes.resize(rows, NULL_CODE);
    }
    /// A copy without the index (for snapshots).
    fn data_copy(&self) -> StrBuilder {
        StrBuilder {
            index: HashIndex::default(),
            collided: HashMap::new(),
            keys: self.keys,
            dict: self.dict.clone(),
            codes: self.codes.clone(),
            unique: self.unique,
        }
    }
    fn into_column(self) -> Column {
        Column::Str(StrColumn {
            dict: Arc::new(self.dict),
            codes: self.codes,
        })
    }
}

#[derive(Clone)]
enum AttrCol {
    Str(StrBuilder),
    Num(Vec<f64>),
    Bool(Vec<i64>),
}

impl AttrCol {
    fn pad(&mut self, rows: usize) {
        match self {
            AttrCol::Str(s) => s.pad(rows),
            AttrCol::Num(v) => v.resize(rows, f64::NAN),
            AttrCol::Bool(v) => v.resize(rows, NULL_INT),
        }
    }
    fn data_copy(&self) -> AttrCol {
        match self {
            AttrCol::Str(s) => AttrCol::Str(s.data_copy()),
            other => other.clone(),
        }
    }
    fn into_column(self) -> Column {
        match self {
            AttrCol::Str(s) => s.into_column(),
            AttrCol::Num(v) => Column::Float(v),
            AttrCol::Bool(v) => Column::Int(v),
        }
    }
}

/// The mutable tail of a partition.
struct Tail {
    rows: usize,
    bytes: usize,
    /// Row slots charged so far (the fixed columns' capacity).
    charged_slots: usize,
    min_ts: i64,
    max_ts: i64,
    ts: Vec<i64>,
    seq: Vec<i64>,
    recv: Vec<i64>,
    method: Vec<i64>,
    status: Vec<i64>,
    severity: Vec<i64>,
    req_bytes: Vec<i64>,
    resp_bytes: Vec<i64>,
    latency: Vec<f64>,
    event_type: StrBuilder,
    service: StrBuilder,
    endpoint: StrBuilder,
    user_id: StrBuilder,
    region: StrBuilder,
    trace_id: StrBuilder,
    message: StrBuilder,
    /// Attribute columns by (key, kind): separate maps so lookups by `&str`
    /// need no allocation.
    attr_str: HashMap<String, AttrCol, SeededHash>,
    attr_num: HashMap<String, AttrCol, SeededHash>,
    attr_bool: HashMap<String, AttrCol, SeededHash>,
}

impl Default for Tail {
    fn default() -> Tail {
        Tail {
            rows: 0,
            bytes: 0,
            charged_slots: 0,
            min_ts: 0,
            max_ts: 0,
            ts: Vec::new(),
            seq: Vec::new(),
            recv: Vec::new(),
            method: Vec::new(),
            status: Vec::new(),
            severity: Vec::new(),
            req_bytes: Vec::new(),
            resp_bytes: Vec::new(),
            latency: Vec::new(),
            event_type: StrBuilder::default(),
            service: StrBuilder::default(),
            endpoint: StrBuilder::default(),
            user_id: StrBuilder::default(),
            region: StrBuilder::default(),
            trace_id: StrBuilder::unique(),
            message: StrBuilder::unique(),
            attr_str: HashMap::default(),
            attr_num: HashMap::default(),
            attr_bool: HashMap::default(),
        }
    }
}

fn opt_int(v: Option<u64>) -> i64 {
    v.map_or(NULL_INT, |x| x.min(i64::MAX as u64) as i64)
}

impl Tail {
    fn push(&mut self, e: &Event, seq: u64) -> usize {
        let row = self.rows;
        let ts = e.timestamp.0;
        if row == 0 {
            self.min_ts = ts;
            self.max_ts = ts;
        } else {
            self.min_ts = self.min_ts.min(ts);
            self.max_ts = self.max_ts.max(ts);
        }
        self.ts.push(ts);
        self.seq.push(seq.min(i64::MAX as u64) as i64);
        self.recv.push(e.received_at.0);
        self.method
            .push(e.method.map_or(NULL_INT, |m| i64::from(m.code())));
        self.status.push(e.status_code.map_or(NULL_INT, i64::from));
        self.severity
            .push(e.severity.map_or(NULL_INT, |s| i64::from(s.code())));
        self.req_bytes.push(opt_int(e.request_bytes));
        self.resp_bytes.push(opt_int(e.response_bytes));
        self.latency.push(e.latency_ms.unwrap_or(f64::NAN));
        let mut bytes = if row == 0 { CHUNK_OVERHEAD_BYTES } else { 0 };
        // The fixed columns grow together; `ts` stands for all of them.
        let slots = self.ts.capacity();
        if slots > self.charged_slots {
            bytes += (slots - self.charged_slots) * FIXED_ROW_BYTES;
            self.charged_slots = slots;
        }
        bytes += self.event_type.push(Some(&e.event_type));
        bytes += self.service.push(e.service.as_deref());
        bytes += self.endpoint.push(e.endpoint.as_deref());
        bytes += self.user_id.push(e.user_id.as_deref());
        bytes += self.region.push(e.region.as_deref());
        bytes += self.trace_id.push(e.trace_id.as_deref());
        bytes += self.message.push(e.message.as_deref());
        for (k, v) in &e.attributes {
            let map = match v {
                AttrValue::Str(_) => &mut self.attr_str,
                AttrValue::Num(_) => &mut self.attr_num,
                AttrValue::Bool(_) => &mut self.attr_bool,
            };
            let col = match map.get_mut(k.as_str()) {
                Some(c) => c,
                None => {
                    bytes += k.len() + STRING_OVERHEAD_BYTES;
                    map.entry(k.clone()).or_insert_with(|| match v {
                        AttrValue::Str(_) => AttrCol::Str(StrBuilder::default()),
                        AttrValue::Num(_) => AttrCol::Num(Vec::new()),
                        AttrValue::Bool(_) => AttrCol::Bool(Vec::new()),
                    })
                }
            };
            col.pad(row);
            match (col, v) {
                (AttrCol::Str(s), AttrValue::Str(x)) => bytes += 4 + s.push(Some(x)),
                (AttrCol::Num(n), AttrValue::Num(x)) => {
                    n.push(*x);
                    bytes += 8;
                }
                (AttrCol::Bool(b), AttrValue::Bool(x)) => {
                    b.push(i64::from(*x));
                    bytes += 8;
                }
                _ => unreachable!("BUG: attribute map chosen by value kind"),
            }
        }
        self.rows += 1;
        self.bytes += bytes;
        bytes
    }

    /// A copy of the data (no indexes) to freeze for a snapshot.
    fn data_copy(&self) -> Tail {
        let copy_attrs = |m: &HashMap<String, AttrCol, SeededHash>| {
            m.iter()
                .map(|(k, c)| (k.clone(), c.data_copy()))
                .collect::<HashMap<_, _, SeededHash>>()
        };
        Tail {
            rows: self.rows,
            bytes: self.bytes,
            charged_slots: self.charged_slots,
            min_ts: self.min_ts,
            max_ts: self.max_ts,
            ts: self.ts.clone(),
            seq: self.seq.clone(),
            recv: self.recv.clone(),
            method: self.method.clone(),
            status: self.status.clone(),
            severity: self.severity.clone(),
            req_bytes: self.req_bytes.clone(),
            resp_bytes: self.resp_bytes.clone(),
            latency: self.latency.clone(),
            event_type: self.event_type.data_copy(),
            service: self.service.data_copy(),
            endpoint: self.endpoint.data_copy(),
            user_id: self.user_id.data_copy(),
            region: self.region.data_copy(),
            trace_id: self.trace_id.data_copy(),
            message: self.message.data_copy(),
            attr_str: copy_attrs(&self.attr_str),
            attr_num: copy_attrs(&self.attr_num),
            attr_bool: copy_attrs(&self.attr_bool),
        }
    }

    fn into_chunk(self, frozen: bool) -> Chunk {
        let rows = self.rows;
        let mut columns: HashMap<ColumnKey, Arc<Column>> = HashMap::with_capacity(24);
        let mut put = |k: ColumnKey, c: Column| {
            columns.insert(k, Arc::new(c));
        };
        put(ColumnKey::Timestamp, Column::Int(self.ts));
        put(ColumnKey::Seq, Column::Int(self.seq));
        put(ColumnKey::ReceivedAt, Column::Int(self.recv));
        put(ColumnKey::EventType, self.event_type.into_column());
        put(ColumnKey::Service, self.service.into_column());
        put(ColumnKey::Endpoint, self.endpoint.into_column());
        put(ColumnKey::Method, Column::Int(self.method));
        put(ColumnKey::StatusCode, Column::Int(self.status));
        put(ColumnKey::LatencyMs, Column::Float(self.latency));
        put(ColumnKey::Severity, Column::Int(self.severity));
        put(ColumnKey::RequestBytes, Column::Int(self.req_bytes));
        put(ColumnKey::ResponseBytes, Column::Int(self.resp_bytes));
        put(ColumnKey::UserId, self.user_id.into_column());
        put(ColumnKey::Region, self.region.into_column());
        put(ColumnKey::TraceId, self.trace_id.into_column());
        put(ColumnKey::Message, self.message.into_column());
        for (maker, map) in [
            (ColumnKey::AttrStr as fn(String) -> ColumnKey, self.attr_str),
            (ColumnKey::AttrNum, self.attr_num),
            (ColumnKey::AttrBool, self.attr_bool),
        ] {
            for (k, mut c) in map {
                c.pad(rows);
                put(maker(k), c.into_column());
            }
        }
        Chunk {
            set: ColumnSet { rows, columns },
            min_ts: Micros(self.min_ts),
            max_ts: Micros(self.max_ts),
            bytes: self.bytes,
            frozen,
            summary: OnceLock::new(),
        }
    }
}

/// One partition's active rows.
#[derive(Default)]
struct PartitionBuf {
    chunks: Vec<Arc<Chunk>>,
    tail: Tail,
    /// Frozen copy of the tail as of its current row count, reused by
    /// snapshots until the next append.
    tail_cache: Option<Arc<Chunk>>,
}

impl PartitionBuf {
    fn rows(&self) -> usize {
        self.chunks.iter().map(|c| c.set.rows).sum::<usize>() + self.tail.rows
    }
    /// Freezes the tail into a chunk. With `summarize` the chunk's summary
    /// is built now and charged (returns the bytes it adds): a full chunk
    /// stays in memory until sealed and every query over it wants the
    /// summary. A tail frozen for sealing is gone soon; its summary is built
    /// only if a query asks meanwhile.
    fn freeze_tail(&mut self, summarize: bool) -> usize {
        if self.tail.rows == 0 {
            return 0;
        }
        let tail = std::mem::take(&mut self.tail);
        let mut chunk = tail.into_chunk(true);
        let mut added = 0;
        if summarize {
            let summary = chunk.summary();
            added = summary.heap_bytes() + std::mem::size_of::<Arc<Rollups>>();
            chunk.bytes += added;
        }
        self.chunks.push(Arc::new(chunk));
        self.tail_cache = None;
        added
    }
    fn snapshot_chunks(&mut self) -> Vec<Arc<Chunk>> {
        let mut out = self.chunks.clone();
        if self.tail.rows > 0 {
            let cached = self
                .tail_cache
                .get_or_insert_with(|| Arc::new(self.tail.data_copy().into_chunk(false)));
            out.push(cached.clone());
        }
        out
    }
}

/// A tenant's active rows, by partition.
#[derive(Default)]
pub struct ActiveTenant {
    partitions: BTreeMap<i64, PartitionBuf>,
    rows: usize,
    bytes: usize,
    /// When the oldest row now held arrived (for sealing by age).
    since: Option<Instant>,
}

/// Rows taken out for sealing: per partition, its chunks.
pub type Frozen = Vec<(PartitionStart, Vec<Arc<Chunk>>)>;

impl ActiveTenant {
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn bytes(&self) -> usize {
        self.bytes
    }
    pub fn partitions(&self) -> usize {
        self.partitions.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }
    pub fn since(&self) -> Option<Instant> {
        self.since
    }
    /// Start (micros) of every partition with rows.
    pub fn partition_keys(&self) -> impl Iterator<Item = i64> + '_ {
        self.partitions.keys().copied()
    }

    /// Adds a batch whose first event got sequence number `first_seq`.
    /// Returns the bytes charged. Timestamps must already be validated
    /// (`floor_to` must not overflow).
    pub fn insert(&mut self, events: &[Event], first_seq: u64, partition_micros: i64) -> usize {
        let mut added = 0;
        let mut cur_key = i64::MIN;
        let mut cur: Option<&mut PartitionBuf> = None;
        for (i, e) in events.iter().enumerate() {
            let key = e.timestamp.floor_to(partition_micros).0;
            if cur.is_none() || key != cur_key {
                cur_key = key;
                cur = Some(self.partitions.entry(key).or_default());
            }
            let Some(p) = cur.as_deref_mut() else {
                unreachable!("BUG: partition just set")
            };
            added += p.tail.push(e, first_seq + i as u64);
            p.tail_cache = None;
            if p.tail.rows >= CHUNK_ROWS {
                added += p.freeze_tail(true);
            }
        }
        if !events.is_empty() && self.since.is_none() {
            self.since = Some(Instant::now());
        }
        self.rows += events.len();
        self.bytes += added;
        added
    }

    /// Takes every row out (for sealing or dropping); returns them per partition.
    pub fn take_all(&mut self) -> Frozen {
        let parts = std::mem::take(&mut self.partitions);
        self.rows = 0;
        self.bytes = 0;
        self.since = None;
        parts
            .into_iter()
            .map(|(k, mut p)| {
                p.freeze_tail(false);
                (PartitionStart(Micros(k)), p.chunks)
            })
            .collect()
    }

    /// Puts rows taken by `take_all` back in front (a seal that failed).
    pub fn restore(&mut self, frozen: Frozen) {
        for (p, chunks) in frozen {
            let buf = self.partitions.entry(p.0.0).or_default();
            for c in &chunks {
                self.rows += c.set.rows;
                self.bytes += c.bytes;
            }
            let mut all = chunks;
            all.append(&mut buf.chunks);
            buf.chunks = all;
        }
        if self.rows > 0 && self.since.is_none() {
            self.since = Some(Instant::now());
        }
    }

    /// Drops partitions that start before `cutoff_start`; returns how many.
    pub fn drop_partitions_before(&mut self, cutoff_start: i64) -> usize {
        let keep = self.partitions.split_off(&cutoff_start);
        let dropped = std::mem::replace(&mut self.partitions, keep);
        for p in dropped.values() {
            self.rows -= p.rows();
            self.bytes -= p.chunks.iter().map(|c| c.bytes).sum::<usize>() + p.tail.bytes;
        }
        if self.rows == 0 {
            self.since = None;
        }
        dropped.len()
    }

    /// Scan units over the rows now held, one per partition overlapping
    /// `[from, to)`.
    pub fn snapshot(
        &mut self,
        tenant: &TenantId,
        from: Micros,
        to: Micros,
        partition_micros: i64,
    ) -> Vec<Arc<dyn ScanUnit>> {
        let lo = from.0.saturating_sub(partition_micros.saturating_sub(1));
        let mut out: Vec<Arc<dyn ScanUnit>> = Vec::new();
        for (&k, p) in self.partitions.range_mut(lo..) {
            if k >= to.0 {
                break;
            }
            if let Some(u) = ActiveUnit::new(
                tenant.clone(),
                PartitionStart(Micros(k)),
                p.snapshot_chunks(),
                "active",
            ) {
                out.push(Arc::new(u));
            }
        }
        out
    }
}

/// A scan unit over frozen chunks (a snapshot of an active segment, or rows
/// being sealed).
pub struct ActiveUnit {
    tenant: TenantId,
    partition: PartitionStart,
    chunks: Vec<Arc<Chunk>>,
    rows: u64,
    min_ts: Micros,
    max_ts: Micros,
    attr_keys: Vec<ColumnKey>,
    what: &'static str,
}

impl ActiveUnit {
    /// `None` when there are no rows (empty units are never handed out).
    pub fn new(
        tenant: TenantId,
        partition: PartitionStart,
        chunks: Vec<Arc<Chunk>>,
        what: &'static str,
    ) -> Option<ActiveUnit> {
        let chunks: Vec<Arc<Chunk>> = chunks.into_iter().filter(|c| c.set.rows > 0).collect();
        let rows = chunks.iter().map(|c| c.set.rows as u64).sum();
        let min_ts = chunks.iter().map(|c| c.min_ts).min()?;
        let max_ts = chunks.iter().map(|c| c.max_ts).max()?;
        let mut attr_keys: Vec<ColumnKey> = chunks
            .iter()
            .flat_map(|c| c.set.columns.keys())
            .filter(|k| {
                matches!(
                    k,
                    ColumnKey::AttrStr(_) | ColumnKey::AttrNum(_) | ColumnKey::AttrBool(_)
                )
            })
            .cloned()
            .collect();
        attr_keys.sort();
        attr_keys.dedup();
        Some(ActiveUnit {
            tenant,
            partition,
            chunks,
            rows,
            min_ts,
            max_ts,
            attr_keys,
            what,
        })
    }
    pub fn chunks(&self) -> &[Arc<Chunk>] {
        &self.chunks
    }
    pub fn partition(&self) -> PartitionStart {
        self.partition
    }
}

impl ScanUnit for ActiveUnit {
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn describe(&self) -> String {
        format!(
            "{} {}/{}",
            self.what,
            self.tenant,
            crate::paths::partition_dir_name(self.partition)
        )
    }
    fn time_range(&self) -> (Micros, Micros) {
        (self.min_ts, self.max_ts)
    }
    fn rows(&self) -> u64 {
        self.rows
    }
    fn block_count(&self) -> usize {
        self.chunks.len()
    }
    fn block_rows(&self, block: usize) -> usize {
        self.chunks.get(block).map_or(0, |c| c.set.rows)
    }
    fn block_time_range(&self, block: usize) -> (Micros, Micros) {
        self.chunks
            .get(block)
            .map_or((Micros::MAX, Micros::MIN), |c| (c.min_ts, c.max_ts))
    }
    fn column_stats(&self, _block: Option<usize>, _key: &ColumnKey) -> Option<ColumnStats> {
        // Not kept for rows in memory: the engine then reads the block.
        None
    }
    fn distinct_strings(&self, _key: &ColumnKey) -> Option<Vec<String>> {
        None
    }
    fn attribute_keys(&self) -> Vec<ColumnKey> {
        self.attr_keys.clone()
    }
    fn time_sorted(&self) -> bool {
        false
    }
    fn read(&self, block: usize, keys: &[ColumnKey]) -> Result<ColumnSet> {
        let chunk = self.chunks.get(block).ok_or_else(|| {
            StorageError::invalid("block", format!("{} has no block {block}", self.describe()))
        })?;
        let rows = chunk.set.rows;
        let mut columns = HashMap::with_capacity(keys.len());
        for k in keys {
            let col = match chunk.set.columns.get(k) {
                Some(c) => c.clone(),
                None => Arc::new(Column::nulls(k.kind(), rows)),
            };
            columns.insert(k.clone(), col);
        }
        Ok(ColumnSet { rows, columns })
    }
    fn rollups(&self) -> Result<Option<Arc<Rollups>>> {
        Ok(None)
    }
    fn block_summary(&self, block: usize) -> Option<Arc<Rollups>> {
        let chunk = self.chunks.get(block)?;
        chunk.frozen.then(|| chunk.summary())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::record::tests::sample_event;

    const HOUR: i64 = Micros::HOUR;

    #[test]
    fn rows_become_columns_visible_in_snapshots() {
        let t = TenantId::new("t1").unwrap();
        let mut a = ActiveTenant::default();
        let mut events: Vec<Event> = (0..(CHUNK_ROWS as u64 + 10)).map(sample_event).collect();
        // One late event, an hour earlier: its own partition.
        events[3].timestamp = Micros(events[3].timestamp.0 - HOUR);
        a.insert(&events, 100, HOUR);
        assert_eq!(a.rows(), events.len());
        assert_eq!(a.partitions(), 2);
        let units = a.snapshot(&t, Micros::MIN, Micros::MAX, HOUR);
        assert_eq!(units.len(), 2);
        let total: u64 = units.iter().map(|u| u.rows()).sum();
        assert_eq!(total, events.len() as u64);
        let late = &units[0];
        assert_eq!(late.rows(), 1);
        let set = late
            .read(
                0,
                &[
                    ColumnKey::Seq,
                    ColumnKey::Service,
                    ColumnKey::AttrStr("tier".into()),
                    ColumnKey::AttrStr("nope".into()),
                ],
            )
            .unwrap();
        assert_eq!(set.get(&ColumnKey::Seq), Some(&Column::Int(vec![103])));
        match set.get(&ColumnKey::Service) {
            Some(Column::Str(s)) => assert_eq!(s.get(0), Some("svc0")),
            other => panic!("{other:?}"),
        }
        match set.get(&ColumnKey::AttrStr("nope".into())) {
            Some(Column::Str(s)) => assert_eq!(s.get(0), None),
            other => panic!("{other:?}"),
        }
        let main = &units[1];
        assert_eq!(main.block_count(), 2, "one frozen chunk and the tail");
        assert!(
            main.attribute_keys()
                .contains(&ColumnKey::AttrBool("retry".into()))
        );
    }

    #[test]
    fn attributes_first_seen_late_are_padded_with_nulls() {
        let mut a = ActiveTenant::default();
        let mut events: Vec<Event> = (0..5).map(sample_event).collect();
        for e in &mut events[..3] {
            e.attributes.clear();
        }
        a.insert(&events, 1, HOUR);
        let frozen = a.take_all();
        let chunk = &frozen[0].1[0];
        match chunk.set.get(&ColumnKey::AttrNum("items".into())) {
            Some(Column::Float(v)) => {
                assert_eq!(v.len(), 5);
                assert!(v[0].is_nan() && v[2].is_nan());
                assert_eq!(v[3], 3.0);
            }
            other => panic!("{other:?}"),
        }
        assert!(a.is_empty());
        assert_eq!(chunk.set.columns.len(), 16 + 3);
    }

    #[test]
    fn restore_puts_rows_back_and_drop_removes_old_partitions() {
        let mut a = ActiveTenant::default();
        let events: Vec<Event> = (0..10).map(sample_event).collect();
        a.insert(&events, 1, HOUR);
        let bytes = a.bytes();
        let frozen = a.take_all();
        a.insert(&events[..2], 11, HOUR);
        a.restore(frozen);
        assert_eq!(a.rows(), 12);
        assert!(a.bytes() > bytes);
        let ts = events[0].timestamp.floor_to(HOUR).0;
        assert_eq!(a.drop_partitions_before(ts), 0);
        assert_eq!(a.drop_partitions_before(ts + HOUR), 1);
        assert!(a.is_empty());
        assert_eq!(a.bytes(), 0);
    }

    #[test]
    fn interning_dedups_except_for_unique_columns_and_survives_collisions() {
        let mut b = StrBuilder::default();
        for v in ["a", "b", "a", "a", "c", "b"] {
            b.push(Some(v));
        }
        b.push(None);
        // Force a "collision": point c's hash slot at a's code.
        let h = b.keys.hash_one("c");
        b.index.insert(h, 0);
        b.push(Some("c"));
        b.push(Some("c"));
        assert_eq!(b.dict, vec!["a", "b", "c", "c"]);
        assert_eq!(b.codes, vec![0, 1, 0, 0, 2, 1, NULL_CODE, 3, 3]);
        let mut u = StrBuilder::unique();
        for v in ["x", "y", "x"] {
            u.push(Some(v));
        }
        assert_eq!(u.dict, vec!["x", "y", "x"]);
        assert_eq!(u.codes, vec![0, 1, 2]);
    }

    /// Cells equal, floats to 1e-9 relative (sums add in another order).
    fn assert_same(a: &crate::query::QueryResult, b: &crate::query::QueryResult) {
        use crate::query::Value;
        assert_eq!(a.columns, b.columns);
        assert_eq!(a.rows.len(), b.rows.len());
        for (ra, rb) in a.rows.iter().zip(&b.rows) {
            for (x, y) in ra.iter().zip(rb) {
                match (x, y) {
                    (Value::Float(x), Value::Float(y)) => {
                        assert!((x - y).abs() <= 1e-9 * x.abs().max(1.0), "{ra:?} vs {rb:?}")
                    }
                    _ => assert_eq!(x, y, "{ra:?} vs {rb:?}"),
                }
            }
        }
    }

    #[test]
    fn chunk_summaries_answer_like_rows() {
        use crate::query::model::{AggOp, Aggregation, CmpOp, Field, Predicate, Query, Value};
        use crate::query::{TimeRange, engine, testing::MemUnit};
        let t = TenantId::new("t1").unwrap();
        let mut events: Vec<Event> = (0..(3 * CHUNK_ROWS as u64 + 500))
            .map(sample_event)
            .collect();
        for (i, e) in events.iter_mut().enumerate() {
            if i % 13 == 0 {
                e.status_code = None;
            }
            if i % 17 == 0 {
                e.latency_ms = None;
            }
            if i % 19 == 0 {
                e.service = None;
            }
        }
        let mut a = ActiveTenant::default();
        a.insert(&events, 1, HOUR);
        let units = a.snapshot(&t, Micros::MIN, Micros::MAX, HOUR);
        assert_eq!(units.len(), 1);
        let rows = vec![MemUnit::new(&t, events.clone(), CHUNK_ROWS, false).into_dyn()];
        let agg = |op, field: Option<Field>, alias: &str| Aggregation {
            op,
            field,
            alias: alias.into(),
        };
        let lat = || Some(Field::LatencyMs);
        let base = Query {
            tenants: vec![t.clone()],
            range: TimeRange {
                from: events[0].timestamp.floor_to(HOUR),
                to: Micros(events[0].timestamp.floor_to(HOUR).0 + HOUR),
            },
            filter: vec![],
            group_by: vec![Field::EventType, Field::Service, Field::StatusClass],
            interval: None,
            aggregations: vec![
                agg(AggOp::Count, None, "n"),
                agg(AggOp::ErrorRate, None, "err"),
                agg(AggOp::Avg, lat(), "avg"),
                agg(AggOp::Min, lat(), "min"),
                agg(AggOp::Max, lat(), "max"),
                agg(AggOp::Count, lat(), "with_latency"),
                agg(AggOp::P95, lat(), "p95"),
            ],
            order_by: vec![],
            limit: 10_000,
        };
        let mut totals = base.clone();
        totals.group_by.clear();
        let mut filtered = base.clone();
        filtered.group_by = vec![Field::Service];
        filtered.filter = vec![
            Predicate::In(Field::Service, vec![Value::Str("svc1".into())]),
            Predicate::Cmp(Field::StatusCode, CmpOp::Gte, 500.0),
        ];
        // Time buckets are finer than a summary: rows must answer.
        let mut series = base.clone();
        series.group_by = vec![Field::Service];
        series.interval = Some(Micros::SECOND);
        for q in [&base, &totals, &filtered, &series] {
            let got = engine::execute(&units, q).unwrap();
            let want = engine::execute(&rows, q).unwrap();
            assert!(!want.rows.is_empty());
            assert_same(&got, &want);
        }
        // The same chunks (and cached tail) the queries read.
        let chunks = a
            .partitions
            .values_mut()
            .map(|p| p.snapshot_chunks())
            .next()
            .unwrap();
        assert_eq!(chunks.len(), 4);
        assert!(
            chunks[..3]
                .iter()
                .all(|c| c.frozen && c.summary.get().is_some())
        );
        assert!(
            !chunks[3].frozen && chunks[3].summary.get().is_none(),
            "the live tail is read row by row"
        );
    }

    #[test]
    fn full_chunks_carry_their_summary_and_every_byte_is_charged_once() {
        let events: Vec<Event> = (0..(2 * CHUNK_ROWS as u64 + 10))
            .map(sample_event)
            .collect();
        let mut a = ActiveTenant::default();
        let charged = a.insert(&events, 1, HOUR);
        assert_eq!(charged, a.bytes());
        let mut summaries = 0;
        let mut full = 0;
        let mut held = 0;
        for p in a.partitions.values() {
            for c in &p.chunks {
                let s = c.summary.get().expect("built when the chunk was frozen");
                summaries += s.heap_bytes();
                full += 1;
                held += c.bytes;
            }
            held += p.tail.bytes;
        }
        assert_eq!(full, 2, "two full chunks; the 10-row tail is not frozen");
        assert!(summaries > 0);
        assert_eq!(
            held,
            a.bytes(),
            "the tenant's total is its chunks' and tails'"
        );
        // A seal takes out exactly what was charged, summaries included,
        // and a failed one puts it all back.
        let frozen = a.take_all();
        let taken: usize = frozen
            .iter()
            .flat_map(|(_, chunks)| chunks.iter().map(|c| c.bytes))
            .sum();
        assert_eq!(taken, charged);
        assert_eq!(a.bytes(), 0);
        a.restore(frozen);
        assert_eq!(a.bytes(), charged);
        assert_eq!(a.drop_partitions_before(i64::MAX), 1);
        assert_eq!(a.bytes(), 0);
    }

    #[test]
    fn a_tail_is_charged_for_the_room_it_holds() {
        let events: Vec<Event> = (0..5_000).map(sample_event).collect();
        let mut a = ActiveTenant::default();
        a.insert(&events, 1, HOUR);
        let p = a.partitions.values().next().unwrap();
        assert_eq!(p.tail.ts.capacity(), CHUNK_ROWS, "doubling growth");
        // Every slot of capacity, not only the 5,000 rows.
        assert!(a.bytes() >= CHUNK_ROWS * FIXED_ROW_BYTES + CHUNK_OVERHEAD_BYTES);
        assert!(a.bytes() < CHUNK_ROWS * FIXED_ROW_BYTES + CHUNK_OVERHEAD_BYTES + 5_000 * 400);
    }

    #[test]
    fn interning_distinct_values_does_not_collide() {
        let mut b = StrBuilder::default();
        for i in 0..20_000 {
            b.push(Some(&format!("u-{i:05}")));
        }
        assert_eq!(b.dict.len(), 20_000);
        assert!(b.collided.is_empty());
    }
}
