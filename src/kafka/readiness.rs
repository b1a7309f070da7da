//! Whether the process can publish now, for `GET /ready` (a Kubernetes readiness probe): every live
//! producer has reported, in fresh statistics from librdkafka, at least one broker connection up, and
//! none is in a fatal state. KrakenD's `/__health` says only that the gateway's process serves HTTP.

use std::time::{Duration, Instant};

use crate::kafka::statistics::Health;
use crate::telemetry::metrics::Label;

/// What readiness knows of one producer.
#[derive(Debug, Clone)]
pub struct ProducerState {
    /// Its client hit a fatal error: the next request or the producer's own check replaces it, a probe
    /// never (the log says why, and whether a fresh client could be made: librdkafka's text names
    /// brokers, which a probe's answer does not).
    pub fatal: bool,
    /// `statistics.interval.ms`; `None` when statistics are off.
    pub interval: Option<Duration>,
    /// The client's name and its last report; `None` before its first.
    pub last: Option<(Label, Health)>,
}

/// How many intervals may pass without a report before a producer's figures are too old to trust (its
/// polling thread is stuck, or librdkafka is): a second on top for the scheduling of its thread.
const INTERVALS_OF_SILENCE: u32 = 3;

/// `Ok` when every producer can publish; else why not, in one line for the probe's log.
pub fn decide(producers: &[ProducerState], now: Instant) -> Result<(), String> {
    if producers.is_empty() {
        return Err("not ready: no Kafka producer is open (no backend opened yet)".into());
    }
    for p in producers {
        let named = |why: &str| match &p.last {
            Some((client, _)) => format!("not ready: {why} (client {client})"),
            None => format!("not ready: {why}"),
        };
        if p.fatal {
            return Err(named("the Kafka producer hit a fatal error; it is being replaced"));
        }
        let Some(interval) = p.interval else {
            return Err(named("kafka.statistics.interval.ms is 0, so the brokers' state is unknown"));
        };
        let Some((_, health)) = &p.last else { return Err(named("connecting to Kafka")) };
        let silence = now.saturating_duration_since(health.at);
        if silence > interval * INTERVALS_OF_SILENCE + Duration::from_secs(1) {
            return Err(named(&format!("no statistics from librdkafka for {} s", silence.as_secs())));
        }
        if health.brokers_up == 0 {
            return Err(named("no Kafka broker reachable"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const INTERVAL: Duration = Duration::from_secs(5);

    fn reported(ago: Duration, brokers_up: usize, now: Instant) -> ProducerState {
        let health = Health { at: now - ago, brokers_up };
        ProducerState { fatal: false, interval: Some(INTERVAL), last: Some((Arc::new("kk#producer-1".into()), health)) }
    }

    #[test]
    fn ready_only_when_every_producer_reports_a_broker_up() {
        let now = Instant::now();
        let up = reported(Duration::from_secs(1), 2, now);
        assert_eq!(decide(std::slice::from_ref(&up), now), Ok(()));
        assert_eq!(
            decide(&[up.clone(), reported(Duration::from_secs(1), 0, now)], now),
            Err("not ready: no Kafka broker reachable (client kk#producer-1)".into())
        );
        assert_eq!(decide(&[], now), Err("not ready: no Kafka producer is open (no backend opened yet)".into()));
    }

    #[test]
    fn a_producer_that_has_not_reported_is_connecting_and_one_gone_silent_is_not_trusted() {
        let now = Instant::now();
        let fresh = ProducerState { fatal: false, interval: Some(INTERVAL), last: None };
        assert_eq!(decide(&[fresh], now), Err("not ready: connecting to Kafka".into()));
        assert_eq!(decide(&[reported(Duration::from_secs(16), 1, now)], now), Ok(()), "within 3 intervals and 1 s");
        let silent = decide(&[reported(Duration::from_secs(17), 1, now)], now).unwrap_err();
        assert_eq!(silent, "not ready: no statistics from librdkafka for 17 s (client kk#producer-1)");
        let off = ProducerState { fatal: false, interval: None, last: None };
        assert!(decide(&[off], now).unwrap_err().contains("statistics.interval.ms is 0"));
    }

    #[test]
    fn a_fatal_error_wins_over_a_broker_up() {
        let now = Instant::now();
        let mut fatal = reported(Duration::ZERO, 1, now);
        fatal.fatal = true;
        let why = decide(&[fatal], now).unwrap_err();
        assert!(why.starts_with("not ready: the Kafka producer hit a fatal error"), "{why}");
    }
}
