//! Backpressure: how much one backend holds at once. A record is held from the moment it is admitted
//! until librdkafka's verdict on it (or the failure before it was sent); past the backend's limits a
//! request is refused at once with 429 and `Retry-After`, publishing nothing. Without the limits a
//! broker slower than the offered load grows librdkafka's queue, and every caller's wait with it, until
//! requests time out with 504s that say nothing certain.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::AdmissionLimits;
use crate::outcome::Failure;

/// A backend's limits (`max_in_flight_records`, `max_in_flight_bytes`) and what it holds.
pub struct Admission {
    limits: AdmissionLimits,
    records: AtomicUsize,
    bytes: AtomicUsize,
    /// Requests admitted and not answered yet: a permit's share of the limits is released before its
    /// caller is answered (who may send the next request at once), the request is open until after.
    open: AtomicUsize,
    /// Signalled when the last open request ends, for `wait_idle`.
    idle: (Mutex<()>, Condvar),
}

/// One admitted request's share; released when dropped.
pub struct Permit {
    admission: Arc<Admission>,
    records: usize,
    bytes: usize,
}

impl Admission {
    pub fn new(limits: AdmissionLimits) -> Arc<Admission> {
        let idle = (Mutex::new(()), Condvar::new());
        let (records, bytes, open) = (AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0));
        Arc::new(Admission { limits, records, bytes, open, idle })
    }

    /// Waits until every request admitted has ended (its permit dropped), or `within` passed; whether
    /// they all have.
    pub fn wait_idle(&self, within: Duration) -> bool {
        let end = Instant::now() + within;
        let (lock, released) = &self.idle;
        let mut guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
        while self.open.load(Ordering::Acquire) > 0 {
            let Some(left) = end.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else { return false };
            guard = released.wait_timeout(guard, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        true
    }

    pub fn retry_after_s(&self) -> u32 {
        self.limits.retry_after_s
    }

    /// Admits a request of `records` and `bytes`, or refuses it when the backend would hold more than
    /// its limit of records or bytes. A request larger than a limit alone is admitted when nothing else is
    /// held, so that a request within `max_body_bytes` and `max_batch_records` is never refused forever.
    pub fn admit(self: &Arc<Self>, topic: &str, records: usize, bytes: usize) -> Result<Permit, Failure> {
        let held_records = self.records.fetch_add(records, Ordering::AcqRel);
        let held = self.bytes.fetch_add(bytes, Ordering::AcqRel);
        self.open.fetch_add(1, Ordering::AcqRel);
        // Taken first, then checked: two callers racing for the last place cannot both get it.
        let permit = Permit { admission: Arc::clone(self), records, bytes };
        let limits = &self.limits;
        let what = if held_records > 0 && held_records + records > limits.records {
            format!("records waiting for Kafka (max_in_flight_records: {})", limits.records)
        } else if held > 0 && held + bytes > limits.bytes {
            format!("bytes waiting for Kafka (max_in_flight_bytes: {})", limits.bytes)
        } else {
            return Ok(permit);
        };
        Err(Failure::overloaded(
            format!(
                "topic {topic}: not stored: the gateway already holds its limit of {what}; retry after {} s",
                limits.retry_after_s
            ),
            limits.retry_after_s,
        ))
    }
}

impl Permit {
    /// Gives back the request's share of the limits; the request stays open until the permit is dropped.
    pub fn release_share(&mut self) {
        self.admission.bytes.fetch_sub(std::mem::take(&mut self.bytes), Ordering::AcqRel);
        self.admission.records.fetch_sub(std::mem::take(&mut self.records), Ordering::AcqRel);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.release_share();
        if self.admission.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Under the lock: a waiter between its check and its wait cannot miss the signal.
            let (lock, released) = &self.admission.idle;
            drop(lock.lock().unwrap_or_else(PoisonError::into_inner));
            released.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(a: &Admission) -> (usize, usize) {
        (a.records.load(Ordering::Acquire), a.bytes.load(Ordering::Acquire))
    }

    #[test]
    fn past_either_limit_a_request_is_refused_429_with_retry_after_and_a_release_makes_room() {
        let admission = Admission::new(AdmissionLimits { records: 2, bytes: 100, retry_after_s: 3 });
        let a = admission.admit("t", 1, 40).unwrap();
        let b = admission.admit("t", 1, 40).unwrap();
        let refused = admission.admit("t", 1, 1).err().unwrap();
        assert_eq!((refused.status, refused.retry_after_s), (429, 3));
        assert!(refused.message.contains("max_in_flight_records: 2") && refused.message.contains("retry after 3 s"));
        drop(a);
        let refused = admission.admit("t", 1, 61).err().unwrap();
        assert!(refused.message.contains("max_in_flight_bytes: 100"), "{}", refused.message);
        let c = admission.admit("t", 1, 60).unwrap();
        assert_eq!(held(&admission), (2, 100));
        drop((b, c));
        assert_eq!(held(&admission), (0, 0), "refusals hold nothing");
    }

    #[test]
    fn waiting_for_idle_ends_when_the_last_permit_goes() {
        let admission = Admission::new(AdmissionLimits { records: 10, bytes: 100, retry_after_s: 1 });
        assert!(admission.wait_idle(Duration::ZERO), "nothing held");
        let (mut a, b) = (admission.admit("t", 1, 1).unwrap(), admission.admit("t", 2, 1).unwrap());
        assert!(!admission.wait_idle(Duration::ZERO), "two permits held");
        // A share given back before its caller is answered frees the limits, not the request.
        a.release_share();
        drop(admission.admit("t", 8, 99).expect("a's share is free"));
        assert!(!admission.wait_idle(Duration::ZERO), "a is not answered yet");
        let released = std::thread::spawn(move || {
            drop(a);
            drop(b);
        });
        assert!(admission.wait_idle(Duration::from_secs(600)), "woken by the last release");
        released.join().unwrap();
    }

    #[test]
    fn a_request_larger_than_a_limit_passes_alone() {
        let admission = Admission::new(AdmissionLimits { records: 10, bytes: 100, retry_after_s: 1 });
        let alone = admission.admit("t", 1, 500).unwrap();
        assert!(admission.admit("t", 1, 1).is_err());
        drop(alone);
        let batch = admission.admit("t", 25, 50).unwrap();
        assert_eq!(held(&admission), (25, 50));
        assert!(admission.admit("t", 1, 1).is_err());
        drop(batch);
        let batch = admission.admit("t", 6, 10).unwrap();
        assert!(admission.admit("t", 5, 10).is_err(), "6 + 5 records is past 10");
        let rest = admission.admit("t", 4, 10).unwrap();
        drop((batch, rest));
        assert_eq!(held(&admission), (0, 0));
    }
}
