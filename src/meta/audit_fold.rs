//! Folding of repeated audit events: the same action by the same actor
//! (failed logins for one unknown email, attempts on a locked account)
//! becomes one entry per minute carrying a `count`, instead of one synced
//! transaction per request that anyone could use to fill the disk.
//!
//! The first occurrence in a window is written at once (durably, so it is
//! seen); later ones raise that entry's count with unsynced commits.
//! Time is a parameter (microseconds) so tests drive the clock.

use std::collections::HashMap;

use parking_lot::Mutex;

use super::{AuditEntry, Meta, MetaResult};

/// Length of a folding window: one entry per key per minute.
pub const FOLD_WINDOW_MICROS: i64 = 60 * 1_000_000;

/// Keys folded at once at most. Each is a short string and three integers;
/// when full, windows that have ended are dropped, and if every window is
/// live the table starts over (at worst a few more entries are written).
pub const MAX_FOLDED_KEYS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    start: i64,
    seq: u64,
    count: u64,
}

/// The open windows, by `(action, actor)`.
#[derive(Debug, Default)]
pub struct AuditFolder {
    windows: Mutex<HashMap<(String, String), Window>>,
}

impl AuditFolder {
    pub fn new() -> AuditFolder {
        AuditFolder::default()
    }

    /// Records `entry` folded with earlier ones of the same action and actor
    /// in the current window. `detail` gets a `count` field.
    pub fn record(&self, meta: &Meta, mut entry: AuditEntry, now: i64) -> MetaResult<()> {
        let key = (entry.action.clone(), entry.actor.clone());
        let mut base = match entry.detail.take() {
            Some(serde_json::Value::Object(m)) => m,
            Some(other) => {
                let mut m = serde_json::Map::new();
                m.insert("detail".into(), other);
                m
            }
            None => serde_json::Map::new(),
        };
        let mut windows = self.windows.lock();
        if let Some(w) = windows.get_mut(&key)
            && now.saturating_sub(w.start) < FOLD_WINDOW_MICROS
        {
            w.count += 1;
            let (seq, count) = (w.seq, w.count);
            // Written under the lock so counts land in order.
            base.insert("count".into(), count.into());
            base.insert("last_at".into(), super::rfc3339(now).into());
            meta.set_audit_detail(seq, serde_json::Value::Object(base))?;
            return Ok(());
        }
        if windows.len() >= MAX_FOLDED_KEYS {
            windows.retain(|_, w| now.saturating_sub(w.start) < FOLD_WINDOW_MICROS);
            if windows.len() >= MAX_FOLDED_KEYS {
                windows.clear();
            }
        }
        base.insert("count".into(), 1.into());
        entry.detail = Some(serde_json::Value::Object(base));
        entry.at = now;
        let seq = meta.audit(entry)?;
        windows.insert(
            key,
            Window {
                start: now,
                seq,
                count: 1,
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_meta;
    use super::*;

    fn failed(actor: &str) -> AuditEntry {
        AuditEntry {
            seq: 0,
            at: 0,
            tenant: None,
            actor: actor.into(),
            action: "login_failed".into(),
            target: None,
            detail: Some(serde_json::json!({"reason": "unknown email"})),
        }
    }

    #[test]
    fn one_entry_per_key_and_minute_with_a_count() {
        let (_d, m) = test_meta();
        let f = AuditFolder::new();
        for i in 0..50 {
            f.record(&m, failed("x@y.io"), i * 1000).expect("record");
        }
        f.record(&m, failed("other@y.io"), 5).expect("record");
        let (all, _) = m.list_audit(None, None, 100).expect("list");
        assert_eq!(all.len(), 2);
        let x = all.iter().find(|e| e.actor == "x@y.io").expect("x");
        let d = x.detail.as_ref().expect("detail");
        assert_eq!(d["count"], 50);
        assert_eq!(d["reason"], "unknown email");
        // The next minute opens a new entry.
        f.record(&m, failed("x@y.io"), FOLD_WINDOW_MICROS + 1)
            .expect("record");
        let (all, _) = m.list_audit(None, None, 100).expect("list");
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].detail.as_ref().expect("d")["count"], 1);
    }
}
