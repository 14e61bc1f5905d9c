//! The admin area.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use crate::{
    app::AppState,
    auth::{roles::CurrentUser, session::AuthSession},
    db::models::user::{self, Role, User},
    error::AppError,
    web::Layout,
};

#[derive(Template, WebTemplate)]
#[template(path = "pages/admin/home.html")]
struct AdminHomePage {
    layout: Layout,
    user: User,
    users: Vec<User>,
}

pub async fn show_admin_home(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(user): CurrentUser,
) -> Result<impl axum::response::IntoResponse, AppError> {
    let mut conn = state.db().await?;
    let users = user::list_newest(&mut conn, 50).await?;
    Ok(AdminHomePage {
        layout: Layout::new(&session, Some(&user)).await?,
        user,
        users,
    })
}
