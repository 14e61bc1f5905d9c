//! The directory sync status for staff and admins (`/staff/sync`).

use askama::Template;
use askama_web::WebTemplate;

use crate::{
    app::AppState,
    auth::{roles::CurrentUser, session::AuthSession},
    db::models::{
        sync_run::{self, SyncRun},
        user::Role,
    },
    error::AppError,
    sync::{MassDeactivation, SyncKind},
    web::Layout,
};
use axum::extract::State;

#[derive(Template, WebTemplate)]
#[template(path = "pages/staff/sync.html")]
struct SyncStatusPage {
    layout: Layout,
    runs: Vec<SyncRunRow>,
}

/// One run as the page shows it: the kind in Russian, and a mass deactivation (refused, or
/// let through by `--allow-mass-deactivation`) told in Russian rather than as the stored
/// English text.
struct SyncRunRow {
    run: SyncRun,
    kind_title: String,
    /// The run was refused because it would deactivate too much (`SyncError::Refused`).
    refusal: Option<Mass>,
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
        Self {
            kind_title,
            refusal,
            allowed,
            notes,
            run,
        }
    }

    /// The command that does what was refused.
    fn allow_command(&self) -> String {
        format!("sovamed sync {} --allow-mass-deactivation", self.run.kind)
    }
}

pub async fn show_sync_status(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
) -> Result<impl axum::response::IntoResponse, AppError> {
    let mut conn = state.db().await?;
    let runs = sync_run::latest_per_kind(&mut conn)
        .await?
        .into_iter()
        .map(SyncRunRow::new)
        .collect();
    Ok(SyncStatusPage {
        layout: Layout::new(&session, Some(&user)).await?,
        runs,
    })
}
