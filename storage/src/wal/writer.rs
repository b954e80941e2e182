//! Group commit: appenders queue framed records; whoever finds no sync in
//! progress becomes the leader, writes everything queued with one `write`
//! and one `fdatasync`, and wakes the rest. Followers only wait.
//!
//! Measured alternative: a dedicated writer thread fed by a channel costs a
//! thread hop per batch and gives the same batching; leader/follower keeps
//! the work on the appending threads, which matters on a 2-core machine.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};
use std::sync::Arc;

use crate::io::FileIo;

use super::file_header;
use super::record::{EncodedEvents, frame_head};
use crate::error::{Result, StorageError};
use crate::paths;
use crate::types::{Lsn, TenantId};

/// Upper bounds (seconds, inclusive) of the fsync latency histogram: from
/// a write-back cache's ~100 µs through an SSD's few ms to a saturated or
/// network disk's second. Durations above the last go to a final +Inf
/// bucket.
pub const FSYNC_BUCKETS: [f64; 13] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// The bucket of an fsync that took `secs`: the first bound not below it,
/// or `FSYNC_BUCKETS.len()` (+Inf).
pub fn fsync_bucket(secs: f64) -> usize {
    FSYNC_BUCKETS
        .iter()
        .position(|b| secs <= *b)
        .unwrap_or(FSYNC_BUCKETS.len())
}

/// What the WAL assigned to an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    pub lsn: u64,
    pub first_seq: u64,
    /// The LSN of this tenant's previous record in this process (0 if none):
    /// the record must be applied only after that one.
    pub prev_lsn: u64,
}

/// One WAL file and what it holds, for trimming.
#[derive(Debug, Clone)]
pub struct WalFile {
    pub first_lsn: u64,
    pub path: PathBuf,
    pub bytes: u64,
    /// Per tenant, the last LSN this file holds for it.
    pub tenant_max: HashMap<TenantId, u64>,
}

struct Pending {
    lsn: u64,
    tenant: TenantId,
    head: Vec<u8>,
    body: Vec<u8>,
}

/// Why a group's write failed, kept for its waiters (io::Error is not Clone).
#[derive(Clone)]
struct Failure {
    path: PathBuf,
    disk_full: bool,
    message: String,
}

impl Failure {
    fn to_error(&self) -> StorageError {
        if self.disk_full {
            StorageError::DiskFull {
                path: self.path.clone(),
            }
        } else {
            StorageError::Io {
                path: self.path.clone(),
                source: std::io::Error::other(self.message.clone()),
            }
        }
    }
}

struct State {
    next_lsn: u64,
    next_seq: u64,
    pending: Vec<Pending>,
    leader_active: bool,
    /// Every LSN up to here was written and synced, or failed.
    done_through: u64,
    /// Last LSN synced successfully.
    durable_lsn: u64,
    failed: HashMap<u64, Failure>,
    tenant_last: HashMap<TenantId, u64>,
    closed: bool,
}

struct Io {
    file: Option<File>,
    path: PathBuf,
    len: u64,
    buf: Vec<u8>,
}

pub struct WalWriter {
    dir: PathBuf,
    /// The file operations (`io::OsIo`, or a fault injector in tests).
    fs: Arc<dyn FileIo>,
    file_bytes: u64,
    state: Mutex<State>,
    cond: Condvar,
    /// Only the leader touches it; the mutex just proves that.
    io: Mutex<Io>,
    /// Every live WAL file, oldest first; the last is the one being written.
    files: Mutex<Vec<WalFile>>,
    fsyncs: AtomicU64,
    fsync_nanos: AtomicU64,
    /// Per-bucket (not cumulative) fsync counts; the last slot is +Inf.
    fsync_buckets: [AtomicU64; FSYNC_BUCKETS.len() + 1],
    disk_full: AtomicBool,
}

impl WalWriter {
    /// Starts writing after replay: `files` are the replayed files (never
    /// written again); the first new record gets `next_lsn`.
    pub fn new(
        dir: &Path,
        file_bytes: u64,
        next_lsn: u64,
        next_seq: u64,
        files: Vec<WalFile>,
    ) -> WalWriter {
        Self::with_io(dir, file_bytes, next_lsn, next_seq, files, crate::io::os())
    }

