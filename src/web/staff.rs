//! The staff desk (staff and admins).

use askama::Template;
use askama_web::WebTemplate;

use crate::{
    app::AppState,
    auth::{roles::CurrentUser, session::AuthSession},
    db::models::{
        sync_run::{self, SyncRun},
        user::{self, Role, User},
    },
    error::AppError,
    web::Layout,
};
use axum::extract::State;

#[derive(Template, WebTemplate)]
#[template(path = "pages/staff/home.html")]
struct StaffHomePage {
    layout: Layout,
    user: User,
    counts: Vec<(Role, i64)>,
}

pub async fn show_staff_home(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
) -> Result<impl axum::response::IntoResponse, AppError> {
    let mut conn = state.db().await?;
    let counts = user::count_active_by_role(&mut conn).await?;
    Ok(StaffHomePage {
        layout: Layout::new(&session, Some(&user)).await?,
        user,
        counts,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/staff/sync.html")]
struct SyncStatusPage {
    layout: Layout,
    runs: Vec<SyncRun>,
}

pub async fn show_sync_status(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
) -> Result<impl axum::response::IntoResponse, AppError> {
    let mut conn = state.db().await?;
    let runs = sync_run::latest_per_kind(&mut conn).await?;
    Ok(SyncStatusPage {
        layout: Layout::new(&session, Some(&user)).await?,
        runs,
    })
}
