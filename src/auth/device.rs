//! Device cookies (OWASP, "Slow Down Online Guessing Attacks with Device Cookies"): a
//! browser that has logged into an account before carries a signed cookie naming that
//! account. Its attempts are counted per device, not against the account's shared
//! counter, so a stranger's wrong guesses cannot lock the owner out on their own device.
//!
//! The cookie is `v1.<nonce>.<account digest>.<HMAC>`: no e-mail in clear, and nothing a
//! client can forge without the server's key.

use axum::http::{HeaderMap, HeaderValue, header};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::{phones::random_hex, rate};

/// How long a device stays known: a year after its last successful login.
const MAX_AGE_SECS: u64 = 365 * 24 * 3600;

/// `__Host-` binds the cookie to this host over HTTPS; plain HTTP in development cannot.
pub fn cookie_name(production: bool) -> &'static str {
    if production {
        "__Host-sovamed_device"
    } else {
        "sovamed_device"
    }
}

fn mac(key: &[u8], nonce: &str, account: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(b"device:");
    mac.update(nonce.as_bytes());
    mac.update(b":");
    mac.update(account.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new cookie value for the account with normalised e-mail `email`.
pub fn issue(key: &[u8], email: &str) -> String {
    let nonce = random_hex(16);
    let account = rate::digest(email);
    let tag = mac(key, &nonce, &account);
    format!("v1.{nonce}.{account}.{tag}")
}

/// The device's nonce when `value` is a genuine cookie for the account `email`.
pub fn verify(key: &[u8], value: &str, email: &str) -> Option<String> {
    let mut parts = value.split('.');
    let (Some("v1"), Some(nonce), Some(account), Some(tag), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if account != rate::digest(email) {
        return None;
    }
    let expected = mac(key, nonce, account);
    let genuine: bool = expected.as_bytes().ct_eq(tag.as_bytes()).into();
    genuine.then(|| nonce.to_owned())
}

/// The cookie's value in a request, if sent.
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

/// The `Set-Cookie` header that stores `value`.
pub fn set_cookie(name: &str, value: &str, production: bool) -> Option<HeaderValue> {
    let secure = if production { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={MAX_AGE_SECS}; HttpOnly; SameSite=Lax{secure}"
    ))
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"a key of the server, at least 32 bytes long";

    #[test]
    fn a_cookie_holds_for_its_account_only() {
        let cookie = issue(KEY, "anna@example.ru");
        assert!(verify(KEY, &cookie, "anna@example.ru").is_some());
        assert!(verify(KEY, &cookie, "boris@example.ru").is_none());
        assert!(
            verify(
                b"another key of 32 bytes or longer!!",
                &cookie,
                "anna@example.ru"
            )
            .is_none()
        );
    }

    #[test]
    fn a_changed_cookie_is_refused() {
        let cookie = issue(KEY, "anna@example.ru");
        let last = if cookie.ends_with('0') { "1" } else { "0" };
        let forged = format!("{}{last}", &cookie[..cookie.len() - 1]);
        assert!(verify(KEY, &forged, "anna@example.ru").is_none());
        assert!(verify(KEY, "v1.x.y", "anna@example.ru").is_none());
        assert!(verify(KEY, "", "anna@example.ru").is_none());
    }

    #[test]
    fn the_cookie_is_read_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sovamed_device=v1.n.a.t; b=2"),
        );
        assert_eq!(
            read(&headers, "sovamed_device").as_deref(),
            Some("v1.n.a.t")
        );
        assert_eq!(read(&headers, "missing"), None);
    }
}
