//! The idempotency keys of one process, within the backend's limits of keys and bytes: a key counts its
//! text, its stored outcome (a batch's, every record's) and the repeats waiting on it.

use std::collections::HashMap;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::clock;
use crate::config::IdempotencyLimits;
use crate::outcome::{self, Answer, Delivery, Failure, Outcome};
use crate::pipeline::idempotency::{self as idempotency, Begun, Fingerprint, MAX_REPEATS_WAITING};

/// What each key costs beside its topic and key text: the map's slot (its fingerprint among it), the
/// expiry queue's item, the strings' headers (measured by size_of, rounded up).
const ENTRY_BYTES: usize = 160;
/// What a repeat waiting on a key costs: its answer and its caller's, with the trip they carry.
const WAITER_BYTES: usize = 256;
pub struct Local {
    limits: IdempotencyLimits,
    /// The backend's `Retry-After` for a 429.
    retry_after_s: u32,
    state: Mutex<State>,
}

type Id = (String, String);

#[derive(Default)]
struct State {
    entries: HashMap<Id, Entry>,
    /// Stored records' keys, oldest first, with the end of their window.
    expiry: VecDeque<(Instant, Id)>,
    bytes: usize,
}

struct Entry {
    fingerprint: Fingerprint,
    phase: Phase,
    /// What it holds, as counted in `State::bytes`.
    bytes: usize,
}

enum Phase {
    /// The first request's record is on its way; repeats wait here for its outcome.
    InFlight(Vec<Answer>),
    Stored(Outcome),
}

/// The first request of a key: settles the key with the record's outcome, once.
pub struct Ticket {
    store: Arc<Local>,
    id: Option<Id>,
}

impl Local {
    pub fn new(limits: IdempotencyLimits, retry_after_s: u32) -> Arc<Local> {
        Arc::new(Local { limits, retry_after_s, state: Mutex::default() })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the request of `key` on `topic` is: the first of its key, or a repeat.
    pub fn begin(self: &Arc<Self>, topic: &str, key: &str, fingerprint: Fingerprint) -> Begun<'_> {
        let id = (topic.to_owned(), key.to_owned());
        let mut state = self.state();
        let now = clock::now();
        while state.expiry.front().is_some_and(|(end, _)| *end <= now) {
            state.forget_oldest();
        }
        let size = ENTRY_BYTES + topic.len() + key.len();
        let (keys, adds) = match state.entries.get(&id) {
            None => (1, size),
            Some(Entry { phase: Phase::InFlight(waiting), .. }) if waiting.len() >= MAX_REPEATS_WAITING => {
                return Begun::Refused(idempotency::too_many_waiting(topic, key, self.retry_after_s))
            }
            Some(Entry { phase: Phase::InFlight(_), .. }) => (0, WAITER_BYTES),
            Some(_) => (0, 0),
        };
        while state.entries.len() + keys > self.limits.max_keys || state.bytes + adds > self.limits.max_bytes {
            if !state.forget_oldest() {
                return Begun::Refused(self.overloaded(format!(
                    "topic {topic}: not stored: the gateway holds its limit of idempotency keys in flight"
                )));
            }
        }
        match state.entries.get(&id) {
            Some(entry) if entry.fingerprint != fingerprint => {
                Begun::Refused(idempotency::reused(topic, key, self.limits.window))
            }
            Some(Entry { phase: Phase::InFlight(_), .. }) => {
                Begun::InFlight(idempotency::Waiting::Local(Waiting { state, id }))
            }
            Some(Entry { phase: Phase::Stored(outcome), .. }) => Begun::Stored(outcome.clone()),
            None => {
                state
                    .entries
                    .insert(id.clone(), Entry { fingerprint, phase: Phase::InFlight(Vec::new()), bytes: size });
                state.bytes += size;
                Begun::First(idempotency::Ticket::Local(Ticket { store: Arc::clone(self), id: Some(id) }))
            }
        }
    }

