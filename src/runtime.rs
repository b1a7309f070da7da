//! The process-wide tokio runtime that runs Glue calls, and the rule for starting threads.
//!
//! The library lives inside a Go process. Go kills the process when a signal such as SIGPIPE lands on a
//! thread it does not know and has no handler for, so every thread this library starts (tokio's
//! workers, librdkafka's threads) starts with all signals blocked and inherits that mask.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use nix::sys::signal::{SigSet, SigmaskHow};
use tokio::runtime::Runtime;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
/// The runtime's workers. In a gateway one is enough: the gateway's own threads serve HTTP and publish,
/// the runtime only waits (registry calls, AWS credentials, deadlines, the metrics listener). The service
/// serves HTTP on the runtime, and asks for a worker per core.
static WORKERS: AtomicUsize = AtomicUsize::new(1);

/// Sets the number of workers the runtime starts with; it has no effect once the runtime is running.
pub fn use_workers(workers: usize) {
    WORKERS.store(workers.max(1), Ordering::Relaxed);
}

pub fn runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        with_signals_blocked(|| {
            tokio::runtime::Builder::new_multi_thread()
                // Schema compiles and a cold topic's encodes go to tokio's blocking pool.
                .worker_threads(WORKERS.load(Ordering::Relaxed))
                .thread_name("krakend-kafka")
                .enable_all()
                .build()
                .expect("the tokio runtime starts (threads and an epoll fd are available)")
        })
    })
}

/// Runs `f` with every signal blocked on the calling thread, so threads it starts inherit the mask;
/// the caller's mask is restored afterwards, even if `f` panics.
pub fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(Option<SigSet>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(old) = &self.0 {
                // Setting a mask saved on this same thread cannot fail.
                let _ = old.thread_set_mask();
            }
        }
    }
    // pthread_sigmask fails only for an invalid `how`: SIG_BLOCK is valid.
    let _restore = Restore(SigSet::all().thread_swap_mask(SigmaskHow::SIG_BLOCK).ok());
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

    fn sigpipe_blocked() -> bool {
        SigSet::thread_get_mask().unwrap().contains(Signal::SIGPIPE)
    }

    #[test]
    fn threads_started_inside_inherit_the_blocked_mask_and_the_caller_gets_its_own_back() {
        assert!(!sigpipe_blocked());
        let child = with_signals_blocked(|| std::thread::spawn(sigpipe_blocked));
        assert!(child.join().unwrap());
        assert!(!sigpipe_blocked());
        assert!(runtime().block_on(async { tokio::spawn(async { sigpipe_blocked() }).await.unwrap() }));
    }
}
