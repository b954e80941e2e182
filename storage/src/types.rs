//! Newtypes for the identities and quantities the store deals in.
//!
//! Bare integers are easy to mix up (a sequence number passed where a log
//! position was meant); these types make such mistakes compile errors.

use std::fmt;

/// Microseconds since the Unix epoch, UTC. Every time inside the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Micros(pub i64);

impl Micros {
    pub const MIN: Micros = Micros(i64::MIN);
    pub const MAX: Micros = Micros(i64::MAX);
    pub const SECOND: i64 = 1_000_000;
    pub const MINUTE: i64 = 60 * Self::SECOND;
    pub const HOUR: i64 = 60 * Self::MINUTE;

    pub fn from_millis(ms: i64) -> Micros {
        Micros(ms.saturating_mul(1000))
    }
    pub fn as_millis(self) -> i64 {
        self.0.div_euclid(1000)
    }
    /// The current wall-clock time.
    pub fn now() -> Micros {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Micros(d.as_micros() as i64)
    }
    /// Start of the bucket of width `width` (> 0) that holds `self`.
    pub fn floor_to(self, width: i64) -> Micros {
        Micros(self.0 - self.0.rem_euclid(width))
    }
}

/// A tenant's identity as the store knows it: `[a-z0-9_-]{1,64}`, so it is
/// safe to use as a directory name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantId(String);

/// Longest tenant id; it is a directory name and a key prefix.
pub const MAX_TENANT_ID_LEN: usize = 64;

impl TenantId {
    /// Validates `s`; `None` if it is not a legal tenant id.
    pub fn new(s: &str) -> Option<TenantId> {
        let ok = !s.is_empty()
            && s.len() <= MAX_TENANT_ID_LEN
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        ok.then(|| TenantId(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An event's id: its timestamp and a store-wide sequence number assigned at
/// append. Unique (the sequence never repeats, across restarts too) and
/// sortable by event time. Rendered as 32 hex digits: 16 of the timestamp
/// (offset so negative times still sort) then 16 of the sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    pub timestamp: Micros,
    pub seq: u64,
}

impl EventId {
    pub fn to_hex(self) -> String {
        let t = (self.timestamp.0 as u64) ^ (1u64 << 63);
        format!("{t:016x}{:016x}", self.seq)
    }
    pub fn from_hex(s: &str) -> Option<EventId> {
        if s.len() != 32 || !s.is_ascii() {
            return None;
        }
        let t = u64::from_str_radix(&s[..16], 16).ok()?;
        let seq = u64::from_str_radix(&s[16..], 16).ok()?;
        Some(EventId {
            timestamp: Micros((t ^ (1u64 << 63)) as i64),
            seq,
        })
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Position in the write-ahead log: the number of the record, starting at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

/// A sealed segment's number, unique within the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId(pub u64);

/// A time partition: the start of the partition's interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionStart(pub Micros);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_id_hex_round_trips_and_sorts() {
        let a = EventId {
            timestamp: Micros(-5),
            seq: 9,
        };
        let b = EventId {
            timestamp: Micros(7),
            seq: 1,
        };
        assert_eq!(EventId::from_hex(&a.to_hex()), Some(a));
        assert!(a.to_hex() < b.to_hex());
        assert_eq!(EventId::from_hex("zz"), None);
    }

    #[test]
    fn tenant_ids_are_directory_safe() {
        assert!(TenantId::new("t001").is_some());
        assert!(TenantId::new("../x").is_none());
        assert!(TenantId::new("").is_none());
        assert!(TenantId::new(&"a".repeat(65)).is_none());
    }
}
