//! The service's HTTP/1.1 server (hyper, on the core's runtime): it reads a request as the plugin's Go shim
//! does (path, `Message-Key`, `Message-Headers`, the trace context, `Idempotency-Key`, the body up to the
//! route's `max_body_bytes`), hands it to the route's backend, and answers with the core's status, JSON
//! and `Retry-After`. `/__health`, `/ready` and `/metrics` are served beside the routes.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::oneshot::Sender;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::outcome::{self, Failure, Outcome};
use crate::pipeline::backend::{Backend, Input};
use crate::pipeline::request::{BodyRead, HttpParts};
use crate::telemetry::listener::{probe, response, TEXT};
use crate::telemetry::log::log;

/// A request's head must arrive within this, the first one and each on a kept-alive connection.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Its body within this, once the head came: a client that trickles it is cut off.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// A head (request line and headers) larger than this is answered 431 by hyper.
const MAX_HEAD_BYTES: usize = 64 * 1024;

pub struct Routes(pub Vec<(String, Arc<Backend>)>);

impl Routes {
    /// The route of `path` (the longest prefix that serves it), and the path as the pipeline reads it: its
    /// topic segment percent-decoded, as KrakenD's router gives it to the plugin. `None` when no route
    /// serves it, or when the topic would not be one segment (`/v1/event/a/b`, `/v1/event/a%2Fb`):
    /// KrakenD's `{topic}` matches one.
    fn find(&self, path: &str) -> Option<(&Arc<Backend>, Vec<u8>)> {
        let serves = |prefix: &str| if prefix.ends_with('/') { path.starts_with(prefix) } else { path == prefix };
        let (prefix, backend) = self.0.iter().find(|(prefix, _)| serves(prefix))?;
        let topic: Vec<u8> = percent_encoding::percent_decode_str(&path[prefix.len()..]).collect();
        (!topic.contains(&b'/')).then(|| (backend, [prefix.as_bytes(), &topic].concat()))
    }

    /// What the routes serve, for the log and for a request no route serves.
    pub fn describe(&self) -> String {
        let route = |prefix: &str| format!("POST {prefix}{}", if prefix.ends_with('/') { "{topic}" } else { "" });
        self.0.iter().map(|(prefix, _)| route(prefix)).collect::<Vec<_>>().join(", ")
    }
}

