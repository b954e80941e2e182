//! The file operations under the WAL and the segment writer, behind one
//! trait: `OsIo` does them on real files; `Faulty` (for tests, on every
//! machine and without root) makes chosen ones fail the way disks do:
//! ENOSPC, EIO, a write cut short after part of its bytes, a failing fsync.
//!
//! Only the operations whose failure the engine must survive go through
//! here (writing, syncing and truncating data files); opening, renaming and
//! directory syncs fail loudly enough on their own.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use parking_lot::Mutex;

pub trait FileIo: Send + Sync + std::fmt::Debug {
    /// Writes all of `buf` at `offset`.
    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()>;
    /// `fdatasync`.
    fn sync_data(&self, file: &File) -> io::Result<()>;
    /// `fsync` (data and metadata, for a file just created).
    fn sync_all(&self, file: &File) -> io::Result<()>;
    /// Truncates or extends to `len`.
    fn set_len(&self, file: &File, len: u64) -> io::Result<()>;
}

/// The production implementation: the operating system's calls.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsIo;

impl FileIo for OsIo {
    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        file.write_all_at(buf, offset)
    }
    fn sync_data(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }
    fn sync_all(&self, file: &File) -> io::Result<()> {
        file.sync_all()
    }
    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        file.set_len(len)
    }
}

/// `OsIo` as the shared handle configs hold.
pub fn os() -> Arc<dyn FileIo> {
    Arc::new(OsIo)
}

/// How a `Faulty` operation fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// ENOSPC before anything is written.
    NoSpace,
    /// EIO before anything is written.
    Eio,
    /// The first half of the bytes reach the file, then EIO: a write cut
    /// short.
    Short,
}

/// Which operation a fault is armed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Write,
    Sync,
    SetLen,
}

/// A `FileIo` over real files that fails the next operations it was told
/// to. Thread-safe; faults are consumed in order, per operation kind.
#[derive(Debug, Default)]
pub struct Faulty {
    armed: Mutex<Vec<(Op, Fault, u32)>>,
    /// Faults that fired, per operation, for tests to check they did.
    fired: Mutex<Vec<(Op, Fault)>>,
}

impl Faulty {
    pub fn new() -> Arc<Faulty> {
        Arc::new(Faulty::default())
    }

    /// Makes the next `times` operations of kind `op` fail with `fault`.
    pub fn arm(&self, op: Op, fault: Fault, times: u32) {
        self.armed.lock().push((op, fault, times));
    }

    /// Disarms everything.
    pub fn heal(&self) {
        self.armed.lock().clear();
    }

    /// The faults that fired so far.
    pub fn fired(&self) -> Vec<(Op, Fault)> {
        self.fired.lock().clone()
    }

    fn take(&self, op: Op) -> Option<Fault> {
        let mut armed = self.armed.lock();
        let i = armed.iter().position(|(o, _, n)| *o == op && *n > 0)?;
        let fault = armed[i].1;
        armed[i].2 -= 1;
        if armed[i].2 == 0 {
            armed.remove(i);
        }
        drop(armed);
        self.fired.lock().push((op, fault));
        Some(fault)
    }
}

fn error(fault: Fault) -> io::Error {
    match fault {
        // ENOSPC and EIO as the kernel reports them.
        Fault::NoSpace => io::Error::from_raw_os_error(28),
        Fault::Eio | Fault::Short => io::Error::from_raw_os_error(5),
    }
}

impl FileIo for Faulty {
    fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        match self.take(Op::Write) {
            None => file.write_all_at(buf, offset),
            Some(Fault::Short) => {
                file.write_all_at(&buf[..buf.len() / 2], offset)?;
                Err(error(Fault::Short))
            }
            Some(f) => Err(error(f)),
        }
    }
    fn sync_data(&self, file: &File) -> io::Result<()> {
        match self.take(Op::Sync) {
            None => file.sync_data(),
            Some(f) => Err(error(f)),
        }
    }
    fn sync_all(&self, file: &File) -> io::Result<()> {
        match self.take(Op::Sync) {
            None => file.sync_all(),
            Some(f) => Err(error(f)),
        }
    }
    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        match self.take(Op::SetLen) {
            None => file.set_len(len),
            Some(f) => Err(error(f)),
        }
    }
}
