//! The output of one body: protobuf writes a nested message's length before it, which is known only once
//! the message has been read. So each field's bytes go to one buffer as they are read, a message is a
//! list of pieces (bytes of the buffer, or a message below it) whose length is summed as they come, and
//! the record is laid out once at the end: every byte is copied once more, whatever the nesting.
//!
//! A message's pieces are in field order when the body named its fields in number order, as most do;
//! when it did not, they are put in order as the message closes, by walking the fields it named.

use prost::encoding::{encode_varint, encoded_len_varint};

use super::plan::Tag;
use super::tally;

pub struct Pieces {
    /// Every scalar's bytes, in the order read.
    pub data: Vec<u8>,
    /// The pieces of the messages still open, innermost last.
    open: Vec<Piece>,
    frames: Vec<Frame>,
    /// The pieces of the messages closed, each message's contiguous.
    done: Vec<Piece>,
    /// Where each field's pieces are in an open message being put in order, by the field's place.
    runs: Vec<(u32, u32)>,
}

#[derive(Clone, Copy)]
struct Piece {
    /// The field's place in its message's plan (its rank by number).
    field: u32,
    what: What,
}

#[derive(Clone, Copy)]
enum What {
    /// data[start..end], written as it is (key included).
    Bytes { start: u32, end: u32 },
    /// `tag`, the length of data[start..end], then those bytes.
    Delimited { tag: Tag, start: u32, end: u32 },
    /// `tag`, then `message`, length first.
    Message { tag: Tag, message: Closed },
}

/// A closed message: its pieces in `done`, and its encoded length.
#[derive(Clone, Copy)]
pub struct Closed {
    first: u32,
    count: u32,
    len: u32,
}

struct Frame {
    /// Where its pieces start in `open`.
    first: usize,
    len: usize,
    last_field: u32,
    in_order: bool,
}

impl Pieces {
    /// Room for a body of `len` bytes: its record is about as long, and a field takes a dozen bytes or
    /// more of JSON, so the buffers rarely grow.
    pub fn for_body(len: usize) -> Pieces {
        Pieces {
            data: Vec::with_capacity(len),
            open: Vec::with_capacity(64),
            frames: Vec::with_capacity(16),
            done: Vec::with_capacity(len / 12),
            runs: Vec::new(),
        }
    }

    /// Starts a message: the pieces that follow are its fields, until [`Pieces::close`].
    pub fn open(&mut self) {
        self.frames.push(Frame { first: self.open.len(), len: 0, last_field: 0, in_order: true });
    }

    /// The bytes written to `data` since `start` are field `field`'s, key included.
    pub fn bytes(&mut self, field: u32, start: usize) -> Option<()> {
        let end = self.data.len();
        self.push(field, end - start, What::Bytes { start: to_u32(start)?, end: to_u32(end)? })
    }

    /// The bytes written to `data` since `start` are the value of field `field`, to be written after its
    /// key `tag` and their length.
    pub fn delimited(&mut self, field: u32, tag: Tag, start: usize) -> Option<()> {
        let end = self.data.len();
        let n = end - start;
        let len = tag.bytes().len() + encoded_len_varint(n as u64) + n;
        self.push(field, len, What::Delimited { tag, start: to_u32(start)?, end: to_u32(end)? })
    }

    /// `message` is the value of field `field`, whose key is `tag`.
    pub fn message(&mut self, field: u32, tag: Tag, message: Closed) -> Option<()> {
        let n = message.len as usize;
        let len = tag.bytes().len() + encoded_len_varint(n as u64) + n;
        self.push(field, len, What::Message { tag, message })
    }

    fn push(&mut self, field: u32, len: usize, what: What) -> Option<()> {
        tally(1);
        let frame = self.frames.last_mut()?;
        if field < frame.last_field {
            frame.in_order = false;
        }
        frame.last_field = field;
        frame.len += len;
        self.open.push(Piece { field, what });
        Some(())
    }

    /// Closes the innermost message; `named` has a bit set for each field its object named (by place),
    /// which puts its pieces in order if they came in another.
    pub fn close(&mut self, named: &[u64]) -> Option<Closed> {
        let frame = self.frames.pop()?;
        let first = to_u32(self.done.len())?;
        if frame.in_order {
            self.done.extend_from_slice(&self.open[frame.first..]);
        } else {
            self.in_order(frame.first, named);
        }
        self.open.truncate(frame.first);
        let count = to_u32(self.done.len())? - first;
        Some(Closed { first, count, len: to_u32(frame.len)? })
    }

    /// Moves the pieces of the message from `open[first..]` to `done` in field order: each field's
    /// pieces are together (a key given twice was refused), so its run is found once and moved whole.
    fn in_order(&mut self, first: usize, named: &[u64]) {
        let pieces = &self.open[first..];
        let most = pieces.iter().map(|p| p.field as usize + 1).max().unwrap_or(0);
        if self.runs.len() < most {
            self.runs.resize(most, (0, 0));
        }
        for (i, piece) in pieces.iter().enumerate() {
            tally(1);
            let run = &mut self.runs[piece.field as usize];
            if run.1 == 0 {
                run.0 = (first + i) as u32;
            }
            run.1 = (first + i + 1) as u32;
        }
        for (word, bits) in named.iter().enumerate() {
            let mut bits = *bits;
            while bits != 0 {
                tally(1);
                let field = word * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Some(run) = self.runs.get_mut(field) {
                    let (start, end) = std::mem::take(run);
                    self.done.extend_from_slice(&self.open[start as usize..end as usize]);
                }
            }
        }
    }

    /// The record: `top`, the message the body is, laid out.
    pub fn lay_out(&self, top: Closed) -> Vec<u8> {
        let mut out = Vec::with_capacity(top.len as usize);
        self.write(top, &mut out);
        out
    }

    fn write(&self, message: Closed, out: &mut Vec<u8>) {
        let (first, count) = (message.first as usize, message.count as usize);
        for piece in &self.done[first..first + count] {
            tally(1);
            match piece.what {
                What::Bytes { start, end } => out.extend_from_slice(&self.data[start as usize..end as usize]),
                What::Delimited { tag, start, end } => {
                    out.extend_from_slice(tag.bytes());
                    encode_varint(u64::from(end - start), out);
                    out.extend_from_slice(&self.data[start as usize..end as usize]);
                }
                What::Message { tag, message } => {
                    out.extend_from_slice(tag.bytes());
                    encode_varint(u64::from(message.len), out);
                    self.write(message, out);
                }
            }
        }
    }
}

/// Offsets are kept in 32 bits: a body is far below 4 GB (the gateway takes at most a few MB), and a
/// record that is not stays with the established codec.
fn to_u32(n: usize) -> Option<u32> {
    u32::try_from(n).ok()
}
