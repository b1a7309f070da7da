//! What the shared store holds under a key, as text an operator can read with redis-cli: a tag and a
//! version, the request's fingerprint, then the owner of a request in flight or the outcome as JSON.
//! `I1 <fingerprint> <owner>`: in flight; `S1 <fingerprint> <outcome>`: stored, replayed to repeats;
//! `F1 <fingerprint> <outcome>`: failed, kept only for the repeats that wait (a new request claims it).

use serde::{Deserialize, Serialize};

use crate::format::json::cut;
use crate::outcome::{Delivery, Failure, Outcome};
use crate::pipeline::idempotency::Fingerprint;

/// The tag of a failed request's entry, which the claim script takes over.
pub const FAILED: char = 'F';
/// The longest failure message an entry keeps, in characters: each record's, a batch's many among them.
pub const MAX_MESSAGE_CHARS: usize = 256;

#[derive(Debug, PartialEq)]
pub enum Entry {
    InFlight { fingerprint: Fingerprint, owner: String },
    Stored { fingerprint: Fingerprint, outcome: Outcome },
    Failed { fingerprint: Fingerprint, outcome: Outcome },
}

/// An outcome as the entry writes it: `{"s":[partition,offset]}`, `"q"`, `{"b":[..]}`,
/// `{"e":[status,message,retry_after_s]}`.
#[derive(Serialize, Deserialize)]
enum Kept {
    #[serde(rename = "s")]
    Stored(i32, i64),
    #[serde(rename = "q")]
    Queued,
    #[serde(rename = "b")]
    Batch(Vec<Kept>),
    #[serde(rename = "e")]
    Failed(u16, String, u32),
}

impl Kept {
    fn of(outcome: &Outcome) -> Kept {
        match outcome {
            Ok(Delivery::Stored { partition, offset }) => Kept::Stored(*partition, *offset),
            Ok(Delivery::Queued) => Kept::Queued,
            Ok(Delivery::Batch(outcomes)) => Kept::Batch(outcomes.iter().map(Kept::of).collect()),
            Err(f) => {
                let message = match cut(&f.message, MAX_MESSAGE_CHARS) {
                    Some(short) => format!("{short}..."),
                    None => f.message.clone(),
                };
                Kept::Failed(f.status, message, f.retry_after_s)
            }
        }
    }

    fn outcome(self) -> Outcome {
        match self {
            Kept::Stored(partition, offset) => Ok(Delivery::Stored { partition, offset }),
            Kept::Queued => Ok(Delivery::Queued),
            Kept::Batch(kept) => Ok(Delivery::Batch(kept.into_iter().map(Kept::outcome).collect())),
            Kept::Failed(status, message, retry_after_s) => Err(Failure { status, message, retry_after_s }),
        }
    }
}

