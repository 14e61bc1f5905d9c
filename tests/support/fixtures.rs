//! A tiny HTTP/1.1 server on loopback that answers every request with one fixed reply
//! (status, headers, body, delay) or with a long streamed body, and counts what it
//! received and sent. Written on raw TCP so it can misbehave exactly as a test needs.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream},
};

/// The body of a reply.
#[derive(Clone)]
pub enum Body {
    Bytes(Vec<u8>),
    /// `total` bytes of `<` sent in chunked encoding, produced as they are written (the
    /// fixture never holds them).
    Streamed {
        total: usize,
    },
}

/// What the fixture answers.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// Waited before anything is sent.
    pub delay: Duration,
}

impl Reply {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: Body::Bytes(body.into()),
            delay: Duration::ZERO,
        }
    }

    /// 200 `text/xml`.
    pub fn xml(body: impl Into<Vec<u8>>) -> Self {
        Self::new(200, "text/xml; charset=utf-8", body)
    }

    /// `application/json` with a status.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self::new(status, "application/json", body)
    }

    /// 200 with `total` streamed bytes.
    pub fn streamed(content_type: &str, total: usize) -> Self {
        Self {
            status: 200,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: Body::Streamed { total },
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A running fixture.
pub struct Fixture {
    pub addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    sent: Arc<AtomicUsize>,
    finished: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Fixture {
    /// Starts a fixture answering every request with `reply`.
    pub async fn start(reply: Reply) -> Fixture {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fixture");
        let fixture = Fixture {
            addr: listener.local_addr().expect("fixture address"),
            requests: Arc::default(),
            sent: Arc::default(),
            finished: Arc::default(),
            received: Arc::default(),
        };
        let (requests, sent, finished, received) = (
            Arc::clone(&fixture.requests),
            Arc::clone(&fixture.sent),
            Arc::clone(&fixture.finished),
            Arc::clone(&fixture.received),
        );
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (reply, requests, sent, finished, received) = (
                    reply.clone(),
                    Arc::clone(&requests),
                    Arc::clone(&sent),
                    Arc::clone(&finished),
                    Arc::clone(&received),
                );
                tokio::spawn(async move {
                    if let Some(request) = read_request(&stream).await {
                        requests.fetch_add(1, Ordering::SeqCst);
                        received.lock().expect("lock").push(request);
                        answer(stream, &reply, &sent).await;
                    }
                    finished.store(true, Ordering::SeqCst);
                });
            }
        });
        fixture
    }

    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Body bytes written so far.
    pub fn sent(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }

    /// Every request received (head and body), in order.
    pub fn received(&self) -> Vec<String> {
        self.received
            .lock()
            .expect("lock")
            .iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect()
    }

    /// Waits (up to `limit`) until a connection has been handled to its end.
    pub async fn wait_finished(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if self.finished.load(Ordering::SeqCst) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
}

/// Reads one request (head and `Content-Length` body).
async fn read_request(stream: &TcpStream) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        stream.readable().await.ok()?;
        match stream.try_read(&mut buf) {
            Ok(0) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return None,
        }
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return Some(data);
            }
        }
    }
}

async fn answer(mut stream: TcpStream, reply: &Reply, sent: &AtomicUsize) {
    tokio::time::sleep(reply.delay).await;
    let mut head = format!("HTTP/1.1 {} Fixture\r\nConnection: close\r\n", reply.status);
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    match &reply.body {
        Body::Bytes(body) => {
            head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            if stream.write_all(body).await.is_ok() {
                sent.fetch_add(body.len(), Ordering::SeqCst);
            }
        }
        Body::Streamed { total } => {
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![b'<'; 64 * 1024];
            let mut written = 0;
            while written < *total {
                let n = chunk.len().min(total - written);
                let frame = [format!("{n:x}\r\n").as_bytes(), &chunk[..n], b"\r\n"].concat();
                if stream.write_all(&frame).await.is_err() {
                    return;
                }
                written += n;
                sent.fetch_add(n, Ordering::SeqCst);
            }
            let _ = stream.write_all(b"0\r\n\r\n").await;
        }
    }
    let _ = stream.shutdown().await;
}