    /// Like `new`, with records written and synced through `io`.
    pub fn with_io(
        dir: &Path,
        file_bytes: u64,
        next_lsn: u64,
        next_seq: u64,
        mut files: Vec<WalFile>,
        io: Arc<dyn FileIo>,
    ) -> WalWriter {
        let wal_dir = paths::wal_dir(dir);
        // A replayed file named after `next_lsn` holds no valid record (its
        // records would have LSN >= next_lsn); it is recreated at first write.
        files.retain(|f| f.first_lsn != next_lsn);
        WalWriter {
            dir: wal_dir,
            fs: io,
            file_bytes: file_bytes.max(1),
            state: Mutex::new(State {
                next_lsn,
                next_seq,
                pending: Vec::new(),
                leader_active: false,
                done_through: next_lsn - 1,
                durable_lsn: next_lsn - 1,
                failed: HashMap::new(),
                tenant_last: HashMap::new(),
                closed: false,
            }),
            cond: Condvar::new(),
            io: Mutex::new(Io {
                file: None,
                path: PathBuf::new(),
                len: 0,
                buf: Vec::new(),
            }),
            files: Mutex::new(files),
            fsyncs: AtomicU64::new(0),
            fsync_nanos: AtomicU64::new(0),
            fsync_buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            disk_full: AtomicBool::new(false),
        }
    }

    /// Sets where writing starts after replay (the writer was made before
    /// replay knew): the next LSN and sequence number and the replayed
    /// files. Only before the first append.
    pub fn restart(&self, next_lsn: u64, next_seq: u64, mut files: Vec<WalFile>) {
        files.retain(|f| f.first_lsn != next_lsn);
        let mut st = self.state.lock();
        st.next_lsn = next_lsn;
        st.next_seq = next_seq;
        st.done_through = next_lsn - 1;
        st.durable_lsn = next_lsn - 1;
        drop(st);
        *self.files.lock() = files;
    }

