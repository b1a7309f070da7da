//! A backend as its callers hold it: open, refused, or still opening. A configuration that cannot work
//! answers every request 500 naming the key, so a gateway never falls back to another client. One whose
//! AWS settings (region, credentials) cannot be resolved yet, as at a machine's boot, answers 503 and is
//! opened again in the background until it can be: a transient start-up failure heals without a restart.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::config::Rules;
use crate::outcome::{Failure, Outcome};
use crate::pipeline::publisher::{Publisher, Unopened, AWS_CHAIN_WAIT};
use crate::pipeline::request::{HttpParts, Request};
use crate::pipeline::trip::{Caller, Trip};
use crate::runtime;
use crate::telemetry::log::log;

/// How often a backend that could not be opened yet is tried again.
const RETRY_OPEN: Duration = Duration::from_secs(5);

type State = Arc<Result<Arc<Publisher>, Failure>>;

pub struct Backend {
    state: ArcSwap<Result<Arc<Publisher>, Failure>>,
    /// The configuration's request rules, known once it parsed, even before the publisher opens.
    rules: Option<Rules>,
}

impl Backend {
    /// The backend for the JSON configuration `json` (with `env` for what it leaves out), and the error
    /// to log, if any.
    pub fn open(json: &[u8], env: impl Fn(&str) -> Option<String>) -> (Arc<Backend>, Option<String>) {
        let config = match Config::parse(json, env) {
            Ok(config) => config,
            Err(e) => return Backend::refuse(e),
        };
        let rules = Some(config.backend.rules.clone());
        match Publisher::open(config.clone(), Some(AWS_CHAIN_WAIT)) {
            Ok(publisher) => (Backend::with(Ok(Arc::new(publisher)), rules), None),
            Err(Unopened::Refused(e)) => Backend::refuse(e),
            Err(Unopened::NotYet(e)) => {
                let backend = Backend::with(Err(starting(&e)), rules);
                let (weak, error) =
                    (Arc::downgrade(&backend), format!("{e} (tried again every {} s)", RETRY_OPEN.as_secs()));
                let starting = backend.state.load_full();
                runtime::with_signals_blocked(|| {
                    std::thread::spawn(move || open_when_possible(weak, starting, config, e))
                });
                (backend, Some(error))
            }
        }
    }

    /// A backend that cannot work, for the reason `e` (to log): it answers every request 500 naming it.
    pub fn refuse(e: String) -> (Arc<Backend>, Option<String>) {
        (Backend::with(Err(refused(&e)), None), Some(e))
    }

    /// The backend of a front end that holds none (its handle is closed): it answers every request 503.
    pub fn closed() -> &'static Backend {
        static CLOSED: OnceLock<Arc<Backend>> = OnceLock::new();
        CLOSED.get_or_init(|| Backend::with(Err(closed()), None))
    }

    /// Answers every request 503 from now on, and waits for those it took: their records' verdicts, or
    /// the longest they may take. Whoever else still holds the publisher (a request fetching its schema,
    /// a readiness probe) cannot make it return before the records are acknowledged.
    pub fn close(&self) {
        if let Ok(publisher) = &*self.state.swap(Arc::new(Err(closed()))) {
            publisher.close();
        }
    }

    fn with(state: Result<Arc<Publisher>, Failure>, rules: Option<Rules>) -> Arc<Backend> {
        Arc::new(Backend { state: ArcSwap::from_pointee(state), rules })
    }

    /// What this backend's requests may be; `None` for a refused configuration.
    pub fn rules(&self) -> Option<&Rules> {
        self.rules.as_ref()
    }

    /// Publishes `input` and gives `caller` its one outcome, without waiting for the broker or the
    /// registry (bad input is answered before this returns): every front end's way in.
    pub fn submit(&self, input: Input<'_>, caller: Caller) {
        let trip = Trip::start();
        let publisher = match Result::clone(&self.state.load()) {
            Ok(publisher) => publisher,
            Err(f) => return trip.around(caller).send(Err(f)),
        };
        let request = match input {
            Input::Http { parts, wait } => {
                if let Some(wait) = wait {
                    publisher.check_wait(wait);
                }
                Request::from_http(parts, publisher.rules())
            }
            Input::Envelope(json) => Request::from_envelope(json),
            Input::Unreadable(f) => Err(f),
        };
        match request {
            Ok(request) => publisher.submit(request, trip, caller),
            Err(f) => trip.around(caller).send(Err(f)),
        }
    }

    /// Publishes `input` and waits for its outcome: the broker's acknowledgement or the failure. Blocks
    /// the calling thread.
    pub fn publish(&self, input: Input<'_>) -> Outcome {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.submit(input, Box::new(move |outcome| tx.send(outcome).map_err(|e| e.0)));
        // The trip answers exactly once, even when a stage drops its answer: recv always gets one.
        rx.recv().unwrap_or_else(|_| Err(Failure::internal("publish: answered by no one")))
    }
}

