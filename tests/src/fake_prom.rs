//! A loopback HTTP server that answers Prometheus scrapes from a script: per path, bodies
//! in order, the last repeated (a dcgm-exporter, a vLLM `/metrics`, one that breaks).

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// The server; it runs until the test process ends.
pub struct FakeProm {
    /// `http://IP:PORT`.
    pub url: String,
    served: Arc<Mutex<HashMap<String, usize>>>,
}

impl FakeProm {
    /// Serves `routes`: each path's bodies in order, then its last again and again; other
    /// paths get 404.
    pub fn start(routes: Vec<(&str, Vec<String>)>) -> FakeProm {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let mut script: HashMap<String, VecDeque<String>> = routes
            .into_iter()
            .map(|(p, bodies)| (p.to_string(), bodies.into()))
            .collect();
        let served = Arc::new(Mutex::new(HashMap::new()));
        let counts = served.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let body = script.get_mut(&path).and_then(|bodies| {
                    if bodies.len() > 1 {
                        bodies.pop_front()
                    } else {
                        bodies.front().cloned()
                    }
                });
                *counts.lock().unwrap().entry(path).or_insert(0) += 1;
                let (status, body) = match body {
                    Some(b) => ("200 OK", b),
                    None => ("404 Not Found", "not found\n".to_string()),
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        FakeProm { url, served }
    }

    /// How many scrapes `path` has answered.
    pub fn served(&self, path: &str) -> usize {
        self.served.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}
