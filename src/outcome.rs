//! What a publish answers. The JSON shape is the seed Lambda's (`statusCode` is a string) so that its
//! callers work unchanged; a success also says where the broker stored the record.

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
}

/// What became of an accepted record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The broker acknowledged it, here.
    Stored { partition: i32, offset: i64 },
    /// Queued for the broker and not awaited (a fire-and-forget backend).
    Queued,
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
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    partition: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<i64>,
}

/// The HTTP status of `outcome`: 200 stored, 202 queued, or the failure's.
pub fn status(outcome: &Outcome) -> u16 {
    match outcome {
        Ok(Delivery::Stored { .. }) => 200,
        Ok(Delivery::Queued) => 202,
        Err(f) => f.status,
    }
}

/// The seed's response JSON: `{"statusCode":"200","message":"ok","partition":0,"offset":7}`.
pub fn to_json(outcome: &Outcome) -> String {
    let status_code = status(outcome).to_string();
    let response = match outcome {
        Ok(Delivery::Stored { partition, offset }) => {
            Response { status_code, message: "ok", partition: Some(*partition), offset: Some(*offset) }
        }
        Ok(Delivery::Queued) => Response { status_code, message: QUEUED, partition: None, offset: None },
        Err(f) => Response { status_code, message: &f.message, partition: None, offset: None },
    };
    serde_json::to_string(&response).expect("a struct of strings and integers always serializes")
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
    fn failure_escapes_its_message() {
        let json = to_json(&Err(Failure::bad_request("body.\"a\": bad\n")));
        assert_eq!(json, r#"{"statusCode":"400","message":"body.\"a\": bad\n"}"#);
    }
}
