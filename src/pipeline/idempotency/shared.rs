//! The idempotency keys every replica shares, in a Redis (or Valkey) server (`idempotency_store`), with
//! the rules of the keys of one process:
//! - a request claims its key with a script that sets the mark of a request in flight only where no
//!   entry is (or a failed one): of two processes, one is first, and the other finds the mark;
//! - the first writes its outcome over its own mark when it comes (a script that checks the mark is
//!   still its own): stored for `idempotency_window_s`, replayed to every repeat; failed for `timeout_ms`,
//!   long enough for the repeats that wait, while a new request claims the key again at once;
//! - a repeat of a request in flight, wherever it runs, reads the key until the outcome is there, within
//!   its caller's deadline. It polls (from 5 ms, doubling to 100 ms) rather than subscribing: pub/sub
//!   needs a connection of its own per process and keyspace events a server setting managed services may
//!   not allow, both lose what is published while a connection is down, and a repeat that waits is a
//!   client retrying its own request, rare and short;
//! - the mark lives as long as the request may (`timeout_ms` and librdkafka's delivery budget): a process
//!   that stops with a request in flight holds its key no longer.
//!
//! Every call to the server is bounded by `idempotency_store.timeout_ms`. A server that refuses, fails
//! or does not answer in time answers the request 503, not stored (nothing was published: the guarantee
//! cannot be given, so the record is not sent without it), logged once a minute with the cause.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisResult, Script};

use crate::config::IdempotencyStore;
use crate::outcome::{self, Answer, Failure, Outcome};
use crate::pipeline::idempotency::entry::{Entry, FAILED};
use crate::pipeline::idempotency::{self as idempotency, Begun, Fingerprint, MAX_REPEATS_WAITING};
use crate::runtime;
use crate::telemetry::log::{self, log};

/// Sets the mark of a request in flight (ARGV[1], for ARGV[2] ms) where no entry, or a failed one, is;
/// else returns the entry.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "local held = redis.call('GET', KEYS[1])
         if held and string.sub(held, 1, 1) ~= '{FAILED}' then return held end
         redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
         return false"
    ))
});

/// Writes the entry ARGV[2] for ARGV[3] ms over the mark ARGV[1], if the key still holds that mark.
static SETTLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
         redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
         return 1",
    )
});

/// A repeat's first read of the key, and its longest pause between two.
const FIRST_POLL: Duration = Duration::from_millis(5);
const LONGEST_POLL: Duration = Duration::from_millis(100);

pub struct Shared {
    client: redis::Client,
    /// One multiplexed connection, opened at the first call and again after a failed one.
    connection: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    prefix: String,
    /// The longest one call to the server may take.
    call_timeout: Duration,
    window: Duration,
    /// The backend's `timeout_ms`: how long a repeat waits for the first's outcome.
    wait: Duration,
    /// How long the mark of a request in flight lives.
    in_flight: Duration,
    retry_after_s: u32,
    /// This process, in its marks: which request holds a key.
    owner: String,
    claims: AtomicU64,
    /// The repeats waiting in this process, by key.
    waiting: Mutex<HashMap<String, usize>>,
    /// Whether the last call failed: the next that passes says the store is back.
    down: AtomicBool,
}

/// A key in the store, and what the caller calls it.
struct Id {
    stored_as: String,
    topic: String,
    key: String,
}

impl Shared {
    pub fn new(
        store: &IdempotencyStore,
        window: Duration,
        wait: Duration,
        in_flight: Duration,
        retry_after_s: u32,
    ) -> Result<Arc<Shared>, String> {
        let client = redis::Client::open(store.url.as_str())
            .map_err(|_| "config key idempotency_store.url: not a URL the Redis client takes".to_owned())?;
        let owner = format!("{:x}-{:x}", std::process::id(), RandomState::new().hash_one(Instant::now()));
        Ok(Arc::new(Shared {
            client,
            connection: tokio::sync::Mutex::new(None),
            prefix: store.key_prefix.clone(),
            call_timeout: store.timeout,
            window,
            wait,
            in_flight,
            retry_after_s,
            owner,
            claims: AtomicU64::new(0),
            waiting: Mutex::default(),
            down: AtomicBool::new(false),
        }))
    }

