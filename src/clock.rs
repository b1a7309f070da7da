//! The monotonic clock that TTLs and windows are read on. The unit tests move it on instead of sleeping
//! through a TTL: on the calling thread only, so tests running side by side do not see each other's time.

#[cfg(not(test))]
pub fn now() -> std::time::Instant {
    std::time::Instant::now()
}

#[cfg(test)]
pub use moved::{advance, now};

#[cfg(test)]
mod moved {
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    thread_local! {
        static AHEAD: Cell<Duration> = const { Cell::new(Duration::ZERO) };
    }

    pub fn now() -> Instant {
        Instant::now() + AHEAD.get()
    }

    /// Moves this thread's clock on by `by`.
    pub fn advance(by: Duration) {
        AHEAD.set(AHEAD.get() + by);
    }
}
