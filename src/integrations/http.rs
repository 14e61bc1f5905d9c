//! HTTP plumbing shared by the MIS and CMS clients: one way to build a reqwest client
//! (TLS through rustls with the ring provider, no redirects, bounded times) and one way to
//! read a body without trusting its size.

use std::{sync::Once, time::Duration};

use reqwest::{Client, Response, redirect};

/// The largest answer body either client reads; reading stops at this size.
pub const BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Time allowed to open a connection (TCP and TLS), whatever the total timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// At most this many characters of an error body are kept for the log.
pub const EXCERPT_CHARS: usize = 200;

/// Installs rustls's ring crypto provider as the process default, once. Every reqwest
/// client needs it (reqwest is built without a provider of its own, to avoid aws-lc).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another provider was installed first, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A client that never follows redirects and gives up after `timeout` in total.
pub fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    install_crypto_provider();
    Client::builder()
        .redirect(redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum ReadError {
    TooLarge,
    Transport(reqwest::Error),
}

/// Reads the body chunk by chunk and stops as soon as it would pass `limit`, so a huge
/// answer costs at most `limit` bytes of memory.
pub async fn read_capped(response: &mut Response, limit: usize) -> Result<Vec<u8>, ReadError> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Up to [`EXCERPT_CHARS`] characters of an error body, on one line, for the log.
pub async fn excerpt(mut response: Response) -> String {
    // A few KiB are enough for an excerpt; an error body is not read to its end.
    let mut body = Vec::new();
    while body.len() < 4096 {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    excerpt_of(&body)
}

/// Up to [`EXCERPT_CHARS`] characters of `body`, whitespace collapsed.
pub fn excerpt_of(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(EXCERPT_CHARS)
        .collect()
}

/// The `Location` of a redirect, or an empty string.
pub fn location(response: &Response) -> String {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(EXCERPT_CHARS)
        .collect()
}

/// How a transport error maps onto the clients' error kinds.
pub enum TransportFailure {
    Timeout,
    Unreachable(String),
}

/// Classifies a reqwest error; the text never contains a body.
pub fn classify(error: &reqwest::Error) -> TransportFailure {
    if error.is_timeout() {
        TransportFailure::Timeout
    } else {
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(inner) = source {
            text.push_str(": ");
            text.push_str(&inner.to_string());
            source = inner.source();
        }
        TransportFailure::Unreachable(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_and_on_one_line() {
        let body = format!("<html>\n<b>Fatal error</b>:   {}</html>", "ж".repeat(500));
        let e = excerpt_of(body.as_bytes());
        assert_eq!(e.chars().count(), EXCERPT_CHARS);
        assert!(e.starts_with("<html> <b>Fatal error</b>: ж"));
    }
}
