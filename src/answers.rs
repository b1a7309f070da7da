//! Answers queued for a caller that collects them in batches. Calling back into the caller once per record
//! is what an asynchronous C API usually does, but a Go caller pays a scheduler round trip for every call
//! into Go from a thread it did not start, and a Go thread blocked in C holds a scheduler slot until Go
//! notices. So the queue also signals an eventfd, which Go's poller waits on like a socket: the collector
//! sleeps in Go and drains a batch per wake-up.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use crate::outcome::{self, Answer, Outcome};

/// One finished publish: the caller's context, the HTTP status and the response JSON.
#[derive(Debug, PartialEq, Eq)]
pub struct Ready {
    pub context: usize,
    pub status: u16,
    pub response: String,
}

pub struct AnswerQueue {
    ready: Mutex<VecDeque<Ready>>,
    arrived: Condvar,
    /// Readable while answers wait (an eventfd, non-blocking).
    wake: OwnedFd,
}

impl AnswerQueue {
    pub fn new() -> std::io::Result<Self> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new descriptor we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd was just created and is owned by nothing else.
        let wake = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(AnswerQueue { ready: Mutex::default(), arrived: Condvar::new(), wake })
    }

    /// The descriptor that turns readable when an answer arrives on an empty queue: read it (8 bytes)
    /// before draining the queue with `take`. Owned by the queue.
    pub fn wake_fd(&self) -> RawFd {
        self.wake.as_raw_fd()
    }

    /// The answer that queues `context`'s outcome here.
    pub fn answer(self: &Arc<Self>, context: usize) -> Answer {
        let queue = Arc::clone(self);
        Answer::new(move |outcome: Outcome| {
            queue.push(Ready { context, status: outcome::status(&outcome), response: outcome::to_json(&outcome) });
        })
    }

    fn push(&self, ready: Ready) {
        let mut queue = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
        let was_empty = queue.is_empty();
        queue.push_back(ready);
        drop(queue);
        // The collector waits only on an empty queue: later answers find it awake.
        if was_empty {
            self.arrived.notify_one();
            // SAFETY: writes 8 bytes from a live u64 to our own descriptor. It cannot fail short of the
            // counter's 2^64-2 limit, far beyond the number of unread wake-ups.
            unsafe { libc::write(self.wake.as_raw_fd(), (&1u64 as *const u64).cast(), 8) };
        }
    }

    /// Moves up to `max` answers into `batch` (emptied first), waiting up to `timeout` for the first one.
    pub fn take(&self, batch: &mut Vec<Ready>, max: usize, timeout: Duration) {
        batch.clear();
        let queue = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut queue, _) =
            self.arrived.wait_timeout_while(queue, timeout, |q| q.is_empty()).unwrap_or_else(PoisonError::into_inner);
        let n = max.min(queue.len());
        batch.extend(queue.drain(..n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Delivery, Failure};
    use std::time::Instant;

    #[test]
    fn answers_arrive_in_batches_with_their_context_and_status() {
        let queue = Arc::new(AnswerQueue::new().unwrap());
        queue.answer(1).send(Ok(Delivery { partition: 0, offset: 5 }));
        queue.answer(2).send(Err(Failure::bad_request("body: missing")));
        drop(queue.answer(3)); // never answered: 503
        let mut batch = Vec::new();
        queue.take(&mut batch, 2, Duration::ZERO);
        assert_eq!(
            batch,
            [
                Ready {
                    context: 1,
                    status: 200,
                    response: r#"{"statusCode":"200","message":"ok","partition":0,"offset":5}"#.into()
                },
                Ready { context: 2, status: 400, response: r#"{"statusCode":"400","message":"body: missing"}"#.into() },
            ]
        );
        queue.take(&mut batch, 2, Duration::ZERO);
        assert_eq!((batch.len(), batch[0].context, batch[0].status), (1, 3, 503));
    }

    #[test]
    fn a_waiting_collector_wakes_for_an_answer_from_another_thread_and_times_out_without_one() {
        let queue = Arc::new(AnswerQueue::new().unwrap());
        let mut batch = vec![Ready { context: 9, status: 200, response: String::new() }];
        let started = Instant::now();
        queue.take(&mut batch, 8, Duration::from_millis(50));
        assert!(batch.is_empty() && started.elapsed() >= Duration::from_millis(50));

        let answer = queue.answer(7);
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            answer.send(Ok(Delivery { partition: 1, offset: 2 }));
        });
        queue.take(&mut batch, 8, Duration::from_secs(10));
        assert_eq!((batch.len(), batch[0].context), (1, 7));
        sender.join().unwrap();
    }

    fn wake_ups(queue: &AnswerQueue) -> u64 {
        let mut count = 0u64;
        // SAFETY: reads at most 8 bytes into a live u64.
        let n = unsafe { libc::read(queue.wake_fd(), (&mut count as *mut u64).cast(), 8) };
        if n == 8 {
            count
        } else {
            0
        }
    }

    #[test]
    fn the_descriptor_turns_readable_when_an_empty_queue_gets_an_answer() {
        let queue = Arc::new(AnswerQueue::new().unwrap());
        assert_eq!(wake_ups(&queue), 0, "nothing yet (and the read does not block)");
        queue.answer(1).send(Ok(Delivery { partition: 0, offset: 0 }));
        queue.answer(2).send(Ok(Delivery { partition: 0, offset: 1 }));
        assert_eq!(wake_ups(&queue), 1, "once for the first answer on an empty queue");
        let mut batch = Vec::new();
        queue.take(&mut batch, 8, Duration::ZERO);
        assert_eq!(batch.len(), 2);
        queue.answer(3).send(Ok(Delivery { partition: 0, offset: 2 }));
        assert_eq!(wake_ups(&queue), 1);
    }
}
