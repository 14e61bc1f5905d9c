//! [`BitrixClient`]: the [`Cms`] trait over the site's JSON content endpoint (contract A9):
//! `GET {BITRIX_URL}/api/v1/content/{kind}` pages with a keyset cursor, and
//! `GET {BITRIX_URL}/api/v1/content/{kind}/ids` for delete reconciliation.
//!
//! Transport rules are those of the MIS client: bounded times, no redirects, a capped body.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, SecondsFormat};
use reqwest::{Client, StatusCode, header};
use serde::Deserialize;

use super::{Cms, CmsError, ContentItem, ContentKind, ContentPage};
use crate::{
    config::Config,
    integrations::http::{self, ReadError, TransportFailure},
};

/// Error bodies are read up to this size: enough for any JSON error envelope.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// The CMS client. Cheap to clone.
#[derive(Clone)]
pub struct BitrixClient {
    http: Client,
    base_url: String,
    token: String,
    timeout: Duration,
}

impl std::fmt::Debug for BitrixClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a shared secret: never in logs.
        f.debug_struct("BitrixClient")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl BitrixClient {
    /// From `BITRIX_URL` and `BITRIX_TOKEN`; [`CmsError::NotConfigured`] names the missing one.
    /// The total timeout is the MIS one (`INFOCLINICA_TIMEOUT_SECONDS`): there is no separate
    /// variable for the CMS.
    pub fn from_config(config: &Config) -> Result<Self, CmsError> {
        let base_url = config
            .bitrix_url
            .clone()
            .ok_or_else(|| CmsError::NotConfigured("BITRIX_URL is not set".into()))?;
        let token = config
            .bitrix_token
            .clone()
            .ok_or_else(|| CmsError::NotConfigured("BITRIX_TOKEN is not set".into()))?;
        Self::new(base_url, token, config.infoclinica_timeout)
    }

    /// `base_url` is the site origin (`https://clinic.example`), without a trailing slash.
    pub fn new(
        base_url: impl Into<String>,
        token: impl Into<String>,
        timeout: Duration,
    ) -> Result<Self, CmsError> {
        let http = http::client_builder(timeout)
            .build()
            .map_err(|e| CmsError::NotConfigured(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            token: token.into(),
            timeout,
        })
    }

    /// GETs `path` (from the site root) with an already encoded query and returns the body of
    /// a 200 answer.
    async fn get(&self, path: &str, query: &str) -> Result<Vec<u8>, CmsError> {
        let url = if query.is_empty() {
            format!("{}{path}", self.base_url)
        } else {
            format!("{}{path}?{query}", self.base_url)
        };
        let exchange = async {
            let mut response = self
                .http
                .get(url)
                .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
                .header(header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| self.transport(&e))?;
            let status = response.status();
            if status.is_redirection() {
                return Err(CmsError::Redirect {
                    location: http::location(&response),
                });
            }
            let limit = if status == StatusCode::OK {
                http::BODY_LIMIT
            } else {
                ERROR_BODY_LIMIT
            };
            let body = match http::read_capped(&mut response, limit).await {
                Ok(body) => body,
                Err(ReadError::TooLarge) if status == StatusCode::OK => {
                    return Err(CmsError::TooLarge {
                        limit: http::BODY_LIMIT,
                    });
                }
                // An oversized error page still is an error of that status.
                Err(ReadError::TooLarge) => Vec::new(),
                Err(ReadError::Transport(e)) => return Err(self.transport(&e)),
            };
            if status != StatusCode::OK {
                return Err(api_error(status, &body));
            }
            Ok(body)
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| CmsError::Timeout(self.timeout))?
    }

    fn transport(&self, error: &reqwest::Error) -> CmsError {
        match http::classify(error) {
            TransportFailure::Timeout => CmsError::Timeout(self.timeout),
            TransportFailure::Unreachable(text) => CmsError::Unreachable(text),
        }
    }
}

/// A Bitrix error envelope when the body is one, else `HTTP_<status>` with an excerpt (a PHP
/// fatal error is an HTML page).
fn api_error(status: StatusCode, body: &[u8]) -> CmsError {
    #[derive(Deserialize)]
    struct Envelope {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
    }
    match serde_json::from_slice::<Envelope>(body) {
        Ok(envelope) => CmsError::Api {
            status: status.as_u16(),
            code: envelope.error.chars().take(100).collect(),
            description: envelope
                .error_description
                .unwrap_or_default()
                .chars()
                .take(http::EXCERPT_CHARS)
                .collect(),
        },
        Err(_) => CmsError::Api {
            status: status.as_u16(),
            code: format!("HTTP_{}", status.as_u16()),
            description: http::excerpt_of(body),
        },
    }
}

#[derive(Deserialize)]
struct PageEnvelope {
    result: PageResult,
    #[serde(default)]
    total: Option<u64>,
    /// A string cursor (this contract) or an integer offset (Bitrix REST); kept verbatim.
    #[serde(default)]
    next: Option<serde_json::Value>,
    #[serde(default)]
    time: Option<TimeBlock>,
}

