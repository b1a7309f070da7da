//! What a publish answers. The JSON shape is the seed Lambda's (`statusCode` is a string) so that its
//! callers work unchanged; a success also says where the broker stored the record.

use serde::Serialize;

/// A failed step: the HTTP status the caller gets and a message naming the cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: u16,
    pub message: String,
}

impl Failure {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Failure { status, message: message.into() }
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

/// Where the broker acknowledged a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub partition: i32,
    pub offset: i64,
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

/// The HTTP status of `outcome`: 200, or the failure's.
pub fn status(outcome: &Outcome) -> u16 {
    outcome.as_ref().map_or_else(|f| f.status, |_| 200)
}

/// The seed's response JSON: `{"statusCode":"200","message":"ok","partition":0,"offset":7}`.
pub fn to_json(outcome: &Outcome) -> String {
    let status_code = status(outcome).to_string();
    let response = match outcome {
        Ok(d) => Response { status_code, message: "ok", partition: Some(d.partition), offset: Some(d.offset) },
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
        answer(tx.clone()).send(Ok(Delivery { partition: 0, offset: 1 }));
        drop(answer(tx));
        assert_eq!(rx.recv().unwrap(), Ok(Delivery { partition: 0, offset: 1 }));
        assert_eq!(rx.recv().unwrap().unwrap_err().status, 503);
        assert!(rx.recv().is_err(), "nothing more");
    }

    #[test]
    fn success_carries_partition_and_offset() {
        let json = to_json(&Ok(Delivery { partition: 2, offset: 41 }));
        assert_eq!(json, r#"{"statusCode":"200","message":"ok","partition":2,"offset":41}"#);
    }

    #[test]
    fn failure_escapes_its_message() {
        let json = to_json(&Err(Failure::bad_request("body.\"a\": bad\n")));
        assert_eq!(json, r#"{"statusCode":"400","message":"body.\"a\": bad\n"}"#);
    }
}
