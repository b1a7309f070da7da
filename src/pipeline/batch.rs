//! Batches: on a batch endpoint (`batch: true`) a request carries many records for one topic,
//! `{"records": [{"key": "k", "headers": {"h": "v"}, "value": {..}}, ..]}`. Each record is checked alone,
//! so the answer can name every invalid one by its field path; the publisher sends none unless all are
//! valid, sends them in order (librdkafka keeps that order per partition, so per key), and answers once
//! every record has its verdict, listing them in order.

use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::config::Rules;
use crate::format::json::without_position;
use crate::outcome::{Answer, Delivery, Failure, Outcome};
use crate::pipeline::request::{object_of_strings, with_trace, At, Head, Record, Records, Request};

/// The request of a batch endpoint: the body's records under `rules`, at most `max_records` of them.
/// `Message-Key` and `Message-Headers` are refused: each record carries its own.
pub(crate) fn from_http<'a>(head: Head<'a>, rules: &Rules, max_records: usize) -> Result<Request<'a>, Failure> {
    if !head.key.is_empty() || !head.headers.is_empty() {
        return Err(Failure::bad_request(
            "message-key, message-headers: not taken by a batch endpoint; give each record its own key and headers",
        ));
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body<'a> {
        #[serde(borrow)]
        records: Option<&'a RawValue>,
    }
    const SHAPE: &str = r#"must be a JSON object {"records": [{"key": .., "headers": {..}, "value": {..}}, ..]}"#;
    if !head.body.trim_start().starts_with('{') {
        return Err(Failure::bad_request(format!("body: {SHAPE}")));
    }
    let body: Body = serde_json::from_str(head.body).map_err(|e| match e.is_data() {
        true => Failure::bad_request(format!("body: {SHAPE}: {}", without_position(&e))),
        false => Failure::bad_request(format!("body: not valid JSON: {e}")),
    })?;
    let records = body.records.ok_or_else(|| Failure::bad_request("records: missing"))?;
    if !records.get().starts_with('[') {
        return Err(Failure::bad_request("records: must be an array of records"));
    }
    let records: Vec<&RawValue> = serde_json::from_str(records.get())
        .map_err(|e| Failure::bad_request(format!("records: must be an array of records: {e}")))?;
    if records.is_empty() {
        return Err(Failure::bad_request("records: must not be empty"));
    }
    if records.len() > max_records {
        return Err(Failure::new(413, format!("records: more than the limit of {max_records} records per batch")));
    }
    let records = records.into_iter().enumerate().map(|(i, raw)| record(raw, i, rules, &head)).collect();
    Ok(Request { topic: head.topic, records: Records::Batch(records), idempotency_key: head.idempotency_key })
}

/// One record of a batch, checked alone: as a request's record, and its key and headers within the
/// limits the HTTP header fields have on a single-record endpoint. Its errors name the record's place in the body (`records[i]`): serde_json's positions are within the
/// record, so they are left out.
fn record<'a>(raw: &'a RawValue, i: usize, rules: &Rules, head: &Head<'a>) -> Result<Record<'a>, Failure> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Fields<'a> {
        key: Option<Value>,
        #[serde(borrow)]
        headers: Option<&'a RawValue>,
        #[serde(borrow)]
        value: Option<&'a RawValue>,
    }
    let at = At::Batch(i);
    let refused = |message: String| Err(Failure::bad_request(message));
    if !raw.get().starts_with('{') {
        return refused(format!("records[{i}]: must be an object with value, and optionally key and headers"));
    }
    let fields: Fields = match serde_json::from_str(raw.get()) {
        Ok(fields) => fields,
        Err(e) => return refused(format!("records[{i}]: {}", without_position(&e))),
    };
    let key = match fields.key {
        None | Some(Value::Null) => None,
        Some(Value::String(key)) if key.len() > rules.max_key_bytes => {
            return refused(format!("{}: longer than the limit of {} bytes", at.key(), rules.max_key_bytes))
        }
        Some(Value::String(key)) => Some(key),
        Some(_) => return refused(format!("{}: must be a string", at.key())),
    };
    let mut headers = match fields.headers {
        None => Vec::new(),
        Some(raw) => object_of_strings(raw, at)?,
    };
    if headers.len() > rules.max_headers {
        return refused(format!("{}: more than the limit of {} headers", at.headers(), rules.max_headers));
    }
    if headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() > rules.max_headers_bytes {
        return refused(format!("{}: more than the limit of {} bytes", at.headers(), rules.max_headers_bytes));
    }
    with_trace(&mut headers, &head.trace);
    let value = fields.value.ok_or_else(|| Failure::bad_request(format!("{}: missing", at.value())))?;
    Record::new(value, key, headers, at)
}

