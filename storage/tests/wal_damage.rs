//! Damage in WAL files costs only the damaged records: replay skips a record
//! whose checksum fails and resynchronises after a damaged length, cuts only
//! a torn tail, quarantines the file first, reports the damage (store and
//! `verify`, before and after the restart) and never issues a sequence
//! number twice.

use std::path::{Path, PathBuf};

use pulsestream_storage::query::{AggOp, Aggregation, Query, TimeRange, Value};
use pulsestream_storage::wal::{WAL_HEADER_BYTES, decode_record};
use pulsestream_storage::{DamageKind, Event, Micros, Store, StoreConfig, TenantId};

/// 2026-11-25T10:00:00Z
const T0: i64 = 1_795_600_800 * Micros::SECOND;
const BATCHES: usize = 20;
const PER_BATCH: usize = 100;

fn config(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.background = false;
    c
}

fn tenant() -> TenantId {
    TenantId::new("t1").expect("tenant")
}

fn batch(b: usize) -> Vec<Event> {
    (0..PER_BATCH)
        .map(|i| Event {
            timestamp: Micros(T0 + ((b * PER_BATCH + i) as i64) * Micros::SECOND / 10),
            received_at: Micros(T0),
            event_type: "api_call".into(),
            service: Some("checkout".into()),
            latency_ms: Some(b as f64),
            ..Event::default()
        })
        .collect()
}

fn count(store: &Store) -> i64 {
    let q = Query {
        tenants: vec![tenant()],
        range: TimeRange {
            from: Micros(T0),
            to: Micros(T0 + Micros::HOUR),
        },
        filter: Vec::new(),
        group_by: Vec::new(),
        interval: None,
        aggregations: vec![Aggregation {
            op: AggOp::Count,
            field: None,
            alias: "n".into(),
        }],
        order_by: Vec::new(),
        limit: 10,
    };
    match store.query(&q).expect("query").rows[0][0] {
        Value::Int(n) => n,
        ref v => panic!("count is {v:?}"),
    }
}

/// Writes 20 acknowledged batches of 100 events, one WAL record each, then
/// "crashes" (drops the store without closing it). Returns the WAL file and
/// the offset of every record in it.
fn crashed_store(dir: &Path) -> (PathBuf, Vec<usize>) {
    let store = Store::open(config(dir)).expect("open");
    for b in 0..BATCHES {
        let ack = store.append(&tenant(), &batch(b)).expect("append");
        assert_eq!(ack.first_seq, 1 + (b * PER_BATCH) as u64);
    }
    drop(store);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .expect("wal dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let path = files.pop().expect("one file");
    let bytes = std::fs::read(&path).expect("read wal");
    let mut offsets = Vec::new();
    let mut pos = WAL_HEADER_BYTES;
    while pos < bytes.len() {
        let (_, used) = decode_record(&bytes[pos..])
            .expect("intact")
            .expect("complete");
        offsets.push(pos);
        pos += used;
    }
    assert_eq!(offsets.len(), BATCHES);
    (path, offsets)
}

fn flip(path: &Path, at: usize, xor: u8) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[at] ^= xor;
    std::fs::write(path, bytes).expect("write");
}

fn quarantined(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir.join("quarantine")) {
        Ok(rd) => rd.map(|e| e.expect("entry").path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Reopens after the damage and checks: `expect_events` survive, the next
/// sequence number is past every one issued, `verify` and the store report
/// `wal_damage` items, and a quarantine copy exists when there is damage.
fn reopen_and_check(dir: &Path, expect_events: i64, wal_damage: usize) {
    let before = pulsestream_storage::store::verify(dir).expect("verify");
    assert_eq!(before.problems.len(), wal_damage, "{:?}", before.problems);
    if wal_damage > 0 {
        assert!(
            before.problems[0].contains("offset"),
            "{:?}",
            before.problems
        );
    }
    let store = Store::open(config(dir)).expect("reopen");
    assert_eq!(count(&store), expect_events);
    let damage = store.damage();
    assert_eq!(damage.len(), wal_damage, "{damage:?}");
    assert!(damage.iter().all(|d| d.kind == DamageKind::WalRecord));
    assert_eq!(quarantined(dir).len(), usize::from(wal_damage > 0));
    let ack = store.append(&tenant(), &batch(0)).expect("append after");
    assert!(
        ack.first_seq > (BATCHES * PER_BATCH) as u64,
        "sequence number {} issued again",
        ack.first_seq
    );
    store.close().expect("close");
    // The evidence outlives the restart: `check` still reports it.
    let after = pulsestream_storage::store::verify(dir).expect("verify");
    assert_eq!(after.is_sound(), wal_damage == 0, "{:?}", after.problems);
}

#[test]
fn a_flipped_payload_byte_costs_only_its_record() {
    for record in [0, 1, 10] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, offsets) = crashed_store(dir.path());
        flip(&path, offsets[record] + 30, 0x41);
        reopen_and_check(dir.path(), (BATCHES * PER_BATCH - PER_BATCH) as i64, 1);
    }
}

