//! The AWS credentials an MSK IAM producer signs its tokens with, asked of the AWS chain on the runtime and
//! held until they near their expiry. librdkafka asks for a token on its own thread, which also serves the
//! delivery reports: it signs with the credentials held, and waits for the chain (at most `WAIT`) only
//! when it holds none that are valid, at start-up or after the chain failed.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sdk_glue::error::DisplayErrorContext;

/// The longest librdkafka's thread waits for the chain; it asks again for a token later.
const WAIT: Duration = Duration::from_secs(2);
/// The longest one question to the chain (IMDS, STS, a container endpoint) may take.
const ASK: Duration = Duration::from_secs(10);
/// Credentials that expire within this are renewed in the background while still in use: more than the
/// 12 minutes after which librdkafka asks for the next token (80% of its 15), so that it asks while they
/// are still valid, whatever time they had left when the last token was signed.
const RENEW_AHEAD: Duration = Duration::from_secs(20 * 60);
/// Credentials that expire within this are not signed with: the token would be of no use.
const LEAST_LEFT: Duration = Duration::from_secs(60);

pub struct FreshCredentials {
    chain: SharedCredentialsProvider,
    state: Mutex<State>,
    answered: Condvar,
}

#[derive(Default)]
struct State {
    held: Option<Credentials>,
    /// When the question being asked was sent; one older than `ASK` is over, whatever became of it.
    asking: Option<Instant>,
    failed: Option<String>,
}

impl FreshCredentials {
    /// Asks nothing yet: the first token asks.
    pub fn new(chain: SharedCredentialsProvider) -> Arc<Self> {
        Arc::new(FreshCredentials { chain, state: Mutex::default(), answered: Condvar::new() })
    }

    /// Credentials valid for at least `LEAST_LEFT` after `now`, or why there are none.
    pub fn current(self: &Arc<Self>, now: SystemTime) -> Result<Credentials, String> {
        let valid_for = |c: &Credentials, left: Duration| c.expiry().is_none_or(|e| e > now + left);
        let mut state = self.state();
        if !state.held.as_ref().is_some_and(|c| valid_for(c, RENEW_AHEAD)) {
            self.ask(&mut state);
        }
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(credentials) = state.held.as_ref().filter(|c| valid_for(c, LEAST_LEFT)) {
                return Ok(credentials.clone());
            }
            let waited = deadline.saturating_duration_since(Instant::now());
            if !asking(&state) || waited.is_zero() {
                let why = state.failed.clone();
                return Err(why.unwrap_or_else(|| {
                    format!("MSK IAM: the AWS credential chain gave no credentials within {} s", WAIT.as_secs())
                }));
            }
            state = self.answered.wait_timeout(state, waited).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// Asks the chain on the runtime, unless a question is out already.
    fn ask(self: &Arc<Self>, state: &mut State) {
        if asking(state) {
            return;
        }
        state.asking = Some(Instant::now());
        let this = Arc::clone(self);
        crate::runtime::runtime().spawn(async move {
            let answer = tokio::time::timeout(ASK, this.chain.provide_credentials()).await;
            let mut state = this.state();
            state.asking = None;
            match answer {
                Ok(Ok(credentials)) => (state.held, state.failed) = (Some(credentials), None),
                Ok(Err(e)) => state.failed = Some(format!("MSK IAM: no AWS credentials: {}", DisplayErrorContext(&e))),
                Err(_) => {
                    let why =
                        format!("MSK IAM: the AWS credential chain gave no credentials within {} s", ASK.as_secs());
                    state.failed = Some(why);
                }
            }
            this.answered.notify_all();
        });
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn asking(state: &State) -> bool {
    state.asking.is_some_and(|since| since.elapsed() < ASK + Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::{error::CredentialsError, future};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Answers each question with the next of `answers` (the last one repeated), counting the questions.
    #[derive(Debug)]
    struct Chain {
        answers: Vec<Option<SystemTime>>,
        asked: Arc<AtomicUsize>,
    }
    impl ProvideCredentials for Chain {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.asked.fetch_add(1, Ordering::SeqCst).min(self.answers.len() - 1);
            future::ProvideCredentials::ready(Ok(Credentials::new("AKID", "secret", None, self.answers[n], "test")))
        }
    }

    #[derive(Debug)]
    struct Silent;
    impl ProvideCredentials for Silent {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            future::ProvideCredentials::new(std::future::pending())
        }
    }

    #[derive(Debug)]
    struct Refusing;
    impl ProvideCredentials for Refusing {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            future::ProvideCredentials::ready(Err(CredentialsError::not_loaded("no profile, no environment")))
        }
    }

    fn fresh(chain: impl ProvideCredentials + 'static) -> Arc<FreshCredentials> {
        FreshCredentials::new(SharedCredentialsProvider::new(chain))
    }

    #[test]
    fn a_chain_that_never_answers_holds_the_caller_no_longer_than_the_wait() {
        // Before, librdkafka's thread waited on the chain with block_on, for as long as the chain took.
        let credentials = fresh(Silent);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(credentials.current(SystemTime::now())).unwrap());
        let answer = rx.recv_timeout(WAIT + Duration::from_secs(5)).expect("answered within the wait");
        assert_eq!(answer.unwrap_err(), "MSK IAM: the AWS credential chain gave no credentials within 2 s");
    }

    #[test]
    fn the_chain_is_asked_once_while_its_credentials_are_far_from_expiry() {
        let asked = Arc::new(AtomicUsize::new(0));
        let now = SystemTime::now();
        let credentials = fresh(Chain { answers: vec![Some(now + Duration::from_secs(3600))], asked: asked.clone() });
        for _ in 0..5 {
            assert_eq!(credentials.current(now).unwrap().access_key_id(), "AKID");
        }
        assert_eq!(asked.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn credentials_near_expiry_are_used_while_fresh_ones_are_asked_for() {
        let asked = Arc::new(AtomicUsize::new(0));
        let now = SystemTime::now();
        let (soon, later) = (now + Duration::from_secs(120), now + Duration::from_secs(3600));
        let credentials = fresh(Chain { answers: vec![Some(soon), Some(later)], asked: asked.clone() });
        assert_eq!(credentials.current(now).unwrap().expiry(), Some(soon));
        // Within RENEW_AHEAD of expiry: signed with at once, and renewed in the background.
        assert_eq!(credentials.current(now).unwrap().expiry(), Some(soon));
        let renewed = Instant::now() + Duration::from_secs(10);
        while credentials.current(now).unwrap().expiry() != Some(later) {
            assert!(Instant::now() < renewed, "never renewed");
            std::thread::yield_now();
        }
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        // Past LEAST_LEFT they are not signed with: the caller waits for the chain.
        let asked = Arc::new(AtomicUsize::new(0));
        let credentials = fresh(Chain { answers: vec![Some(now + Duration::from_secs(30)), Some(later)], asked });
        assert!(credentials.current(now).is_err(), "credentials with 30 s left are refused");
        assert_eq!(credentials.current(now).unwrap().expiry(), Some(later));
    }

    #[test]
    fn a_refusing_chain_is_named() {
        let err = fresh(Refusing).current(SystemTime::now()).unwrap_err();
        assert!(err.starts_with("MSK IAM: no AWS credentials") && err.contains("no profile, no environment"), "{err}");
    }
}
