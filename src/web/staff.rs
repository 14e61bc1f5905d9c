//! The directory sync for staff and admins: the last run of each kind (`/staff/sync`),
//! and for admins "sync now" (`POST /admin/sync`), which runs under the same advisory lock
//! as the periodic sync, so a second run (here or on another replica) is refused, and
//! whose progress the page shows while it runs.

use askama::Template;
use askama_web::WebTemplate;

use crate::{
    app::AppState,
    auth::{roles::CurrentUser, session::AuthSession},
    client_ip::ClientIp,
    db::models::{
        sync_run::{self, SyncRun},
        user::Role,
    },
    domain::{
        audit::{self, Actor},
        cluster::Announcer,
    },
    error::AppError,
    extract::{Form, Query},
    sync::{
        MassDeactivation, Progress, Sources, SyncKind, SyncOptions,
        scheduler::{self, SyncLock},
    },
    web::{Layout, labels},
};
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use fred::{interfaces::KeysInterface, types::Expiration};
use serde::Deserialize;

#[derive(Template, WebTemplate)]
#[template(path = "pages/staff/sync.html")]
struct SyncStatusPage {
    layout: Layout,
    runs: Vec<SyncRunRow>,
    /// A sync holds the lock right now (on any replica).
    running: bool,
    /// The kind it is at, when this server's "sync now" started it.
    current: Option<&'static str>,
    is_admin: bool,
    kinds: Vec<(&'static str, &'static str)>,
    notice: Option<&'static str>,
}

/// The Redis key naming the kind an admin's run is at.
const CURRENT_KIND_KEY: &str = "sync:current";

/// Progress of an admin's run: the kind being synced, for the page (any replica reads it
/// from Redis); gone after ten minutes if the process dies mid-run.
struct PageProgress {
    redis: crate::redis::Redis,
}

impl Progress for PageProgress {
    fn message(&self, kind: SyncKind, _text: &str) {
        let (redis, key) = (self.redis.clone(), self.redis.key(CURRENT_KIND_KEY));
        tokio::spawn(async move {
            let set: Result<(), _> = redis
                .pool
                .set(&key, kind.as_str(), Some(Expiration::EX(600)), None, false)
                .await;
            if let Err(e) = set {
                tracing::debug!(error = %e, "sync progress not stored");
            }
        });
    }
}

/// One run as the page shows it: the kind in Russian, and a mass deactivation (refused, or
/// let through by `--allow-mass-deactivation`) or another failure told in Russian rather than
/// as the stored English text (which stays in the log and in `sync_runs.error`).
struct SyncRunRow {
    run: SyncRun,
    kind_title: String,
    /// «30 ноября 2026, 15:00 мск».
    started: String,
    /// The run was refused because it would deactivate too much (`SyncError::Refused`).
    refusal: Option<Mass>,
    /// Any other failure: which source or store failed, in Russian.
    failure: Option<&'static str>,
    /// Steps over the limit that the flag let through.
    allowed: Vec<Mass>,
    /// The other notes.
    notes: String,
}

/// A deactivation over the limit, ready for the page.
struct Mass {
    subject: &'static str,
    deactivated: u64,
    active_before: u64,
    share: String,
    max_percent: u8,
}

impl From<MassDeactivation> for Mass {
    fn from(mass: MassDeactivation) -> Self {
        Self {
            subject: mass.subject.title(),
            deactivated: mass.deactivated,
            active_before: mass.active_before,
            share: mass.share_text(','),
            max_percent: mass.max_percent,
        }
    }
}

impl SyncRunRow {
    fn new(run: SyncRun) -> Self {
        let kind_title = SyncKind::from_code(&run.kind)
            .map_or_else(|| run.kind.clone(), |k| k.title().to_owned());
        let refusal = run
            .error
            .as_deref()
            .filter(|_| !run.succeeded)
            .and_then(MassDeactivation::from_refusal)
            .map(Mass::from);
        let mut allowed = Vec::new();
        let mut notes = Vec::new();
        for line in run.notes.lines() {
            match MassDeactivation::from_allowed_note(line) {
                Some(mass) => allowed.push(Mass::from(mass)),
                None => notes.push(line),
            }
        }
        let notes = notes.join("\n");
        let failure = match (&refusal, run.error.as_deref()) {
            (None, Some(error)) if !run.succeeded => Some(failure_title(error)),
            _ => None,
        };
        Self {
            kind_title,
            started: labels::moscow_time(run.started_at),
            refusal,
            failure,
            allowed,
            notes,
            run,
        }
    }
}

