//! Helpers shared by the integration tests (loopback only).

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use ftpsh_core::tls::{accept, Identity, TlsStream};

pub const T: Duration = Duration::from_secs(10);

pub fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap().to_string();
    (l, a)
}

pub fn tcp(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Serves `n` connections on a thread: each TLS accept result goes to `f`.
pub fn serve<F>(l: TcpListener, id: &Identity, n: usize, f: F) -> JoinHandle<Vec<String>>
where
    F: Fn(TlsStream) -> String + Send + 'static,
{
    let cfg = id.server_config();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        for _ in 0..n {
            let (s, _) = l.accept().unwrap();
            s.set_nodelay(true).unwrap();
            match accept(s, &cfg, T) {
                Ok(tls) => out.push(f(tls)),
                Err(e) => out.push(format!("ERR {e}")),
            }
        }
        out
    })
}

pub fn identity(dir: &Path) -> Identity {
    Identity::load_or_create(dir).unwrap()
}

pub fn arc<T>(t: T) -> Arc<T> {
    Arc::new(t)
}

/// A small, fast deterministic byte source.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A connected pair over loopback TCP: (server side, client side).
pub fn tls_pair() -> (TlsStream, TlsStream) {
    let tmp = tempfile::tempdir().unwrap();
    let id = identity(tmp.path());
    let (l, addr) = listener();
    let cfg = id.server_config();
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        s.set_nodelay(true).unwrap();
        accept(s, &cfg, T).unwrap()
    });
    let trust = ftpsh_core::tls::ClientTrust::pins_only()
        .with_pin(Some(&id.fingerprint()))
        .unwrap();
    let (c, _) = ftpsh_core::tls::connect(tcp(&addr), "127.0.0.1", &trust).unwrap();
    (h.join().unwrap(), c)
}
