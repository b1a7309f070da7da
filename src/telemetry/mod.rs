//! What the process tells its operators: the log ([`log`]), the metrics ([`metrics`]), and the listener
//! that serves them and the readiness probe ([`listener`]; what "ready" means is decided above, in
//! `kafka::readiness`, and handed in).

pub mod listener;
pub mod log;
pub mod metrics;
