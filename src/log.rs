//! The core's log: what a caller's answer cannot say (a verdict that came after its deadline, a schema
//! kept while the registry fails) goes to standard error, which the gateway's process log collects with
//! its own. Lines carry no configuration values and no secrets.

pub fn log(line: impl std::fmt::Display) {
    eprintln!("[krakend-kafka] {line}");
}
