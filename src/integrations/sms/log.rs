//! [`LogGateway`]: `SMS_PROVIDER=log`, the development backend. Nothing leaves the machine:
//! each message goes to the log (the phone masked; the text too, except in production, where
//! a text holds a sign-in or booking code and the log is read by more people than the
//! patient) and is "accepted" with a generated id.
//! It remembers, for this process, which references it logged, so a message whose send was
//! interrupted is found again ([`SmsGateway::lookup`]) rather than logged twice.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use async_trait::async_trait;

use super::{Accepted, Lookup, OutgoingSms, SmsError, SmsGateway, mask_phone};

/// Writes messages to the log instead of sending them.
#[derive(Debug, Default)]
pub struct LogGateway {
    /// Only the text's length goes to the log.
    hide_texts: bool,
    sent: AtomicU64,
    /// `client_ref` → the id it was "accepted" with.
    logged: Mutex<HashMap<String, String>>,
}

impl LogGateway {
    /// A gateway that has logged nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A gateway that logs each message's length, not its text (production).
    pub fn without_texts() -> Self {
        Self {
            hide_texts: true,
            ..Self::default()
        }
    }
}

#[async_trait]
impl SmsGateway for LogGateway {
    fn name(&self) -> &'static str {
        "log"
    }

    async fn send(&self, sms: &OutgoingSms) -> Result<Accepted, SmsError> {
        let n = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
        let provider_id = format!("log-{n}-{}", uuid::Uuid::new_v4().simple());
        let text = if self.hide_texts {
            format!(
                "({} characters, not logged in production)",
                sms.text.chars().count()
            )
        } else {
            sms.text.clone()
        };
        tracing::info!(
            to = %mask_phone(&sms.to),
            text = %text,
            client_ref = sms.client_ref.as_deref().unwrap_or(""),
            provider_id = %provider_id,
            "SMS not sent (SMS_PROVIDER=log)"
        );
        if let Some(client_ref) = &sms.client_ref {
            self.logged
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(client_ref.clone(), provider_id.clone());
        }
        Ok(Accepted { provider_id })
    }

    fn can_look_up(&self) -> bool {
        true
    }

    async fn lookup(&self, sms: &OutgoingSms) -> Result<Lookup, SmsError> {
        let logged = self.logged.lock().unwrap_or_else(|e| e.into_inner());
        Ok(match sms.client_ref.as_ref().and_then(|r| logged.get(r)) {
            Some(provider_id) => Lookup::Found(Accepted {
                provider_id: provider_id.clone(),
            }),
            None => Lookup::NotFound,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io::Write,
        sync::{Arc, Mutex},
    };

    use super::*;

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What this thread logs until the guard is dropped, in the buffer.
    fn capture_log() -> (Buffer, tracing::subscriber::DefaultGuard) {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        (buffer, tracing::subscriber::set_default(subscriber))
    }

    #[tokio::test]
    async fn the_log_shows_the_text_and_a_masked_number() {
        let (buffer, _guard) = capture_log();
        let gateway = LogGateway::new();
        let sms = OutgoingSms {
            to: "+79161234567".into(),
            text: "Код подтверждения: 4821".into(),
            client_ref: Some("outbox-7".into()),
        };
        let first = gateway.send(&sms).await.expect("accepted");
        let second = gateway.send(&sms).await.expect("accepted");
        assert_ne!(first.provider_id, second.provider_id);
        assert!(first.provider_id.starts_with("log-1-"));
        let logged = String::from_utf8(buffer.0.lock().expect("buffer").clone()).expect("utf-8");
        assert!(logged.contains("+7916***4567"), "{logged}");
        assert!(!logged.contains("79161234567"), "{logged}");
        assert!(logged.contains("Код подтверждения: 4821"));
        assert!(logged.contains("outbox-7"));
        assert_eq!(
            gateway.lookup(&sms).await,
            Ok(Lookup::Found(Accepted {
                provider_id: second.provider_id.clone()
            }))
        );
        let other = OutgoingSms {
            client_ref: Some("outbox-8".into()),
            ..sms
        };
        assert_eq!(gateway.lookup(&other).await, Ok(Lookup::NotFound));
    }

    #[tokio::test]
    async fn production_logs_the_length_not_the_code() {
        let (buffer, _guard) = capture_log();
        let sms = OutgoingSms {
            to: "+79161234567".into(),
            text: "Код подтверждения: 4821".into(),
            client_ref: Some("outbox-9".into()),
        };
        LogGateway::without_texts()
            .send(&sms)
            .await
            .expect("accepted");
        let logged = String::from_utf8(buffer.0.lock().expect("buffer").clone()).expect("utf-8");
        assert!(!logged.contains("4821"), "{logged}");
        assert!(logged.contains("23 characters"), "{logged}");
        assert!(logged.contains("+7916***4567"), "{logged}");
    }
}
