//! Requests as users send them: over HTTPS, through the load balancer (the ALB data plane of
//! tests/world/alb), by its DNS name, trusting only the stack's certificate. `Traffic` is a
//! bounded request loop — at most `MAX_REQUESTS` requests and `MAX_TIME` — each request on a new
//! connection, none retried: a request that does not come back 200 is a failure.
//!
//! `get` is plain HTTP to one address, for looking at one node directly.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// `GET path` over HTTP/1.0; the body if the status is 200.
pub fn get(target: SocketAddr, path: &str) -> Result<String, String> {
    let timeout = Duration::from_secs(2);
    let mut s = TcpStream::connect_timeout(&target, timeout).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout)).ok();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {target}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut response = String::new();
    s.read_to_string(&mut response).map_err(|e| e.to_string())?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    if head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200") {
        Ok(body.to_string())
    } else {
        Err(head.lines().next().unwrap_or("no response").to_string())
    }
}

/// The load balancer as a client reaches it: its DNS name (SNI and Host), the address its DNS
/// name resolves to here, and the certificates to trust.
#[derive(Clone)]
pub struct LoadBalancer {
    pub host: String,
    pub addr: std::net::IpAddr,
    config: Arc<rustls::ClientConfig>,
}

/// One response: status code, header lines, body.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl LoadBalancer {
    /// Trusting only the certificate in `ca` (PEM).
    pub fn new(host: &str, addr: std::net::IpAddr, ca: &Path) -> LoadBalancer {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        LoadBalancer {
            host: host.to_string(),
            addr,
            config: Arc::new(config),
        }
    }

    /// `GET path` over HTTPS (port 443) on a new connection, with `headers` added.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<Response, String> {
        let timeout = Duration::from_secs(5);
        let sock = TcpStream::connect_timeout(&SocketAddr::new(self.addr, 443), timeout)
            .map_err(|e| format!("connect: {e}"))?;
        sock.set_read_timeout(Some(timeout)).ok();
        let name = ServerName::try_from(self.host.clone()).map_err(|e| e.to_string())?;
        let conn =
            rustls::ClientConnection::new(self.config.clone(), name).map_err(|e| e.to_string())?;
        let mut tls = rustls::StreamOwned::new(conn, sock);
        let extra: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        write!(
            tls,
            "GET {path} HTTP/1.1\r\nHost: {}\r\n{extra}Connection: close\r\n\r\n",
            self.host
        )
        .map_err(|e| format!("send: {e}"))?;
        let mut raw = Vec::new();
        match tls.read_to_end(&mut raw) {
            Ok(_) => {}
            // A server that closes without close_notify: the response is complete anyway.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
            Err(e) => return Err(format!("receive: {e}")),
        }
        parse(&String::from_utf8_lossy(&raw))
    }
}

fn parse(text: &str) -> Result<Response, String> {
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no response: {text:?}"))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line: {head:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: body.to_string(),
    })
}

#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub ok: usize,
    pub failed: Vec<String>,
    /// Distinct bodies seen, in order of first sight (e.g. the versions served).
    pub bodies: Vec<String>,
    pub elapsed: Duration,
}

/// At most this many requests…
pub const MAX_REQUESTS: usize = 100_000;
/// …over at most this long.
pub const MAX_TIME: Duration = Duration::from_secs(30 * 60);

pub struct Traffic {
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    thread: Option<JoinHandle<()>>,
}

impl Traffic {
    /// A request to `/` every 20 ms, one after the other, until stopped (or the bounds).
    pub fn start(lb: &LoadBalancer) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let thread = {
            let (stop, tally, lb) = (stop.clone(), tally.clone(), lb.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut sent = 0;
                while !stop.load(Ordering::Relaxed)
                    && sent < MAX_REQUESTS
                    && started.elapsed() < MAX_TIME
                {
                    sent += 1;
                    let result = lb.get("/", &[]);
                    let mut t = tally.lock().unwrap();
                    match result {
                        Ok(r) if r.status == 200 => {
                            t.ok += 1;
                            if !t.bodies.contains(&r.body) {
                                t.bodies.push(r.body);
                            }
                        }
                        Ok(r) => t
                            .failed
                            .push(format!("{:?}: {}", started.elapsed(), r.status)),
                        Err(e) => t.failed.push(format!("{:?}: {e}", started.elapsed())),
                    }
                    t.elapsed = started.elapsed();
                    drop(t);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Traffic {
            stop,
            tally,
            thread: Some(thread),
        }
    }

    pub fn tally(&self) -> Tally {
        self.tally.lock().unwrap().clone()
    }

    pub fn stop(mut self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.tally()
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
