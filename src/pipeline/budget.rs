//! Bounded ingest: how many bytes of request bodies (raw and decompressed)
//! may be in flight at once, globally and per tenant. Bytes are charged as
//! they arrive, not reserved up front from a declared length, so a slow or
//! stalled upload holds only what it has actually sent. A charge that would
//! exceed either budget is refused at once (the request answers 503 with
//! `Retry-After`) instead of queueing, so memory stays bounded however many
//! agents push, and nothing is acknowledged that was not stored.
//!
//! The tenant budget is smaller than the global one: one tenant's uploads
//! can take at most its share, and the rest stays for everybody else.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use pulsestream_storage::TenantId;
use tokio::sync::Semaphore;

/// Accounting unit: permits are KiB so a 4 GiB budget fits the semaphore's
/// `u32` permit counts.
const UNIT: usize = 1024;

/// The budget is exhausted: answer 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ingest budget exhausted")]
pub struct Overloaded;

fn units_for(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX)
}

fn clamp_units(bytes: usize) -> u32 {
    units_for(bytes)
        .max(1)
        .min(Semaphore::MAX_PERMITS.min(u32::MAX as usize) as u32)
}

/// The budgets shared by every ingest request.
#[derive(Debug)]
pub struct IngestBudget {
    global: Arc<Semaphore>,
    global_units: u32,
    tenant_units: u32,
    tenants: Mutex<HashMap<TenantId, Arc<Semaphore>>>,
}

/// Bytes held by one request, in both budgets; released on drop.
#[derive(Debug)]
pub struct Reservation {
    global: Arc<Semaphore>,
    tenant: Arc<Semaphore>,
    /// Bytes charged so far (the units held are `units_for(bytes)`).
    bytes: usize,
    units: u32,
}

impl Reservation {
    /// Bytes this request holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let n = self.units as usize;
        self.tenant.add_permits(n);
        self.global.add_permits(n);
    }
}

impl IngestBudget {
    /// `tenant_bytes` is capped at `global_bytes`.
    pub fn new(global_bytes: usize, tenant_bytes: usize) -> Self {
        let global_units = clamp_units(global_bytes);
        IngestBudget {
            global: Arc::new(Semaphore::new(global_units as usize)),
            global_units,
            tenant_units: clamp_units(tenant_bytes).min(global_units),
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// An empty reservation for one request of `tenant`.
    pub fn open(&self, tenant: &TenantId) -> Reservation {
        let tenant = {
            let mut m = self.tenants.lock();
            match m.get(tenant) {
                Some(s) => s.clone(),
                None => {
                    let s = Arc::new(Semaphore::new(self.tenant_units as usize));
                    m.insert(tenant.clone(), s.clone());
                    s
                }
            }
        };
        Reservation {
            global: self.global.clone(),
            tenant,
            bytes: 0,
            units: 0,
        }
    }

    /// Adds `bytes` to `r`, taking them from the tenant's budget and then
    /// the global one; on refusal nothing more is held.
    pub fn charge(&self, r: &mut Reservation, bytes: usize) -> Result<(), Overloaded> {
        let total = r.bytes.saturating_add(bytes);
        let want = units_for(total).saturating_sub(r.units);
        if want > 0 {
            let t = r.tenant.try_acquire_many(want).map_err(|_| Overloaded)?;
            let g = self.global.try_acquire_many(want).map_err(|_| Overloaded)?;
            // Held by `r.units` from here on and given back in its `Drop`.
            t.forget();
            g.forget();
            r.units += want;
        }
        r.bytes = total;
        Ok(())
    }

    /// Forgets a deleted tenant's budget (a request in flight keeps its
    /// own handle and releases into it harmlessly).
    pub fn forget(&self, tenant: &TenantId) {
        self.tenants.lock().remove(tenant);
    }

    /// Bytes currently free in the global budget (for `/metrics` and tests).
    pub fn available_bytes(&self) -> usize {
        self.global.available_permits() * UNIT
    }

    /// The global budget in bytes.
    pub fn global_bytes(&self) -> usize {
        self.global_units as usize * UNIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str) -> TenantId {
        TenantId::new(name).expect("tenant id")
    }

    #[test]
    fn refuses_beyond_budget_and_frees_on_drop() {
        let b = IngestBudget::new(10 * 1024, 10 * 1024);
        let mut r1 = b.open(&t("a"));
        b.charge(&mut r1, 6 * 1024).expect("fits");
        let mut r2 = b.open(&t("a"));
        assert_eq!(b.charge(&mut r2, 5 * 1024).unwrap_err(), Overloaded);
        b.charge(&mut r2, 4 * 1024).expect("fits");
        assert_eq!(b.available_bytes(), 0);
        drop(r1);
        b.charge(&mut r2, 6 * 1024).expect("room again");
        assert!(b.charge(&mut r2, 1).is_err());
        drop(r2);
        assert_eq!(b.available_bytes(), 10 * 1024);
    }

    #[test]
    fn small_charges_add_up_to_whole_units() {
        let b = IngestBudget::new(8 * 1024, 8 * 1024);
        let mut r = b.open(&t("a"));
        for _ in 0..4097 {
            b.charge(&mut r, 1).expect("fits");
        }
        assert_eq!(r.bytes(), 4097);
        // 4,097 bytes hold five whole units, not 4,097.
        assert_eq!(b.available_bytes(), 3 * 1024);
        drop(r);
        assert_eq!(b.available_bytes(), 8 * 1024);
    }

    #[test]
    fn one_tenant_cannot_take_the_whole_global_budget() {
        let b = IngestBudget::new(64 * 1024, 16 * 1024);
        let mut held = Vec::new();
        // Tenant "slow" fills its own budget and is then refused...
        loop {
            let mut r = b.open(&t("slow"));
            if b.charge(&mut r, 1024).is_err() {
                break;
            }
            held.push(r);
        }
        assert_eq!(held.len(), 16);
        // ...while another tenant still gets the rest of the global budget.
        let mut other = b.open(&t("other"));
        b.charge(&mut other, 16 * 1024).expect("other tenant fits");
        assert_eq!(b.available_bytes(), 32 * 1024);
        drop(held);
        drop(other);
        assert_eq!(b.available_bytes(), 64 * 1024);
    }
}
