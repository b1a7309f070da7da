//! A token bucket: how the registry's call budget and the log's rate limit are kept.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Up to `per_second` takes a second, and up to `burst` at once after a quiet spell.
pub struct TokenBucket {
    state: Mutex<(f64, Instant)>,
    per_second: f64,
    burst: f64,
}

impl TokenBucket {
    pub fn new(per_second: u32, burst: u32) -> Self {
        let (per_second, burst) = (f64::from(per_second), f64::from(burst));
        TokenBucket { state: Mutex::new((burst, Instant::now())), per_second, burst }
    }

    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// Takes one token, if there is one left.
    pub fn take(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let (tokens, last) = *state;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * self.per_second).min(self.burst);
        let taken = tokens >= 1.0;
        *state = (if taken { tokens - 1.0 } else { tokens }, now);
        taken
    }

    /// Takes one token, waiting for it if none is left (the caller's own deadline bounds the wait).
    pub async fn take_waiting(&self) {
        while !self.take() {
            tokio::time::sleep(Duration::from_secs_f64(1.0 / self.per_second.max(1.0))).await;
        }
    }
}
