//! [`SmsRuClient`]: the [`SmsGateway`] of SMS.ru (`docs/sms-gateways.md` B1).
//!
//! One recipient per request: `POST {base}/sms/send`, form-encoded `api_id`, `to` (digits
//! with the country code), `msg`, `json=1` and the sender name when configured. The JSON
//! answer has a top-level `status_code` (100 when the request was taken) and, per number,
//! `sms.<number>.status_code` with the `sms_id`. Codes map onto [`SmsError`] as B4 says.
//! Delivery: `POST {base}/sms/status` with `sms_id` (comma-separated) answers a code per
//! id ([`Delivery`]).
//!
//! SMS.ru keeps no reference of ours: `partner_id` is the affiliate-programme id of an
//! account, the same for every message, and nothing looks a message up by it. So the only
//! handle on a message is the `sms_id` of the answer, and a send whose answer is lost
//! ([`SmsError::Unanswered`]: a timeout or a dropped connection after the request went out,
//! HTTP 502/504 from a proxy in front) cannot be checked; only a failure to connect
//! ([`SmsError::Transport`]) proves the message was not taken.
//! Transport as for the other clients: rustls, no redirects, a total timeout, a capped body.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Client, StatusCode, header};
use serde_json::Value;

use super::{Accepted, Delivery, OutgoingSms, SmsError, SmsGateway};
use crate::{
    config::Config,
    integrations::http::{self, ReadError, TransportFailure},
};

/// Total time for one send, when the configuration does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// An SMS.ru answer is a few hundred bytes; anything far larger is not one.
const BODY_LIMIT: usize = 64 * 1024;
/// At most this many ids in one `sms/status` request.
pub const STATUS_BATCH: usize = 100;

/// The SMS.ru client. Cheap to clone.
#[derive(Clone)]
pub struct SmsRuClient {
    http: Client,
    send_url: String,
    status_url: String,
    api_id: String,
    sender: Option<String>,
    timeout: Duration,
}

impl std::fmt::Debug for SmsRuClient {
    // The api_id is a credential: never in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsRuClient")
            .field("send_url", &self.send_url)
            .field("status_url", &self.status_url)
            .field("sender", &self.sender)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SmsRuClient {
    /// From `SMSRU_URL`, `SMSRU_API_ID`, `SMS_SENDER` and `SMSRU_TIMEOUT_SECONDS`:
    /// [`SmsError::NotConfigured`] without an api id.
    pub fn from_config(config: &Config) -> Result<Self, SmsError> {
        let api_id = config
            .smsru_api_id
            .clone()
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| SmsError::NotConfigured("SMSRU_API_ID is not set".into()))?;
        Self::new(
            config.smsru_url.clone(),
            api_id,
            config.sms_sender.clone(),
            config.smsru_timeout,
        )
    }

    /// A client for `base_url` (`https://sms.ru`, or an emulator's `http://addr`).
    pub fn new(
        base_url: impl Into<String>,
        api_id: impl Into<String>,
        sender: Option<String>,
        timeout: Duration,
    ) -> Result<Self, SmsError> {
        let api_id = api_id.into();
        if api_id.trim().is_empty() {
            return Err(SmsError::NotConfigured("the SMS.ru api_id is empty".into()));
        }
        let http = http::client_builder(timeout)
            .build()
            .map_err(|e| SmsError::NotConfigured(format!("HTTP client: {e}")))?;
        let base = base_url.into();
        let base = base.trim_end_matches('/');
        Ok(Self {
            http,
            send_url: format!("{base}/sms/send"),
            status_url: format!("{base}/sms/status"),
            api_id,
            sender: sender.filter(|s| !s.trim().is_empty()),
            timeout,
        })
    }

