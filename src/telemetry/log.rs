//! The core's log: what a caller's answer cannot say (a verdict that came after its deadline, a schema
//! kept while the registry fails, the full text of an error whose answer names only its kind) goes to
//! standard error, which the gateway's process log collects with its own. Lines carry no configuration
//! values and no secrets.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::outcome::{Delivery, Outcome};

pub fn log(line: impl std::fmt::Display) {
    eprintln!("[krakend-kafka] {line}");
}

/// Logs the outcome of a record of `topic` whose caller is no longer waiting for it; `which` says why
/// (`whose caller stopped waiting`, `answered 504 at its deadline`).
pub fn unwaited(topic: &str, which: &str, outcome: &Outcome) {
    match outcome {
        Ok(Delivery::Stored { partition, offset }) => {
            log(format!("topic {topic}: a record {which} was stored at partition {partition} offset {offset}"))
        }
        Ok(Delivery::Queued) => log(format!("topic {topic}: a record {which} was queued for Kafka")),
        Ok(Delivery::Batch(outcomes)) => {
            for (i, outcome) in outcomes.iter().enumerate() {
                unwaited(topic, &format!("(records[{i}] of a batch) {which}"), outcome);
            }
        }
        Err(f) => log(format!("topic {topic}: a record {which} failed ({}): {}", f.status, f.message)),
    }
}

/// How often one cause is logged again while it lasts.
const AGAIN_AFTER: Duration = Duration::from_secs(60);
/// Causes remembered at most: past that, the oldest are forgotten (and may be logged again sooner).
const CAUSES: usize = 1024;

/// Logs `line` unless `cause` was logged within the last minute (and says whether it did): an outage that
/// fails every request is logged once a minute, not once per request.
pub fn once(cause: &str, line: impl std::fmt::Display) -> bool {
    static LOGGED: Mutex<Option<HashMap<String, Instant>>> = Mutex::new(None);
    let now = Instant::now();
    let mut logged = LOGGED.lock().unwrap_or_else(PoisonError::into_inner);
    let logged = logged.get_or_insert_with(HashMap::new);
    if logged.get(cause).is_some_and(|at| now.duration_since(*at) < AGAIN_AFTER) {
        return false;
    }
    if logged.len() >= CAUSES {
        logged.retain(|_, at| now.duration_since(*at) < AGAIN_AFTER);
        if logged.len() >= CAUSES {
            logged.clear();
        }
    }
    logged.insert(cause.to_owned(), now);
    log(line);
    true
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cause_is_logged_once_while_it_lasts_and_distinct_causes_each_once() {
        assert!(super::once("test cause a", "first"));
        assert!(!super::once("test cause a", "again, at once"));
        assert!(super::once("test cause b", "another cause"));
        for i in 0..2 * super::CAUSES {
            super::once(&format!("test flood {i}"), "");
        }
        assert!(super::once("test cause a", "forgotten under a flood of causes: bounded memory"));
    }
}