/// What failed, in Russian, from the stored error (`SyncError`'s text: `MIS: …`, `CMS: …`,
/// `database: …`); the English details are for the log, not the page.
fn failure_title(error: &str) -> &'static str {
    if error.starts_with("MIS: ") {
        "МИС не ответила или ответила ошибкой"
    } else if error.starts_with("CMS: ") {
        "сайт (1С-Битрикс) не ответил или ответил ошибкой"
    } else if error.starts_with("database: ") {
        "база данных или хранилище расписаний недоступны"
    } else {
        "синхронизация прервалась"
    }
}

pub async fn show_sync_status(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
    Query(query): Query<SyncQuery>,
) -> Result<impl axum::response::IntoResponse, AppError> {
    let mut conn = state.db().await?;
    let runs = sync_run::latest_per_kind(&mut conn)
        .await?
        .into_iter()
        .map(SyncRunRow::new)
        .collect();
    let running = scheduler::is_running(&mut conn).await?;
    drop(conn);
    let current = if running {
        let code: Option<String> = state
            .redis
            .pool
            .get(state.redis.key(CURRENT_KIND_KEY))
            .await?;
        code.as_deref()
            .and_then(SyncKind::from_code)
            .map(SyncKind::title)
    } else {
        None
    };
    Ok(SyncStatusPage {
        layout: Layout::new(&session, Some(&user)).await?,
        runs,
        running,
        current,
        is_admin: user.role() == Role::Admin,
        kinds: SyncKind::ALL
            .iter()
            .map(|k| (k.as_str(), k.title()))
            .collect(),
        notice: (!query.started.is_empty()).then_some("Синхронизация запущена."),
    })
}

#[derive(Deserialize, Default)]
pub struct SyncQuery {
    #[serde(default)]
    started: String,
}

#[derive(Deserialize)]
pub struct SyncNowForm {
    #[serde(default)]
    kind: String,
}

/// `POST /admin/sync`: one kind, or `all`, now, in the background.
pub async fn run_sync_now(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    Form(form): Form<SyncNowForm>,
) -> Result<Response, AppError> {
    let kinds = match form.kind.as_str() {
        "all" => SyncKind::ALL.to_vec(),
        code => vec![
            SyncKind::from_code(code)
                .ok_or_else(|| AppError::field("kind", "Выберите, что синхронизировать"))?,
        ],
    };
    let Some(lock) = SyncLock::try_acquire(&state.config.database_url)
        .await
        .map_err(AppError::Internal)?
    else {
        return Err(AppError::Conflict {
            code: "sync_running",
            message: "Синхронизация уже идёт. Дождитесь её окончания.".into(),
        });
    };
    audit::append(
        &state.db,
        Actor::user(&user, ip),
        "sync_started",
        &form.kind,
    )
    .await;
    let sources = Sources::from_config(&state.config)
        .with_schedules(state.booking.schedule.clone())
        .with_announcer(
            Announcer::new(state.redis.clone()).with_directory(state.booking.directory.clone()),
        );
    let options = SyncOptions::from_config(&state.config, false);
    let progress = PageProgress {
        redis: state.redis.clone(),
    };
    tokio::spawn(async move {
        match lock.run(&sources, &kinds, &options, &progress).await {
            Ok(_) => tracing::info!("sync started by an admin finished"),
            Err(e) => {
                tracing::warn!(error = %e, "sync started by an admin failed; the previous data stays")
            }
        }
        let key = progress.redis.key(CURRENT_KIND_KEY);
        let _: Result<i64, _> = progress.redis.pool.del(&key).await;
    });
    Ok((StatusCode::SEE_OTHER, Redirect::to("/staff/sync?started=1")).into_response())
}

#[cfg(test)]
mod tests {
    use super::failure_title;

    #[test]
    fn a_failed_run_is_told_in_russian_by_what_failed() {
        assert_eq!(
            failure_title("MIS: timeout after 5s"),
            "МИС не ответила или ответила ошибкой"
        );
        assert_eq!(
            failure_title("CMS: HTTP 502"),
            "сайт (1С-Битрикс) не ответил или ответил ошибкой"
        );
        assert_eq!(
            failure_title("database: the schedule cache (Redis) is not available"),
            "база данных или хранилище расписаний недоступны"
        );
        assert_eq!(failure_title("something else"), "синхронизация прервалась");
    }
}
