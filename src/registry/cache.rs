//! Topic schemas from a schema registry (any [`SchemaSource`]),
//! compiled once and cached per topic.
//!
//! Reads take a read lock. A miss takes the topic's own async mutex, so concurrent requests for a cold
//! topic make ONE registry call (its latest or pinned version) and share its result. A topic seen before
//! never waits for the registry: its last schema is used while the next one is fetched in the background,
//! and is kept while the registry cannot be read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use crate::clock;
use crate::config::TopicSchema;
use crate::format::codec::{Codec, DataFormat};
use crate::outcome::Failure;
use crate::rate::TokenBucket;
use crate::registry::source::{FetchError, SchemaSource};
use crate::runtime;
use crate::telemetry::log;
use crate::telemetry::metrics;

struct Entry {
    /// A codec, or the failure to answer until `expires` (no such schema, or one that does not compile).
    value: Result<Arc<Codec>, Failure>,
    expires: Instant,
}

#[derive(Default)]
struct Slot {
    entry: ArcSwapOption<Entry>,
    refresh: tokio::sync::Mutex<()>,
    /// A background refresh of this topic is under way: requests keep the last codec meanwhile.
    refreshing: AtomicBool,
}

/// More topics than any deployment has: past it, slots that hold no codec are dropped.
const MAX_SLOTS: usize = 10_000;
/// A pinned schema version's time to live: it never changes.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
/// How long a stale schema is served before Glue is tried again while it is down.
const RETRY_WHILE_DOWN: Duration = Duration::from_secs(5);
/// How long a topic never served answers the registry's failure without asking again: a flood of
/// requests for it while Glue is down or throttling adds no call.
const REMEMBER_FAILURE: Duration = Duration::from_secs(1);

pub struct SchemaCache<S> {
    source: S,
    /// How a topic finds its schema, where it is not the default.
    topics: HashMap<String, TopicSchema>,
    ttl: Duration,
    miss_ttl: Duration,
    calls: Arc<TokenBucket>,
    /// A lock held for a lookup or an insert, never across a fetch: inserting a topic costs the same
    /// with 10 topics or 10,000.
    slots: RwLock<Slots>,
}

#[derive(Default)]
struct Slots {
    by_topic: HashMap<String, Arc<Slot>>,
    /// The size at which slots without a codec are dropped next: twice what the last sweep kept (and at
    /// least `MAX_SLOTS`), so that sweeping stays linear in the topics inserted even when most hold codecs.
    sweep_at: usize,
    /// Slots visited by the sweeps, for the test that counts the work.
    #[cfg(test)]
    visited: usize,
}

impl<S: SchemaSource> SchemaCache<S> {
    pub fn new(
        source: S,
        topics: HashMap<String, TopicSchema>,
        ttl: Duration,
        miss_ttl: Duration,
        calls: Arc<TokenBucket>,
    ) -> Self {
        SchemaCache { source, topics, ttl, miss_ttl, calls, slots: RwLock::default() }
    }

    fn existing(&self, topic: &str) -> Option<Arc<Slot>> {
        self.slots.read().unwrap_or_else(PoisonError::into_inner).by_topic.get(topic).cloned()
    }

    /// What a request for `topic` can use at once, the hot path (a read lock, no registry call): a fresh
    /// answer, or the last codec of a topic whose schema is due to be fetched again. That fetch then runs
    /// in the background, one at a time per topic, so a slow, hanging or failing registry never holds up a
    /// topic it has served before. `None`: nothing usable, `get` must wait for the registry.
    pub fn usable(self: &Arc<Self>, topic: &str) -> Option<Result<Arc<Codec>, Failure>> {
        let slot = self.existing(topic)?;
        let entry = slot.entry.load_full()?;
        if entry.expires > clock::now() {
            return Some(entry.value.clone());
        }
        let codec = entry.value.as_ref().ok()?.clone();
        if !slot.refreshing.swap(true, Ordering::AcqRel) {
            let (cache, topic) = (Arc::clone(self), topic.to_owned());
            runtime::runtime().spawn(async move {
                drop(cache.fetch(&topic, &slot, Some(entry)).await);
                slot.refreshing.store(false, Ordering::Release);
            });
        }
        Some(Ok(codec))
    }