    /// What the request of `key` on `topic` is: the first of its key, or a repeat.
    pub fn begin(
        self: Arc<Self>,
        topic: &str,
        key: &str,
        fingerprint: Fingerprint,
    ) -> impl Future<Output = Begun<'static>> + Send + 'static {
        // A topic has no ':' in its name: the prefix, the topic and the key are told apart.
        let id =
            Id { stored_as: format!("{}{topic}:{key}", self.prefix), topic: topic.to_owned(), key: key.to_owned() };
        async move {
            let owner = format!("{}-{}", self.owner, self.claims.fetch_add(1, Ordering::Relaxed));
            let mark = Entry::InFlight { fingerprint, owner }.encode();
            let ttl = self.in_flight.as_millis() as u64;
            let found: Option<Vec<u8>> = match self
                .call(|mut c| {
                    let (key, mark) = (id.stored_as.clone(), mark.clone());
                    async move { CLAIM.key(key).arg(mark).arg(ttl).invoke_async(&mut c).await }
                })
                .await
            {
                Ok(found) => found,
                Err(()) => return Begun::Refused(unreachable(&id.topic)),
            };
            let Some(found) = found else {
                return Begun::First(idempotency::Ticket::Shared(Ticket {
                    store: self,
                    id,
                    mark: Some(mark),
                    fingerprint,
                }));
            };
            match Entry::decode(&found) {
                Some(entry) if *entry.fingerprint() != fingerprint => {
                    Begun::Refused(idempotency::reused(&id.topic, &id.key, self.window))
                }
                Some(Entry::Stored { outcome, .. }) => Begun::Stored(outcome),
                Some(Entry::InFlight { .. }) => match Counted::new(&self, &id.stored_as) {
                    Some(counted) => Begun::InFlight(idempotency::Waiting::Shared(Waiting {
                        store: self,
                        id,
                        fingerprint,
                        _counted: counted,
                    })),
                    None => Begun::Refused(idempotency::too_many_waiting(&id.topic, &id.key, self.retry_after_s)),
                },
                // The claim takes a failed entry over: only another version's entry is left here.
                Some(Entry::Failed { .. }) | None => {
                    log::once(
                        "idempotency store entry",
                        format_args!(
                            "the idempotency store holds an entry under {} that this version does not read: requests \
                             with that key are refused 503 until it expires",
                            id.stored_as
                        ),
                    );
                    Begun::Refused(Failure::unavailable(format!(
                        "topic {}: not stored: the idempotency store holds an entry for idempotency-key {} that this \
                         gateway cannot read",
                        id.topic, id.key
                    )))
                }
            }
        }
    }

    /// `op` on the store's connection within `call_timeout`; a failure is logged (once a minute) and the
    /// connection opened again at the next call.
    async fn call<T, F, Fut>(&self, op: F) -> Result<T, ()>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let bounded = tokio::time::timeout(self.call_timeout, async {
            let connection = self.connection().await?;
            op(connection).await
        });
        let cause = match bounded.await {
            Ok(Ok(value)) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    log("the idempotency store answers again");
                }
                return Ok(value);
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} ms", self.call_timeout.as_millis()),
        };
        // Whoever holds the lock is opening a connection already.
        if let Ok(mut connection) = self.connection.try_lock() {
            *connection = None;
        }
        self.down.store(true, Ordering::Relaxed);
        log::once(
            "idempotency store unreachable",
            format_args!(
                "the idempotency store is unreachable ({cause}): requests with an Idempotency-Key are refused 503, \
                 not stored, until it answers"
            ),
        );
        Err(())
    }

    async fn connection(&self) -> RedisResult<MultiplexedConnection> {
        let mut held = self.connection.lock().await;
        if let Some(connection) = &*held {
            return Ok(connection.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.call_timeout))
            .set_response_timeout(Some(self.call_timeout));
        let connection = self.client.get_multiplexed_async_connection_with_config(&config).await?;
        *held = Some(connection.clone());
        Ok(connection)
    }
}

fn unreachable(topic: &str) -> Failure {
    Failure::unavailable(format!("topic {topic}: not stored: the idempotency store is unreachable"))
}

/// A repeat counted among its key's waiting in this process, until it is dropped.
struct Counted {
    store: Arc<Shared>,
    key: String,
}

