//! The patient's cabinet.

use askama::Template;
use askama_web::WebTemplate;

use crate::{
    auth::{roles::CurrentUser, session::AuthSession},
    db::models::user::{Role, User},
    error::AppError,
    web::Layout,
};

#[derive(Template, WebTemplate)]
#[template(path = "pages/cabinet/home.html")]
struct CabinetPage {
    layout: Layout,
    user: User,
}

pub async fn show_cabinet(
    session: AuthSession,
    CurrentUser(user): CurrentUser,
) -> Result<impl axum::response::IntoResponse, AppError> {
    Ok(CabinetPage {
        layout: Layout::new(&session, Some(&user)).await?,
        user,
    })
}
