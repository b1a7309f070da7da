//! A request from the parts of an HTTP request: one record, or a batch on a batch endpoint.

use serde_json::value::RawValue;

use crate::config::Rules;
use crate::outcome::Failure;
use crate::pipeline::batch;
use crate::pipeline::request::{header_list, with_trace, At, HttpParts, Record, Records, Request};

impl<'a> Request<'a> {
    /// The request from the parts of an HTTP request, under `rules`: one record, or a batch on a batch
    /// endpoint ([`batch`]).
    pub fn from_http(parts: HttpParts<'a>, rules: &Rules) -> Result<Self, Failure> {
        let head = parts.head(rules)?;
        if let Some(max_records) = rules.batch {
            return batch::from_http(head, rules, max_records);
        }
        let body: &RawValue =
            serde_json::from_str(head.body).map_err(|e| Failure::bad_request(format!("body: not valid JSON: {e}")))?;
        let key = Some(head.key).filter(|k| !k.is_empty()).map(str::to_owned);
        let mut headers =
            header_list(head.headers).map_err(|e| Failure::bad_request(format!("message-headers: {e}")))?;
        with_trace(&mut headers, &head.trace);
        let record = Record::new(body, key, headers, At::Request)?;
        Ok(Request { topic: head.topic, records: Records::One(record), idempotency_key: head.idempotency_key })
    }
}
