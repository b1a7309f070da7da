//! The core's log: what a caller's answer cannot say (a verdict that came after its deadline, a schema
//! kept while the registry fails, the full text of an error whose answer names only its kind) goes to
//! standard error, which the gateway's process log collects with its own. Lines carry no configuration
//! values and no secrets.
//!
//! Logging never panics and never floods: it runs on librdkafka's threads, where a panic aborts the
//! gateway, and a log that cannot be written (a closed pipe) is lost rather than the process. Lines
//! repeated by an outage are rate-limited, and the next line written says how many were left out.

use std::collections::HashMap;
use std::fmt::{Display, Write as _};
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::outcome::{Delivery, Outcome};
use crate::rate::TokenBucket;

pub fn log(line: impl Display) {
    let mut text = String::from("[krakend-kafka] ");
    // A Display that fails leaves the line cut short, never a panic.
    let _ = writeln!(text, "{line}");
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// librdkafka's lines, per second and at once: warnings come one at a time; `debug` (set to troubleshoot)
/// writes hundreds a second, which are kept as long as they do not flood the gateway's log.
const LIBRDKAFKA_PER_SECOND: u32 = 1000;
const LIBRDKAFKA_BURST: u32 = 10_000;

/// A line librdkafka logged at syslog `level` (7: debug) under `facility` (its subsystem, such as `FAIL`
/// or `EOS`). librdkafka redacts the secrets of its configuration from what it logs.
pub fn librdkafka(level: i32, facility: &str, line: &str) {
    static LINES: LazyLock<Limited> = LazyLock::new(|| Limited::new(LIBRDKAFKA_PER_SECOND, LIBRDKAFKA_BURST));
    let Some(left_out) = LINES.admit() else { return };
    match left_out {
        0 => log(format_args!("librdkafka {level} {facility}: {line}")),
        n => log(format_args!(
            "librdkafka {level} {facility}: {line} ({n} lines of librdkafka before it were not logged)"
        )),
    }
}

/// Lines of outcomes nobody waits for, per second and at once: every one is logged in the normal course,
/// an outage's burst of late verdicts is not written line by line.
const UNWAITED_PER_SECOND: u32 = 100;
const UNWAITED_BURST: u32 = 1000;

/// Logs the outcome of a request to `topic` whose caller is no longer waiting for it, on one line (a
/// batch's records included); `which` says why (`whose caller stopped waiting`, `answered 504 at its
/// deadline`).
pub fn unwaited(topic: &str, which: &str, outcome: &Outcome) {
    static LINES: LazyLock<Limited> = LazyLock::new(|| Limited::new(UNWAITED_PER_SECOND, UNWAITED_BURST));
    let Some(left_out) = LINES.admit() else { return };
    let mut line = match outcome {
        Ok(Delivery::Batch(outcomes)) => {
            let mut line = format!("topic {topic}: a batch of {} records {which}:", outcomes.len());
            for (i, outcome) in outcomes.iter().enumerate() {
                let _ = write!(line, " records[{i}] {};", verdict(outcome));
            }
            line.pop();
            line
        }
        outcome => format!("topic {topic}: a record {which} {}", verdict(outcome)),
    };
    if left_out > 0 {
        let _ = write!(line, " ({left_out} such lines before it were not logged: over {UNWAITED_PER_SECOND} a second)");
    }
    log(line)
}

/// Lines under a rate limit, and the count of those it left out.
struct Limited {
    lines: TokenBucket,
    left_out: AtomicU64,
}

impl Limited {
    fn new(per_second: u32, burst: u32) -> Self {
        Limited { lines: TokenBucket::new(per_second, burst), left_out: AtomicU64::new(0) }
    }

    /// Whether a line may be written now, and if so how many were left out since the last one written.
    fn admit(&self) -> Option<u64> {
        if !self.lines.take() {
            self.left_out.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.left_out.swap(0, Ordering::Relaxed))
    }
}

fn verdict(outcome: &Outcome) -> String {
    match outcome {
        Ok(Delivery::Stored { partition, offset }) => format!("was stored at partition {partition} offset {offset}"),
        Ok(Delivery::Queued) => "was queued for Kafka".to_owned(),
        Ok(Delivery::Batch(outcomes)) => format!("was a batch of {} records", outcomes.len()),
        Err(f) => format!("failed ({}): {}", f.status, f.message),
    }
}

/// How often one cause is logged again while it lasts.
const AGAIN_AFTER: Duration = Duration::from_secs(60);
/// Causes remembered at most: past that, the oldest are forgotten (and may be logged again sooner).
const CAUSES: usize = 1024;

/// When a cause was last logged, and how often it came since.
struct Logged {
    at: Instant,
    since: u64,
}

/// Logs `line` unless `cause` was logged within the last minute (and says whether it did): an outage that
/// fails every request is logged once a minute, not once per request, with the count of the times between.
pub fn once(cause: &str, line: impl Display) -> bool {
    static LOGGED: Mutex<Option<HashMap<String, Logged>>> = Mutex::new(None);
    let now = Instant::now();
    let again = {
        let mut logged = LOGGED.lock().unwrap_or_else(PoisonError::into_inner);
        let logged = logged.get_or_insert_with(HashMap::new);
        match logged.get_mut(cause) {
            Some(last) if now.duration_since(last.at) < AGAIN_AFTER => {
                last.since += 1;
                return false;
            }
            Some(last) => std::mem::replace(last, Logged { at: now, since: 0 }).since,
            None => {
                if logged.len() >= CAUSES {
                    logged.retain(|_, last| now.duration_since(last.at) < AGAIN_AFTER);
                    if logged.len() >= CAUSES {
                        logged.clear();
                    }
                }
                logged.insert(cause.to_owned(), Logged { at: now, since: 0 });
                0
            }
        }
    };
    // Written outside the lock: a slow standard error must not hold every other thread's log.
    match again {
        0 => log(line),
        n => log(format_args!("{line} (seen {n} more times since it was last logged)")),
    }
    true
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_flood_of_lines_is_cut_to_the_burst_and_counted() {
        // No refill: what is admitted is the burst alone, whatever the machine's speed.
        let limited = super::Limited::new(0, 3);
        let admitted: Vec<Option<u64>> = (0..10_000).map(|_| limited.admit()).collect();
        assert_eq!(admitted[..3], [Some(0); 3]);
        assert!(admitted[3..].iter().all(Option::is_none));
        assert_eq!(limited.left_out.load(std::sync::atomic::Ordering::Relaxed), 9_997, "each one left out is counted");
    }

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