impl Counted {
    /// `None` when `MAX_REPEATS_WAITING` wait on `key` already.
    fn new(store: &Arc<Shared>, key: &str) -> Option<Counted> {
        let mut waiting = store.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let count = waiting.entry(key.to_owned()).or_default();
        if *count >= MAX_REPEATS_WAITING {
            return None;
        }
        *count += 1;
        Some(Counted { store: Arc::clone(store), key: key.to_owned() })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut waiting = self.store.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = waiting.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                waiting.remove(&self.key);
            }
        }
    }
}

/// A repeat of a request in flight, here or in another process.
pub struct Waiting {
    store: Arc<Shared>,
    id: Id,
    fingerprint: Fingerprint,
    _counted: Counted,
}

impl Waiting {
    /// `answer` gets the outcome of the request in flight when the store has it. The caller's deadline
    /// answers first when it does not come in time (`answer` is guarded by it); the reads stop just after.
    pub fn join(self, answer: Answer) {
        runtime::runtime().spawn(self.wait(answer));
    }

    async fn wait(self, answer: Answer) {
        let until = Instant::now() + self.store.wait + LONGEST_POLL;
        let mut pause = FIRST_POLL;
        while Instant::now() < until {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(LONGEST_POLL);
            let key = self.id.stored_as.clone();
            let Ok(found) =
                self.store.call(|mut c| async move { redis::cmd("GET").arg(key).query_async(&mut c).await }).await
            else {
                continue;
            };
            let found: Option<Vec<u8>> = found;
            match found.as_deref().and_then(Entry::decode) {
                Some(Entry::InFlight { fingerprint, .. }) if fingerprint == self.fingerprint => continue,
                Some(Entry::Stored { fingerprint, outcome } | Entry::Failed { fingerprint, outcome })
                    if fingerprint == self.fingerprint =>
                {
                    return answer.send(outcome)
                }
                // The mark expired, or another request took the key over after the first failed.
                _ => return answer.send(Err(self.lost())),
            }
        }
        answer.send(Err(Failure::timeout(format!(
            "topic {}: the first request of idempotency-key {} had no outcome within {} ms; its record may still be \
             stored",
            self.id.topic,
            self.id.key,
            self.store.wait.as_millis()
        ))));
    }

    fn lost(&self) -> Failure {
        Failure::timeout(format!(
            "topic {}: the first request of idempotency-key {} ended without an outcome in the idempotency store (its \
             gateway may have stopped); its record may be stored: check before you retry",
            self.id.topic, self.id.key
        ))
    }
}

/// The first request of a key.
pub struct Ticket {
    store: Arc<Shared>,
    id: Id,
    /// The mark it claimed the key with; `None` once settled.
    mark: Option<String>,
    fingerprint: Fingerprint,
}

impl Ticket {
    /// Writes the outcome over the ticket's mark, without waiting for the store.
    pub fn settle(mut self, outcome: &Outcome) {
        self.settle_with(outcome);
    }

    fn settle_with(&mut self, outcome: &Outcome) {
        let Some(mark) = self.mark.take() else { return };
        let kept = outcome::took_effect(outcome);
        let (entry, ttl) = match kept {
            true => (Entry::Stored { fingerprint: self.fingerprint, outcome: outcome.clone() }, self.store.window),
            false => (Entry::Failed { fingerprint: self.fingerprint, outcome: outcome.clone() }, self.store.wait),
        };
        let (store, id, entry, ttl) =
            (Arc::clone(&self.store), self.id.stored_as.clone(), entry.encode(), ttl.as_millis() as u64);
        runtime::runtime().spawn(async move {
            let settled: Result<i64, ()> = store
                .call(|mut c| {
                    let id = id.clone();
                    async move { SETTLE.key(id).arg(mark).arg(entry).arg(ttl).invoke_async(&mut c).await }
                })
                .await;
            if kept && settled != Ok(1) {
                log::once(
                    "idempotency store outcome",
                    format_args!(
                        "a stored record's outcome could not be written to the idempotency store under {id} ({}): a \
                         repeat of its request once its in-flight mark expires ({} s) publishes it again",
                        match settled {
                            Ok(_) => "its in-flight mark had expired",
                            Err(()) => "the store is unreachable",
                        },
                        store.in_flight.as_secs()
                    ),
                );
            }
        });
    }
}

impl Drop for Ticket {
    /// Unsettled (a bug unwound past it): the key is freed and its repeats answered, never stuck.
    fn drop(&mut self) {
        self.settle_with(&Err(Failure::internal("krakend-kafka: internal error; the record's outcome is unknown")));
    }
}
