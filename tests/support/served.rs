//! `sovamed serve` as a process of its own, in production mode, with its log lines collected
//! as they come: the way a deployment runs it. Used by `tests/holes.rs` (logs and memory),
//! `tests/reminders.rs` and `tests/replicas.rs` (two processes on one database and one Redis).

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use super::fresh_database;

/// A running `sovamed serve`; killed when dropped.
pub struct Served {
    child: Child,
    base: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Served {
    /// Starts the binary with exactly `envs` (and `PATH`) and waits for "serving on".
    pub fn start(envs: &[(&str, String)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sovamed"));
        command
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in envs {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("sovamed serve");
        let lines = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().expect("lines").push(line);
                }
            });
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let base = loop {
            let found = lines.lock().expect("lines").iter().find_map(|l| {
                l.split("serving on ")
                    .nth(1)
                    .map(|rest| rest.split_whitespace().next().unwrap_or("").to_owned())
            });
            if let Some(base) = found {
                break base;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not start: {:?}",
                lines.lock().expect("lines")
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Self { child, base, lines }
    }

    /// Two servers with the same environment, started at the same moment (so that their
    /// first periodic sync rounds meet).
    pub async fn start_two(envs: &[(&'static str, String)]) -> (Self, Self) {
        let start = |envs: Vec<(&'static str, String)>| {
            tokio::task::spawn_blocking(move || Self::start(&envs))
        };
        let (first, second) = tokio::join!(start(envs.to_vec()), start(envs.to_vec()));
        (first.expect("first server"), second.expect("second server"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn log(&self) -> String {
        self.lines.lock().expect("lines").join("\n")
    }

    /// How many log lines so far contain `needle`.
    pub fn lines_with(&self, needle: &str) -> usize {
        self.lines
            .lock()
            .expect("lines")
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits up to `secs` seconds for a log line containing one of `needles`.
    pub async fn wait_for_line(&self, needles: &[&str], secs: u64) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if needles.iter().any(|needle| self.lines_with(needle) > 0) {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The server's resident memory, in KiB (Linux).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a production deployment sets, pointed at this machine's PostgreSQL and Redis and at
/// the emulators.
pub async fn production_env(
    emulators: &sovamed::emulator::Emulators,
) -> Vec<(&'static str, String)> {
    let database_url = fresh_database().await;
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    vec![
        ("APP_ENV", "production".into()),
        ("RUST_LOG", "trace".into()),
        ("DATABASE_URL", database_url),
        ("REDIS_URL", redis_url),
        (
            "REDIS_PREFIX",
            format!("test:{}:", uuid::Uuid::new_v4().simple()),
        ),
        (
            "JWT_SECRET",
            "Zq8v1Lw3Xr7Tn5Kp2Hd9Mf4Bc6Yg0Js-production-test".into(),
        ),
        ("PUBLIC_BASE_URL", "https://clinic.example".into()),
        ("METRICS_TOKEN", "scrape-token-for-tests-0123456789".into()),
        ("INFOCLINICA_URL", emulators.mis_url.clone()),
        ("BITRIX_URL", emulators.cms_url.clone()),
        ("BITRIX_TOKEN", emulators.cms_token.clone()),
        ("SMS_PROVIDER", "smsru".into()),
        ("SMSRU_URL", emulators.sms_url.clone().expect("sms")),
        ("SMSRU_API_ID", emulators.sms_api_id.clone()),
    ]
}

/// The value `envs` gives `name` (the last one, as the process sees it).
pub fn env_value(envs: &[(&str, String)], name: &str) -> String {
    envs.iter()
        .rev()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("{name} is not in the environment"))
}