/// The outcome of a batch none of whose records was sent, because some are invalid: each invalid record
/// with its failure, every valid one 424 (RFC 4918's Failed Dependency: refused for another's sake).
pub fn refused(checked: Vec<Result<(), Failure>>) -> Outcome {
    let invalid = checked.iter().filter(|c| c.is_err()).count();
    let failed_dependency =
        || Failure::new(424, format!("not sent: {invalid} other record(s) of the batch are invalid"));
    let outcomes = checked.into_iter().map(|c| Err(c.err().unwrap_or_else(failed_dependency)));
    Ok(Delivery::Batch(outcomes.collect()))
}

/// The verdicts on a batch's sent records, gathered into the batch's one outcome once the last is in.
pub struct Verdicts {
    state: Mutex<Gathered>,
}

struct Gathered {
    outcomes: Vec<Option<Outcome>>,
    missing: usize,
    whole: Option<Answer>,
}

impl Verdicts {
    /// Waits for `n` verdicts, then answers `whole` with them, in order.
    pub fn new(n: usize, whole: Answer) -> Arc<Verdicts> {
        let state = Gathered { outcomes: (0..n).map(|_| None).collect(), missing: n, whole: Some(whole) };
        Arc::new(Verdicts { state: Mutex::new(state) })
    }

    /// Where record `i`'s verdict goes.
    pub fn answer(self: &Arc<Self>, i: usize) -> Answer {
        let verdicts = Arc::clone(self);
        Answer::new(move |outcome| verdicts.settle(i, outcome))
    }