    /// Logs `events` for `tenant` and waits until they are durable. The outer
    /// error means nothing was assigned (closed, batch too large); the inner
    /// one that the record was assigned a ticket but is not durable (the
    /// ticket must still be passed through the tenant's apply order).
    pub fn append(&self, tenant: &TenantId, events: EncodedEvents) -> Result<(Ticket, Result<()>)> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(StorageError::Closed);
        }
        let lsn = st.next_lsn;
        let first_seq = st.next_seq;
        let head = frame_head(Lsn(lsn), tenant, first_seq, &events)?;
        st.next_lsn += 1;
        st.next_seq += u64::from(events.count);
        let prev_lsn = st.tenant_last.insert(tenant.clone(), lsn).unwrap_or(0);
        st.pending.push(Pending {
            lsn,
            tenant: tenant.clone(),
            head,
            body: events.bytes,
        });
        let ticket = Ticket {
            lsn,
            first_seq,
            prev_lsn,
        };
        loop {
            if st.done_through >= lsn {
                let res = match st.failed.remove(&lsn) {
                    Some(f) => Err(f.to_error()),
                    None => Ok(()),
                };
                return Ok((ticket, res));
            }
            if st.leader_active {
                self.cond.wait(&mut st);
                continue;
            }
            st.leader_active = true;
            let batch = std::mem::take(&mut st.pending);
            let last = batch.last().map_or(st.done_through, |p| p.lsn);
            let res = parking_lot::MutexGuard::unlocked(&mut st, || self.write_batch(&batch));
            match res {
                Ok(()) => st.durable_lsn = last,
                Err(f) => {
                    for p in &batch {
                        st.failed.insert(p.lsn, f.clone());
                    }
                }
            }
            st.done_through = last;
            st.leader_active = false;
            self.cond.notify_all();
        }
    }

    /// Writes and syncs one group. Runs without the state lock.
    fn write_batch(&self, batch: &[Pending]) -> std::result::Result<(), Failure> {
        let Some(first) = batch.first() else {
            return Ok(());
        };
        let mut io = self.io.lock();
        let res = self.write_locked(&mut io, first.lsn, batch);
        match &res {
            Ok(()) => self.disk_full.store(false, Ordering::Relaxed),
            Err(f) => {
                self.disk_full.store(f.disk_full, Ordering::Relaxed);
                tracing::warn!(path = %f.path.display(), error = %f.message, "WAL write failed");
            }
        }
        res
    }

    fn write_locked(
        &self,
        io: &mut Io,
        first_lsn: u64,
        batch: &[Pending],
    ) -> std::result::Result<(), Failure> {
        if io.file.is_none() || io.len >= self.file_bytes {
            self.rotate(io, first_lsn).map_err(|e| failure(&e))?;
        }
        let mut buf = std::mem::take(&mut io.buf);
        buf.clear();
        for p in batch {
            buf.extend_from_slice(&p.head);
            buf.extend_from_slice(&p.body);
        }
        let start = io.len;
        let file = io.file.as_ref().ok_or_else(|| Failure {
            path: io.path.clone(),
            disk_full: false,
            message: "BUG: no WAL file after rotate".into(),
        })?;
        let t0 = Instant::now();
        let res = self
            .fs
            .write_at(file, &buf, start)
            .and_then(|()| self.fs.sync_data(file))
            .map_err(|e| StorageError::io(&io.path, e));
        self.record_fsync(t0.elapsed());
        let written = buf.len() as u64;
        io.buf = buf;
        if let Err(e) = res {
            // Cut the partial write off so later records follow good bytes;
            // if even that fails, the next group starts a fresh file.
            let cut = self
                .fs
                .set_len(file, start)
                .and_then(|()| self.fs.sync_data(file));
            if cut.is_err() {
                io.file = None;
            }
            return Err(failure(&e));
        }
        io.len = start + written;
        let mut files = self.files.lock();
        if let Some(f) = files.last_mut() {
            f.bytes = io.len;
            for p in batch {
                f.tenant_max.insert(p.tenant.clone(), p.lsn);
            }
        }
        Ok(())
    }

    /// Starts `<first_lsn>.wal`: header, sync, directory sync.
    fn rotate(&self, io: &mut Io, first_lsn: u64) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| StorageError::io(&self.dir, e))?;
        let path = self.dir.join(paths::wal_file_name(first_lsn));
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StorageError::io(&path, e))?;
        let header = file_header();
        self.fs
            .write_at(&file, &header, 0)
            .and_then(|()| self.fs.sync_all(&file))
            .map_err(|e| StorageError::io(&path, e))?;
        sync_dir(&self.dir)?;
        io.file = Some(file);
        io.path = path.clone();
        io.len = header.len() as u64;
        let mut files = self.files.lock();
        files.retain(|f| f.first_lsn != first_lsn);
        files.push(WalFile {
            first_lsn,
            path,
            bytes: io.len,
            tenant_max: HashMap::new(),
        });
        Ok(())
    }

    /// Deletes every file whose records are all sealed, per
    /// `sealed_through(tenant)`. The file being written goes too when no
    /// write is running (the next group then starts a new file), so a
    /// store that sealed everything replays nothing. Returns files deleted.
    pub fn trim(&self, sealed_through: impl Fn(&TenantId) -> u64) -> u64 {
        let mut files = self.files.lock();
        let mut removed = 0;
        let mut keep = Vec::with_capacity(files.len());
        for f in files.drain(..) {
            let sealed = f
                .tenant_max
                .iter()
                .all(|(t, &max)| sealed_through(t) >= max);
            if !sealed {
                keep.push(f);
                continue;
            }
            // Never take the file from under a running write; the io lock
            // is held for the whole write, so try_lock tells.
            let Some(mut io) = self.io.try_lock() else {
                keep.push(f);
                continue;
            };
            if io.file.is_some() && io.path == f.path {
                if f.tenant_max.is_empty() {
                    // Just created, nothing in it yet.
                    keep.push(f);
                    continue;
                }
                io.file = None;
            }
            drop(io);
            match std::fs::remove_file(&f.path) {
                Ok(()) => removed += 1,
                Err(e) => {
                    tracing::warn!(path = %f.path.display(), error = %e, "cannot delete WAL file");
                    keep.push(f);
                }
            }
        }
        *files = keep;
        removed
    }

    /// Tenants whose records in the oldest WAL file are not all sealed
    /// (per `sealed_through`): sealing them lets `trim` delete it.
    pub fn oldest_pins(&self, sealed_through: impl Fn(&TenantId) -> u64) -> Vec<TenantId> {
        let files = self.files.lock();
        let Some(oldest) = files.first() else {
            return Vec::new();
        };
        let mut out: Vec<TenantId> = oldest
            .tenant_max
            .iter()
            .filter(|(t, max)| sealed_through(t) < **max)
            .map(|(t, _)| t.clone())
            .collect();
        out.sort();
        out
    }

    /// Stops new appends (they answer `Closed`).
    pub fn close(&self) {
        self.state.lock().closed = true;
    }

    /// The last LSN each tenant was assigned in this process (0 if none),
    /// and the next LSN that will be assigned.
    pub fn tenant_last(&self, tenant: &TenantId) -> u64 {
        self.state
            .lock()
            .tenant_last
            .get(tenant)
            .copied()
            .unwrap_or(0)
    }

    pub fn next_lsn(&self) -> u64 {
        self.state.lock().next_lsn
    }

    pub fn next_seq(&self) -> u64 {
        self.state.lock().next_seq
    }

    pub fn durable_lsn(&self) -> u64 {
        self.state.lock().durable_lsn
    }

    pub fn wal_bytes(&self) -> u64 {
        self.files.lock().iter().map(|f| f.bytes).sum()
    }

    fn record_fsync(&self, took: std::time::Duration) {
        self.fsync_buckets[fsync_bucket(took.as_secs_f64())].fetch_add(1, Ordering::Relaxed);
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.fsync_nanos
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Fsyncs per latency bucket (`FSYNC_BUCKETS`, then +Inf), not
    /// cumulative.
    pub fn fsync_buckets(&self) -> Vec<u64> {
        self.fsync_buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }

    pub fn fsyncs(&self) -> (u64, f64) {
        (
            self.fsyncs.load(Ordering::Relaxed),
            self.fsync_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        )
    }

    pub fn disk_full(&self) -> bool {
        self.disk_full.load(Ordering::Relaxed)
    }
}