    /// Posts a form and reads the answer. Errors tell whether the request may have reached
    /// the gateway ([`SmsError::Unanswered`]) or certainly did not.
    async fn post(&self, url: &str, form: String) -> Result<Vec<u8>, SmsError> {
        let request = self
            .http
            .post(url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(form);
        let exchange = async {
            let mut response = request.send().await.map_err(|e| self.transport(&e))?;
            let status = response.status();
            if status.is_redirection() {
                return Err(SmsError::Transport(format!(
                    "SMS.ru answered with a redirect to {:?}; redirects are not followed",
                    http::location(&response)
                )));
            }
            // A proxy's "bad gateway" or "gateway timeout": SMS.ru itself may have taken
            // the request.
            if status == StatusCode::BAD_GATEWAY || status == StatusCode::GATEWAY_TIMEOUT {
                return Err(SmsError::Unanswered(format!(
                    "HTTP {} from in front of SMS.ru",
                    status.as_u16()
                )));
            }
            if status.is_server_error() {
                return Err(SmsError::Temporary {
                    code: i32::from(status.as_u16()),
                });
            }
            if status != StatusCode::OK {
                return Err(SmsError::Transport(format!(
                    "SMS.ru answered HTTP {}: {}",
                    status.as_u16(),
                    http::excerpt(response).await
                )));
            }
            http::read_capped(&mut response, BODY_LIMIT)
                .await
                .map_err(|e| match e {
                    ReadError::TooLarge => {
                        SmsError::Parse(format!("answer larger than {BODY_LIMIT} bytes"))
                    }
                    ReadError::Transport(e) => self.transport(&e),
                })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| self.timed_out())?
    }

    fn timed_out(&self) -> SmsError {
        SmsError::Unanswered(format!("no answer within {:?}", self.timeout))
    }

    /// Only a failure to connect proves that nothing was sent.
    fn transport(&self, error: &reqwest::Error) -> SmsError {
        let connect = error.is_connect();
        match http::classify(error) {
            TransportFailure::Timeout if connect => {
                SmsError::Transport(format!("no connection within {:?}", http::CONNECT_TIMEOUT))
            }
            TransportFailure::Timeout => self.timed_out(),
            TransportFailure::Unreachable(text) if connect => SmsError::Transport(text),
            TransportFailure::Unreachable(text) => SmsError::Unanswered(text),
        }
    }

    /// `sms/status` for up to [`STATUS_BATCH`] ids.
    async fn status_batch(&self, ids: &[String]) -> Result<Vec<(String, Delivery)>, SmsError> {
        let joined = ids.join(",");
        let form: Vec<(&str, &str)> = vec![
            ("api_id", self.api_id.as_str()),
            ("sms_id", joined.as_str()),
            ("json", "1"),
        ];
        let body =
            serde_urlencoded::to_string(&form).map_err(|e| SmsError::Encode(e.to_string()))?;
        let answer = self.post(&self.status_url, body).await?;
        parse_status_answer(&answer)
    }
}

#[async_trait]
impl SmsGateway for SmsRuClient {
    fn name(&self) -> &'static str {
        "smsru"
    }

    async fn send(&self, sms: &OutgoingSms) -> Result<Accepted, SmsError> {
        let to = recipient(&sms.to)?;
        let mut form: Vec<(&str, &str)> = vec![
            ("api_id", self.api_id.as_str()),
            ("to", to.as_str()),
            ("msg", sms.text.as_str()),
            ("json", "1"),
        ];
        if let Some(sender) = &self.sender {
            form.push(("from", sender.as_str()));
        }
        let body =
            serde_urlencoded::to_string(&form).map_err(|e| SmsError::Encode(e.to_string()))?;
        let answer = self.post(&self.send_url, body).await?;
        let accepted = parse_send_answer(&answer, &to)?;
        tracing::debug!(provider_id = %accepted.provider_id, "SMS.ru accepted a message");
        Ok(accepted)
    }

    fn reports_delivery(&self) -> bool {
        true
    }

    async fn delivery(&self, provider_ids: &[String]) -> Result<Vec<(String, Delivery)>, SmsError> {
        let mut states = Vec::with_capacity(provider_ids.len());
        for batch in provider_ids.chunks(STATUS_BATCH) {
            states.extend(self.status_batch(batch).await?);
        }
        Ok(states)
    }
}

/// An `sms/status` code as a [`Delivery`].
pub fn delivery_for(code: i32) -> Delivery {
    match code {
        -1 => Delivery::NotFound,
        100 => Delivery::Queued,
        101 => Delivery::Sending,
        102 => Delivery::Sent,
        103 | 110 => Delivery::Delivered,
        104 => Delivery::Expired,
        105..=108 | 150 => Delivery::Undelivered { code },
        code => Delivery::Other { code },
    }
}

