//! The home page.

use askama::Template;
use askama_web::WebTemplate;

use crate::{
    auth::{roles::MaybeUser, session::AuthSession},
    db::models::user::Role,
    error::AppError,
    web::Layout,
};

#[derive(Template, WebTemplate)]
#[template(path = "pages/home.html")]
struct HomePage {
    layout: Layout,
}

pub async fn show_home(
    session: AuthSession,
    MaybeUser(user): MaybeUser,
) -> Result<impl axum::response::IntoResponse, AppError> {
    Ok(HomePage {
        layout: Layout::new(&session, user.as_ref()).await?,
    })
}
