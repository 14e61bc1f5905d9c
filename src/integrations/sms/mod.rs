//! SMS gateways: the [`SmsGateway`] trait (provider-neutral, after `docs/sms-gateways.md`
//! B4), the SMS.ru client, and the log gateway for development.

use async_trait::async_trait;

/// One message to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingSms {
    /// E.164, e.g. `+79161234567`; clients send the digits their provider wants.
    pub to: String,
    pub text: String,
    /// Our id of the message (the outbox row), for the provider's logs and de-duplication.
    pub client_ref: Option<String>,
}

/// The provider took the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// SMS.ru `sms_id`.
    pub provider_id: String,
}

/// Why a send failed; the provider's code is kept for the logs.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SmsError {
    #[error("SMS gateway refused the credentials (code {code})")]
    Auth { code: i32 },
    #[error("SMS account has insufficient funds (code {code})")]
    InsufficientFunds { code: i32 },
    #[error("the phone number is not valid for SMS (code {code})")]
    InvalidPhone { code: i32 },
    #[error("no route to the number, or it is stop-listed (code {code})")]
    Undeliverable { code: i32 },
    #[error("the message was rejected (code {code})")]
    Rejected { code: i32 },
    #[error("the gateway deferred the message: a limit was reached (code {code})")]
    Deferred { code: i32 },
    #[error("temporary gateway failure (code {code})")]
    Temporary { code: i32 },
    #[error("SMS gateway is unreachable: {0}")]
    Transport(String),
    #[error("SMS gateway answer is malformed: {0}")]
    Parse(String),
    #[error("SMS gateway is not configured: {0}")]
    NotConfigured(String),
}

impl SmsError {
    /// Whether sending again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SmsError::Temporary { .. }
                | SmsError::Deferred { .. }
                | SmsError::Transport(_)
                | SmsError::Parse(_)
        )
    }
}

/// A provider that sends SMS.
#[async_trait]
pub trait SmsGateway: Send + Sync {
    fn name(&self) -> &'static str;
    async fn send(&self, sms: &OutgoingSms) -> Result<Accepted, SmsError>;
}