/// Serves `routes` on `listener` until `stop` turns true; then takes no more connections, lets every
/// request it took finish with its real outcome (for at most `drain`), and returns.
pub async fn serve(
    listener: TcpListener,
    routes: Arc<Routes>,
    max_connections: usize,
    mut stop: watch::Receiver<bool>,
    drain: Duration,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(HEAD_TIMEOUT).max_buf_size(MAX_HEAD_BYTES);
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            // Past max_connections, new ones wait in the listen queue for a slot.
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => tokio::select! {
                    _ = stop.changed() => break,
                    accepted = listener.accept() => accepted.map(|(stream, _)| (stream, slot)),
                },
                Err(_) => break,
            },
        };
        let (stream, slot) = match accepted {
            Ok(accepted) => accepted,
            // Out of file descriptors, typically: give the process a moment rather than spin.
            Err(e) => {
                log(format!("service: cannot accept a connection: {e}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let routes = Arc::clone(&routes);
        let connection = http.serve_connection(
            TokioIo::new(stream),
            hyper::service::service_fn(move |request| {
                // Spawned as hyper hands over the request's head, before it can see the caller hang up (it
                // then drops this future): a request sent whole is published all the same, and its outcome
                // logged as one whose caller stopped waiting, as KrakenD does with the plugin's.
                let (tx, rx) = tokio::sync::oneshot::channel();
                tokio::spawn(answer(request, Arc::clone(&routes), tx));
                async { Ok::<_, Infallible>(rx.await.unwrap_or_else(|_| json(&Err(Failure::internal(UNANSWERED))))) }
            }),
        );
        let mut stop = stop.clone();
        connections.spawn(async move {
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = async { drop(stop.wait_for(|stopped| *stopped).await) } => {
                    // The request under way is answered; the connection closes after it.
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, async { while connections.join_next().await.is_some() {} }).await.is_err() {
        log(format!("service: {} connections still open after {} ms; closed", connections.len(), drain.as_millis()));
    }
}

/// A request the pipeline returned no answer for (it answers every one: this is a defect).
const UNANSWERED: &str = "publish: answered by no one";

/// Answers `request` through `reply`: at once (probes, a path no route serves, a method other than POST),
/// or once the pipeline has the outcome of its record.
async fn answer(request: Request<Incoming>, routes: Arc<Routes>, reply: Sender<Response<Full<Bytes>>>) {
    let path = request.uri().path();
    if path == "/__health" && request.method() == Method::GET {
        let _ = reply.send(response(StatusCode::OK, TEXT, "ok\n".into()));
        return;
    }
    if let Some((status, content_type, body)) =
        probe(request.method(), path, request.headers(), crate::kafka::producer::ready).await
    {
        let _ = reply.send(response(status, content_type, body));
        return;
    }
    let Some((backend, path)) = routes.find(path).map(|(backend, path)| (Arc::clone(backend), path)) else {
        let f = Failure::not_found(format!("no route for {path}: this service serves {}", routes.describe()));
        let _ = reply.send(json(&Err(f)));
        return;
    };
    if request.method() != Method::POST {
        let f = Failure::new(405, format!("{} {}: only POST publishes", request.method(), request.uri().path()));
        let mut response = json(&Err(f));
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("POST"));
        let _ = reply.send(response);
        return;
    }
    let limit = backend.rules().map_or(0, |rules| rules.max_body_bytes);
    let (head, body) = request.into_parts();
    let (body, body_read) = read_body(body, &head.headers, limit).await;
    let headers = &head.headers;
    let joined = |name: &str| {
        let values: Vec<&[u8]> = headers.get_all(name).iter().map(HeaderValue::as_bytes).collect();
        values.join(&b","[..])
    };
    let one = |name: &str| headers.get(name).map_or(&b""[..], HeaderValue::as_bytes);
    let (message_headers, tracestate) = (joined("message-headers"), joined("tracestate"));
    let parts = HttpParts {
        path: &path,
        key: one("message-key"),
        headers: &message_headers,
        traceparent: one("traceparent"),
        tracestate: &tracestate,
        idempotency_key: one("idempotency-key"),
        body: &body,
        body_read,
    };
    // The pipeline answers every request once, at the latest at the backend's timeout; a caller gone by
    // then is told to it by the failed send.
    let caller = Box::new(move |outcome: Outcome| reply.send(json(&outcome)).map_err(|_| outcome));
    backend.submit(Input::Http { parts, wait: None }, caller);
}

/// The body, read up to `limit` bytes: one past it, or a `Content-Length` past it, is `OverLimit` without
/// reading further.
async fn read_body(mut body: Incoming, headers: &HeaderMap, limit: usize) -> (Vec<u8>, BodyRead) {
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return (Vec::new(), BodyRead::OverLimit);
    }
    let mut read = Vec::with_capacity(declared.unwrap_or(0) as usize);
    let whole = async {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return BodyRead::Broken };
            if let Ok(data) = frame.into_data() {
                if read.len() + data.len() > limit {
                    return BodyRead::OverLimit;
                }
                read.extend_from_slice(&data);
            }
        }
        BodyRead::Complete
    };
    match tokio::time::timeout(BODY_TIMEOUT, whole).await {
        Ok(BodyRead::Complete) => (read, BodyRead::Complete),
        Ok(other) => (Vec::new(), other),
        Err(_) => (Vec::new(), BodyRead::Broken),
    }
}

/// The seed's answer for `outcome`: its status, `{"statusCode", "message", ...}` and `Retry-After`.
fn json(outcome: &Outcome) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(outcome::to_json(outcome))));
    *response.status_mut() =
        StatusCode::from_u16(outcome::status(outcome)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let retry_after = outcome::retry_after_s(outcome);
    if retry_after > 0 {
        headers.insert(RETRY_AFTER, HeaderValue::from(retry_after));
    }
    response
}
