//! Observers see each tenant's batches in ack (LSN) order, although
//! concurrent appends of one tenant return from the store on different
//! threads in any order.
//!
//! Every append registers before it calls the store. When it returns with
//! LSN `L`, any append of the tenant that could still get an LSN below `L`
//! is one that registered before now and has not returned. So the returned
//! append waits (on its blocking thread, typically for the rest of its own
//! group commit) until every append registered before it returned has
//! returned, and until every completed append with a lower LSN has been
//! delivered; then it calls the observers, under the tenant's lock so no
//! later batch can overtake it. Appends registered later never hold it
//! back, so a steady stream cannot starve a batch.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use pulsestream_storage::{Ack, TenantId};

#[derive(Default)]
struct Order {
    /// Registration counter.
    next_ticket: u64,
    /// Tickets of appends that have not returned yet.
    pending: BTreeSet<u64>,
    /// Returned, not yet delivered: LSN → the last ticket registered when
    /// it returned (its barrier).
    done: BTreeMap<u64, u64>,
}

#[derive(Default)]
struct TenantOrder {
    state: Mutex<Order>,
    turn: Condvar,
}

/// The ordering state of every tenant.
#[derive(Default)]
pub struct AckOrder {
    tenants: Mutex<HashMap<TenantId, Arc<TenantOrder>>>,
}

/// Removes a registration if the append unwinds, so a panic in the store
/// cannot hold the tenant's later batches back forever.
struct Registration<'a> {
    order: &'a TenantOrder,
    ticket: u64,
    live: bool,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if self.live {
            self.order.state.lock().pending.remove(&self.ticket);
            self.order.turn.notify_all();
        }
    }
}

impl AckOrder {
    fn tenant(&self, tenant: &TenantId) -> Arc<TenantOrder> {
        let mut m = self.tenants.lock();
        match m.get(tenant) {
            Some(t) => t.clone(),
            None => {
                let t = Arc::new(TenantOrder::default());
                m.insert(tenant.clone(), t.clone());
                t
            }
        }
    }

    /// Runs `append` and then, in the tenant's ack order, `deliver` with
    /// its ack. A failed append delivers nothing and holds nothing back.
    pub fn run<E>(
        &self,
        tenant: &TenantId,
        append: impl FnOnce() -> Result<Ack, E>,
        deliver: impl FnOnce(&Ack),
    ) -> Result<Ack, E> {
        let order = self.tenant(tenant);
        let ticket = {
            let mut st = order.state.lock();
            let t = st.next_ticket;
            st.next_ticket += 1;
            st.pending.insert(t);
            t
        };
        let mut reg = Registration {
            order: &order,
            ticket,
            live: true,
        };
        let result = append();
        reg.live = false;
        let mut st = order.state.lock();
        st.pending.remove(&ticket);
        let ack = match result {
            Ok(ack) => ack,
            Err(e) => {
                drop(st);
                order.turn.notify_all();
                return Err(e);
            }
        };
        let barrier = st.next_ticket - 1;
        st.done.insert(ack.lsn.0, barrier);
        order.turn.notify_all();
        loop {
            let first_done = st.done.keys().next().copied();
            let blocked_by_pending = st.pending.first().is_some_and(|p| *p <= barrier);
            if first_done == Some(ack.lsn.0) && !blocked_by_pending {
                break;
            }
            order.turn.wait(&mut st);
        }
        // Removed first, so an observer that panics leaves no entry behind
        // to block the tenant's later batches.
        st.done.remove(&ack.lsn.0);
        deliver(&ack);
        drop(st);
        order.turn.notify_all();
        Ok(ack)
    }

    /// Forgets a deleted tenant.
    pub fn forget(&self, tenant: &TenantId) {
        self.tenants.lock().remove(tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulsestream_storage::Lsn;
    use std::sync::mpsc;

    fn ack(lsn: u64) -> Ack {
        Ack {
            lsn: Lsn(lsn),
            first_seq: lsn * 10,
            count: 1,
        }
    }

    #[test]
    fn a_later_lsn_returning_first_is_delivered_second() {
        let order = Arc::new(AckOrder::default());
        let tenant = TenantId::new("t").expect("tenant");
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let (release_first, wait_first) = mpsc::channel::<()>();
        let (registered, first_registered) = mpsc::channel::<()>();

        // The first append registers and gets LSN 1, but returns late.
        let first = {
            let (order, tenant, delivered) = (order.clone(), tenant.clone(), delivered.clone());
            std::thread::spawn(move || {
                order.run::<()>(
                    &tenant,
                    || {
                        registered.send(()).expect("send");
                        wait_first.recv().expect("released");
                        Ok(ack(1))
                    },
                    |a| delivered.lock().push(a.lsn.0),
                )
            })
        };
        first_registered.recv().expect("registered");
        // The second gets LSN 2 and returns at once: it must wait.
        let second = {
            let (order, tenant, delivered) = (order.clone(), tenant.clone(), delivered.clone());
            std::thread::spawn(move || {
                order.run::<()>(&tenant, || Ok(ack(2)), |a| delivered.lock().push(a.lsn.0))
            })
        };
        // Wait (bounded) until the second has returned from its append.
        let probe = order.tenant(&tenant);
        for _ in 0..10_000 {
            if probe.state.lock().done.contains_key(&2) {
                break;
            }
            std::thread::yield_now();
        }
        assert!(
            probe.state.lock().done.contains_key(&2),
            "second append returned"
        );
        // Nothing can be delivered while the first is in the store.
        assert!(delivered.lock().is_empty());
        release_first.send(()).expect("release");
        first.join().expect("first").expect("ok");
        second.join().expect("second").expect("ok");
        assert_eq!(*delivered.lock(), vec![1, 2]);
    }

    #[test]
    fn failures_hold_nothing_back_and_later_registrations_do_not_block() {
        let order = AckOrder::default();
        let tenant = TenantId::new("t").expect("tenant");
        let mut seen = Vec::new();
        assert!(
            order
                .run(&tenant, || Err("disk"), |_| seen.push(0))
                .is_err()
        );
        order
            .run::<()>(&tenant, || Ok(ack(5)), |a| seen.push(a.lsn.0))
            .expect("ok");
        order
            .run::<()>(&tenant, || Ok(ack(7)), |a| seen.push(a.lsn.0))
            .expect("ok");
        assert_eq!(seen, vec![5, 7]);
    }
}
