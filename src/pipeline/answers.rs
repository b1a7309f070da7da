//! Answers queued for a caller that collects them in batches. Calling back into the caller once per record
//! is what an asynchronous C API usually does, but a Go caller pays a scheduler round trip for every call
//! into Go from a thread it did not start, and a Go thread blocked in C holds a scheduler slot until Go
//! notices. So the queue also signals an eventfd, which Go's poller waits on like a socket: the collector
//! sleeps in Go and drains a batch per wake-up.
//!
//! A caller may stop waiting (the gateway's deadline passed, the client went away) while its record is
//! still on its way: the queue knows which requests are still waited for, and gives back the outcome of
//! one nobody waits for any more, to be logged instead of lost with the answer nobody reads.

use std::collections::{HashSet, VecDeque};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::outcome::{self, Failure, Outcome};
use crate::pipeline::trip::Caller;

/// One finished publish: the caller's context, the HTTP status and the response JSON.
#[derive(Debug, PartialEq, Eq)]
pub struct Ready {
    pub context: usize,
    pub status: u16,
    pub response: String,
    /// `Retry-After`, in seconds; 0: none.
    pub retry_after_s: u32,
}

pub struct AnswerQueue {
    state: Mutex<State>,
    arrived: Condvar,
    /// Readable while answers wait (non-blocking).
    wake: EventFd,
}

#[derive(Default)]
struct State {
    ready: VecDeque<Ready>,
    /// The contexts whose caller still waits and whose answer has not come.
    waited_for: HashSet<usize>,
}

/// A request's place on the queue, taken before anything else: its caller is waited for from then on.
/// Dropped unused (a bug unwound past it), it answers 500, so no caller waits forever.
pub struct Slot {
    queue: Arc<AnswerQueue>,
    context: usize,
    used: bool,
}

impl AnswerQueue {
    pub fn new() -> std::io::Result<Self> {
        let wake = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?;
        Ok(AnswerQueue { state: Mutex::default(), arrived: Condvar::new(), wake })
    }

