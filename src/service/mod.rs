//! krakend-kafka as a service: the plugin's HTTP interface on its own server, for every gateway that cannot
//! load the plugin (the official Alpine images, KrakenD CE 3, a KrakenD built with another Go release,
//! Envoy, nginx...). Each route is a backend of the same pipeline the C ABI feeds ([`Backend::submit`]),
//! opened from the same JSON object as a plugin backend's `krakend-kafka` block.

mod config;
mod server;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

use crate::pipeline::backend::Backend;
use crate::runtime;
use crate::telemetry::log::log;
pub use config::ServiceConfig;
use server::Routes;

/// How long a stop waits for the requests it took: a request is answered within its backend's
/// `timeout_ms` (10 s unless set), and the records then flushed.
const DRAIN: Duration = Duration::from_secs(60);

const USAGE: &str = "usage: krakend-kafka serve -c <config.json>";

/// `krakend-kafka serve -c FILE`: serves until SIGTERM or SIGINT, then answers the requests it took,
/// flushes, and exits 0. A configuration it cannot serve exits 2 before listening; an address it cannot
/// listen on, 1.
pub fn main(args: &[String]) -> ExitCode {
    let path = match args {
        [serve, c, path] if serve == "serve" && (c == "-c" || c == "--config") => path,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = std::fs::read(path)
        .map_err(|e| format!("cannot read {path}: {e}"))
        .and_then(|json| ServiceConfig::parse(&json).map_err(|e| format!("{path}: {e}")));
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            log(e);
            return ExitCode::from(2);
        }
    };
    runtime::use_workers(std::thread::available_parallelism().map_or(2, |n| n.get()));
    let mut routes = Vec::with_capacity(config.routes.len());
    for route in &config.routes {
        let (backend, error) = Backend::open(route.backend.get().as_bytes(), |name| std::env::var(name).ok());
        match (backend.rules(), error) {
            (None, error) => {
                log(format!("route {}: {}", route.prefix, error.unwrap_or_default()));
                return ExitCode::from(2);
            }
            // Its AWS settings are not there yet: it answers 503 and opens by itself.
            (Some(_), Some(error)) => log(format!("route {}: {error}", route.prefix)),
            (Some(_), None) => {}
        }
        routes.push((route.prefix.clone(), backend));
    }
    let routes = Arc::new(Routes(routes));
    let served = runtime::with_signals_blocked(runtime::runtime).block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| format!("config key listen: cannot listen on {}: {e}", config.listen))?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut term = signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM: {e}"))?;
        let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT: {e}"))?;
        tokio::spawn(async move {
            let which = tokio::select! { _ = term.recv() => "SIGTERM", _ = int.recv() => "SIGINT" };
            log(format!("{which}: no more connections; answering the requests under way"));
            let _ = stop.send(true);
        });
        let address = listener.local_addr().map_or_else(|_| config.listen.to_string(), |a| a.to_string());
        log(format!("serving on http://{address} ({})", routes.describe()));
        server::serve(listener, Arc::clone(&routes), config.max_connections, stopped, DRAIN).await;
        Ok::<(), String>(())
    });
    if let Err(e) = served {
        log(e);
        return ExitCode::from(1);
    }
    // Every request is answered; what librdkafka still holds is flushed before the process ends.
    for (_, backend) in &routes.0 {
        backend.close();
    }
    log("stopped");
    ExitCode::SUCCESS
}