    /// The codec for `topic`, fetching and compiling its schema when the cache has none fresh.
    pub async fn get(&self, topic: &str) -> Result<Arc<Codec>, Failure> {
        let slot = self.slot(topic);
        let seen = slot.entry.load_full();
        match seen.as_ref().filter(|e| e.expires > clock::now()) {
            Some(fresh) => fresh.value.clone(),
            None => self.fetch(topic, &slot, seen).await,
        }
    }

    /// Fetches `topic`'s schema into `slot`, unless another fetch replaced the entry the caller `seen`
    /// meanwhile. When the registry cannot be read, a topic that had a codec keeps it, and the registry is
    /// tried again after `RETRY_WHILE_DOWN`.
    async fn fetch(&self, topic: &str, slot: &Slot, seen: Option<Arc<Entry>>) -> Result<Arc<Codec>, Failure> {
        let _only_one_fetch = slot.refresh.lock().await;
        let previous = slot.entry.load_full();
        if let Some(replaced) = previous.as_ref().filter(|p| !seen.as_ref().is_some_and(|s| Arc::ptr_eq(p, s))) {
            return replaced.value.clone();
        }
        let wanted = self.topics.get(topic);
        let named = wanted.and_then(|t| t.schema_name.clone()).map(Ok);
        let schema = match named
            .unwrap_or_else(|| self.source.default_name(topic, wanted.and_then(|t| t.message_type.as_deref())))
        {
            Ok(schema) => schema,
            Err(e) => {
                let value = Err(Failure::internal(e));
                slot.entry.store(Some(Arc::new(Entry { value: value.clone(), expires: clock::now() + FOREVER })));
                return value;
            }
        };
        let schema = schema.as_str();
        let pinned = wanted.and_then(|t| t.schema_version);
        let fetched = match self.calls.take() {
            true => self.source.fetch(schema, pinned).await,
            false => Err(FetchError::Unavailable(format!(
                "the schema registry is asked too often (over {} calls per second)",
                self.calls.per_second()
            ))),
        };
        // A pinned version never changes: it is fetched once.
        let ttl = if pinned.is_some() { FOREVER } else { self.ttl };
        let (value, ttl) = match fetched {
            Ok(text) => match DataFormat::named(&text.data_format) {
                None => (
                    Err(Failure::internal(format!(
                        "schema {schema}: data format is {}, which the gateway does not write (AVRO, JSON, PROTOBUF)",
                        text.data_format
                    ))),
                    ttl,
                ),
                Some(data_format) => {
                    let (schema, message_type) = (schema.to_owned(), wanted.and_then(|t| t.message_type.clone()));
                    let format = wanted.map(|t| (t.wire_format, t.glue_compression.unwrap_or_default()));
                    let (format, compression) = format.unwrap_or_default();
                    // A large schema compiles for milliseconds: not on the runtime's one worker, whose other
                    // tasks (every topic's registry calls, the deadlines' sweeps) would wait behind it.
                    let compiled = tokio::task::spawn_blocking(move || {
                        Codec::compile(&schema, data_format, &text.definition, &text.imports, message_type.as_deref())
                            .and_then(|codec| codec.framed(format, compression, text.id.as_ref()))
                    })
                    .await;
                    let codec = compiled.unwrap_or_else(|_| Err(Failure::panicked()));
                    (codec.map(Arc::new), ttl)
                }
            },
            Err(FetchError::NotFound(message)) => (Err(Failure::not_found(message)), self.miss_ttl),
            // as a schema that does not compile: the registry owner's to fix, until the next version
            Err(FetchError::Refused(message)) => (Err(Failure::internal(message)), ttl),
            Err(FetchError::Unavailable(why)) => match previous.as_ref().map(|e| &e.value) {
                Some(Ok(codec)) => {
                    metrics::schema_refresh_failed();
                    log::once(
                        &format!("kept {topic}"),
                        format_args!("schema {schema}: kept the last version for topic {topic}: {why}"),
                    );
                    (Ok(codec.clone()), RETRY_WHILE_DOWN.min(self.ttl))
                }
                _ => (
                    Err(Failure::unavailable(format!("topic {topic}: not stored: {why}"))),
                    REMEMBER_FAILURE.min(self.miss_ttl),
                ),
            },
        };
        slot.entry.store(Some(Arc::new(Entry { value: value.clone(), expires: clock::now() + ttl })));
        value
    }