    /// The descriptor that turns readable when an answer arrives on an empty queue: read it (8 bytes)
    /// before draining the queue with `take`. Owned by the queue.
    pub fn wake_fd(&self) -> RawFd {
        self.wake.as_raw_fd()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The slot of the request `context`.
    pub fn slot(self: &Arc<Self>, context: usize) -> Slot {
        self.state().waited_for.insert(context);
        Slot { queue: Arc::clone(self), context, used: false }
    }

    /// The caller of `context` stopped waiting. True when its answer had not come: its outcome will be
    /// logged when it does. False when the answer is already queued or handed out.
    pub fn abandon(&self, context: usize) -> bool {
        self.state().waited_for.remove(&context)
    }

    /// Queues `context`'s outcome; gives it back when its caller stopped waiting. Still queued then: the
    /// collector releases what it keeps per context when it takes the answer.
    fn push(&self, context: usize, outcome: Outcome) -> Result<(), Outcome> {
        let ready = Ready {
            context,
            status: outcome::status(&outcome),
            response: outcome::to_json(&outcome),
            retry_after_s: outcome::retry_after_s(&outcome),
        };
        let mut state = self.state();
        let waited_for = state.waited_for.remove(&context);
        let was_empty = state.ready.is_empty();
        state.ready.push_back(ready);
        drop(state);
        // The collector waits only on an empty queue: later answers find it awake.
        if was_empty {
            self.arrived.notify_one();
            // It cannot fail short of the counter's 2^64-2 limit, far beyond the number of unread wake-ups.
            let _ = self.wake.write(1);
        }
        if waited_for {
            Ok(())
        } else {
            Err(outcome)
        }
    }

    /// Moves up to `max` answers into `batch` (emptied first), waiting up to `timeout` for the first one.
    pub fn take(&self, batch: &mut Vec<Ready>, max: usize, timeout: Duration) {
        batch.clear();
        let (mut state, _) = self
            .arrived
            .wait_timeout_while(self.state(), timeout, |s| s.ready.is_empty())
            .unwrap_or_else(PoisonError::into_inner);
        let n = max.min(state.ready.len());
        batch.extend(state.ready.drain(..n));
    }
}

impl Slot {
    /// Where the request's outcome goes: its context's place on the queue.
    pub fn caller(self) -> Caller {
        Box::new(move |outcome| {
            let mut slot = self;
            slot.used = true;
            slot.queue.push(slot.context, outcome)
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.used {
            let unused = Err(Failure::internal("krakend-kafka: internal error; nothing was sent"));
            drop(self.queue.push(self.context, unused));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Delivery, Failure};
    use std::time::Instant;

    #[test]
    fn answers_arrive_in_batches_with_their_context_status_and_retry_after() {
        let queue = Arc::new(AnswerQueue::new().unwrap());
        assert!(queue.slot(1).caller()(Ok(Delivery::Stored { partition: 0, offset: 5 })).is_ok());
        assert!(queue.slot(2).caller()(Err(Failure::overloaded("full", 3))).is_ok());
        drop(queue.slot(3).caller()); // never answered: 500
        let mut batch = Vec::new();
        queue.take(&mut batch, 2, Duration::ZERO);
        assert_eq!(
            batch,
            [
                Ready {
                    context: 1,
                    status: 200,
                    response: r#"{"statusCode":"200","message":"ok","partition":0,"offset":5}"#.into(),
                    retry_after_s: 0
                },
                Ready {
                    context: 2,
                    status: 429,
                    response: r#"{"statusCode":"429","message":"full"}"#.into(),
                    retry_after_s: 3
                },
            ]
        );
        queue.take(&mut batch, 2, Duration::ZERO);
        assert_eq!((batch.len(), batch[0].context, batch[0].status), (1, 3, 500));
    }

    #[test]
    fn a_waiting_collector_wakes_for_an_answer_from_another_thread_and_times_out_without_one() {
        let queue = Arc::new(AnswerQueue::new().unwrap());
        let mut batch = vec![Ready { context: 9, status: 200, response: String::new(), retry_after_s: 0 }];
        let started = Instant::now();
        queue.take(&mut batch, 8, Duration::from_millis(50));
        assert!(batch.is_empty() && started.elapsed() >= Duration::from_millis(50));

        let caller = queue.slot(7).caller();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            caller(Ok(Delivery::Stored { partition: 1, offset: 2 })).unwrap();
        });
        queue.take(&mut batch, 8, Duration::from_secs(10));
        assert_eq!((batch.len(), batch[0].context), (1, 7));
        sender.join().unwrap();
    }

    fn wake_ups(queue: &AnswerQueue) -> u64 {
        // Non-blocking: none yet is EAGAIN.
        queue.wake.read().unwrap_or(0)
    }

    #[test]
    fn the_descriptor_turns_readable_when_an_empty_queue_gets_an_answer() {
        let queue = Arc::new(AnswerQueue::new().unwrap());
        assert_eq!(wake_ups(&queue), 0, "nothing yet (and the read does not block)");
        queue.slot(1).caller()(Ok(Delivery::Stored { partition: 0, offset: 0 })).unwrap();
        queue.slot(2).caller()(Ok(Delivery::Stored { partition: 0, offset: 1 })).unwrap();
        assert_eq!(wake_ups(&queue), 1, "once for the first answer on an empty queue");
        let mut batch = Vec::new();
        queue.take(&mut batch, 8, Duration::ZERO);
        assert_eq!(batch.len(), 2);
        queue.slot(3).caller()(Ok(Delivery::Stored { partition: 0, offset: 2 })).unwrap();
        assert_eq!(wake_ups(&queue), 1);
    }

    #[test]
    fn a_request_is_abandoned_only_while_its_answer_has_not_come_and_is_still_queued_for_its_context() {
        let queue = Arc::new(AnswerQueue::new().unwrap());
        let early = queue.slot(1).caller();
        let late = queue.slot(2).caller();
        late(Ok(Delivery::Stored { partition: 0, offset: 0 })).unwrap();
        assert!(queue.abandon(1), "still on its way: the caller gets the 504");
        assert!(!queue.abandon(2), "already queued: the caller takes it");
        assert!(!queue.abandon(1), "once");
        let unwaited = early(Ok(Delivery::Stored { partition: 0, offset: 1 }));
        assert_eq!(unwaited, Err(Ok(Delivery::Stored { partition: 0, offset: 1 })), "given back, to be logged");
        let mut batch = Vec::new();
        queue.take(&mut batch, 8, Duration::ZERO);
        assert_eq!(batch.iter().map(|r| r.context).collect::<Vec<_>>(), [2, 1]);
        assert!(queue.state().waited_for.is_empty(), "nothing kept per request");
    }

    #[test]
    fn a_slot_dropped_unused_answers_500() {
        let queue = Arc::new(AnswerQueue::new().unwrap());
        drop(queue.slot(4));
        let mut batch = Vec::new();
        queue.take(&mut batch, 8, Duration::ZERO);
        assert_eq!((batch[0].context, batch[0].status), (4, 500));
        assert!(queue.state().waited_for.is_empty());
    }
}
