//! A TCP proxy the fault tests put between a client and a real server, to make the network fail.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};

/// A TCP proxy on `listen` to `target` that can be frozen: connections stay open, and bytes read while
/// it is frozen are held until it thaws.
pub struct Proxy {
    pub address: String,
    frozen: Arc<(Mutex<bool>, Condvar)>,
}

impl Proxy {
    pub fn start(listen: &str, target: String) -> Proxy {
        let listener = TcpListener::bind(listen).unwrap_or_else(|e| panic!("{listen}: {e}"));
        let address = listener.local_addr().unwrap().to_string();
        let frozen = Arc::new((Mutex::new(false), Condvar::new()));
        let state = frozen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(broker) = TcpStream::connect(&target) else { continue };
                for (from, to) in [(client.try_clone().unwrap(), broker.try_clone().unwrap()), (broker, client)] {
                    let state = state.clone();
                    std::thread::spawn(move || pump(from, to, &state));
                }
            }
        });
        Proxy { address, frozen }
    }

    pub fn freeze(&self, frozen: bool) {
        *self.frozen.0.lock().unwrap() = frozen;
        self.frozen.1.notify_all();
    }
}

/// Copies `from` to `to` until either closes, holding what it read while the proxy is frozen.
fn pump(mut from: TcpStream, mut to: TcpStream, frozen: &(Mutex<bool>, Condvar)) {
    let mut buffer = [0u8; 64 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buffer) {
        drop(frozen.1.wait_while(frozen.0.lock().unwrap(), |f| *f).unwrap());
        if to.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
