//! `GET /metrics` and `GET /ready` on the address `metrics_address` names, served by the core on its own
//! runtime, whatever hosts it (KrakenD or another caller). One listener per process: the first backend
//! that names an address starts it; another address named later is logged once and ignored. An address
//! that cannot be bound is tried again every `BIND_RETRY` for as long as the process runs.
//!
//! Whoever reaches the port must not keep the kubelet's probe from its answer, so the server is small and
//! bounded: a connection carries one request, its head must arrive within `HEAD_TIMEOUT` and the whole
//! exchange, answer written, ends within `CONNECTION_TIMEOUT`; at most `MAX_CONNECTIONS` are open at once,
//! and one that arrives when all are taken closes the oldest rather than being refused, so connections held
//! open (idle, half a head, an answer never read) cannot lock a probe out.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::task::AbortHandle;

use crate::runtime;
use crate::telemetry::log::{self, log};
use crate::telemetry::metrics::metrics;

/// A probe's or a scraper's head is a few hundred bytes, sent at once.
const HEAD_TIMEOUT: Duration = Duration::from_secs(2);
/// Ample to write a scrape across the pod network; a probe is answered within milliseconds.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// Far more than the probes and scrapers of a replica open at once: the oldest past that are closed.
const MAX_CONNECTIONS: usize = 64;
/// Request heads larger than this are refused: ours are a line and a few headers.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How often an address that could not be bound is tried again.
const BIND_RETRY: Duration = Duration::from_secs(5);

pub const TEXT: &str = "text/plain; charset=utf-8";

/// Where the listener serves, once a backend named an address.
static SERVING: Mutex<Option<SocketAddr>> = Mutex::new(None);

/// Whether the process can publish now: `Ok`, or why not in one line.
pub type Readiness = fn() -> Result<(), String>;

/// Serves the metrics, and `ready` as the readiness probe, on `address`, unless this process already
/// serves them.
pub fn serve(address: SocketAddr, ready: Readiness) {
    let mut serving = SERVING.lock().unwrap_or_else(PoisonError::into_inner);
    match *serving {
        Some(at) if at == address => return,
        Some(at) => {
            log::once(
                &format!("metrics_address {address}"),
                format_args!("config key metrics_address: {address} ignored: this process serves its metrics on {at}"),
            );
            return;
        }
        None => {}
    }
    // Taken even if it cannot listen yet: it is tried again here, not by every backend that names it.
    *serving = Some(address);
    // The first attempt at once, so that the log says at start-up whether it serves.
    let bound = bind(address);
    runtime::with_signals_blocked(|| {
        runtime::runtime().spawn(async move {
            let listener = match bound {
                Ok(listener) => listener,
                Err(e) => rebind(address, e).await,
            };
            accept(listener, ready).await
        })
    });
}

fn bind(address: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(address)?;
    listener.set_nonblocking(true)?;
    log(format!("metrics on http://{address}/metrics, readiness on http://{address}/ready"));
    Ok(listener)
}

/// Tries `address` again until it can be bound: a port held by the process this one replaces (a rolling
/// restart) or by another is freed sooner or later, and the probes need it then, not after a restart.
async fn rebind(address: SocketAddr, mut error: std::io::Error) -> std::net::TcpListener {
    loop {
        log::once(
            &format!("metrics_address {address} cannot listen: {error}"),
            format_args!(
                "config key metrics_address: cannot listen on {address}: {error} (tried again every {} s)",
                BIND_RETRY.as_secs()
            ),
        );
        tokio::time::sleep(BIND_RETRY).await;
        match bind(address) {
            Ok(listener) => return listener,
            Err(e) => error = e,
        }
    }
}

