//! Topic names: Kafka's rule for them, and which ones a backend serves. Without a list every legal topic name in the path is tried, and each
//! new name costs a registry call; with one, any other topic answers 404 before anything is fetched.

use crate::outcome::Failure;

/// Kafka's own rule for topic names: 1 to 249 of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn check_topic(name: &str) -> Result<(), Failure> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() {
        Err(Failure::bad_request("topicName: must not be empty"))
    } else if name.len() > 249 {
        Err(Failure::bad_request("topicName: longer than Kafka's limit of 249 characters"))
    } else if name == "." || name == ".." || !name.chars().all(legal) {
        Err(Failure::bad_request(format!(
            "topicName: {name:?} is not a legal Kafka topic name (letters, digits, '.', '_' and '-' only)"
        )))
    } else {
        Ok(())
    }
}

/// Exact topic names and patterns where `*` stands for any run of characters (`orders-*`, `*.v1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList(Vec<String>);

impl AllowList {
    /// The list from the config key `allowed_topics`; every entry is checked.
    pub fn new(entries: Vec<String>) -> Result<AllowList, String> {
        if entries.is_empty() {
            return Err("config key allowed_topics: empty; leave it out to serve every topic".into());
        }
        for entry in &entries {
            // Kafka's rule for names, with `*` standing for a legal character
            if check_topic(&entry.replace('*', "_")).is_err() {
                return Err(format!(
                    "config key allowed_topics: {entry:?} is not a topic name or pattern (letters, digits, '.', '_', '-', and '*' for any run of them)"
                ));
            }
        }
        Ok(AllowList(entries))
    }

    pub fn allows(&self, topic: &str) -> bool {
        self.0.iter().any(|pattern| matches(pattern.as_bytes(), topic.as_bytes()))
    }
}

fn matches(pattern: &[u8], text: &[u8]) -> bool {
    matching(pattern, text).0
}

/// Whether `text` matches `pattern` (`*`: any run), and the steps it took. Greedy with one point to come
/// back to, the usual wildcard algorithm: at most pattern x text steps, both bounded by Kafka's 249
/// characters.
fn matching(pattern: &[u8], text: &[u8]) -> (bool, usize) {
    let (mut p, mut t, mut steps) = (0, 0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        steps += 1;
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            // let the last `*` take one more character
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return (false, steps);
        }
    }
    (pattern[p..].iter().all(|&c| c == b'*'), steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_names_and_patterns() {
        let list = AllowList::new(vec!["orders".into(), "events-*".into(), "*.v1".into(), "a*b*c".into()]).unwrap();
        for topic in ["orders", "events-", "events-eu", "x.v1", ".v1", "abc", "aXbYc", "abbc"] {
            assert!(list.allows(topic), "{topic}");
        }
        for topic in ["order", "orders2", "events", "x.v2", "v1", "ab", "acb", "Orders"] {
            assert!(!list.allows(topic), "{topic}");
        }
        assert!(AllowList::new(vec!["*".into()]).unwrap().allows("anything"));
    }

    #[test]
    fn bad_entries_are_refused() {
        assert!(AllowList::new(vec![]).unwrap_err().contains("empty; leave it out"));
        for entry in ["", "a/b", "a b", &"x".repeat(250)] {
            let err = AllowList::new(vec![entry.into()]).unwrap_err();
            assert!(err.starts_with("config key allowed_topics: "), "{err}");
        }
    }

    #[test]
    fn a_pattern_of_many_stars_stays_bounded() {
        // A backtracking matcher takes exponential steps here; this one at most pattern x text.
        for n in [10, 50, 120] {
            let (pattern, text) = ("*a".repeat(n), "a".repeat(2 * n) + "b");
            let (matched, steps) = matching(pattern.as_bytes(), text.as_bytes());
            assert!(!matched);
            assert!(steps <= pattern.len() * text.len(), "{n}: {steps} steps");
        }
    }
}