#[test]
fn a_damaged_length_resynchronises_on_the_next_record() {
    // Low byte: a wrong length still in range (checksum fails over the
    // wrong span); high byte: a length past every limit.
    for (record, byte, xor) in [(0, 0, 0x07), (1, 3, 0x40), (10, 1, 0x01), (10, 0, 0xff)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, offsets) = crashed_store(dir.path());
        flip(&path, offsets[record] + byte, xor);
        reopen_and_check(dir.path(), (BATCHES * PER_BATCH - PER_BATCH) as i64, 1);
    }
}

#[test]
fn a_damaged_checksum_field_costs_only_its_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, offsets) = crashed_store(dir.path());
    flip(&path, offsets[5] + 5, 0x10);
    reopen_and_check(dir.path(), (BATCHES * PER_BATCH - PER_BATCH) as i64, 1);
}

#[test]
fn damage_in_the_last_record_is_cut_but_its_numbers_stay_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, offsets) = crashed_store(dir.path());
    let len = std::fs::metadata(&path).expect("meta").len() as usize;
    // Inside the events, past the header fields that carry the numbers.
    flip(&path, (offsets[BATCHES - 1] + len) / 2, 0x41);
    reopen_and_check(dir.path(), (BATCHES * PER_BATCH - PER_BATCH) as i64, 1);
}

#[test]
fn numbers_of_a_cut_damaged_tail_are_not_reissued_after_a_second_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, offsets) = crashed_store(dir.path());
    let len = std::fs::metadata(&path).expect("meta").len() as usize;
    flip(&path, (offsets[BATCHES - 1] + len) / 2, 0x41);
    // Open and crash again at once: the damaged tail is cut now.
    drop(Store::open(config(dir.path())).expect("open"));
    let store = Store::open(config(dir.path())).expect("reopen");
    let ack = store.append(&tenant(), &batch(0)).expect("append");
    assert!(
        ack.first_seq > (BATCHES * PER_BATCH) as u64,
        "sequence number {} issued again",
        ack.first_seq
    );
}

#[test]
fn a_damaged_file_header_loses_no_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, _) = crashed_store(dir.path());
    flip(&path, 2, 0x41);
    reopen_and_check(dir.path(), (BATCHES * PER_BATCH) as i64, 1);
}

#[test]
fn two_damaged_records_cost_two() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, offsets) = crashed_store(dir.path());
    flip(&path, offsets[3] + 40, 0x41);
    flip(&path, offsets[7] + 2, 0x22);
    reopen_and_check(dir.path(), (BATCHES * PER_BATCH - 2 * PER_BATCH) as i64, 2);
}

#[test]
fn a_torn_last_write_is_cut_quietly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, _) = crashed_store(dir.path());
    let len = std::fs::metadata(&path).expect("meta").len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    f.set_len(len - 7).expect("truncate");
    drop(f);
    reopen_and_check(dir.path(), (BATCHES * PER_BATCH - PER_BATCH) as i64, 0);
    // The cut left nothing behind that a second open would call damage.
    let store = Store::open(config(dir.path())).expect("reopen");
    assert!(store.damage().is_empty());
}

