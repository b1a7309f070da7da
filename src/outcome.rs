//! What a publish answers. The JSON shape is the seed Lambda's (`statusCode` is a string) so that its
//! callers work unchanged; a success also says where the broker stored the record.

use std::borrow::Cow;

use serde::Serialize;

/// A failed step: the HTTP status the caller gets and a message naming the cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: u16,
    pub message: String,
    /// Seconds after which a retry may succeed (the `Retry-After` of an overloaded backend's 429); 0: none.
    pub retry_after_s: u32,
}

impl Failure {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Failure { status, message: message.into(), retry_after_s: 0 }
    }
    /// The backend holds as much as it may: nothing was sent, and a retry after `retry_after_s` may pass.
    pub fn overloaded(message: impl Into<String>, retry_after_s: u32) -> Self {
        Failure { retry_after_s, ..Self::new(429, message) }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, message)
    }
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, message)
    }
    /// A panic, as its caller is told: its text, which may quote a request or a schema, is the log's.
    pub fn panicked() -> Self {
        Self::internal("internal error (a bug): the gateway's log has the details")
    }
}

/// What became of an accepted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The broker acknowledged its record, here.
    Stored { partition: i32, offset: i64 },
    /// Queued for the broker and not awaited (a fire-and-forget backend).
    Queued,
    /// A batch's records' outcomes, in the batch's order (src/pipeline/batch.rs).
    Batch(Vec<Outcome>),
}

/// The answer to one publish call.
pub type Outcome = Result<Delivery, Failure>;

/// Where the outcome of one publish goes, exactly once. Dropped unanswered (the producer closed with the
/// record still queued, or a bug unwound past it), it answers 503 itself, so no caller waits forever.
pub struct Answer(Option<Box<dyn FnOnce(Outcome) + Send + Sync>>);

impl Answer {
    pub fn new(to: impl FnOnce(Outcome) + Send + Sync + 'static) -> Self {
        Answer(Some(Box::new(to)))
    }

    pub fn send(mut self, outcome: Outcome) {
        if let Some(to) = self.0.take() {
            to(outcome);
        }
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        if let Some(to) = self.0.take() {
            to(Err(Failure::unavailable("the request was dropped before the broker answered (the producer closed)")));
        }
    }
}

/// A fire-and-forget backend's 202: what the caller can and cannot rely on.
const QUEUED: &str = "accepted: queued for Kafka; not awaited, so it may still be lost";

#[derive(Serialize)]
struct Response<'a> {
    #[serde(rename = "statusCode")]
    status_code: String,
    message: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    partition: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    records: Option<Vec<Response<'a>>>,
}

/// The HTTP status of `outcome`: 200 stored, 202 queued, or the failure's. A batch's is its records'
/// status when they all share one; else 400 when it was refused for invalid records (its valid ones are
/// 424), else 207.
pub fn status(outcome: &Outcome) -> u16 {
    match outcome {
        Ok(Delivery::Stored { .. }) => 200,
        Ok(Delivery::Queued) => 202,
        Ok(Delivery::Batch(outcomes)) => {
            let first = outcomes.first().map_or(200, status);
            if outcomes.iter().all(|o| status(o) == first) {
                first
            } else if outcomes.iter().any(|o| status(o) == 424) {
                400
            } else {
                207
            }
        }
        Err(f) => f.status,
    }
}

/// When a retry may pass, in seconds (the `Retry-After` of a 429, a batch's longest); 0: none.
pub fn retry_after_s(outcome: &Outcome) -> u32 {
    match outcome {
        Ok(Delivery::Batch(outcomes)) => outcomes.iter().map(retry_after_s).max().unwrap_or(0),
        Ok(_) => 0,
        Err(f) => f.retry_after_s,
    }
}

/// Whether a record of the request was handed to Kafka for good: stored, or queued unawaited. Nothing was,
/// and a retry cannot store a record twice, when this is false.
pub fn took_effect(outcome: &Outcome) -> bool {
    match outcome {
        Ok(Delivery::Batch(outcomes)) => outcomes.iter().any(took_effect),
        Ok(_) => true,
        Err(_) => false,
    }
}

/// The seed's response JSON: `{"statusCode":"200","message":"ok","partition":0,"offset":7}`; a batch's
/// lists its records' in the same shape under `records`.
pub fn to_json(outcome: &Outcome) -> String {
    serde_json::to_string(&response(outcome)).expect("a struct of strings and integers always serializes")
}

