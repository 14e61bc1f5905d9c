//! The patient's cabinet.

use askama::Template;
use askama_web::WebTemplate;

use axum::extract::State;

use crate::{
    app::AppState,
    auth::{roles::CurrentUser, session::AuthSession},
    db::models::{
        record::RecordView,
        user::{Role, User},
    },
    domain::{
        booking::records::RecordQuery,
        values::{PageNo, RecordStatus},
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
    let query = RecordQuery {
        status: Some(RecordStatus::Booked),
        upcoming: true,
        ..RecordQuery::default()
    };
    let upcoming = state
        .booking
        .list_records(&user, &query, PageNo::FIRST)
        .await?;
    Ok(CabinetPage {
        layout: Layout::new(&session, Some(&user)).await?,
        user,
        upcoming: upcoming.items,
    })
}
