//! The deadline of a backend's wait for the broker. librdkafka answers every record by itself, but not
//! always within the caller's budget: a record already sent on a connection that went dead waits for its
//! request to time out, and a producer shared with backends of a longer budget gives up later. So every
//! record handed to the producer is also registered here: when `timeout_ms` passes without librdkafka's
//! verdict, its caller is answered 504 (it may still be stored), and the verdict, when it comes, is logged.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::outcome::{Answer, Failure, Outcome};
use crate::runtime;
use crate::telemetry::log;

/// The records of one backend waiting for librdkafka, in the order they were sent: their deadlines are
/// in that order too, so the earliest is always first.
pub struct Deadlines {
    budget: Duration,
    waiting: Mutex<Waiting>,
    /// Wakes the sweeper when the first record arrives in an empty queue, and when `self` goes.
    wake: Arc<Notify>,
}

/// The queue, and the length at which its answered records are dropped wherever they are.
#[derive(Default)]
struct Waiting {
    queue: VecDeque<(Instant, Weak<Pending>)>,
    compact_at: usize,
}

/// Entries the queue may hold before it is first compacted.
const COMPACT_FIRST_AT: usize = 64;

struct Pending {
    topic: String,
    /// The answer covers a batch's records, not one record.
    batch: bool,
    answer: Mutex<Option<Answer>>,
}

impl Deadlines {
    /// Starts the backend's sweeper on the runtime; it ends when the returned value is dropped.
    pub fn new(budget: Duration) -> Arc<Deadlines> {
        Deadlines::start(budget).0
    }

    fn start(budget: Duration) -> (Arc<Deadlines>, tokio::task::JoinHandle<()>) {
        let deadlines = Arc::new(Deadlines { budget, waiting: Mutex::default(), wake: Arc::new(Notify::new()) });
        let sweeper = runtime::runtime().spawn(sweep(Arc::downgrade(&deadlines), Arc::clone(&deadlines.wake)));
        (deadlines, sweeper)
    }

    /// The answer to hand librdkafka for a record of `topic` sent now (or, `batch`, for a batch's records):
    /// it answers `answer` with librdkafka's verdict, unless the deadline came first.
    pub fn guard(&self, topic: &str, batch: bool, answer: Answer) -> Answer {
        let pending = Arc::new(Pending { topic: topic.to_owned(), batch, answer: Mutex::new(Some(answer)) });
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let Waiting { queue, compact_at } = &mut *waiting;
        // Most records are answered within milliseconds: drop those at the front as new ones come.
        while queue.front().is_some_and(|(_, p)| p.strong_count() == 0) {
            queue.pop_front();
        }
        // One record that waits for its deadline would keep every later one queued behind it (memory by
        // rate times timeout): past twice what was left last time, the answered ones go from anywhere,
        // at a cost spread over the records that filled the queue since.
        if queue.len() >= *compact_at {
            queue.retain(|(_, p)| p.strong_count() > 0);
            *compact_at = (2 * queue.len()).max(COMPACT_FIRST_AT);
        }
        let was_empty = queue.is_empty();
        queue.push_back((Instant::now() + self.budget, Arc::downgrade(&pending)));
        drop(waiting);
        if was_empty {
            self.wake.notify_one();
        }
        Answer::new(move |outcome| pending.settle(outcome))
    }

    /// Answers every record whose deadline passed; returns the next deadline, if any.
    fn expire_due(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut due = Vec::new();
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let queue = &mut waiting.queue;
        while let Some((deadline, pending)) = queue.front() {
            if pending.strong_count() > 0 && *deadline > now {
                break;
            }
            due.extend(pending.upgrade());
            queue.pop_front();
        }
        let next = queue.front().map(|(deadline, _)| *deadline);
        drop(waiting);
        for pending in due {
            pending.expire(self.budget);
        }
        next
    }
}

impl Drop for Deadlines {
    fn drop(&mut self) {
        self.wake.notify_one();
    }
}

async fn sweep(deadlines: Weak<Deadlines>, wake: Arc<Notify>) {
    loop {
        let next = match deadlines.upgrade() {
            Some(d) => d.expire_due(),
            None => return,
        };
        match next {
            // Woken by the deadline, or by a record arriving in an empty queue: look again either way.
            Some(at) => drop(tokio::time::timeout_at(at.into(), wake.notified()).await),
            None => wake.notified().await,
        }
    }
}