    fn settle(&self, i: usize, outcome: Outcome) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.outcomes[i].replace(outcome).is_none() {
            state.missing -= 1;
        }
        if state.missing > 0 {
            return;
        }
        let outcomes = std::mem::take(&mut state.outcomes).into_iter().map(|o| o.expect("every verdict is in"));
        let (outcomes, whole) = (outcomes.collect(), state.whole.take());
        drop(state);
        if let Some(whole) = whole {
            whole.send(Ok(Delivery::Batch(outcomes)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome;
    use crate::pipeline::request::{BodyRead, HttpParts};

    const RULES: Rules = Rules {
        topic: None,
        max_body_bytes: 1 << 20,
        max_key_bytes: 8,
        max_headers: 2,
        max_headers_bytes: 16,
        allowed: None,
        propagate_trace: true,
        batch: Some(3),
    };

    fn parts(body: &str) -> HttpParts<'_> {
        HttpParts {
            path: b"/v1/batch/orders",
            key: b"",
            headers: b"",
            traceparent: b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            tracestate: b"",
            idempotency_key: b"",
            body: body.as_bytes(),
            body_read: BodyRead::Complete,
        }
    }

    fn batch(body: &str) -> Result<Vec<Result<Record<'_>, Failure>>, Failure> {
        match Request::from_http(parts(body), &RULES)?.records {
            Records::Batch(records) => Ok(records),
            Records::One(_) => panic!("a batch endpoint's request is a batch"),
        }
    }

    #[test]
    fn each_record_is_read_in_order_with_its_key_headers_value_and_the_trace_context() {
        let records = batch(
            r#"{"records":[{"key":"a","headers":{"h":"1","g":"2"},"value":{"x":1}},{"value":{"x":2}},{"key":null,"value":{"x":3}}]}"#,
        )
        .unwrap();
        let records: Vec<Record> = records.into_iter().map(Result::unwrap).collect();
        let parent = ("traceparent".to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string());
        assert_eq!(records[0].key.as_deref(), Some("a"));
        assert_eq!(records[0].headers, [("h".into(), "1".into()), ("g".into(), "2".into()), parent.clone()]);
        assert_eq!(records[0].body.get(), r#"{"x":1}"#);
        assert_eq!((records[1].key.as_deref(), &records[1].headers[..]), (None, &[parent][..]));
        assert_eq!(records[2].body.get(), r#"{"x":3}"#);
    }

    #[test]
    fn an_invalid_record_is_its_failure_at_its_field_path_and_the_others_stay_valid() {
        let records =
            batch(r#"{"records":[{"key":7,"value":{"x":1}},{"value":{"x":1}},{"key":"123456789","value":{}}]}"#)
                .unwrap();
        assert_eq!(records[0].as_ref().unwrap_err().message, "records[0].key: must be a string");
        assert!(records[1].is_ok());
        assert_eq!(records[2].as_ref().unwrap_err().message, "records[2].key: longer than the limit of 8 bytes");
        let cases = [
            (r#"[1]"#, "records[0]: must be an object with value"),
            (r#"{"key":"k"}"#, "records[0].value: missing"),
            (r#"{"value":[1]}"#, "records[0].value: must be a JSON object"),
            (r#"{"value":{}}"#, "records[0].value: must not be an empty object"),
            (r#"{"value":{"x":1},"partition":2}"#, "records[0]: unknown field `partition`"),
            (r#"{"value":{"x":1},"headers":{"a":1}}"#, "records[0].headers.a: must be a string"),
            (r#"{"value":{"x":1},"headers":["a"]}"#, "records[0].headers: must be an object of strings"),
            (r#"{"value":{"x":1},"headers":{"a":"1","a":"2"}}"#, "records[0].headers: a is given twice"),
            (
                r#"{"value":{"x":1},"headers":{"a":"","b":"","c":""}}"#,
                "records[0].headers: more than the limit of 2 headers",
            ),
            (
                r#"{"value":{"x":1},"headers":{"a":"12345678901234567"}}"#,
                "records[0].headers: more than the limit of 16 bytes",
            ),
        ];
        for (record, expected) in cases {
            let body = format!(r#"{{"records":[{record}]}}"#);
            let failure = batch(&body).unwrap().remove(0).unwrap_err();
            assert!(failure.status == 400 && failure.message.starts_with(expected), "{record}: {failure:?}");
        }
    }

    #[test]
    fn a_body_that_is_no_batch_is_400_and_too_many_records_413_before_any_is_read() {
        let cases = [
            ("[]", 400, "body: must be a JSON object"),
            (r#"{"record":[]}"#, 400, "body: must be a JSON object {\"records\""),
            (r#"{}"#, 400, "records: missing"),
            (r#"{"records":{}}"#, 400, "records: must be an array of records"),
            (r#"{"records":[]}"#, 400, "records: must not be empty"),
            (r#"{"records":[1,2,3,4]}"#, 413, "records: more than the limit of 3 records per batch"),
            (r#"{"records":[1"#, 400, "body: not valid JSON"),
        ];
        for (body, status, expected) in cases {
            let failure = batch(body).unwrap_err();
            assert!(failure.status == status && failure.message.starts_with(expected), "{body}: {failure:?}");
        }
        let keyed = HttpParts { key: b"k", ..parts(r#"{"records":[{"value":{"x":1}}]}"#) };
        assert!(Request::from_http(keyed, &RULES).unwrap_err().message.starts_with("message-key, message-headers"));
        let over = HttpParts { body_read: BodyRead::OverLimit, ..parts("") };
        assert_eq!(Request::from_http(over, &RULES).unwrap_err().status, 413);
    }

    #[test]
    fn verdicts_answer_once_all_are_in_in_the_batchs_order_whatever_order_they_came_in() {
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        let verdicts = Verdicts::new(3, Answer::new(move |o| tx.send(o).unwrap()));
        let [a, b, c] = [0, 1, 2].map(|i| verdicts.answer(i));
        c.send(Ok(Delivery::Stored { partition: 0, offset: 9 }));
        a.send(Ok(Delivery::Stored { partition: 0, offset: 8 }));
        assert!(rx.try_recv().is_err(), "one verdict is missing");
        drop(b); // an answer dropped unanswered is a 503
        let outcome = rx.recv().unwrap();
        assert_eq!(outcome::status(&outcome), 207);
        let Ok(Delivery::Batch(outcomes)) = outcome else { panic!("{outcome:?}") };
        assert_eq!(outcomes[0], Ok(Delivery::Stored { partition: 0, offset: 8 }));
        assert_eq!(outcomes[1].as_ref().unwrap_err().status, 503);
        assert_eq!(outcomes[2], Ok(Delivery::Stored { partition: 0, offset: 9 }));
    }

    #[test]
    fn a_refused_batch_names_each_invalid_record_and_marks_the_valid_ones_424() {
        let outcome = refused(vec![Ok(()), Err(Failure::bad_request("records[1].value.x: bad")), Ok(())]);
        assert_eq!(outcome::status(&outcome), 400);
        let Ok(Delivery::Batch(outcomes)) = &outcome else { panic!() };
        let statuses: Vec<u16> = outcomes.iter().map(|o| o.as_ref().unwrap_err().status).collect();
        assert_eq!(statuses, [424, 400, 424]);
    }
}
