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

/// What the provider says about a message it took (SMS.ru `sms/status`, B1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// 100: queued at the provider.
    Queued,
    /// 101: being handed to the operator.
    Sending,
    /// 102: sent, in transit.
    Sent,
    /// 103 (and 110, read): delivered to the handset.
    Delivered,
    /// 104: not delivered, its lifetime expired.
    Expired,
    /// 105–108, 150: not delivered (deleted by the operator, handset failure, unknown
    /// reason, rejected, no route).
    Undelivered { code: i32 },
    /// -1: the provider does not know this id.
    NotFound,
    /// A code this client does not know; asked again later.
    Other { code: i32 },
}

impl Delivery {
    /// The provider's code, for the outbox row.
    pub fn code(self) -> i32 {
        match self {
            Delivery::Queued => 100,
            Delivery::Sending => 101,
            Delivery::Sent => 102,
            Delivery::Delivered => 103,
            Delivery::Expired => 104,
            Delivery::Undelivered { code } | Delivery::Other { code } => code,
            Delivery::NotFound => -1,
        }
    }

    /// The outbox's `delivery` once the state is final: `delivered`, `undelivered` or
    /// `expired`; `None` while the message may still arrive.
    pub fn final_state(self) -> Option<&'static str> {
        match self {
            Delivery::Delivered => Some("delivered"),
            Delivery::Undelivered { .. } => Some("undelivered"),
            Delivery::Expired => Some("expired"),
            Delivery::Queued
            | Delivery::Sending
            | Delivery::Sent
            | Delivery::NotFound
            | Delivery::Other { .. } => None,
        }
    }
}

/// What the provider knows of a message we may or may not have handed over, found by
/// our reference ([`OutgoingSms::client_ref`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// It has the message: it was sent, with this id.
    Found(Accepted),
    /// It never received the message: sending it is safe.
    NotFound,
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
    /// The request never reached the gateway (no connection could be opened): the message
    /// was certainly not taken.
    #[error("SMS gateway is unreachable: {0}")]
    Transport(String),
    /// The request was sent, but no usable answer came back (timeout, connection lost,
    /// a gateway timeout in front of the provider): the provider may have taken the
    /// message. Never a reason to send it again blindly.
    #[error("SMS gateway did not answer: {0}")]
    Unanswered(String),
    /// The answer came but cannot be read; for a send, whether the provider took the
    /// message is unknown, as for [`SmsError::Unanswered`].
    #[error("SMS gateway answer is malformed: {0}")]
    Parse(String),
    /// The request could not even be built; nothing was sent.
    #[error("SMS request cannot be encoded: {0}")]
    Encode(String),
    #[error("SMS gateway is not configured: {0}")]
    NotConfigured(String),
}

impl SmsError {
    /// Whether trying again later may succeed. For a send, check
    /// [`SmsError::outcome_unknown`] first: such a message may already be on its way.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SmsError::Temporary { .. }
                | SmsError::Deferred { .. }
                | SmsError::Transport(_)
                | SmsError::Unanswered(_)
                | SmsError::Parse(_)
        )
    }

    /// For a send: whether the provider may have taken the message although no
    /// acceptance was read. Every other error is a definite "not taken".
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, SmsError::Unanswered(_) | SmsError::Parse(_))
    }
}

/// A provider that sends SMS.
#[async_trait]
pub trait SmsGateway: Send + Sync {
    fn name(&self) -> &'static str;

    /// Hands one message to the provider. An error for which
    /// [`SmsError::outcome_unknown`] holds leaves it open whether the provider took it.
    async fn send(&self, sms: &OutgoingSms) -> Result<Accepted, SmsError>;

    /// Whether [`SmsGateway::lookup`] can find a message by our reference. SMS.ru cannot:
    /// its API keeps no client reference (`partner_id` is the account's affiliate id).
    fn can_look_up(&self) -> bool {
        false
    }

    /// Asks the provider whether it has the message with this `client_ref`.
    async fn lookup(&self, sms: &OutgoingSms) -> Result<Lookup, SmsError> {
        let _ = sms;
        Err(SmsError::NotConfigured(format!(
            "{} cannot look a message up by our reference",
            self.name()
        )))
    }

    /// Whether [`SmsGateway::delivery`] reports delivery (SMS.ru `sms/status`).
    fn reports_delivery(&self) -> bool {
        false
    }

    /// The delivery state of messages it took, by provider id; ids missing from the
    /// answer were not reported on this time.
    async fn delivery(&self, provider_ids: &[String]) -> Result<Vec<(String, Delivery)>, SmsError> {
        let _ = provider_ids;
        Ok(Vec::new())
    }
}

/// The gateway `SMS_PROVIDER` names: SMS.ru (needs `SMSRU_API_ID`) or the log.
pub fn gateway_from_config(config: &Config) -> Result<Arc<dyn SmsGateway>, SmsError> {
    Ok(match config.sms_provider {
        SmsProvider::SmsRu => Arc::new(smsru::SmsRuClient::from_config(config)?),
        SmsProvider::Log if config.is_production() => Arc::new(log::LogGateway::without_texts()),
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
