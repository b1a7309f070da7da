//! The process-wide tokio runtime that runs Glue calls, and the rule for starting threads.
//!
//! The library lives inside a Go process. Go kills the process when a signal such as SIGPIPE lands on a
//! thread it does not know and has no handler for, so every thread this library starts (tokio's
//! workers, librdkafka's threads) starts with all signals blocked and inherits that mask.

use std::sync::OnceLock;

use tokio::runtime::Runtime;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

pub fn runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        with_signals_blocked(|| {
            tokio::runtime::Builder::new_multi_thread()
                // Only schema fetches on a cache miss and credential refreshes run here; publishing does not.
                .worker_threads(1)
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
    struct Restore(libc::sigset_t);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: restores the mask saved below on this same thread.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
        }
    }
    // SAFETY: sigset_t is plain data, initialised by sigfillset/pthread_sigmask before it is read.
    let _restore = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
        Restore(old)
    };
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sigpipe_blocked() -> bool {
        // SAFETY: reads this thread's mask into a zeroed sigset_t.
        unsafe {
            let mut mask: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
            libc::sigismember(&mask, libc::SIGPIPE) == 1
        }
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