fn response(outcome: &Outcome) -> Response<'_> {
    let status = status(outcome);
    let (message, place, records) = match outcome {
        Ok(Delivery::Stored { partition, offset }) => (Cow::Borrowed("ok"), Some((*partition, *offset)), None),
        Ok(Delivery::Queued) => (Cow::Borrowed(QUEUED), None, None),
        Ok(Delivery::Batch(outcomes)) => {
            (batch_message(status, outcomes), None, Some(outcomes.iter().map(response).collect()))
        }
        Err(f) => (Cow::Borrowed(f.message.as_str()), None, None),
    };
    Response {
        status_code: status.to_string(),
        message,
        partition: place.map(|(partition, _)| partition),
        offset: place.map(|(_, offset)| offset),
        records,
    }
}

/// What a batch's answer says of all its records; each record's own outcome is listed beside it.
fn batch_message(status: u16, outcomes: &[Outcome]) -> Cow<'_, str> {
    let count = |status: u16| outcomes.iter().filter(|o| self::status(o) == status).count();
    match status {
        200 => Cow::Borrowed("ok"),
        202 => Cow::Borrowed(QUEUED),
        400 => Cow::Owned(format!(
            "{} of {} records are invalid (see records); nothing was sent",
            count(400),
            outcomes.len()
        )),
        207 => Cow::Owned(format!(
            "{} of {} records stored, the others failed (see records): retry only those",
            count(200),
            outcomes.len()
        )),
        // every record failed alike: the first says why
        _ => match outcomes.first() {
            Some(Err(f)) => Cow::Borrowed(f.message.as_str()),
            _ => Cow::Borrowed("see records"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_given_once_and_dropping_it_answers_503() {
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        let answer = |tx: std::sync::mpsc::SyncSender<Outcome>| Answer::new(move |o| tx.send(o).unwrap());
        answer(tx.clone()).send(Ok(Delivery::Stored { partition: 0, offset: 1 }));
        drop(answer(tx));
        assert_eq!(rx.recv().unwrap(), Ok(Delivery::Stored { partition: 0, offset: 1 }));
        assert_eq!(rx.recv().unwrap().unwrap_err().status, 503);
        assert!(rx.recv().is_err(), "nothing more");
    }

    #[test]
    fn success_carries_partition_and_offset() {
        let json = to_json(&Ok(Delivery::Stored { partition: 2, offset: 41 }));
        assert_eq!(json, r#"{"statusCode":"200","message":"ok","partition":2,"offset":41}"#);
    }

    #[test]
    fn a_batch_answers_its_records_in_order_under_the_status_they_share_or_207() {
        let stored = |offset| Ok(Delivery::Stored { partition: 1, offset });
        let full = || Err(Failure::overloaded("queue full", 2));
        let all = Ok(Delivery::Batch(vec![stored(4), stored(5)]));
        assert_eq!((status(&all), retry_after_s(&all), took_effect(&all)), (200, 0, true));
        assert_eq!(
            to_json(&all),
            r#"{"statusCode":"200","message":"ok","records":[{"statusCode":"200","message":"ok","partition":1,"offset":4},{"statusCode":"200","message":"ok","partition":1,"offset":5}]}"#
        );
        let some = Ok(Delivery::Batch(vec![stored(4), full()]));
        assert_eq!((status(&some), retry_after_s(&some), took_effect(&some)), (207, 2, true));
        assert_eq!(
            to_json(&some),
            r#"{"statusCode":"207","message":"1 of 2 records stored, the others failed (see records): retry only those","records":[{"statusCode":"200","message":"ok","partition":1,"offset":4},{"statusCode":"429","message":"queue full"}]}"#
        );
        let none = Ok(Delivery::Batch(vec![full(), full()]));
        assert_eq!((status(&none), took_effect(&none)), (429, false));
        assert!(to_json(&none).starts_with(r#"{"statusCode":"429","message":"queue full","records":["#));
    }

    #[test]
    fn failure_escapes_its_message() {
        let json = to_json(&Err(Failure::bad_request("body.\"a\": bad\n")));
        assert_eq!(json, r#"{"statusCode":"400","message":"body.\"a\": bad\n"}"#);
    }
}
