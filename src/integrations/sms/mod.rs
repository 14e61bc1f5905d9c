//! SMS gateways: the [`SmsGateway`] trait (provider-neutral, after `docs/sms-gateways.md`
//! B4), the SMS.ru client ([`smsru`]), and the log gateway for development ([`log`]);
//! [`gateway_from_config`] picks one by `SMS_PROVIDER`.

pub mod log;
pub mod smsru;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{Config, SmsProvider};

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

/// The gateway `SMS_PROVIDER` names: SMS.ru (needs `SMSRU_API_ID`) or the log.
pub fn gateway_from_config(config: &Config) -> Result<Arc<dyn SmsGateway>, SmsError> {
    Ok(match config.sms_provider {
        SmsProvider::SmsRu => Arc::new(smsru::SmsRuClient::from_config(config)?),
        SmsProvider::Log => Arc::new(log::LogGateway::new()),
    })
}

/// A phone for logs: the country code and operator prefix, `***`, the last four digits
/// (`+79161234567` → `+7916***4567`). Short numbers keep only their last two digits.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let plus = if phone.trim_start().starts_with('+') {
        "+"
    } else {
        ""
    };
    if digits.len() >= 10 {
        let head: String = digits[..digits.len() - 7].iter().collect();
        let tail: String = digits[digits.len() - 4..].iter().collect();
        format!("{plus}{head}***{tail}")
    } else {
        let tail: String = digits[digits.len().saturating_sub(2)..].iter().collect();
        format!("***{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with(vars: &[(&str, &str)]) -> Config {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
            .expect("config")
    }

    #[test]
    fn phones_are_masked_for_logs() {
        assert_eq!(mask_phone("+79161234567"), "+7916***4567");
        assert_eq!(mask_phone("79161234567"), "7916***4567");
        assert_eq!(mask_phone("+380441234567"), "+38044***4567");
        assert_eq!(mask_phone("12345"), "***45");
        assert_eq!(mask_phone(""), "***");
    }

    #[test]
    fn the_provider_is_picked_by_config() {
        let log = gateway_from_config(&config_with(&[])).expect("log by default");
        assert_eq!(log.name(), "log");
        let err = gateway_from_config(&config_with(&[("SMS_PROVIDER", "smsru")]))
            .err()
            .expect("no api id");
        assert!(matches!(&err, SmsError::NotConfigured(m) if m.contains("SMSRU_API_ID")));
        assert!(!err.is_retryable());
        let smsru = gateway_from_config(&config_with(&[
            ("SMS_PROVIDER", "smsru"),
            ("SMSRU_API_ID", "key"),
        ]))
        .expect("configured");
        assert_eq!(smsru.name(), "smsru");
    }
}