async fn accept(listener: std::net::TcpListener, ready: Readiness) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => return log(format!("metrics listener: {e}")),
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(HEAD_TIMEOUT).keep_alive(false).max_buf_size(MAX_HEAD_BYTES);
    let mut open = Connections::default();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors, typically: give the process a moment rather than spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let connection = http
            .serve_connection(TokioIo::new(stream), hyper::service::service_fn(move |request| answer(request, ready)));
        let task = tokio::spawn(async move {
            let _ended_or_timed_out = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
        });
        open.add(task.abort_handle());
    }
}

/// The connections being served, oldest first.
#[derive(Default)]
struct Connections(VecDeque<AbortHandle>);

impl Connections {
    /// Takes `connection`, and closes the oldest when `MAX_CONNECTIONS` are open: the newest is the likeliest
    /// to be a probe, and a connection held longest the likeliest to be held on purpose.
    fn add(&mut self, connection: AbortHandle) {
        self.0.retain(|c| !c.is_finished());
        if self.0.len() == MAX_CONNECTIONS {
            if let Some(oldest) = self.0.pop_front() {
                oldest.abort();
            }
        }
        self.0.push_back(connection);
    }
}

async fn answer(request: Request<Incoming>, ready: Readiness) -> Result<Response<Full<Bytes>>, Infallible> {
    let probed = probe(request.method(), request.uri().path(), request.headers(), ready).await;
    let (status, content_type, body) =
        probed.unwrap_or((StatusCode::NOT_FOUND, TEXT, "not found: GET /metrics or /ready\n".to_owned()));
    Ok(response(status, content_type, body))
}

/// An answer of `status` with `body` of `content_type`.
pub fn response(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The answer to a scrape (`GET /metrics`) or a readiness probe (`GET /ready`): its status, content type
/// and body; `None` for any other request. Every front end that serves HTTP serves these the same way.
pub async fn probe(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    ready: Readiness,
) -> Option<(StatusCode, &'static str, String)> {
    Some(match (method, path) {
        (&Method::GET, "/metrics") => {
            // Prometheus asks for OpenMetrics first; curl and older scrapers get Prometheus' own format.
            let accept = headers.get(ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
            match accept.contains("application/openmetrics-text") {
                true => (
                    StatusCode::OK,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    metrics().encode(true),
                ),
                false => (
                    StatusCode::OK,
                    prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                    metrics().encode(false),
                ),
            }
        }
        (&Method::GET, "/ready") => {
            // It takes the producers' locks: not on a runtime worker, which serves many connections.
            match tokio::task::spawn_blocking(ready).await {
                Ok(Ok(())) => (StatusCode::OK, TEXT, "ready\n".to_owned()),
                Ok(Err(why)) => (StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("{why}\n")),
                Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, TEXT, "not ready: the check failed\n".to_owned()),
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_past_the_limit_closes_the_oldest_open_one() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let mut open = Connections::default();
            let held: Vec<_> = (0..MAX_CONNECTIONS).map(|_| tokio::spawn(std::future::pending::<()>())).collect();
            held.iter().for_each(|c| open.add(c.abort_handle()));
            let ids = |open: &Connections| open.0.iter().map(AbortHandle::id).collect::<Vec<_>>();
            let mut expected: Vec<_> = held.iter().map(|c| c.id()).collect();
            assert_eq!(ids(&open), expected);

            // One that ended leaves its place to the next: nothing is closed for it.
            held[3].abort();
            let mut held: VecDeque<_> = held.into();
            assert!(held.remove(3).unwrap().await.unwrap_err().is_cancelled());
            let newcomers = [tokio::spawn(std::future::pending::<()>()), tokio::spawn(std::future::pending::<()>())];
            open.add(newcomers[0].abort_handle());
            expected.remove(3);
            expected.push(newcomers[0].id());
            assert_eq!(ids(&open), expected);

            open.add(newcomers[1].abort_handle());
            assert!(held.pop_front().unwrap().await.unwrap_err().is_cancelled(), "the oldest is closed");
            expected.remove(0);
            expected.push(newcomers[1].id());
            assert_eq!(ids(&open), expected);
        });
    }
}