impl Pending {
    fn take(&self) -> Option<Answer> {
        self.answer.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    /// librdkafka's verdict: the caller's answer, or, after the deadline, a line in the log.
    fn settle(&self, outcome: Outcome) {
        match self.take() {
            Some(answer) => answer.send(outcome),
            None => log::unwaited(&self.topic, "answered 504 at its deadline", &outcome),
        }
    }

    fn expire(&self, budget: Duration) {
        if let Some(answer) = self.take() {
            let (topic, ms) = (&self.topic, budget.as_millis());
            let what = if self.batch { "the records" } else { "the record" };
            let message = format!(
                "topic {topic}: no acknowledgement from Kafka within {ms} ms; {what} may still be stored: check before \
                 you retry"
            );
            answer.send(Err(Failure::timeout(message)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Delivery;
    use std::sync::mpsc;

    /// An answer and its receiver: once the answer is sent (or dropped) the receiver is disconnected, so
    /// `recv()` after the one outcome proves there is no second, with no wait.
    fn answer() -> (Answer, mpsc::Receiver<Outcome>) {
        let (tx, rx) = mpsc::channel();
        (Answer::new(move |o| tx.send(o).unwrap()), rx)
    }

    #[test]
    fn a_verdict_in_time_is_the_answer_and_the_deadline_then_does_nothing() {
        let deadlines = Deadlines::new(Duration::from_millis(50));
        let (a, rx) = answer();
        deadlines.guard("t", false, a).send(Ok(Delivery::Stored { partition: 1, offset: 2 }));
        assert_eq!(rx.recv().unwrap(), Ok(Delivery::Stored { partition: 1, offset: 2 }));
        assert!(rx.recv().is_err(), "answered once");
    }

    #[test]
    fn no_verdict_by_the_deadline_is_a_504_that_says_the_record_may_be_stored() {
        let deadlines = Deadlines::new(Duration::from_millis(100));
        let (a, rx) = answer();
        let late = deadlines.guard("orders", false, a);
        let f = rx.recv().unwrap().unwrap_err();
        assert_eq!(f.status, 504);
        assert!(f.message.starts_with("topic orders: no acknowledgement from Kafka within 100 ms"), "{f:?}");
        assert!(f.message.contains("; the record may still be stored"), "{f:?}");
        assert!(rx.recv().is_err(), "the caller's answer is spent");
        late.send(Ok(Delivery::Stored { partition: 0, offset: 9 })); // logged, not answered again

        let (a, rx) = answer();
        let _batch = deadlines.guard("orders", true, a);
        let f = rx.recv().unwrap().unwrap_err();
        assert_eq!(f.status, 504);
        assert!(f.message.contains("; the records may still be stored"), "{f:?}");
    }

    #[test]
    fn records_expire_in_order_and_each_once_while_others_are_answered() {
        let deadlines = Deadlines::new(Duration::from_millis(150));
        let mut answered = Vec::new();
        let mut late = Vec::new();
        for i in 0..20 {
            let (a, rx) = answer();
            let guarded = deadlines.guard("t", false, a);
            if i % 2 == 0 {
                guarded.send(Ok(Delivery::Stored { partition: 0, offset: i }));
            } else {
                late.push(guarded);
            }
            answered.push(rx);
        }
        for (i, rx) in answered.iter().enumerate() {
            let outcome = rx.recv().unwrap();
            assert_eq!(
                outcome.map_err(|f| f.status),
                if i % 2 == 0 { Ok(Delivery::Stored { partition: 0, offset: i as i64 }) } else { Err(504) }
            );
            assert!(rx.recv().is_err(), "once");
        }
        assert!(deadlines.waiting.lock().unwrap().queue.is_empty(), "nothing left waiting");
    }

    #[test]
    fn one_record_waiting_for_its_deadline_keeps_no_answered_record_queued() {
        let deadlines = Deadlines::new(Duration::from_secs(600));
        let (slow, _rx) = answer();
        let _slow = deadlines.guard("t", false, slow);
        let mut longest = 0;
        for i in 0..100_000 {
            let (a, rx) = answer();
            deadlines.guard("t", false, a).send(Ok(Delivery::Stored { partition: 0, offset: i }));
            assert!(rx.recv().is_ok());
            longest = longest.max(deadlines.waiting.lock().unwrap().queue.len());
        }
        // The queue follows the records in flight (one), not the rate times the timeout (100,000).
        assert!(longest <= 2 * COMPACT_FIRST_AT, "{longest} entries for 1 record in flight");
    }

    #[test]
    fn the_sweeper_ends_with_its_backend() {
        let (deadlines, sweeper) = Deadlines::start(Duration::from_secs(60));
        let (a, rx) = answer();
        let guarded = deadlines.guard("t", false, a);
        let weak = Arc::downgrade(&deadlines);
        drop(deadlines);
        let ended = runtime::runtime().block_on(async { tokio::time::timeout(Duration::from_secs(30), sweeper).await });
        assert!(matches!(ended, Ok(Ok(()))), "the sweeper ended, neither stuck nor panicked: {ended:?}");
        assert!(weak.upgrade().is_none(), "nothing holds the backend's deadlines");
        guarded.send(Ok(Delivery::Stored { partition: 0, offset: 0 }));
        assert!(rx.recv().unwrap().is_ok(), "a record guarded before still gets its verdict");
    }
}