fn hex(fingerprint: &Fingerprint) -> String {
    fingerprint.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Fingerprint> {
    let mut fingerprint = [0u8; 32];
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    for (i, byte) in fingerprint.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(fingerprint)
}

impl Entry {
    pub fn encode(&self) -> String {
        let json = |outcome: &Outcome| serde_json::to_string(&Kept::of(outcome)).expect("numbers and strings");
        match self {
            Entry::InFlight { fingerprint, owner } => format!("I1 {} {owner}", hex(fingerprint)),
            Entry::Stored { fingerprint, outcome } => format!("S1 {} {}", hex(fingerprint), json(outcome)),
            Entry::Failed { fingerprint, outcome } => format!("{FAILED}1 {} {}", hex(fingerprint), json(outcome)),
        }
    }

    /// `None` for what this version did not write.
    pub fn decode(bytes: &[u8]) -> Option<Entry> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (tag, rest) = text.split_once(' ')?;
        let (fingerprint, rest) = rest.split_once(' ')?;
        let fingerprint = unhex(fingerprint)?;
        let outcome = || serde_json::from_str::<Kept>(rest).ok().map(Kept::outcome);
        match tag {
            "I1" => Some(Entry::InFlight { fingerprint, owner: rest.to_owned() }),
            "S1" => Some(Entry::Stored { fingerprint, outcome: outcome()? }),
            "F1" => Some(Entry::Failed { fingerprint, outcome: outcome()? }),
            _ => None,
        }
    }

    pub fn fingerprint(&self) -> &Fingerprint {
        match self {
            Entry::InFlight { fingerprint, .. }
            | Entry::Stored { fingerprint, .. }
            | Entry::Failed { fingerprint, .. } => fingerprint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: Fingerprint = [0xa5; 32];
    /// What an entry takes beyond its outcome's records: its tag, fingerprint and JSON's brackets.
    const HEAD_BYTES: usize = 80;
    /// What a record's outcome takes at most: its message as cut (a control character is escaped in 6
    /// bytes), its status and place.
    const RECORD_BYTES: usize = MAX_MESSAGE_CHARS * 6 + 48;

    #[test]
    fn every_entry_reads_back_as_written() {
        let batch = Ok(Delivery::Batch(vec![
            Ok(Delivery::Stored { partition: 2, offset: 41 }),
            Err(Failure { status: 429, message: "queue full \"q\" ✓".into(), retry_after_s: 3 }),
        ]));
        let entries = [
            Entry::InFlight { fingerprint: FP, owner: "4f1c-17".into() },
            Entry::Stored { fingerprint: FP, outcome: Ok(Delivery::Stored { partition: 1, offset: i64::MAX }) },
            Entry::Stored { fingerprint: FP, outcome: Ok(Delivery::Queued) },
            Entry::Stored { fingerprint: FP, outcome: batch },
            Entry::Failed { fingerprint: FP, outcome: Err(Failure::unavailable("topic t: not stored: down")) },
        ];
        for entry in entries {
            let text = entry.encode();
            assert_eq!(Entry::decode(text.as_bytes()).as_ref(), Some(&entry), "{text}");
        }
        let stored = Entry::Stored { fingerprint: FP, outcome: Ok(Delivery::Stored { partition: 1, offset: 7 }) };
        assert_eq!(stored.encode(), format!("S1 {} {{\"s\":[1,7]}}", "a5".repeat(32)));
        assert!(Entry::Failed { fingerprint: FP, outcome: Ok(Delivery::Queued) }.encode().starts_with(FAILED));
    }

    #[test]
    fn what_another_version_wrote_is_not_read() {
        let fp = "a5".repeat(32);
        for text in [
            String::new(),
            "S2 x {}".into(),
            format!("S1 {fp}"),
            format!("S1 {} {{\"s\":[1,7]}}", &fp[1..]),
            format!("S1 {fp} {{\"z\":1}}"),
            format!("X1 {fp} owner"),
        ] {
            assert_eq!(Entry::decode(text.as_bytes()), None, "{text}");
        }
        assert_eq!(Entry::decode(&[0xff, 0xfe]), None);
    }

    #[test]
    fn an_entry_is_bounded_by_its_records_whatever_their_messages() {
        let long = Err(Failure::unavailable("\u{1}".repeat(10_000)));
        let outcome = Ok(Delivery::Batch(vec![long.clone(); 500]));
        let text = Entry::Stored { fingerprint: FP, outcome }.encode();
        assert!(text.len() <= HEAD_BYTES + 500 * RECORD_BYTES, "{} bytes", text.len());
        let Some(Entry::Stored { outcome: Ok(Delivery::Batch(records)), .. }) = Entry::decode(text.as_bytes()) else {
            panic!("reads back")
        };
        let Err(f) = &records[0] else { panic!("a failure") };
        assert!(f.message.ends_with("...") && f.message.chars().count() == MAX_MESSAGE_CHARS + 3, "{f:?}");
        let one = Entry::Stored { fingerprint: FP, outcome: long }.encode();
        assert!(one.len() <= HEAD_BYTES + RECORD_BYTES, "{} bytes", one.len());
    }
}
