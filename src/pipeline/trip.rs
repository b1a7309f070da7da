//! One request's trip down the stages, from a front end's call to its final outcome. Each stage returns
//! what it found and the trip keeps it; when the outcome comes, the trip writes the request's metrics,
//! and the log line of an outcome whose caller stopped waiting, once, whatever the front end.

use std::time::Instant;

use crate::outcome::{self, Answer, Delivery, Outcome};
use crate::telemetry::log;
use crate::telemetry::metrics::{self, Answered, SchemaLookup, NO_TOPIC};

/// Where a front end takes its caller's outcome, exactly once. It gives the outcome back when the caller
/// stopped waiting for it (the gateway's deadline passed, the client went away): the trip logs it then.
pub type Caller = Box<dyn FnOnce(Outcome) -> Result<(), Outcome> + Send + Sync>;

pub struct Trip {
    started: Instant,
    topic: Option<String>,
    schema: Option<SchemaLookup>,
    replayed: bool,
}

impl Trip {
    /// A request that just arrived.
    pub fn start() -> Trip {
        Trip { started: Instant::now(), topic: None, schema: None, replayed: false }
    }

    /// The request's topic, once it was read.
    pub fn topic(&mut self, topic: &str) {
        self.topic = Some(topic.to_owned());
    }

    /// What the schema cache held for the request's topic, and whether its schema was found: the topic
    /// is served then (it passed the allow-list before), and takes a metrics label of its own.
    pub fn schema(&mut self, lookup: SchemaLookup, found: bool) {
        self.schema = Some(lookup);
        if let (true, Some(topic)) = (found, &self.topic) {
            metrics::served(topic);
        }
    }

    /// The request repeats an earlier one's Idempotency-Key: it gets that one's outcome.
    pub fn replayed(mut self) -> Trip {
        self.replayed = true;
        self
    }

    /// The answer to hand down the stages: it ends the trip with the outcome it is given, then gives it to
    /// `caller`. Dropped unanswered, it ends the trip with [`Answer`]'s 503.
    pub fn around(self, caller: Caller) -> Answer {
        Answer::new(move |outcome| self.end(outcome, caller))
    }

    fn end(self, outcome: Outcome, caller: Caller) {
        let status = outcome::status(&outcome);
        metrics::answered(&Answered {
            topic: self.topic.as_deref(),
            status,
            latency: (status == 200).then(|| self.started.elapsed()),
            schema: self.schema,
            replayed: self.replayed,
            // A repeat's 429 is its first request's: counted there.
            refused: !self.replayed && overloaded(&outcome),
        });
        if let Err(outcome) = caller(outcome) {
            let topic = self.topic.as_deref().unwrap_or(NO_TOPIC);
            log::unwaited(topic, "whose caller stopped waiting", &outcome);
        }
    }
}

/// Whether the request, or a record of its batch, was refused 429 at once (nothing of it was sent).
fn overloaded(outcome: &Outcome) -> bool {
    match outcome {
        Ok(Delivery::Batch(outcomes)) => outcomes.iter().any(overloaded),
        Ok(_) => false,
        Err(f) => f.status == 429,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::sync_channel;

    use super::*;
    use crate::outcome::Failure;

    #[test]
    fn the_caller_gets_the_outcome_once_and_an_unanswered_trip_ends_in_503() {
        let (tx, rx) = sync_channel(2);
        let caller =
            |tx: std::sync::mpsc::SyncSender<Outcome>| -> Caller { Box::new(move |o| tx.send(o).map_err(|e| e.0)) };
        let mut trip = Trip::start();
        trip.topic("trip-unit");
        trip.around(caller(tx.clone())).send(Ok(Delivery::Stored { partition: 0, offset: 3 }));
        drop(Trip::start().around(caller(tx)));
        assert_eq!(rx.recv().unwrap(), Ok(Delivery::Stored { partition: 0, offset: 3 }));
        assert_eq!(rx.recv().unwrap().unwrap_err().status, 503);
    }

    #[test]
    fn a_batch_with_a_record_refused_at_once_is_a_refusal() {
        let stored = Ok(Delivery::Stored { partition: 0, offset: 1 });
        let full = Err(Failure::overloaded("queue full", 1));
        assert!(overloaded(&Ok(Delivery::Batch(vec![stored.clone(), full.clone()]))));
        assert!(overloaded(&full));
        assert!(!overloaded(&Ok(Delivery::Batch(vec![stored]))));
        assert!(!overloaded(&Err(Failure::unavailable("down"))));
    }
}
