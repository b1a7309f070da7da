//! The per-request rules a backend's configuration sets: what a request may carry and where it goes.

use crate::config::topics::AllowList;

/// What a backend's configuration says about its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Every request goes to this topic instead of the last segment of its path.
    pub topic: Option<String>,
    /// Larger bodies answer 413.
    pub max_body_bytes: usize,
    /// A longer `Message-Key` answers 431.
    pub max_key_bytes: usize,
    /// More `Message-Headers` items answer 431.
    pub max_headers: usize,
    /// A longer `Message-Headers` list answers 431.
    pub max_headers_bytes: usize,
    /// The topics served; `None`: every topic.
    pub allowed: Option<AllowList>,
    /// Whether a request's W3C trace context becomes record headers.
    pub propagate_trace: bool,
    /// A batch endpoint's limit of records per request; `None`: each request is one record.
    pub batch: Option<usize>,
}
