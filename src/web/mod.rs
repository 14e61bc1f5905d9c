//! HTML pages by area. Pages authenticate with the cabinet session cookie only.

pub mod admin;
pub mod anonymous;
pub mod audit;
pub mod auth;
pub mod booking;
pub mod cabinet;
pub mod calendar;
pub mod consent;
pub mod data_rights;
pub mod deletion;
pub mod desk;
pub mod desk_record;
pub mod doctors;
pub mod errors;
pub mod export;
pub mod home;
pub mod ics;
pub mod invite;
pub mod labels;
pub mod mfa;
pub mod my_record;
pub mod profile;
pub mod sessions;
pub mod slots;
pub mod staff;
pub mod summary;
pub mod verify;
pub mod visit;
pub mod week;

use crate::{
    auth::session::AuthSession,
    db::models::user::{Role, User},
    error::AppError,
};

/// The logged-in user as the page header shows it.
pub struct NavUser {
    pub full_name: String,
    pub role: Role,
}

/// What the base layout needs: the user for the navigation, the CSRF token for the logout
/// form (and any other form on the page).
pub struct Layout {
    pub user: Option<NavUser>,
    pub csrf: String,
}

impl Layout {
    /// A layout for `user`. Anonymous visitors get no CSRF token here, so browsing public
    /// pages never creates a session; forms ask for one themselves.
    pub async fn new(session: &AuthSession, user: Option<&User>) -> Result<Self, AppError> {
        let Some(user) = user else {
            return Ok(Self::anonymous());
        };
        Ok(Self {
            user: Some(NavUser {
                full_name: user.full_name.clone(),
                role: user.role(),
            }),
            csrf: session.csrf_token().await?,
        })
    }

    /// A layout for a page with a form: the CSRF token is created when missing.
    pub async fn with_form(session: &AuthSession, user: Option<&User>) -> Result<Self, AppError> {
        let mut layout = Self::new(session, user).await?;
        if layout.csrf.is_empty() {
            layout.csrf = session.csrf_token().await?;
        }
        Ok(layout)
    }

    pub fn anonymous() -> Self {
        Self {
            user: None,
            csrf: String::new(),
        }
    }
}

/// A refusal's page keeps the refusal's `Retry-After`, as the JSON face does.
pub fn keep_retry_after(response: &mut axum::response::Response, error: &AppError) {
    if let AppError::RateLimited { retry_after_secs } = error {
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(*retry_after_secs),
        );
    }
}

/// The two consent boxes of a form (personal data, health data), both required.
pub fn ticked_consent(
    personal: Option<&String>,
    health: Option<&String>,
) -> Result<crate::domain::consent::ConsentGiven, crate::domain::values::Invalid> {
    crate::domain::consent::ConsentGiven {
        personal_data: personal.is_some(),
        health_data: health.is_some(),
    }
    .require_both()
}

/// `next` is followed only to a path on this site: it must start with one `/`, and must not
/// be `//host` or `/\host` (both mean another host to a browser), nor hold control characters.
pub fn safe_next(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\')
        && next.len() <= 2048;
    ok.then_some(next)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_only_follows_same_site_paths() {
        assert_eq!(safe_next("/cabinet?tab=1"), Some("/cabinet?tab=1"));
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "evil",
            "/\tx",
            "",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
    }
}
