//! A TCP proxy the fault tests put between a client and a real server, to make the network fail.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

/// A fixed address (the broker's FAULTY listener) serves one proxy at a time: the cases of a test binary
/// that need it take turns.
static FIXED_ADDRESS: Mutex<()> = Mutex::new(());

/// What the proxy does with the bytes and connections it gets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Passes everything on.
    Passing,
    /// Keeps every connection open and lets nothing through (held until it passes again), as a network
    /// that drops packets or a server that hangs.
    Frozen,
    /// Closes every connection, new or open, as a stopped server behind a load balancer.
    Closing,
}

/// A TCP proxy on `listen` to `target`.
pub struct Proxy {
    pub address: String,
    mode: Arc<(Mutex<Mode>, Condvar)>,
    /// How often the clients sent the marker given to `counting` (an AWS operation's name, say).
    seen: Arc<AtomicUsize>,
    open: Arc<AtomicBool>,
    accepting: Option<JoinHandle<()>>,
    _turn: Option<MutexGuard<'static, ()>>,
}

impl Proxy {
    pub fn start(listen: &str, target: String) -> Proxy {
        Proxy::counting(listen, target, b"")
    }

    /// A proxy that also counts how often `marker` passes from a client to the server.
    pub fn counting(listen: &str, target: String, marker: &'static [u8]) -> Proxy {
        let turn = (!listen.ends_with(":0")).then(|| FIXED_ADDRESS.lock().unwrap_or_else(PoisonError::into_inner));
        let listener = TcpListener::bind(listen).unwrap_or_else(|e| panic!("{listen}: {e}"));
        let address = listener.local_addr().unwrap().to_string();
        let mode = Arc::new((Mutex::new(Mode::Passing), Condvar::new()));
        let state = mode.clone();
        let seen = Arc::new(AtomicUsize::new(0));
        let count = seen.clone();
        let open = Arc::new(AtomicBool::new(true));
        let still_open = open.clone();
        let accepting = std::thread::spawn(move || {
            for client in listener.incoming() {
                if !still_open.load(Ordering::SeqCst) {
                    break; // the listener goes with the loop: the address is free again
                }
                let Ok(client) = client else { continue };
                if *state.0.lock().unwrap() == Mode::Closing {
                    continue; // dropped: closed
                }
                let Ok(server) = TcpStream::connect(&target) else { continue };
                let upstream = (client.try_clone().unwrap(), server.try_clone().unwrap(), marker);
                for (from, to, marker) in [upstream, (server, client, &b""[..])] {
                    let (state, count) = (state.clone(), count.clone());
                    std::thread::spawn(move || pump(from, to, &state, marker, &count));
                }
            }
        });
        Proxy { address, mode, seen, open, accepting: Some(accepting), _turn: turn }
    }

    /// How often the marker passed so far.
    pub fn seen(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.0.lock().unwrap() = mode;
        self.mode.1.notify_all();
    }

    pub fn freeze(&self, frozen: bool) {
        self.set(if frozen { Mode::Frozen } else { Mode::Passing });
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.set(Mode::Closing);
        self.open.store(false, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.address); // wakes the accept loop
        if let Some(accepting) = self.accepting.take() {
            let _ = accepting.join();
        }
    }
}

/// Copies `from` to `to` until either closes or the proxy closes them, holding what it read while the
/// proxy is frozen.
fn pump(mut from: TcpStream, mut to: TcpStream, mode: &(Mutex<Mode>, Condvar), marker: &[u8], seen: &AtomicUsize) {
    let mut buffer = [0u8; 64 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buffer) {
        if !marker.is_empty() {
            seen.fetch_add(buffer[..n].windows(marker.len()).filter(|w| *w == marker).count(), Ordering::SeqCst);
        }
        let now = *mode.1.wait_while(mode.0.lock().unwrap(), |m| *m == Mode::Frozen).unwrap();
        if now == Mode::Closing || to.write_all(&buffer[..n]).is_err() {
            let _ = from.shutdown(Shutdown::Both);
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