/// A request as a front end received it.
pub enum Input<'a> {
    /// The parts of an HTTP request, and how long its caller will wait (logged once when shorter than
    /// the backend's budget).
    Http { parts: HttpParts<'a>, wait: Option<Duration> },
    /// The seed's envelope `{"topicName":..,"body":{..},"headers":{..},"key":..}`.
    Envelope(&'a [u8]),
    /// What the front end could not read (its own caller's bug): answered with this failure.
    Unreadable(Failure),
}

fn refused(e: &str) -> Failure {
    Failure::internal(format!("krakend-kafka is misconfigured: {e}"))
}

fn closed() -> Failure {
    Failure::unavailable("krakend-kafka: the publisher is closed")
}

fn starting(e: &str) -> Failure {
    Failure::unavailable(format!("krakend-kafka is starting: {e}; not stored"))
}

/// Opens `config` every `RETRY_OPEN` until it opens or is refused, for as long as the backend is held and
/// still `starting` (a backend closed meanwhile stays closed).
fn open_when_possible(backend: Weak<Backend>, starting: State, config: Config, mut last: String) {
    loop {
        std::thread::sleep(RETRY_OPEN);
        if backend.strong_count() == 0 {
            return;
        }
        let state = match Publisher::open(config.clone(), None) {
            Ok(publisher) => {
                log("opened: the AWS settings could be resolved");
                Ok(Arc::new(publisher))
            }
            Err(Unopened::Refused(e)) => {
                log(format!("refused: {e}"));
                Err(refused(&e))
            }
            Err(Unopened::NotYet(e)) => {
                // Once per distinct cause, not once per attempt.
                if e != last {
                    log(format!("still opening: {e}"));
                    last = e;
                }
                continue;
            }
        };
        if let Some(backend) = backend.upgrade() {
            drop(backend.state.compare_and_swap(&starting, Arc::new(state)));
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No broker and no registry listen there: a request is admitted, then answered 503 by the registry.
    const UNREACHABLE: &[u8] = br#"{"bootstrap_servers":"127.0.0.1:1","registry_name":"r","region":"eu-west-1","glue_endpoint":"http://127.0.0.1:1","timeout_ms":3000}"#;
    const ENVELOPE: &[u8] = br#"{"topicName":"t","body":{"a":1}}"#;

    fn failure(outcome: Outcome) -> (u16, String) {
        let f = outcome.expect_err("a failure");
        (f.status, f.message)
    }

    #[test]
    fn a_refused_configuration_answers_500_naming_the_key_whatever_the_input() {
        let (backend, error) = Backend::open(br#"{"registry_name":"r","timeout_ms":"soon"}"#, |_| None);
        let error = error.expect("refused");
        assert!(error.starts_with("config key timeout_ms: "), "{error}");
        assert!(backend.rules().is_none());
        let (status, message) = failure(backend.publish(Input::Envelope(ENVELOPE)));
        assert_eq!((status, message), (500, format!("krakend-kafka is misconfigured: {error}")));
    }

    #[test]
    fn what_a_front_end_could_not_read_is_answered_with_its_own_failure() {
        let (backend, error) = Backend::open(UNREACHABLE, |_| None);
        assert_eq!(error, None);
        let unreadable = Failure::bad_request("body: the connection ended before the body was complete");
        let outcome = backend.publish(Input::Unreadable(unreadable.clone()));
        assert_eq!(failure(outcome), (unreadable.status, unreadable.message));
        let (status, message) = failure(backend.publish(Input::Envelope(b"[1]")));
        assert_eq!((status, message.as_str()), (400, "request: must be a JSON object"));
    }

    #[test]
    fn closing_waits_for_the_requests_taken_then_answers_503() {
        let (backend, _) = Backend::open(UNREACHABLE, |_| None);
        let (tx, rx) = std::sync::mpsc::channel();
        backend.submit(Input::Envelope(ENVELOPE), Box::new(move |outcome| tx.send(outcome).map_err(|e| e.0)));
        backend.close();
        // Before, close returned at once and the request was answered later, after its handle was gone.
        let (status, message) = failure(rx.try_recv().expect("answered before close returned"));
        assert!(status == 503 && message.starts_with("topic t: not stored: "), "{status} {message}");
        let closed = (503, "krakend-kafka: the publisher is closed".to_owned());
        assert_eq!(failure(backend.publish(Input::Envelope(ENVELOPE))), closed);
        backend.close();
        assert_eq!(failure(Backend::closed().publish(Input::Envelope(ENVELOPE))), closed);
    }
}