/// Reads the answer to `sms/status` with `json=1`: a code per id; an id whose entry has no
/// code is left out.
pub fn parse_status_answer(body: &[u8]) -> Result<Vec<(String, Delivery)>, SmsError> {
    let answer: Value =
        serde_json::from_slice(body).map_err(|e| SmsError::Parse(format!("not JSON: {e}")))?;
    let top = code_of(answer.get("status_code"))
        .ok_or_else(|| SmsError::Parse("no status_code".into()))?;
    if top != 100 {
        return Err(error_for(top));
    }
    let per_id = answer
        .get("sms")
        .and_then(Value::as_object)
        .ok_or_else(|| SmsError::Parse("no sms map".into()))?;
    Ok(per_id
        .iter()
        .filter_map(|(id, entry)| {
            code_of(entry.get("status_code")).map(|code| (id.clone(), delivery_for(code)))
        })
        .collect())
}

/// The number as SMS.ru wants it: digits with the country code (`79161234567`). A Russian
/// number in any spelling is normalised (`8…` and ten digits from `9`); otherwise 11–15
/// digits are taken as they are.
pub fn recipient(phone: &str) -> Result<String, SmsError> {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let digits = match digits.len() {
        11 if digits.starts_with('8') => format!("7{}", &digits[1..]),
        10 if digits.starts_with('9') => format!("7{digits}"),
        _ => digits,
    };
    if (11..=15).contains(&digits.len()) {
        Ok(digits)
    } else {
        // Refused before sending: 202 is what SMS.ru would have answered.
        Err(SmsError::InvalidPhone { code: 202 })
    }
}

/// SMS.ru's code to our error kinds (B4).
pub fn error_for(code: i32) -> SmsError {
    match code {
        200 | 300..=302 => SmsError::Auth { code },
        201 => SmsError::InsufficientFunds { code },
        202 => SmsError::InvalidPhone { code },
        150 | 207 | 209 | 214 | 215 | 550 => SmsError::Undeliverable { code },
        206 | 230..=233 | 501..=508 => SmsError::Deferred { code },
        220 | 500 => SmsError::Temporary { code },
        // 203/205 (text), 204/216/217/221 (content or sender), 208/210–213 (request), and
        // anything unknown: sending the same again will not help.
        _ => SmsError::Rejected { code },
    }
}

