//! Every link of the README and of docs/ that points into the repository resolves: the file exists and,
//! for `file#anchor`, the file has a heading with that anchor (GitHub's rule: lowercase, spaces to `-`,
//! punctuation other than `-` and `_` dropped).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

fn pages() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    pages.sort();
    pages
}

/// The lines outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(page: &Path) -> HashSet<String> {
    let text = std::fs::read_to_string(page).unwrap();
    prose(&text).iter().filter_map(|l| l.strip_prefix('#')).map(|h| anchor(h.trim_start_matches('#'))).collect()
}

/// The targets of the `[text](target)` links of a line.
fn links(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let Some(end) = after.find(')') else { break };
        out.push(&after[..end]);
        rest = &after[end..];
    }
    out
}

#[test]
fn every_link_into_the_repository_resolves() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for line in prose(&text) {
            for target in links(line) {
                if target.starts_with("http://") || target.starts_with("https://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (file, fragment) = target.split_once('#').unwrap_or((target, ""));
                let file = if file.is_empty() { page.clone() } else { page.parent().unwrap().join(file) };
                if !file.exists() {
                    broken.push(format!("{}: {target}: no such file", page.display()));
                } else if !fragment.is_empty() && file.is_file() && !anchors(&file).contains(fragment) {
                    broken.push(format!("{}: {target}: no heading with that anchor", page.display()));
                }
            }
        }
    }
    assert!(checked > 20, "only {checked} links found: the reader is broken");
    assert!(broken.is_empty(), "{} broken links:\n{}", broken.len(), broken.join("\n"));
}

#[test]
fn anchors_follow_githubs_rule() {
    assert_eq!(
        anchor("Deploying the plugin into an existing KrakenD"),
        "deploying-the-plugin-into-an-existing-krakend"
    );
    assert_eq!(anchor("Fire-and-forget"), "fire-and-forget");
    assert_eq!(anchor("The C API"), "the-c-api");
    assert_eq!(anchor("Schemas and wire formats: `topics.T`"), "schemas-and-wire-formats-topicst");
    assert_eq!(links("see [a](x.md#b) and [c](https://e) or [d](#f)"), ["x.md#b", "https://e", "#f"]);
}

#[test]
fn the_readme_is_a_first_page() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lines = std::fs::read_to_string(root.join("README.md")).unwrap().lines().count();
    assert!(lines <= 250, "README.md has {lines} lines: the reference belongs in docs/");
}