    fn overloaded(&self, why: String) -> Failure {
        idempotency::overloaded(why, self.retry_after_s)
    }
}

/// What a stored outcome holds in memory: a batch's, each of its records'.
fn outcome_bytes(outcome: &Outcome) -> usize {
    std::mem::size_of::<Outcome>()
        + match outcome {
            Ok(Delivery::Batch(outcomes)) => outcomes.iter().map(outcome_bytes).sum(),
            Ok(_) => 0,
            Err(f) => f.message.len(),
        }
}

/// A repeat of a request in flight, holding the store until it joins that request's waiters (so the
/// outcome cannot come in between).
pub struct Waiting<'a> {
    state: MutexGuard<'a, State>,
    id: Id,
}

impl Waiting<'_> {
    /// `answer` gets the outcome of the request in flight when it comes (`begin` made room for it).
    pub fn join(mut self, answer: Answer) {
        let state = &mut *self.state;
        if let Some(Entry { phase: Phase::InFlight(waiting), bytes, .. }) = state.entries.get_mut(&self.id) {
            waiting.push(answer);
            *bytes += WAITER_BYTES;
            state.bytes += WAITER_BYTES;
        }
    }
}

impl State {
    /// Forgets the oldest stored key; false when none is stored (every key is in flight).
    fn forget_oldest(&mut self) -> bool {
        let Some((_, id)) = self.expiry.pop_front() else { return false };
        self.forget(&id);
        true
    }

    fn forget(&mut self, id: &Id) -> Option<Entry> {
        let entry = self.entries.remove(id)?;
        self.bytes -= entry.bytes;
        Some(entry)
    }
}

impl Ticket {
    /// Remembers a request that stored a record for the window, forgets one that stored none; the repeats that waited get the
    /// same outcome.
    pub fn settle(mut self, outcome: &Outcome) {
        self.settle_with(outcome);
    }

    fn settle_with(&mut self, outcome: &Outcome) {
        let Some(id) = self.id.take() else { return };
        let mut state = self.store.state();
        let waiting = match outcome::took_effect(outcome) {
            true => {
                let end = clock::now() + self.store.limits.window;
                let Some(entry) = state.entries.get_mut(&id) else { return };
                let waiting = std::mem::replace(&mut entry.phase, Phase::Stored(outcome.clone()));
                // The waiters leave; the outcome stays, and counts: past the limit the oldest go first
                // (this one last, should it alone be over the limit).
                let held = ENTRY_BYTES + id.0.len() + id.1.len() + outcome_bytes(outcome);
                let before = std::mem::replace(&mut entry.bytes, held);
                state.bytes = state.bytes - before + held;
                state.expiry.push_back((end, id));
                while state.bytes > self.store.limits.max_bytes && state.forget_oldest() {}
                waiting
            }
            false => match state.forget(&id) {
                Some(entry) => entry.phase,
                None => return,
            },
        };
        drop(state);
        if let Phase::InFlight(waiting) = waiting {
            for answer in waiting {
                answer.send(outcome.clone());
            }
        }
    }
}

