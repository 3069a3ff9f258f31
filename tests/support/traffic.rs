//! A bounded request loop that plays the load balancer in front of testbed nodes: every 200 ms
//! it health-checks each node (`GET /health`, as the target group does), and it sends each
//! request to the next node that passed its last check. Moto's load balancer has no data plane,
//! so this is the part of an ALB the zero-downtime tests need. A request that does not come
//! back 200 is a failure; none is retried.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

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

#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub ok: usize,
    pub failed: Vec<String>,
    /// Distinct bodies seen, in order of first sight (e.g. the versions served).
    pub bodies: Vec<String>,
}

pub struct Traffic {
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    threads: Vec<JoinHandle<()>>,
    pub targets: Arc<Mutex<Vec<SocketAddr>>>,
}

impl Traffic {
    pub fn start(targets: Vec<SocketAddr>) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let targets = Arc::new(Mutex::new(targets));
        let healthy: Arc<Mutex<Vec<SocketAddr>>> = Arc::default();
        let checker = {
            let (stop, targets, healthy) = (stop.clone(), targets.clone(), healthy.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let all = targets.lock().unwrap().clone();
                    let up = all
                        .into_iter()
                        .filter(|t| get(*t, "/health").is_ok())
                        .collect();
                    *healthy.lock().unwrap() = up;
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        };
        let requester = {
            let (stop, tally, healthy) = (stop.clone(), tally.clone(), healthy.clone());
            std::thread::spawn(move || {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let up = healthy.lock().unwrap().clone();
                    if let Some(target) = (!up.is_empty()).then(|| up[n % up.len()]) {
                        n += 1;
                        let result = get(target, "/");
                        let mut t = tally.lock().unwrap();
                        match result {
                            Ok(body) => {
                                t.ok += 1;
                                if !t.bodies.contains(&body) {
                                    t.bodies.push(body);
                                }
                            }
                            Err(e) => t.failed.push(format!("{target}: {e}")),
                        }
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Traffic {
            stop,
            tally,
            threads: vec![checker, requester],
            targets,
        }
    }

    pub fn tally(&self) -> Tally {
        self.tally.lock().unwrap().clone()
    }

    pub fn stop(mut self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
        self.tally()
    }
}
