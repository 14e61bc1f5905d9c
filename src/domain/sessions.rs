//! A user's active sessions: every page login gets a row in `login_sessions` (the device as a
//! short summary of its User-Agent, the client address, when it began and was last used), the
//! cookie session keeps the row's random `login_id`, and a session whose row is ended is
//! refused at its next request. The user lists their sessions and ends any but the one they
//! are using; each ending is audited (`session_ended`).

use std::{net::IpAddr, time::Duration};

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;

use crate::{
    db::{
        DbPool,
        models::{
            login_session::{self, LoginSession, NewLoginSession},
            user::User,
        },
    },
    domain::{
        audit::{self, Actor},
        phones::random_hex,
    },
};

/// `last_seen_at` moves at most this often, so a busy session costs a write a minute, not
/// one per request.
pub const SEEN_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum SessionsError {
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database pool: {0}")]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
}

/// One session as the list shows it.
#[derive(Debug, Clone)]
pub struct ActiveSession {
    pub row: LoginSession,
    /// The session the list is shown in.
    pub current: bool,
}

/// «Chrome, Windows»: the browser and the system of a User-Agent, by the tokens browsers
/// actually send (most specific first: Edge, Opera and Yandex also say "Chrome", Chrome also
/// says "Safari"). Nothing of the header itself is kept, so a forged one shows as a name
/// from this list or as unknown.
pub fn device_summary(user_agent: &str) -> String {
    let ua = user_agent;
    let has = |token: &str| ua.contains(token);
    let browser = if has("YaBrowser/") {
        Some("Яндекс Браузер")
    } else if has("Edg/") || has("EdgA/") || has("EdgiOS/") || has("Edge/") {
        Some("Edge")
    } else if has("OPR/") || has("Opera") {
        Some("Opera")
    } else if has("SamsungBrowser/") {
        Some("Samsung Internet")
    } else if has("Firefox/") || has("FxiOS/") {
        Some("Firefox")
    } else if has("Chrome/") || has("CriOS/") || has("Chromium/") {
        Some("Chrome")
    } else if has("Safari/") && has("Version/") {
        Some("Safari")
    } else {
        None
    };
    let system = if has("Windows") {
        Some("Windows")
    } else if has("iPhone") || has("iPod") {
        Some("iOS")
    } else if has("iPad") {
        Some("iPadOS")
    } else if has("Android") {
        Some("Android")
    } else if has("CrOS") {
        Some("ChromeOS")
    } else if has("Mac OS X") || has("Macintosh") {
        Some("macOS")
    } else if has("Linux") {
        Some("Linux")
    } else {
        None
    };
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b}, {s}"),
        (Some(b), None) => format!("{b}, система неизвестна"),
        (None, Some(s)) => format!("неизвестный браузер, {s}"),
        (None, None) => "неизвестное устройство".to_owned(),
    }
}

/// Records a new login of `account` from this device and address; its `login_id`, for the
/// cookie session to keep.
pub async fn start(
    db: &DbPool,
    account: &User,
    user_agent: &str,
    ip: IpAddr,
    now: DateTime<Utc>,
) -> Result<String, SessionsError> {
    let login_id = random_hex(16);
    let device = device_summary(user_agent);
    let client_ip = ip.to_string();
    let mut conn = db.get().await?;
    login_session::insert(
        &mut conn,
        &NewLoginSession {
            user_id: account.id,
            login_id: &login_id,
            device: &device,
            client_ip: &client_ip,
            session_version: account.session_version,
            created_at: now,
            last_seen_at: now,
        },
    )
    .await?;
    Ok(login_id)
}

/// Whether the session `login_id` of `account` still holds (its row exists, is the
/// account's, and was not ended); notes its use at most once a minute. Takes the connection
/// the session check already holds.
pub async fn still_open(
    conn: &mut AsyncPgConnection,
    login_id: &str,
    account: &User,
    now: DateTime<Utc>,
) -> Result<bool, SessionsError> {
    let Some(row) = login_session::find_by_login_id(conn, login_id).await? else {
        return Ok(false);
    };
    if row.user_id != account.id || row.ended_at.is_some() {
        return Ok(false);
    }
    let since = (now - row.last_seen_at).to_std().unwrap_or_default();
    if since >= SEEN_EVERY {
        login_session::touch(conn, row.id, now).await?;
    }
    Ok(true)
}