impl Drop for Ticket {
    /// Unsettled (a bug unwound past it): the key is forgotten and its repeats answered, never stuck.
    fn drop(&mut self) {
        self.settle_with(&Err(Failure::internal("krakend-kafka: internal error; the record's outcome is unknown")));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::outcome::Delivery;
    use crate::pipeline::idempotency::Ticket;
    use std::sync::mpsc::{sync_channel, Receiver};

    fn answer() -> (Answer, Receiver<Outcome>) {
        let (tx, rx) = sync_channel(1);
        (Answer::new(move |o| drop(tx.send(o))), rx)
    }

    /// As the pipeline takes `begin`'s verdict: `answer` gets a repeat's outcome; the first gets its ticket.
    fn begin(store: &Arc<Local>, topic: &str, key: &str, fp: u8, answer: Answer) -> Option<(Ticket, Answer)> {
        match store.begin(topic, key, [fp; 32]) {
            Begun::First(ticket) => return Some((ticket, answer)),
            Begun::Stored(outcome) => answer.send(outcome),
            Begun::InFlight(waiting) => waiting.join(answer),
            Begun::Refused(f) => answer.send(Err(f)),
        }
        None
    }

    fn store(window_ms: u64, max_keys: usize, max_bytes: usize) -> Arc<Local> {
        Local::new(IdempotencyLimits { window: Duration::from_millis(window_ms), max_keys, max_bytes }, 2)
    }

    const STORED: Outcome = Ok(Delivery::Stored { partition: 1, offset: 7 });

    #[test]
    fn a_repeat_waits_for_the_first_then_later_ones_are_replayed_and_a_different_request_is_422() {
        let store = store(60_000, 10, 1 << 20);
        let (first, _) = answer();
        let (ticket, _) = begin(&store, "t", "k", 1, first).expect("the first publishes");
        let (waiting, waited) = answer();
        assert!(begin(&store, "t", "k", 1, waiting).is_none());
        assert!(waited.try_recv().is_err(), "waits for the first's outcome");
        ticket.settle(&STORED);
        assert_eq!(waited.recv().unwrap(), STORED);
        let (again, replayed) = answer();
        assert!(begin(&store, "t", "k", 1, again).is_none());
        assert_eq!(replayed.recv().unwrap(), STORED);
        let (other, refused) = answer();
        assert!(begin(&store, "t", "k", 2, other).is_none());
        let refused = refused.recv().unwrap().unwrap_err();
        assert!(refused.status == 422 && refused.message.contains("different request"), "{refused:?}");
        let (elsewhere, _) = answer();
        assert!(begin(&store, "u", "k", 2, elsewhere).is_some(), "keys are per topic");
    }

    #[test]
    fn after_a_failure_the_key_is_forgotten_and_its_waiters_get_the_failure() {
        let store = store(60_000, 10, 1 << 20);
        let (first, _) = answer();
        let (ticket, _) = begin(&store, "t", "k", 1, first).unwrap();
        let (waiting, waited) = answer();
        assert!(begin(&store, "t", "k", 1, waiting).is_none());
        ticket.settle(&Err(Failure::unavailable("down")));
        assert_eq!(waited.recv().unwrap().unwrap_err().status, 503);
        let (retry, _) = answer();
        let again = begin(&store, "t", "k", 1, retry);
        assert!(again.is_some(), "a retry publishes again");
        assert_eq!(store.state().entries.len(), 1);
    }

    #[test]
    fn a_ticket_dropped_unsettled_frees_its_key_and_answers_its_waiters() {
        let store = store(60_000, 10, 1 << 20);
        let (first, _) = answer();
        let (ticket, _) = begin(&store, "t", "k", 1, first).unwrap();
        let (waiting, waited) = answer();
        assert!(begin(&store, "t", "k", 1, waiting).is_none());
        drop(ticket);
        assert_eq!(waited.recv().unwrap().unwrap_err().status, 500);
        assert!(store.state().entries.is_empty() && store.state().bytes == 0);
    }

    #[test]
    fn the_oldest_stored_go_first_past_the_limits() {
        let store = store(60_000, 2, 1 << 20);
        let (first, _) = answer();
        begin(&store, "t", "a", 1, first).unwrap().0.settle(&STORED);
        let (second, _) = answer();
        begin(&store, "t", "b", 1, second).unwrap().0.settle(&STORED);
        let (third, _) = answer();
        let (in_flight, _) = begin(&store, "t", "c", 1, third).expect("a is forgotten to make room");
        assert!(!store.state().entries.contains_key(&("t".into(), "a".into())));
        let (fourth, _) = answer();
        let _d = begin(&store, "t", "d", 1, fourth).expect("then b");
        let (fifth, refused) = answer();
        assert!(begin(&store, "t", "e", 1, fifth).is_none(), "every key in flight: nothing to forget");
        let refused = refused.recv().unwrap().unwrap_err();
        assert_eq!((refused.status, refused.retry_after_s), (429, 2));
        drop(in_flight);
    }

    #[test]
    fn a_key_is_remembered_for_its_window_and_new_again_after_it() {
        // The clock also runs on its own (slowly under valgrind): half the window is within it, whatever
        // the machine's speed, and the other half is past it.
        let store = store(10_000, 10, 1 << 20);
        let (first, _) = answer();
        begin(&store, "t", "a", 1, first).unwrap().0.settle(&STORED);
        clock::advance(Duration::from_millis(5_000));
        let (within, replayed) = answer();
        assert!(begin(&store, "t", "a", 1, within).is_none(), "within the window the outcome is replayed");
        assert_eq!(replayed.recv().unwrap(), STORED);
        clock::advance(Duration::from_millis(5_000));
        let (after, _) = answer();
        assert!(begin(&store, "t", "a", 2, after).is_some(), "past the window a key is new again");
    }

    #[test]
    fn a_stored_outcome_counts_against_the_bytes_limit() {
        // Room for about two batches of 500 records' outcomes, and for thousands of keys of bare text.
        let batch = Ok(Delivery::Batch(vec![STORED; 500]));
        let store = store(60_000, 1000, 2 * outcome_bytes(&batch) + 4 * ENTRY_BYTES);
        for key in ["a", "b", "c", "d", "e"] {
            let (a, _) = answer();
            begin(&store, "t", key, 1, a).unwrap().0.settle(&batch);
            assert!(store.state().bytes <= store.limits.max_bytes, "{} bytes", store.state().bytes);
        }
        assert_eq!(store.state().entries.len(), 2, "the oldest batches' outcomes were forgotten");
        let (again, replayed) = answer();
        assert!(begin(&store, "t", "e", 1, again).is_none());
        assert_eq!(replayed.recv().unwrap(), batch, "the newest is replayed");
    }

    #[test]
    fn repeats_waiting_for_the_first_are_bounded_and_counted() {
        let store = store(60_000, 10, 1 << 20);
        let (first, _) = answer();
        let (ticket, _) = begin(&store, "t", "k", 1, first).unwrap();
        let mut waited = Vec::new();
        for _ in 0..MAX_REPEATS_WAITING {
            let (waiting, rx) = answer();
            assert!(begin(&store, "t", "k", 1, waiting).is_none());
            waited.push(rx);
        }
        assert_eq!(store.state().bytes, ENTRY_BYTES + 2 + MAX_REPEATS_WAITING * WAITER_BYTES);
        let (one_more, refused) = answer();
        assert!(begin(&store, "t", "k", 1, one_more).is_none());
        let refused = refused.try_recv().expect("refused at once, not queued").unwrap_err();
        assert_eq!((refused.status, refused.retry_after_s), (429, 2), "{refused:?}");
        assert!(refused.message.contains("repeats of idempotency-key k already wait"), "{refused:?}");
        ticket.settle(&STORED);
        assert!(waited.iter().all(|rx| rx.recv().unwrap() == STORED), "each waiter gets the outcome");
        assert_eq!(store.state().bytes, ENTRY_BYTES + 2 + outcome_bytes(&STORED), "the waiters' bytes are freed");
    }

    #[test]
    fn bytes_are_bounded() {
        let each = ENTRY_BYTES + 2 + outcome_bytes(&STORED);
        let store = store(60_000, 1000, 3 * each);
        for key in ["a", "b", "c", "d", "e"] {
            let (a, _) = answer();
            begin(&store, "t", key, 1, a).unwrap().0.settle(&STORED);
            assert!(store.state().bytes <= 3 * each);
        }
        assert_eq!(store.state().entries.len(), 3);
    }
}
