//! The staff desk (staff and admins).

use askama::Template;
use askama_web::WebTemplate;

use crate::{
    app::AppState,
    auth::{roles::CurrentUser, session::AuthSession},
    db::models::user::{self, Role, User},
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
