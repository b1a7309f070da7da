//! A backend as its callers hold it: open, refused, or still opening. A configuration that cannot work
//! answers every request 500 naming the key, so a gateway never falls back to another client. One whose
//! AWS settings (region, credentials) cannot be resolved yet, as at a machine's boot, answers 503 and is
//! opened again in the background until it can be: a transient start-up failure heals without a restart.

use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::config::Rules;
use crate::outcome::Failure;
use crate::pipeline::publisher::{Publisher, Unopened};
use crate::runtime;
use crate::telemetry::log::log;

/// How often a backend that could not be opened yet is tried again.
const RETRY_OPEN: Duration = Duration::from_secs(5);

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
            Err(e) => return (Backend::with(Err(refused(&e)), None), Some(e)),
        };
        let rules = Some(config.backend.rules.clone());
        match Publisher::open(config.clone()) {
            Ok(publisher) => (Backend::with(Ok(Arc::new(publisher)), rules), None),
            Err(Unopened::Refused(e)) => (Backend::with(Err(refused(&e)), None), Some(e)),
            Err(Unopened::NotYet(e)) => {
                let backend = Backend::with(Err(starting(&e)), rules);
                let (weak, error) =
                    (Arc::downgrade(&backend), format!("{e} (tried again every {} s)", RETRY_OPEN.as_secs()));
                runtime::with_signals_blocked(|| std::thread::spawn(move || open_when_possible(weak, config, e)));
                (backend, Some(error))
            }
        }
    }

    fn with(state: Result<Arc<Publisher>, Failure>, rules: Option<Rules>) -> Arc<Backend> {
        Arc::new(Backend { state: ArcSwap::from_pointee(state), rules })
    }

    /// The publisher to publish with, or the answer for every request while there is none.
    pub fn publisher(&self) -> Result<Arc<Publisher>, Failure> {
        Result::clone(&self.state.load())
    }

    /// What this backend's requests may be; `None` for a refused configuration.
    pub fn rules(&self) -> Option<&Rules> {
        self.rules.as_ref()
    }
}

fn refused(e: &str) -> Failure {
    Failure::internal(format!("krakend-kafka is misconfigured: {e}"))
}

fn starting(e: &str) -> Failure {
    Failure::unavailable(format!("krakend-kafka is starting: {e}; not stored"))
}

/// Opens `config` every `RETRY_OPEN` until it opens or is refused, for as long as the backend is held.
fn open_when_possible(backend: Weak<Backend>, config: Config, mut last: String) {
    loop {
        std::thread::sleep(RETRY_OPEN);
        if backend.strong_count() == 0 {
            return;
        }
        let state = match Publisher::open(config.clone()) {
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
            backend.state.store(Arc::new(state));
        }
        return;
    }
}
