//! `GET /metrics` and `GET /ready` on the address `metrics_address` names, served by the core on its own
//! runtime, whatever hosts it (KrakenD or another caller). One listener per process: the first backend
//! that names an address starts it; another address named later is logged once and ignored.
//!
//! It is bounded against slow or hostile clients: a request's head must arrive within
//! `HEADER_READ_TIMEOUT`, a connection carries one request and lasts at most `CONNECTION_TIMEOUT`, and at
//! most `MAX_CONNECTIONS` are served at once (more are closed on arrival).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

use crate::runtime;
use crate::telemetry::log::{self, log};
use crate::telemetry::metrics::metrics;

const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Scrapers and probes make a handful of connections; far more is an attack or a bug.
const MAX_CONNECTIONS: usize = 32;
/// Request heads larger than this are refused: ours are a line and a few headers.
const MAX_HEAD_BYTES: usize = 16 * 1024;

const TEXT: &str = "text/plain; charset=utf-8";

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
    // Taken even if it cannot listen: the error is logged once, not again by every backend that names it.
    *serving = Some(address);
    let listener = std::net::TcpListener::bind(address).and_then(|l| l.set_nonblocking(true).map(|()| l));
    match listener {
        Ok(listener) => {
            log(format!("metrics on http://{address}/metrics, readiness on http://{address}/ready"));
            runtime::with_signals_blocked(|| runtime::runtime().spawn(accept(listener, ready)));
        }
        Err(e) => log(format!("config key metrics_address: cannot listen on {address}: {e}")),
    }
}

async fn accept(listener: std::net::TcpListener, ready: Readiness) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => return log(format!("metrics listener: {e}")),
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(false)
        .max_buf_size(MAX_HEAD_BYTES);
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors, typically: give the process a moment rather than spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else { continue }; // dropped: closed
        let connection = http
            .serve_connection(TokioIo::new(stream), hyper::service::service_fn(move |request| answer(request, ready)));
        tokio::spawn(async move {
            let _ended_or_timed_out = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
            drop(permit);
        });
    }
}

async fn answer(request: Request<Incoming>, ready: Readiness) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => {
            // Prometheus asks for OpenMetrics first; curl and older scrapers get Prometheus' own format.
            let accept = request.headers().get(ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
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
            // It may wait for a lock or replace a failed client: not on the runtime's one worker.
            match tokio::task::spawn_blocking(ready).await {
                Ok(Ok(())) => (StatusCode::OK, TEXT, "ready\n".to_owned()),
                Ok(Err(why)) => (StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("{why}\n")),
                Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, TEXT, "not ready: the check failed\n".to_owned()),
            }
        }
        _ => (StatusCode::NOT_FOUND, TEXT, "not found: GET /metrics or /ready\n".to_owned()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}
