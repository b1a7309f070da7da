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
    waiting: Mutex<VecDeque<(Instant, Weak<Pending>)>>,
    /// Wakes the sweeper when the first record arrives in an empty queue, and when `self` goes.
    wake: Arc<Notify>,
}

struct Pending {
    topic: String,
    answer: Mutex<Option<Answer>>,
}

impl Deadlines {
    /// Starts the backend's sweeper on the runtime; it ends when the returned value is dropped.
    pub fn new(budget: Duration) -> Arc<Deadlines> {
        let deadlines = Arc::new(Deadlines { budget, waiting: Mutex::default(), wake: Arc::new(Notify::new()) });
        runtime::runtime().spawn(sweep(Arc::downgrade(&deadlines), Arc::clone(&deadlines.wake)));
        deadlines
    }

    /// The answer to hand librdkafka for a record of `topic` sent now: it answers `answer` with
    /// librdkafka's verdict, unless the deadline came first.
    pub fn guard(&self, topic: &str, answer: Answer) -> Answer {
        let pending = Arc::new(Pending { topic: topic.to_owned(), answer: Mutex::new(Some(answer)) });
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        // Most records are answered within milliseconds: drop those at the front as new ones come, so the
        // queue holds about what is really in flight.
        while waiting.front().is_some_and(|(_, p)| p.strong_count() == 0) {
            waiting.pop_front();
        }
        let was_empty = waiting.is_empty();
        waiting.push_back((Instant::now() + self.budget, Arc::downgrade(&pending)));
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
        while let Some((deadline, pending)) = waiting.front() {
            if pending.strong_count() > 0 && *deadline > now {
                break;
            }
            due.extend(pending.upgrade());
            waiting.pop_front();
        }
        let next = waiting.front().map(|(deadline, _)| *deadline);
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
            answer.send(Err(Failure::timeout(format!(
                "topic {}: no acknowledgement from Kafka within {} ms; the record may still be stored: check before you retry",
                self.topic,
                budget.as_millis()
            ))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Delivery;
    use std::sync::mpsc;

    fn answer() -> (Answer, mpsc::Receiver<Outcome>) {
        let (tx, rx) = mpsc::channel();
        (Answer::new(move |o| tx.send(o).unwrap()), rx)
    }

    #[test]
    fn a_verdict_in_time_is_the_answer_and_the_deadline_then_does_nothing() {
        let deadlines = Deadlines::new(Duration::from_millis(50));
        let (a, rx) = answer();
        deadlines.guard("t", a).send(Ok(Delivery::Stored { partition: 1, offset: 2 }));
        assert_eq!(rx.recv().unwrap(), Ok(Delivery::Stored { partition: 1, offset: 2 }));
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err(), "answered once");
    }

    #[test]
    fn no_verdict_by_the_deadline_is_a_504_that_says_the_record_may_be_stored() {
        let deadlines = Deadlines::new(Duration::from_millis(100));
        let (a, rx) = answer();
        let started = Instant::now();
        let late = deadlines.guard("orders", a);
        let f = rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(f.status, 504);
        assert!(f.message.starts_with("topic orders: no acknowledgement from Kafka within 100 ms"), "{f:?}");
        assert!(f.message.contains("may still be stored"), "{f:?}");
        late.send(Ok(Delivery::Stored { partition: 0, offset: 9 })); // logged, not answered again
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
    }

    #[test]
    fn records_expire_in_order_and_each_once_while_others_are_answered() {
        let deadlines = Deadlines::new(Duration::from_millis(150));
        let mut answered = Vec::new();
        let mut late = Vec::new();
        for i in 0..20 {
            let (a, rx) = answer();
            let guarded = deadlines.guard("t", a);
            if i % 2 == 0 {
                guarded.send(Ok(Delivery::Stored { partition: 0, offset: i }));
            } else {
                late.push(guarded);
            }
            answered.push(rx);
            std::thread::sleep(Duration::from_millis(5));
        }
        for (i, rx) in answered.iter().enumerate() {
            let outcome = rx.recv_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(
                outcome.map_err(|f| f.status),
                if i % 2 == 0 { Ok(Delivery::Stored { partition: 0, offset: i as i64 }) } else { Err(504) }
            );
            assert!(rx.recv_timeout(Duration::from_millis(10)).is_err());
        }
        assert!(deadlines.waiting.lock().unwrap().is_empty(), "nothing left waiting");
    }

    #[test]
    fn the_sweeper_ends_with_its_backend() {
        let deadlines = Deadlines::new(Duration::from_secs(60));
        let (a, rx) = answer();
        let guarded = deadlines.guard("t", a);
        let weak = Arc::downgrade(&deadlines);
        drop(deadlines);
        assert!(weak.upgrade().is_none(), "the sweeper holds no strong reference");
        guarded.send(Ok(Delivery::Stored { partition: 0, offset: 0 }));
        assert!(rx.recv().unwrap().is_ok());
    }
}