    fn slot(&self, topic: &str) -> Arc<Slot> {
        if let Some(slot) = self.existing(topic) {
            return slot;
        }
        let mut slots = self.slots.write().unwrap_or_else(PoisonError::into_inner);
        if slots.by_topic.len() >= slots.sweep_at.max(MAX_SLOTS) {
            #[cfg(test)]
            {
                slots.visited += slots.by_topic.len();
            }
            slots.by_topic.retain(|_, s| matches!(s.entry.load().as_deref(), Some(Entry { value: Ok(_), .. })));
            slots.sweep_at = 2 * slots.by_topic.len();
        }
        slots.by_topic.entry(topic.to_owned()).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::registry::source::SchemaText;

    const SEED: &str = r#"syntax = "proto3"; package events; message SampleEvent { string some_message = 1; }"#;

    /// A registry whose answer the test sets, counting the calls made to it.
    #[derive(Clone, Default)]
    struct FakeRegistry {
        answer: Arc<Mutex<Option<Result<SchemaText, FetchError>>>>,
        /// Every call: the schema and the version asked for.
        asked: Arc<Mutex<Vec<(String, Option<i64>)>>>,
    }

    impl FakeRegistry {
        fn answer(&self, a: Result<(&str, &str), FetchError>) {
            let a = a.map(|(format, text)| SchemaText {
                definition: text.into(),
                data_format: format.into(),
                id: None,
                imports: Vec::new(),
            });
            *self.answer.lock().unwrap() = Some(a);
        }
        fn calls(&self) -> usize {
            self.asked.lock().unwrap().len()
        }
    }

    impl SchemaSource for FakeRegistry {
        async fn fetch(&self, schema: &str, version: Option<i64>) -> Result<SchemaText, FetchError> {
            self.asked.lock().unwrap().push((schema.to_owned(), version));
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.answer.lock().unwrap().clone().expect("the test sets an answer")
        }
    }

    fn cache(fake: &FakeRegistry, ttl_ms: u64) -> Arc<SchemaCache<FakeRegistry>> {
        let ttl = Duration::from_millis(ttl_ms);
        Arc::new(SchemaCache::new(fake.clone(), HashMap::new(), ttl, ttl, Arc::new(TokenBucket::new(1000, 1000))))
    }

    /// On this thread, whose clock the test moves on (`clock::advance`): TTLs expire exactly when it says.
    fn run<F: std::future::Future<Output = ()>>(test: F) {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(test)
    }

    #[test]
    fn concurrent_misses_make_one_call_and_hits_make_none() {
        run(concurrent_misses())
    }
    async fn concurrent_misses() {
        let fake = FakeRegistry::default();
        fake.answer(Ok(("PROTOBUF", SEED)));
        let cache = cache(&fake, 60_000);
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.get("t").await.map(|c| c.message_name().to_owned()) })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), "events.SampleEvent");
        }
        assert_eq!(fake.calls(), 1);
        assert!(cache.usable("t").is_some_and(|fresh| fresh.is_ok()));
        cache.get("t").await.unwrap();
        assert_eq!(fake.calls(), 1);
    }

    /// A cache whose entry for topic "t" (the seed schema) has just expired.
    async fn expired() -> (FakeRegistry, Arc<SchemaCache<FakeRegistry>>) {
        let fake = FakeRegistry::default();
        fake.answer(Ok(("PROTOBUF", SEED)));
        let cache = cache(&fake, 30);
        cache.get("t").await.unwrap();
        clock::advance(Duration::from_millis(40));
        (fake, cache)
    }

    #[test]
    fn expired_entries_are_fetched_again() {
        run(async {
            let (fake, cache) = expired().await;
            let seen = cache.existing("t").unwrap().entry.load_full().unwrap();
            assert!(seen.expires <= clock::now(), "expired");
            cache.get("t").await.unwrap();
            assert_eq!(fake.calls(), 2);
        })
    }

    #[test]
    fn stale_schema_is_served_while_the_registry_is_down() {
        run(async {
            let (fake, cache) = expired().await;
            fake.answer(Err(FetchError::Unavailable("connection refused".into())));
            assert_eq!(cache.get("t").await.unwrap().message_name(), "events.SampleEvent");
            // with nothing cached the same outage is a 503 naming the cause
            let f = cache.get("other").await.unwrap_err();
            assert_eq!((f.status, f.message.as_str()), (503, "topic other: not stored: connection refused"));
        })
    }

    #[test]
    fn a_topic_seen_before_never_waits_for_the_registry_and_it_is_asked_once() {
        run(async {
            let fake = FakeRegistry::default();
            fake.answer(Ok(("PROTOBUF", SEED)));
            let cache = cache(&fake, 100);
            assert!(cache.usable("t").is_none(), "nothing cached: the caller must wait for get");
            cache.get("t").await.unwrap();
            clock::advance(Duration::from_millis(110));
            // due for a refresh, and the registry fails: every request still gets the last codec at once
            fake.answer(Err(FetchError::Unavailable("connection refused".into())));
            for _ in 0..50 {
                assert_eq!(cache.usable("t").unwrap().unwrap().message_name(), "events.SampleEvent");
            }
            // Waits for the background fetch itself to end, not for a fresh entry: that one is fresh for
            // 100 ms only, a window a slow machine (valgrind) can miss between two polls.
            let slot = cache.existing("t").unwrap();
            // It runs on the core's runtime, on the real clock.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while slot.refreshing.load(Ordering::Acquire) {
                assert!(std::time::Instant::now() < deadline, "the background fetch ended");
                std::thread::sleep(Duration::from_millis(5));
            }
            let kept = slot.entry.load_full().unwrap();
            let kept = kept.value.as_ref().map(|codec| codec.message_name().to_owned());
            assert_eq!(kept, Ok("events.SampleEvent".to_owned()), "the background fetch kept the last codec");
            assert_eq!(fake.calls(), 2, "one background fetch for fifty requests");
        })
    }

    #[test]
    fn not_found_bad_format_and_bad_schema_are_answered_and_remembered() {
        run(async {
            let fake = FakeRegistry::default();
            let cache = cache(&fake, 60_000);
            fake.answer(Err(FetchError::NotFound("no schema nope in Glue registry r".into())));
            assert_eq!(cache.get("nope").await.unwrap_err().status, 404);
            assert_eq!(cache.get("nope").await.unwrap_err().status, 404);
            assert_eq!(fake.calls(), 1);

            fake.answer(Ok(("XML", "<schema/>")));
            let f = cache.get("xml").await.unwrap_err();
            assert_eq!(
                (f.status, f.message.as_str()),
                (500, "schema xml: data format is XML, which the gateway does not write (AVRO, JSON, PROTOBUF)")
            );

            fake.answer(Ok(("PROTOBUF", "message {")));
            assert_eq!(cache.get("broken").await.unwrap_err().status, 500);

            let calls = fake.calls();
            fake.answer(Err(FetchError::Refused("subject s: imports more than 100 schemas".into())));
            for _ in 0..2 {
                let f = cache.get("refused").await.unwrap_err();
                assert_eq!((f.status, f.message.as_str()), (500, "subject s: imports more than 100 schemas"));
            }
            assert_eq!(fake.calls(), calls + 1, "remembered as a schema that does not compile is");
        })
    }

    #[test]
    fn a_failure_for_a_topic_never_served_is_remembered_briefly_not_asked_per_request() {
        run(async {
            let fake = FakeRegistry::default();
            fake.answer(Err(FetchError::Unavailable("down".into())));
            let cache = cache(&fake, 100); // remembered for min(1 s, schema_miss_ttl_ms)
            for _ in 0..20 {
                assert_eq!(cache.get("t").await.unwrap_err().status, 503);
            }
            assert_eq!(fake.calls(), 1);
            clock::advance(Duration::from_millis(150));
            assert_eq!(cache.get("t").await.unwrap_err().status, 503);
            assert_eq!(fake.calls(), 2, "asked again once it is forgotten");
        })
    }

    #[test]
    fn registry_calls_stay_within_the_budget_whatever_the_topic_names() {
        run(async {
            let fake = FakeRegistry::default();
            fake.answer(Err(FetchError::NotFound("no such schema".into())));
            let ttl = Duration::from_secs(60);
            let cache = SchemaCache::new(fake.clone(), HashMap::new(), ttl, ttl, Arc::new(TokenBucket::new(10, 10)));
            let mut statuses = HashMap::<u16, usize>::new();
            let started = std::time::Instant::now();
            for i in 0..200 {
                *statuses.entry(cache.get(&format!("random-{i}")).await.unwrap_err().status).or_default() += 1;
            }
            // 10 at once, and one more per 100 ms the 200 lookups took (each fake call takes 20 ms; far
            // longer under valgrind)
            let budget = 10 + (10.0 * started.elapsed().as_secs_f64()).ceil() as usize;
            assert!(fake.calls() <= budget, "{} calls in {:?}", fake.calls(), started.elapsed());
            assert_eq!(statuses[&404], fake.calls());
            assert_eq!(statuses[&503], 200 - fake.calls());
            let busy = cache.get("random-199").await.unwrap_err();
            assert!(
                busy.message.ends_with("the schema registry is asked too often (over 10 calls per second)"),
                "{busy:?}"
            );
        })
    }

    #[test]
    fn a_topic_may_name_its_schema_and_pin_a_version_fetched_once() {
        run(async {
            let fake = FakeRegistry::default();
            fake.answer(Ok(("PROTOBUF", SEED)));
            let topics = HashMap::from([
                ("audit".to_string(), TopicSchema { schema_name: Some("shared".into()), ..TopicSchema::default() }),
                ("pinned".to_string(), TopicSchema { schema_version: Some(2), ..TopicSchema::default() }),
            ]);
            let ttl = Duration::from_millis(50);
            let cache = SchemaCache::new(fake.clone(), topics, ttl, ttl, Arc::new(TokenBucket::new(1000, 1000)));
            for _ in 0..2 {
                for topic in ["audit", "pinned", "plain"] {
                    cache.get(topic).await.unwrap();
                }
                clock::advance(Duration::from_millis(100));
            }
            let asked = fake.asked.lock().unwrap().clone();
            let versions =
                |schema: &str| asked.iter().filter(|(s, _)| s == schema).map(|(_, v)| *v).collect::<Vec<_>>();
            assert_eq!(versions("shared"), [None, None]);
            assert_eq!(versions("plain"), [None, None]);
            assert_eq!(versions("pinned"), [Some(2)], "a pinned version is never fetched again");
        })
    }

    #[test]
    fn inserting_topics_costs_the_same_however_many_there_are() {
        let fake = FakeRegistry::default();
        let cache = cache(&fake, 1000);
        // Before, with MAX_SLOTS topics holding codecs every insert swept them all (10,000 x 20,000 visits).
        let codec = Arc::new(Codec::compile("s", DataFormat::Protobuf, SEED, &[], None).unwrap());
        for i in 0..MAX_SLOTS {
            let entry = Entry { value: Ok(codec.clone()), expires: clock::now() + FOREVER };
            cache.slot(&format!("served-{i}")).entry.store(Some(Arc::new(entry)));
        }
        let inserted = 2 * MAX_SLOTS;
        for i in 0..inserted {
            cache.slot(&format!("t{i}"));
        }
        let slots = cache.slots.read().unwrap();
        assert!(slots.visited <= 2 * (MAX_SLOTS + inserted), "{} slots visited", slots.visited);
        assert!(slots.by_topic.len() <= 2 * MAX_SLOTS, "bounded: slots without a codec are dropped");
        assert!((0..MAX_SLOTS).all(|i| slots.by_topic.contains_key(&format!("served-{i}"))), "codecs are kept");
    }
}
