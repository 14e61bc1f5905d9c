//! The patient's cabinet.

use askama::Template;
use askama_web::WebTemplate;

use axum::extract::State;

use crate::{
    app::AppState,
    auth::{roles::CurrentUser, session::AuthSession},
    db::models::{
        record::{self, RecordFilter, RecordView},
        user::{Role, User},
    },
    error::AppError,
    web::Layout,
};

#[derive(Template, WebTemplate)]
#[template(path = "pages/cabinet/home.html")]
struct CabinetPage {
    layout: Layout,
    user: User,
    upcoming: Vec<RecordView>,
}

pub async fn show_cabinet(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
) -> Result<impl axum::response::IntoResponse, AppError> {
    let filter = RecordFilter {
        user_id: Some(user.id),
        status: Some("booked".into()),
        from: Some(chrono::Utc::now()),
        ..RecordFilter::default()
    };
    let mut conn = state.db().await?;
    let (upcoming, _) = record::list_views(&mut conn, &filter, 1, 10).await?;
    Ok(CabinetPage {
        layout: Layout::new(&session, Some(&user)).await?,
        user,
        upcoming,
    })
}
