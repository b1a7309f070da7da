//! The registry calls a process may make: a token bucket every backend shares.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

/// Registry calls per second, all backends of the process together (and as many at once): random topic
/// names, or a restart with thousands of topics, cannot turn into a flood of Glue calls.
pub const REGISTRY_CALLS_PER_SECOND: u32 = 100;

/// A token bucket of registry calls.
pub struct CallBudget {
    state: Mutex<(f64, Instant)>,
    per_second: f64,
}

impl CallBudget {
    pub fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second);
        CallBudget { state: Mutex::new((per_second, Instant::now())), per_second }
    }

    /// The budget every backend of the process shares.
    pub fn process() -> Arc<CallBudget> {
        static PROCESS: OnceLock<Arc<CallBudget>> = OnceLock::new();
        PROCESS.get_or_init(|| Arc::new(CallBudget::new(REGISTRY_CALLS_PER_SECOND))).clone()
    }

    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// Takes one call, if there is one left.
    pub fn take(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let (tokens, last) = *state;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * self.per_second).min(self.per_second);
        let taken = tokens >= 1.0;
        *state = (if taken { tokens - 1.0 } else { tokens }, now);
        taken
    }
}
