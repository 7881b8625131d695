//! The leases this worker holds right now: renewed by the maintenance loop while their jobs run,
//! forgotten when a job's task ends in any way (a panic included), so a lease can never be kept
//! alive for a job nobody works on.
use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::queue::Lease;

#[derive(Clone, Default)]
pub struct InFlight(Arc<Mutex<HashSet<Lease>>>);

/// Removes its lease from the set when dropped.
pub struct Held {
    set: InFlight,
    lease: Lease,
}

impl InFlight {
    pub fn hold(&self, lease: Lease) -> Held {
        self.lock().insert(lease.clone());
        Held {
            set: self.clone(),
            lease,
        }
    }

    pub fn snapshot(&self) -> Vec<Lease> {
        self.lock().iter().cloned().collect()
    }

    fn lock(&self) -> MutexGuard<'_, HashSet<Lease>> {
        // The set stays consistent even if a holder panicked mid-insert: HashSet ops are atomic
        // with respect to unwinding, so a poisoned lock is safe to keep using.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Held {
    pub fn lease(&self) -> &Lease {
        &self.lease
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.set.lock().remove(&self.lease);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_held_until_its_guard_goes_even_on_panic() {
        let set = InFlight::default();
        let held = set.hold(Lease::from_member("1:a".into()).unwrap());
        assert_eq!(set.snapshot().len(), 1);
        drop(held);
        assert!(set.snapshot().is_empty());
        let s = set.clone();
        let _ = std::thread::spawn(move || {
            let _held = s.hold(Lease::from_member("2:b".into()).unwrap());
            panic!("job task died");
        })
        .join();
        assert!(set.snapshot().is_empty());
    }
}
