//! The JSON text of a body, read token by token as the transcoder asks for them. It takes only what
//! RFC 8259 allows and reads the common forms itself; anything else (a lone surrogate, a number it would
//! have to round in a way it is not sure of) is `None`, and the body goes to the established codec.

use super::tally;

pub struct Scan<'a> {
    text: &'a [u8],
    /// The same text, for a number's slice of it.
    source: &'a str,
    at: usize,
}

/// A number as written: its text, whether it is an integer (no fraction, no exponent), its sign.
pub struct Number<'a> {
    pub text: &'a str,
    pub integer: bool,
    pub negative: bool,
}

/// Bytes a string's scan stops at: the closing quote, an escape, and the control characters JSON forbids
/// in a string.
static STOPS: [bool; 256] = {
    let mut stops = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        stops[b] = true;
        b += 1;
    }
    stops[b'"' as usize] = true;
    stops[b'\\' as usize] = true;
    stops
};

impl<'a> Scan<'a> {
    pub fn new(text: &'a str) -> Scan<'a> {
        Scan { text: text.as_bytes(), source: text, at: 0 }
    }

    /// The next byte that is not white space, not taken.
    pub fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.text.get(self.at) {
            if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(b);
            }
            tally(1);
            self.at += 1;
        }
        None
    }

    /// Takes `b`, the next byte that is not white space.
    pub fn take(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.at += 1)
    }

    /// Takes `,` (true) or `close` (false) after an item.
    pub fn more(&mut self, close: u8) -> Option<bool> {
        match self.peek()? {
            b',' => {
                self.at += 1;
                Some(true)
            }
            b if b == close => {
                self.at += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// At the end of the text, nothing but white space left.
    pub fn end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// Takes `word` (true, false, null) when it comes next.
    pub fn word(&mut self, word: &[u8]) -> bool {
        let found = self.peek().is_some() && self.text[self.at..].starts_with(word);
        if found {
            self.at += word.len();
        }
        found
    }

    /// A string's contents as written, between its quotes, and whether it holds an escape.
    pub fn string(&mut self) -> Option<(&'a [u8], bool)> {
        self.take(b'"')?;
        let start = self.at;
        let mut escaped = false;
        loop {
            let b = *self.text.get(self.at)?;
            tally(1);
            if !STOPS[usize::from(b)] {
                self.at += 1;
                continue;
            }
            match b {
                b'"' => {
                    self.at += 1;
                    return Some((&self.text[start..self.at - 1], escaped));
                }
                b'\\' => {
                    escaped = true;
                    // the escaped byte is checked by `unescape`; here it only must not end the string
                    self.at += 2;
                }
                _ => return None,
            }
        }
    }

    /// A number, as JSON writes one: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    pub fn number(&mut self) -> Option<Number<'a>> {
        self.peek()?;
        let start = self.at;
        let negative = self.byte_if(|b| b == b'-');
        match self.text.get(self.at)? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        let mut integer = true;
        if self.byte_if(|b| b == b'.') {
            integer = false;
            self.at_least_a_digit()?;
        }
        if self.byte_if(|b| b == b'e' || b == b'E') {
            integer = false;
            self.byte_if(|b| b == b'+' || b == b'-');
            self.at_least_a_digit()?;
        }
        Some(Number { text: self.source.get(start..self.at)?, integer, negative })
    }

    fn byte_if(&mut self, wanted: impl Fn(u8) -> bool) -> bool {
        let found = self.text.get(self.at).is_some_and(|&b| wanted(b));
        if found {
            self.at += 1;
        }
        found
    }

    fn digits(&mut self) {
        while self.byte_if(|b| b.is_ascii_digit()) {
            tally(1);
        }
    }

    fn at_least_a_digit(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }
}

/// Appends the text of a string's contents as written (`raw`, from [`Scan::string`]) to `out`, its
/// escapes decoded. None for an escape JSON does not have and for a lone surrogate, which is not text.
pub fn unescape(raw: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut i = 0;
    while i < raw.len() {
        tally(1);
        let b = raw[i];
        if b != b'\\' {
            let run = raw[i..].iter().position(|&b| b == b'\\').unwrap_or(raw.len() - i);
            out.extend_from_slice(&raw[i..i + run]);
            i += run;
            continue;
        }
        let decoded = match *raw.get(i + 1)? {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let (c, len) = code_point(&raw[i..])?;
                let mut utf8 = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                i += len;
                continue;
            }
            _ => return None,
        };
        out.push(decoded);
        i += 2;
    }
    Some(())
}

/// The character a `\uXXXX` escape (or a surrogate pair of them) at the start of `raw` writes, and how
/// many bytes it takes.
fn code_point(raw: &[u8]) -> Option<(char, usize)> {
    let first = hex4(raw.get(2..6)?)?;
    if !(0xd800..0xe000).contains(&first) {
        return Some((char::from_u32(first)?, 6));
    }
    if first >= 0xdc00 || raw.get(6..8)? != b"\\u" {
        return None;
    }
    let second = hex4(raw.get(8..12)?)?;
    if !(0xdc00..0xe000).contains(&second) {
        return None;
    }
    Some((char::from_u32(0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00))?, 12))
}

fn hex4(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0, |n, &d| Some(n << 4 | char::from(d).to_digit(16)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unescaped(raw: &str) -> Option<String> {
        let mut out = Vec::new();
        unescape(raw.as_bytes(), &mut out)?;
        Some(String::from_utf8(out).unwrap())
    }

    #[test]
    fn escapes_decode_as_json_defines_them() {
        assert_eq!(unescaped(r#"a\"b\\c\/d\b\f\n\r\t"#).as_deref(), Some("a\"b\\c/d\u{8}\u{c}\n\r\t"));
        assert_eq!(unescaped(r"\u00e9\u20AC\ud83d\ude00x").as_deref(), Some("é€😀x"));
        for lone in [r"\ud800", r"\udc00", r"\ud800\u0041", r"\ud800x", r"\x", r"\u12"] {
            assert_eq!(unescaped(lone), None, "{lone}");
        }
    }

    #[test]
    fn numbers_are_read_by_json_grammar() {
        for (text, integer) in [("0", true), ("-12", true), ("1.5", false), ("-0.5e-3", false), ("7E+2", false)] {
            let number = Scan::new(text).number().unwrap();
            assert_eq!((number.text, number.integer), (text, integer));
        }
        for text in ["01", "-", "1.", ".5", "1e", "+1", "1.e3"] {
            let mut scan = Scan::new(text);
            let read = scan.number().map(|n| n.text.len());
            assert!(read.is_none() || !scan.end(), "{text}");
        }
    }

    #[test]
    fn a_string_stops_at_its_quote_and_refuses_control_characters() {
        let mut scan = Scan::new(r#" "a\"b" , "#);
        assert_eq!(scan.string(), Some((&br#"a\"b"#[..], true)));
        assert_eq!(scan.more(b'}'), Some(true));
        assert_eq!(Scan::new("\"a\nb\"").string(), None);
        assert_eq!(Scan::new("\"open").string(), None);
    }
}
