//! The limits a backend holds its requests to: what may be in flight at once, and what the idempotency
//! store may remember.

use std::time::Duration;

/// `max_in_flight_records`, `max_in_flight_bytes` and the Retry-After of a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    pub records: usize,
    /// A request's bytes: its body, key and headers as received.
    pub bytes: usize,
    /// What a refused caller is told to wait before it retries.
    pub retry_after_s: u32,
}

/// `idempotency_window_s`, `idempotency_max_keys`, `idempotency_max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyLimits {
    /// How long a stored record's answer is replayed.
    pub window: Duration,
    pub max_keys: usize,
    pub max_bytes: usize,
}
