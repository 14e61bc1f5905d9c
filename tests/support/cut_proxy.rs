//! A TCP proxy in front of PostgreSQL that can lose one answer: armed with byte strings, it
//! drops the first chunk from the server that holds all of them (or, armed for a commit, the
//! answer to the next `COMMIT` on the connection that sent such a chunk) and closes that
//! connection, as a network that fails after the server has done the work and before the
//! client hears.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// What the proxy is armed to lose.
struct Cut {
    markers: Vec<Vec<u8>>,
    /// The answer to the transaction's `COMMIT`, not the chunk with the markers.
    at_commit: bool,
    /// Then PostgreSQL is out of reach: every connection closed, new ones refused.
    then_down: bool,
}

fn holds(chunk: &[u8], marker: &[u8]) -> bool {
    chunk.windows(marker.len()).any(|w| w == marker)
}

pub struct CutProxy {
    pub addr: SocketAddr,
    upstream: SocketAddr,
    armed: Mutex<Option<Cut>>,
    cuts: AtomicUsize,
    down: tokio::sync::watch::Sender<bool>,
}

impl CutProxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Arc<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let proxy = Arc::new(Self {
            addr: listener.local_addr().expect("addr"),
            upstream,
            armed: Mutex::new(None),
            cuts: AtomicUsize::new(0),
            down: tokio::sync::watch::channel(false).0,
        });
        let accepting = proxy.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !*accepting.down.borrow() {
                    tokio::spawn(accepting.clone().relay(client));
                }
            }
        });
        proxy
    }

    /// `database_url` with its host and port replaced by the proxy's.
    pub fn url_for(&self, database_url: &str) -> String {
        let (scheme_user, rest) = database_url.split_once('@').expect("user@host");
        let (_, path) = rest.split_once('/').expect("host/database");
        format!("{scheme_user}@{}/{path}", self.addr)
    }

    /// The next answer holding all of `markers` is lost, with its connection.
    pub fn cut_when_all(&self, markers: &[&[u8]]) {
        self.arm(markers, false, false);
    }

    /// After the next answer holding all of `markers`, the answer to that connection's next
    /// `COMMIT` is lost (the transaction committed), with the connection.
    pub fn cut_commit_after(&self, markers: &[&[u8]]) {
        self.arm(markers, true, false);
    }

    /// As [`Self::cut_when_all`], and then PostgreSQL is out of reach until [`Self::up`].
    pub fn cut_when_all_then_down(&self, markers: &[&[u8]]) {
        self.arm(markers, false, true);
    }

    /// As [`Self::cut_commit_after`], and then PostgreSQL is out of reach until
    /// [`Self::up`]: every connection through the proxy closes, new ones are refused.
    pub fn cut_commit_after_then_down(&self, markers: &[&[u8]]) {
        self.arm(markers, true, true);
    }

    /// PostgreSQL within reach again.
    pub fn up(&self) {
        self.down.send_replace(false);
    }

    fn arm(&self, markers: &[&[u8]], at_commit: bool, then_down: bool) {
        assert!(markers.iter().all(|m| !m.is_empty()), "empty marker");
        *self.armed.lock().expect("lock") = Some(Cut {
            markers: markers.iter().map(|m| m.to_vec()).collect(),
            at_commit,
            then_down,
        });
    }

    /// Answers lost so far.
    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }

    /// Whether `chunk` is to be lost (and the proxy disarmed); `primed`: this connection
    /// sent the markers and its next `COMMIT` answer is the one.
    fn trips(&self, chunk: &[u8], primed: &mut bool) -> bool {
        let mut armed = self.armed.lock().expect("lock");
        let Some(cut) = armed.as_ref() else {
            return false;
        };
        let hit = if *primed {
            // A rolled-back transaction does not pass the priming on to the next one.
            *primed = !holds(chunk, b"ROLLBACK\0");
            holds(chunk, b"COMMIT\0")
        } else if cut.markers.iter().all(|m| holds(chunk, m)) {
            *primed = cut.at_commit;
            !cut.at_commit
        } else {
            false
        };
        if hit {
            if cut.then_down {
                self.down.send_replace(true);
            }
            *armed = None;
            self.cuts.fetch_add(1, Ordering::SeqCst);
        }
        hit
    }

    async fn relay(self: Arc<Self>, client: TcpStream) {
        let Ok(server) = TcpStream::connect(self.upstream).await else {
            return;
        };
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        let upstream = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        });
        // An answer is flushed whole at the protocol's Sync, so one read holds it (64 KiB).
        let mut buffer = vec![0u8; 64 * 1024];
        let mut primed = false;
        let mut down = self.down.subscribe();
        loop {
            let read = tokio::select! {
                read = server_read.read(&mut buffer) => read,
                _ = down.wait_for(|down| *down) => break,
            };
            let n = match read {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if self.trips(&buffer[..n], &mut primed)
                || client_write.write_all(&buffer[..n]).await.is_err()
            {
                break;
            }
        }
        upstream.abort();
    }
}
