//! Crash test: a child process appends batches from several threads and
//! prints each acknowledgement; the parent SIGKILLs it at a random moment,
//! reopens the store and checks that every acknowledged event is present
//! exactly once (and nothing else is duplicated). Repeated for many rounds
//! on the same directory, with seals (by size) and WAL rotation happening
//! in the child while it is killed.
//!
//! The child is this test binary re-executed with `CRASH_CHILD_DIR` set,
//! running the ignored test `crash_child`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use pulsestream_storage::column::{Column, ColumnKey};
use pulsestream_storage::query::TimeRange;
use pulsestream_storage::{Event, Micros, Store, StoreConfig, TenantId};

const ENV_DIR: &str = "CRASH_CHILD_DIR";
const ROUNDS: usize = 24;
const TENANTS: usize = 3;
const BATCH: usize = 50;
/// 2026-11-25T10:00:00Z
const T0: i64 = 1_795_600_800 * Micros::SECOND;

fn config(dir: &std::path::Path, background: bool) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.background = background;
    // Small limits so that seals, WAL rotation and trimming all happen
    // within the fraction of a second a child lives.
    c.seal_rows = 3_000;
    c.wal_file_bytes = 64 << 10;
    c.block_rows = 512;
    c.zstd_level = 1;
    c
}

fn tenant(i: usize) -> TenantId {
    TenantId::new(&format!("c{i}")).expect("valid tenant")
}

/// Event `i` of a batch carries `i` in its latency, so the parent can check
/// that row `first_seq + i` is the right event.
fn batch(round: u64, thread: u64, n: u64) -> Vec<Event> {
    (0..BATCH)
        .map(|i| Event {
            // Spread over two partitions, including late arrivals.
            timestamp: Micros(T0 + ((n * 7 + i as u64) % 7_200) as i64 * Micros::SECOND),
            received_at: Micros(T0),
            event_type: "api_call".into(),
            service: Some(format!("s{thread}")),
            latency_ms: Some(i as f64),
            message: Some(format!("r{round} t{thread} b{n}")),
            ..Event::default()
        })
        .collect()
}

#[test]
#[ignore = "run by `crash_test_every_acked_event_survives_sigkill` as a child process"]
fn crash_child() {
    let Ok(dir) = std::env::var(ENV_DIR) else {
        return;
    };
    let round: u64 = std::env::var("CRASH_ROUND")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    let store = Store::open(config(std::path::Path::new(&dir), true)).expect("child open");
    let threads: Vec<_> = (0..4u64)
        .map(|th| {
            let store = store.clone();
            std::thread::spawn(move || {
                for n in 0.. {
                    let t = (th as usize + n as usize) % TENANTS;
                    let ack = store
                        .append(&tenant(t), &batch(round, th, n))
                        .expect("child append");
                    let mut out = std::io::stdout().lock();
                    // One write per line; a kill mid-line leaves an
                    // incomplete last line, which the parent ignores.
                    let line = format!("ACK {t} {} {}\n", ack.first_seq, ack.count);
                    let _ = out.write_all(line.as_bytes());
                    let _ = out.flush();
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

/// Tiny deterministic generator for kill delays (seed printed on failure).
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// Every (tenant, seq) -> latency the store holds; panics on a duplicate.
fn contents(store: &Store) -> HashMap<(usize, u64), f64> {
    let range = TimeRange {
        from: Micros::MIN,
        to: Micros::MAX,
    };
    let mut out = HashMap::new();
    for t in 0..TENANTS {
        for u in store.units(&[tenant(t)], range) {
            for b in 0..u.block_count() {
                let set = u
                    .read(b, &[ColumnKey::Seq, ColumnKey::LatencyMs])
                    .expect("read block");
                let (Some(Column::Int(seq)), Some(Column::Float(lat))) =
                    (set.get(&ColumnKey::Seq), set.get(&ColumnKey::LatencyMs))
                else {
                    panic!("bad columns in {}", u.describe());
                };
                for i in 0..set.rows {
                    let prev = out.insert((t, seq[i] as u64), lat[i]);
                    assert!(prev.is_none(), "tenant {t} seq {} present twice", seq[i]);
                }
            }
        }
    }
    out
}

#[test]
fn crash_test_every_acked_event_survives_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    let start_seed = seed;
    // (tenant, first_seq, count) of every acknowledged batch, all rounds.
    let mut acked: Vec<(usize, u64, u64)> = Vec::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV_DIR, dir.path())
            .env("CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let reader = std::thread::spawn(move || {
            let mut acks = Vec::new();
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                if line.ends_with('\n') {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    if f.len() == 4
                        && f[0] == "ACK"
                        && let (Ok(t), Ok(s), Ok(c)) = (f[1].parse(), f[2].parse(), f[3].parse())
                    {
                        acks.push((t, s, c));
                    }
                }
                line.clear();
            }
            acks
        });
        // Long enough to get past opening and replay most of the time.
        let delay = 150 + next(&mut seed) % 450;
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().expect("SIGKILL child");
        let _ = child.wait();
        let acks = reader.join().expect("reader thread");
        acked.extend(acks);

        // Every few rounds the parent itself opens the store and checks;
        // sometimes it closes cleanly (sealing), sometimes it just drops.
        if round % 4 == 3 || round + 1 == ROUNDS {
            let store = Store::open(config(dir.path(), false)).expect("parent open");
            let have = contents(&store);
            let mut expected = 0usize;
            for &(t, first, count) in &acked {
                for i in 0..count {
                    expected += 1;
                    match have.get(&(t, first + i)) {
                        Some(&lat) => assert_eq!(
                            lat,
                            i as f64,
                            "tenant {t} seq {} holds the wrong event (seed {start_seed})",
                            first + i
                        ),
                        None => panic!(
                            "acked event tenant {t} seq {} lost after round {round} (seed {start_seed})",
                            first + i
                        ),
                    }
                }
            }
            assert!(have.len() >= expected);
            if round % 8 == 7 {
                store.close().expect("close");
            }
            drop(store);
        }
    }
    assert!(
        acked.len() > ROUNDS,
        "children acknowledged too little to test anything ({} batches)",
        acked.len()
    );
    let segments = walk_count(dir.path(), "seg");
    println!(
        "{} acknowledged batches over {ROUNDS} rounds; {segments} segment files (seed {start_seed})",
        acked.len()
    );
    let report = pulsestream_storage::store::verify(dir.path()).expect("verify");
    assert!(report.is_sound(), "{:?}", report.problems);
}

fn walk_count(dir: &std::path::Path, ext: &str) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            n += walk_count(&p, ext);
        } else if p.extension().is_some_and(|x| x == ext) {
            n += 1;
        }
    }
    n
}
