//! Open connections per client address, capped at
//! `server.max_connections_per_ip` so one address (or one NAT) can never
//! hold every slot of `server.max_connections`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

/// The count of every address with a connection open. Entries leave the
/// table with their last connection, so it is bounded by open connections.
#[derive(Debug)]
pub struct PerIpConnections {
    cap: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; uncounted on drop.
#[derive(Debug)]
pub struct IpSlot {
    table: Arc<PerIpConnections>,
    ip: IpAddr,
}

impl PerIpConnections {
    pub fn new(cap: usize) -> Arc<PerIpConnections> {
        Arc::new(PerIpConnections {
            cap: cap.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a connection from `ip`, or `None` when it already has `cap`.
    pub fn try_open(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let mut open = self.open.lock();
        let n = open.entry(ip).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            table: self.clone(),
            ip,
        })
    }

    /// Connections open from `ip`.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.open.lock().get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock();
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_one_address_and_releases_on_drop() {
        let t = PerIpConnections::new(2);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let s1 = t.try_open(a).expect("1");
        let _s2 = t.try_open(a).expect("2");
        assert!(t.try_open(a).is_none());
        assert!(t.try_open(b).is_some());
        drop(s1);
        assert_eq!(t.open_from(a), 1);
        assert!(t.try_open(a).is_some());
    }
}
