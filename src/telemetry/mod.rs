//! Logging: human-readable in development, JSON in production; `RUST_LOG` filters.

pub mod metrics;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=info"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true),
            )
            .try_init()
    } else {
        registry.with(fmt::layer().compact()).try_init()
    };
}

/// Paths whose next segment is a secret: the link token of an invitation and of a visit
/// booked without an account, and a patient's calendar feed.
const SECRET_PATHS: [&str; 3] = ["/invite/", "/v/", "/calendar/"];

/// A request path as logs may carry it: the token of a secret link is replaced by `{token}`
/// (`/v/<token>/cancel` becomes `/v/{token}/cancel`), so whoever reads the logs cannot use
/// the link.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    for prefix in SECRET_PATHS {
        if let Some(rest) = path.strip_prefix(prefix) {
            let tail = rest.find('/').map_or("", |at| &rest[at..]);
            return format!("{prefix}{{token}}{tail}").into();
        }
    }
    path.into()
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn link_tokens_never_reach_the_logs() {
        assert_eq!(
            loggable_path("/invite/0123456789abcdef0123456789abcdef"),
            "/invite/{token}"
        );
        assert_eq!(loggable_path("/v/abc123/cancel"), "/v/{token}/cancel");
        assert_eq!(loggable_path("/v/"), "/v/{token}");
        assert_eq!(
            loggable_path("/calendar/0123456789abcdef0123456789abcdef.ics"),
            "/calendar/{token}"
        );
        assert_eq!(
            loggable_path("/v/abc123/calendar.ics"),
            "/v/{token}/calendar.ics"
        );
        assert_eq!(loggable_path("/cabinet/calendar"), "/cabinet/calendar");
        assert_eq!(loggable_path("/admin/users/7"), "/admin/users/7");
        assert_eq!(loggable_path("/visits"), "/visits");
    }
}