/// The account's sessions that may still be alive, newest first, with `current` marked.
/// A session past the idle or the absolute timeout, or of an older `session_version` (a
/// password, role or status change), is gone from Redis already and is left out.
pub async fn list(
    db: &DbPool,
    account: &User,
    current: Option<&str>,
    now: DateTime<Utc>,
    (idle, absolute): (Duration, Duration),
) -> Result<Vec<ActiveSession>, SessionsError> {
    let ago = |d: Duration| {
        chrono::Duration::from_std(d)
            .ok()
            .and_then(|d| now.checked_sub_signed(d))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    };
    // `last_seen_at` lags by up to a minute.
    let seen_since = ago(idle + SEEN_EVERY);
    let started_since = ago(absolute);
    let mut conn = db.get().await?;
    let rows = login_session::list_live(
        &mut conn,
        account.id,
        account.session_version,
        seen_since,
        started_since,
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| ActiveSession {
            current: current == Some(row.login_id.as_str()),
            row,
        })
        .collect())
}

/// Ends the account's session `id`, never the one it is asked from (`current`); false when
/// there is no such session to end.
pub async fn end(
    db: &DbPool,
    account: &User,
    id: i64,
    current: &str,
    ip: IpAddr,
    now: DateTime<Utc>,
) -> Result<bool, SessionsError> {
    let mut conn = db.get().await?;
    let ended = login_session::end_one(&mut conn, account.id, id, current, now).await?;
    drop(conn);
    let Some(row) = ended else {
        return Ok(false);
    };
    audit_ended(db, account, &row, ip).await;
    Ok(true)
}

/// Ends every session of the account but `current`; how many were ended.
pub async fn end_others(
    db: &DbPool,
    account: &User,
    current: &str,
    ip: IpAddr,
    now: DateTime<Utc>,
) -> Result<usize, SessionsError> {
    let mut conn = db.get().await?;
    let ended = login_session::end_all_but(&mut conn, account.id, current, now).await?;
    drop(conn);
    for row in &ended {
        audit_ended(db, account, row, ip).await;
    }
    Ok(ended.len())
}

async fn audit_ended(db: &DbPool, account: &User, row: &LoginSession, ip: IpAddr) {
    audit::append_with(
        db,
        Actor::user(account, ip),
        "session_ended",
        &account.id.to_string(),
        serde_json::json!({
            "session": row.id,
            "device": row.device,
            "client_ip": row.client_ip,
        }),
    )
    .await;
}

/// The session `login_id` logged out: its row is ended (not audited here; logout has its own
/// event).
pub async fn close(db: &DbPool, login_id: &str, now: DateTime<Utc>) -> Result<(), SessionsError> {
    let mut conn = db.get().await?;
    login_session::end_by_login_id(&mut conn, login_id, now).await?;
    Ok(())
}

/// The session `login_id` stays logged in after its account's `session_version` moved on
/// (its own password change), so the list keeps showing it.
pub async fn carry_over(
    db: &DbPool,
    login_id: &str,
    session_version: i32,
) -> Result<(), SessionsError> {
    let mut conn = db.get().await?;
    login_session::set_version(&mut conn, login_id, session_version).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_told_by_browser_and_system() {
        let cases = [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
                "Chrome, Windows",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
                "Edge, Windows",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 YaBrowser/24.4.0.0 Safari/537.36",
                "Яндекс Браузер, Windows",
            ),
            (
                "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
                "Firefox, Linux",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
                "Safari, macOS",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
                "Safari, iOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
                "Samsung Internet, Android",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36 OPR/82.0.0.0",
                "Opera, Android",
            ),
            ("curl/8.5.0", "неизвестное устройство"),
            ("", "неизвестное устройство"),
            (
                "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
                "Chrome, ChromeOS",
            ),
        ];
        for (ua, want) in cases {
            assert_eq!(device_summary(ua), want, "{ua}");
        }
    }
}