#[derive(Deserialize)]
struct PageResult {
    items: Vec<ContentItem>,
}

#[derive(Deserialize)]
struct TimeBlock {
    #[serde(default)]
    server_now: Option<DateTime<FixedOffset>>,
}

#[derive(Deserialize)]
struct IdsEnvelope {
    result: IdsResult,
}

#[derive(Deserialize)]
struct IdsResult {
    ids: Vec<i64>,
}

fn malformed(e: &serde_json::Error) -> CmsError {
    CmsError::Malformed(format!("not the content JSON: {e}"))
}

/// Parses the A9 page envelope.
pub fn parse_page(body: &[u8]) -> Result<ContentPage, CmsError> {
    let envelope: PageEnvelope = serde_json::from_slice(body).map_err(|e| malformed(&e))?;
    let next = match envelope.next {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) if s.is_empty() => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            return Err(CmsError::Malformed(
                "next is neither a string nor a number".into(),
            ));
        }
    };
    Ok(ContentPage {
        items: envelope.result.items,
        total: envelope.total,
        next,
        server_now: envelope.time.and_then(|t| t.server_now),
    })
}

#[async_trait]
impl Cms for BitrixClient {
    async fn page(
        &self,
        kind: ContentKind,
        modified_since: Option<DateTime<FixedOffset>>,
        start: Option<&str>,
        limit: u32,
    ) -> Result<ContentPage, CmsError> {
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(since) = modified_since {
            query.push((
                "modified_since",
                since.to_rfc3339_opts(SecondsFormat::Secs, false),
            ));
        }
        if let Some(start) = start {
            query.push(("start", start.to_owned()));
        }
        query.push(("limit", limit.to_string()));
        query.push(("include_inactive", "1".into()));
        let query = serde_urlencoded::to_string(&query)
            .map_err(|e| CmsError::Malformed(format!("cannot encode the query: {e}")))?;
        let body = self
            .get(&format!("/api/v1/content/{}", kind.as_str()), &query)
            .await?;
        parse_page(&body)
    }

    async fn ids(&self, kind: ContentKind) -> Result<Vec<i64>, CmsError> {
        let body = self
            .get(&format!("/api/v1/content/{}/ids", kind.as_str()), "")
            .await?;
        let envelope: IdsEnvelope = serde_json::from_slice(&body).map_err(|e| malformed(&e))?;
        Ok(envelope.result.ids)
    }

    fn absolute_url(&self, src: &str) -> String {
        let lower = src.get(..8).unwrap_or(src).to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            src.to_owned()
        } else if src.starts_with('/') {
            format!("{}{src}", self.base_url)
        } else {
            format!("{}/{src}", self.base_url)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_urls_prefix_the_site_origin_only_for_paths() {
        let client = BitrixClient::new(
            "https://clinic.example/",
            "secret-token-xyz",
            Duration::from_secs(1),
        )
        .expect("client");
        assert_eq!(
            client.absolute_url("/upload/iblock/5c2/a.png"),
            "https://clinic.example/upload/iblock/5c2/a.png"
        );
        assert_eq!(
            client.absolute_url("upload/a.png"),
            "https://clinic.example/upload/a.png"
        );
        assert_eq!(
            client.absolute_url("HTTPS://cdn.example/a.png"),
            "HTTPS://cdn.example/a.png"
        );
        assert!(!format!("{client:?}").contains("secret-token-xyz"));
    }

    #[test]
    fn pages_accept_string_and_integer_cursors() {
        let page = parse_page(br#"{"result":{"items":[]},"total":0,"next":50}"#).expect("page");
        assert_eq!(page.next.as_deref(), Some("50"));
        let page = parse_page(
            br#"{"result":{"items":[]},"total":3,"next":"2025-03-14T09:58:40+03:00|412","time":{"server_now":"2025-03-14T10:22:05+03:00"}}"#,
        )
        .expect("page");
        assert_eq!(page.next.as_deref(), Some("2025-03-14T09:58:40+03:00|412"));
        assert_eq!(page.total, Some(3));
        assert!(page.server_now.is_some());
        assert!(matches!(
            parse_page(b"{\"result\":"),
            Err(CmsError::Malformed(_))
        ));
    }

    #[test]
    fn error_bodies_map_to_api_errors() {
        let e = api_error(
            StatusCode::UNAUTHORIZED,
            br#"{"error":"INVALID_CREDENTIALS","error_description":"bad token"}"#,
        );
        assert!(
            matches!(e, CmsError::Api { status: 401, ref code, .. } if code == "INVALID_CREDENTIALS")
        );
        let e = api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            b"<html><b>Fatal error</b>: Allowed memory size exhausted</html>",
        );
        assert!(
            matches!(e, CmsError::Api { status: 500, ref code, ref description } if code == "HTTP_500" && description.contains("Fatal error"))
        );
    }
}
