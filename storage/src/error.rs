//! The store's errors. One enum: every variant says what failed and where.

use std::path::PathBuf;

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An operating-system I/O error, with the file it concerned.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The disk is full; the store stays readable and writes resume when space returns.
    #[error("no space left on device ({path})")]
    DiskFull { path: PathBuf },
    /// Bytes that do not decode (truncated, forged length, bad UTF-8...).
    #[error("cannot decode {what} at offset {offset}")]
    Decode { what: &'static str, offset: usize },
    /// Stored data failed its checksum or structural checks.
    #[error("corrupted {what} in {location}: {detail}")]
    Corrupted {
        what: &'static str,
        location: String,
        detail: String,
    },
    /// A file written by an unknown format version.
    #[error("{path}: unsupported format version {version}")]
    UnsupportedVersion { path: PathBuf, version: u32 },
    /// The metadata catalog failed.
    #[error("catalog error: {0}")]
    Catalog(String),
    /// Another process holds the data directory.
    #[error("data directory {0} is in use by another process")]
    Locked(PathBuf),
    /// The caller asked for something invalid (bad query, bad config value).
    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
    /// The catalog is missing or unreadable while segment files exist: the
    /// store refuses to open rather than lose track of them.
    #[error(
        "{detail}; nothing was deleted. Run `pulsestream check --rebuild-catalog --data-dir {}` \
         to rebuild the catalog from the segment footers, or restore {} from a backup",
        dir.display(),
        path.display()
    )]
    CatalogUnusable {
        dir: PathBuf,
        path: PathBuf,
        detail: String,
    },
    /// The store cannot take this write now (sealing has not caught up);
    /// nothing of it was stored, so the caller may retry it as is.
    #[error("overloaded, nothing was stored (retry): {detail}")]
    Overloaded { detail: String },
    /// The store is shutting down or was closed.
    #[error("store is closed")]
    Closed,
    /// A query was cancelled or ran past its deadline; its work stopped.
    #[error("query cancelled: it ran past its deadline or its caller went away")]
    QueryCancelled,
    /// A query's groups would take more memory than its budget.
    #[error("query needs more than its memory budget of {limit_bytes} bytes")]
    QueryTooLarge { limit_bytes: usize },
}

impl StorageError {
    /// Wraps an I/O error, classifying ENOSPC as `DiskFull`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> StorageError {
        let path = path.into();
        if source.raw_os_error() == Some(28) || source.kind() == std::io::ErrorKind::StorageFull {
            StorageError::DiskFull { path }
        } else {
            StorageError::Io { path, source }
        }
    }
    pub fn corrupted(
        what: &'static str,
        location: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        StorageError::Corrupted {
            what,
            location: location.into(),
            detail: detail.into(),
        }
    }
    pub fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        StorageError::Invalid {
            what,
            detail: detail.into(),
        }
    }
}