/// A code as SMS.ru sends it: a number, or a number in a string.
fn code_of(value: Option<&Value>) -> Option<i32> {
    match value? {
        Value::Number(n) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Reads the answer to a one-number `sms/send` with `json=1`.
pub fn parse_send_answer(body: &[u8], to: &str) -> Result<Accepted, SmsError> {
    let answer: Value =
        serde_json::from_slice(body).map_err(|e| SmsError::Parse(format!("not JSON: {e}")))?;
    let top = code_of(answer.get("status_code"))
        .ok_or_else(|| SmsError::Parse("no status_code".into()))?;
    if top != 100 {
        return Err(error_for(top));
    }
    let per_number = answer
        .get("sms")
        .and_then(Value::as_object)
        .ok_or_else(|| SmsError::Parse("no sms map".into()))?;
    // Keys are the numbers as the gateway normalised them, with or without `+`.
    let entry = per_number
        .get(to)
        .or_else(|| per_number.get(&format!("+{to}")))
        .or_else(|| {
            (per_number.len() == 1)
                .then(|| per_number.values().next())
                .flatten()
        })
        .ok_or_else(|| SmsError::Parse("no entry for the number".into()))?;
    let code = code_of(entry.get("status_code"))
        .ok_or_else(|| SmsError::Parse("no status_code for the number".into()))?;
    if code != 100 {
        return Err(error_for(code));
    }
    let provider_id = entry
        .get("sms_id")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| SmsError::Parse("no sms_id for an accepted number".into()))?;
    Ok(Accepted {
        provider_id: provider_id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_become_digits_with_the_country_code() {
        assert_eq!(recipient("+79161234567").expect("ok"), "79161234567");
        assert_eq!(recipient("8 (916) 123-45-67").expect("ok"), "79161234567");
        assert_eq!(recipient("9161234567").expect("ok"), "79161234567");
        assert_eq!(recipient("+380441234567").expect("ok"), "380441234567");
        assert_eq!(
            recipient("12345"),
            Err(SmsError::InvalidPhone { code: 202 })
        );
    }

    #[test]
    fn codes_map_as_documented() {
        for (code, retryable) in [
            (200, false),
            (301, false),
            (201, false),
            (202, false),
            (207, false),
            (209, false),
            (215, false),
            (150, false),
            (204, false),
            (216, false),
            (217, false),
            (221, false),
            (203, false),
            (205, false),
            (208, false),
            (210, false),
            (213, false),
            (206, true),
            (230, true),
            (233, true),
            (220, true),
            (500, true),
        ] {
            assert_eq!(error_for(code).is_retryable(), retryable, "{code}");
        }
        assert_eq!(error_for(200), SmsError::Auth { code: 200 });
        assert_eq!(error_for(201), SmsError::InsufficientFunds { code: 201 });
        assert_eq!(error_for(202), SmsError::InvalidPhone { code: 202 });
        assert_eq!(error_for(209), SmsError::Undeliverable { code: 209 });
        assert_eq!(error_for(216), SmsError::Rejected { code: 216 });
        assert_eq!(error_for(231), SmsError::Deferred { code: 231 });
        assert_eq!(error_for(220), SmsError::Temporary { code: 220 });
    }

    #[test]
    fn status_answers_are_read_per_id() {
        let body = r#"{"status":"OK","status_code":100,"sms":{
            "1-1":{"status":"OK","status_code":103,"cost":2.5,"status_text":"Доставлено"},
            "1-2":{"status":"OK","status_code":"102"},
            "1-3":{"status":"OK","status_code":107},
            "1-4":{"status":"OK","status_code":104},
            "9-9":{"status":"ERROR","status_code":-1,"status_text":"Не найдено"},
            "bad":{"status":"OK"}}}"#;
        let mut states = parse_status_answer(body.as_bytes()).expect("ok");
        states.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            states,
            vec![
                ("1-1".to_owned(), Delivery::Delivered),
                ("1-2".to_owned(), Delivery::Sent),
                ("1-3".to_owned(), Delivery::Undelivered { code: 107 }),
                ("1-4".to_owned(), Delivery::Expired),
                ("9-9".to_owned(), Delivery::NotFound),
            ]
        );
        assert_eq!(
            parse_status_answer(br#"{"status":"ERROR","status_code":200}"#),
            Err(SmsError::Auth { code: 200 })
        );
        assert!(matches!(
            parse_status_answer(b"<html>"),
            Err(SmsError::Parse(_))
        ));
        for (code, delivery) in [
            (100, Delivery::Queued),
            (101, Delivery::Sending),
            (110, Delivery::Delivered),
            (105, Delivery::Undelivered { code: 105 }),
            (150, Delivery::Undelivered { code: 150 }),
            (42, Delivery::Other { code: 42 }),
        ] {
            assert_eq!(delivery_for(code), delivery);
        }
    }

    #[test]
    fn answers_are_read_per_number() {
        let ok = br#"{"status":"OK","status_code":100,"sms":{"79161234567":{"status":"OK","status_code":100,"sms_id":"202503-1000042"}},"balance":512.3}"#;
        assert_eq!(
            parse_send_answer(ok, "79161234567")
                .expect("ok")
                .provider_id,
            "202503-1000042"
        );
        let plus = br#"{"status":"OK","status_code":"100","sms":{"+79161234567":{"status":"OK","status_code":"100","sms_id":"1-2"}}}"#;
        assert_eq!(
            parse_send_answer(plus, "79161234567")
                .expect("ok")
                .provider_id,
            "1-2"
        );
        let refused = r#"{"status":"OK","status_code":100,"sms":{"79161234567":{"status":"ERROR","status_code":207,"status_text":"нет маршрута"}}}"#.as_bytes();
        assert_eq!(
            parse_send_answer(refused, "79161234567"),
            Err(SmsError::Undeliverable { code: 207 })
        );
        let top = r#"{"status":"ERROR","status_code":200,"status_text":"Неправильный api_id"}"#
            .as_bytes();
        assert_eq!(
            parse_send_answer(top, "79161234567"),
            Err(SmsError::Auth { code: 200 })
        );
        for bad in [
            &b"<html>"[..],
            br#"{"status":"OK"}"#,
            br#"{"status":"OK","status_code":100}"#,
            br#"{"status":"OK","status_code":100,"sms":{"79161234567":{"status_code":100}}}"#,
        ] {
            assert!(matches!(
                parse_send_answer(bad, "79161234567"),
                Err(SmsError::Parse(_))
            ));
        }
    }
}
