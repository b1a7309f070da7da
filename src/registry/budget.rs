//! The registry calls a process may make: a token bucket every backend shares.

use std::sync::{Arc, OnceLock};

use crate::rate::TokenBucket;

/// Registry calls per second, all backends of the process together (and as many at once): random topic
/// names, or a restart with thousands of topics, cannot turn into a flood of Glue calls.
pub const REGISTRY_CALLS_PER_SECOND: u32 = 100;

/// The budget every backend of the process shares.
pub fn process() -> Arc<TokenBucket> {
    static PROCESS: OnceLock<Arc<TokenBucket>> = OnceLock::new();
    PROCESS.get_or_init(|| Arc::new(TokenBucket::new(REGISTRY_CALLS_PER_SECOND, REGISTRY_CALLS_PER_SECOND))).clone()
}