fn failure(e: &StorageError) -> Failure {
    match e {
        StorageError::DiskFull { path } => Failure {
            path: path.clone(),
            disk_full: true,
            message: "no space left on device".into(),
        },
        StorageError::Io { path, source } => Failure {
            path: path.clone(),
            disk_full: false,
            message: source.to_string(),
        },
        other => Failure {
            path: PathBuf::new(),
            disk_full: false,
            message: other.to_string(),
        },
    }
}

/// fsyncs a directory so a file created or renamed in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::wal::record::{encode_events, tests::sample_event};
    use crate::wal::replay;

    #[test]
    fn fsync_durations_land_in_their_buckets() {
        assert_eq!(fsync_bucket(0.0), 0);
        assert_eq!(fsync_bucket(0.0001), 0, "bounds are inclusive");
        assert_eq!(fsync_bucket(0.00011), 1);
        assert_eq!(fsync_bucket(0.003), 5);
        assert_eq!(fsync_bucket(1.0), FSYNC_BUCKETS.len() - 1);
        assert_eq!(fsync_bucket(7.5), FSYNC_BUCKETS.len());
        let dir = tempfile::tempdir().unwrap();
        let w = WalWriter::new(dir.path(), 1 << 20, 1, 1, Vec::new());
        for us in [50, 80, 3_000, 2_000_000] {
            w.record_fsync(std::time::Duration::from_micros(us));
        }
        let b = w.fsync_buckets();
        assert_eq!((b[0], b[5], b[FSYNC_BUCKETS.len()]), (2, 1, 1));
        assert_eq!(b.iter().sum::<u64>(), 4);
        let (n, secs) = w.fsyncs();
        assert_eq!(n, 4);
        assert!((secs - 2.00313).abs() < 1e-9);
    }

    #[test]
    fn group_commit_with_many_threads_loses_nothing_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        // Tiny files: rotation happens many times under contention.
        let w = Arc::new(WalWriter::new(dir.path(), 2048, 1, 1, Vec::new()));
        let tenants: Vec<TenantId> = (0..3)
            .map(|i| TenantId::new(&format!("t{i}")).unwrap())
            .collect();
        let handles: Vec<_> = (0..8)
            .map(|th| {
                let (w, t) = (w.clone(), tenants[th % 3].clone());
                std::thread::spawn(move || {
                    (0..40)
                        .map(|i| {
                            let events: Vec<_> = (0..3).map(|k| sample_event(i * 3 + k)).collect();
                            let (ticket, res) = w.append(&t, encode_events(&events)).unwrap();
                            res.unwrap();
                            (t.clone(), ticket)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let tickets: Vec<(TenantId, Ticket)> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        assert_eq!(tickets.len(), 320);
        assert_eq!(w.durable_lsn(), 320);
        let (syncs, _) = w.fsyncs();
        assert!((1..=320).contains(&syncs));
        let buckets = w.fsync_buckets();
        assert_eq!(buckets.len(), FSYNC_BUCKETS.len() + 1);
        assert_eq!(
            buckets.iter().sum::<u64>(),
            syncs,
            "every fsync lands in a bucket"
        );
        // Per tenant, prev_lsn chains every record in LSN order.
        for t in &tenants {
            let mut mine: Vec<Ticket> = tickets
                .iter()
                .filter(|(x, _)| x == t)
                .map(|(_, k)| *k)
                .collect();
            mine.sort_by_key(|k| k.lsn);
            for pair in mine.windows(2) {
                assert_eq!(pair[1].prev_lsn, pair[0].lsn);
            }
            assert_eq!(mine[0].prev_lsn, 0);
        }
        let mut seen = Vec::new();
        let out = replay::replay(
            dir.path(),
            |_| false,
            |rec| {
                seen.push((rec.lsn.0, rec.first_seq, rec.events.len()));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen.len(), 320);
        assert!(
            out.files.len() > 2,
            "rotated into {} files",
            out.files.len()
        );
        assert_eq!(out.next_seq, 1 + 320 * 3);
        for (i, (lsn, _, n)) in seen.iter().enumerate() {
            assert_eq!(*lsn, i as u64 + 1);
            assert_eq!(*n, 3);
        }
    }

    #[test]
    fn replay_hands_over_only_unsealed_records_but_counts_every_one() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (TenantId::new("a").unwrap(), TenantId::new("b").unwrap());
        {
            let w = WalWriter::new(dir.path(), 1 << 20, 1, 1, Vec::new());
            for i in 0..6 {
                let t = if i % 2 == 0 { &a } else { &b };
                let events: Vec<_> = (0..3).map(|k| sample_event(i * 3 + k)).collect();
                let (_, res) = w.append(t, encode_events(&events)).unwrap();
                res.unwrap();
            }
        }
        // Tenant a sealed through LSN 3: its records 1 and 3 are skipped.
        let mut seen = Vec::new();
        let out = replay::replay(
            dir.path(),
            |h| h.tenant == a && h.lsn.0 <= 3,
            |rec| {
                seen.push((rec.tenant.clone(), rec.lsn.0, rec.events.len()));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (b.clone(), 2, 3),
                (b.clone(), 4, 3),
                (a.clone(), 5, 3),
                (b.clone(), 6, 3)
            ]
        );
        assert_eq!(out.applied, 4);
        assert_eq!(out.max_lsn, 6);
        assert_eq!(out.next_seq, 1 + 6 * 3, "skipped records still count");
        assert_eq!(out.files.len(), 1);
        assert_eq!(out.files[0].tenant_max.get(&a), Some(&5));
    }

    #[test]
    fn replay_cuts_a_torn_tail_and_keeps_what_precedes_it() {
        let dir = tempfile::tempdir().unwrap();
        let t = TenantId::new("t").unwrap();
        {
            let w = WalWriter::new(dir.path(), 1 << 20, 1, 1, Vec::new());
            for i in 0..5 {
                let (_, res) = w.append(&t, encode_events(&[sample_event(i)])).unwrap();
                res.unwrap();
            }
        }
        let (_, path) = replay::list_files(dir.path()).unwrap().pop().unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 3).unwrap();
        let mut n = 0;
        let out = replay::replay(
            dir.path(),
            |_| false,
            |_| {
                n += 1;
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(n, 4);
        // The torn record's header still reads: its LSN counts as used.
        assert_eq!(out.max_lsn, 5);
        assert!(
            std::fs::metadata(&path).unwrap().len() < len - 3,
            "tail cut off"
        );
        // A flipped byte in the last record: same outcome, verify names it.
        let problems = replay::verify_wal(dir.path()).unwrap().problems;
        assert!(problems.is_empty(), "{problems:?}");
        let bytes = std::fs::read(&path).unwrap();
        let mut bad = bytes.clone();
        let last = bad.len() - 2;
        bad[last] ^= 0xff;
        std::fs::write(&path, &bad).unwrap();
        let problems = replay::verify_wal(dir.path()).unwrap().problems;
        assert_eq!(problems.len(), 1, "{problems:?}");
        let mut n = 0;
        replay::replay(
            dir.path(),
            |_| false,
            |_| {
                n += 1;
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(n, 3);
    }
}