#[test]
fn a_second_restart_does_not_copy_the_file_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, offsets) = crashed_store(dir.path());
    flip(&path, offsets[1] + 30, 0x41);
    for _ in 0..2 {
        let store = Store::open(config(dir.path())).expect("open");
        assert_eq!(count(&store), 1900);
        drop(store);
    }
    assert_eq!(quarantined(dir.path()).len(), 1);
}

/// Query of `t` over the test's hour: whether the answer is partial, and
/// its warnings' messages.
fn partial_for(store: &Store, t: &TenantId) -> (bool, Vec<String>) {
    let q = Query {
        tenants: vec![t.clone()],
        range: TimeRange {
            from: Micros(T0),
            to: Micros(T0 + Micros::HOUR),
        },
        filter: Vec::new(),
        group_by: Vec::new(),
        interval: None,
        aggregations: vec![Aggregation {
            op: AggOp::Count,
            field: None,
            alias: "n".into(),
        }],
        order_by: Vec::new(),
        limit: 10,
    };
    let checked = store.query_checked(&q).expect("query");
    let messages = checked.warnings.iter().map(|w| w.message.clone()).collect();
    (checked.is_partial(), messages)
}

/// Two tenants' records interleaved in one WAL file, then a crash; answers
/// the file and its records' offsets (even ones are `t1`'s).
fn crashed_two_tenants(dir: &Path) -> (PathBuf, Vec<usize>) {
    let other = TenantId::new("t2").expect("tenant");
    let store = Store::open(config(dir)).expect("open");
    for b in 0..BATCHES / 2 {
        store.append(&tenant(), &batch(b)).expect("append t1");
        store.append(&other, &batch(b)).expect("append t2");
    }
    drop(store);
    let path = std::fs::read_dir(dir.join("wal"))
        .expect("wal dir")
        .map(|e| e.expect("entry").path())
        .next()
        .expect("one file");
    let bytes = std::fs::read(&path).expect("read wal");
    let mut offsets = Vec::new();
    let mut pos = WAL_HEADER_BYTES;
    while pos < bytes.len() {
        let (_, used) = decode_record(&bytes[pos..])
            .expect("intact")
            .expect("complete");
        offsets.push(pos);
        pos += used;
    }
    (path, offsets)
}

#[test]
fn a_lost_record_makes_its_tenants_answers_partial_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, offsets) = crashed_two_tenants(dir.path());
    let other = TenantId::new("t2").expect("tenant");
    // Inside the events of t1's second record: the header still names t1.
    flip(&path, offsets[2] + 30, 0x41);
    let check = |store: &Store| {
        let (partial, warnings) = partial_for(store, &tenant());
        assert!(partial, "t1 lost a record but its answer is complete");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("write-ahead log"), "{warnings:?}");
        assert_eq!(partial_for(store, &other), (false, Vec::new()));
    };
    let store = Store::open(config(dir.path())).expect("reopen");
    check(&store);
    // Closing seals everything and deletes the WAL file: the evidence is
    // the quarantine copy alone, and it still speaks after a restart.
    store.close().expect("close");
    let store = Store::open(config(dir.path())).expect("reopen again");
    check(&store);
    store.close().expect("close");
    // Once the operator has reviewed and removed the copy, answers are whole.
    for q in quarantined(dir.path()) {
        std::fs::remove_file(q).expect("remove copy");
    }
    let store = Store::open(config(dir.path())).expect("reopen after review");
    assert_eq!(partial_for(&store, &tenant()), (false, Vec::new()));
}

#[test]
fn a_lost_record_that_names_no_known_tenant_makes_every_answer_partial() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, offsets) = crashed_two_tenants(dir.path());
    // The first byte of the tenant name (frame header 8, LSN 1, length 1):
    // "t1" becomes "u1", a tenant the store does not know.
    flip(&path, offsets[2] + 10, 0x01);
    let store = Store::open(config(dir.path())).expect("reopen");
    for t in [tenant(), TenantId::new("t2").expect("tenant")] {
        let (partial, warnings) = partial_for(&store, &t);
        assert!(partial, "{t}: the lost record could be anyone's");
        assert!(warnings[0].contains("cannot be told"), "{warnings:?}");
    }
}
