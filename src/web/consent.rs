//! `/consent/{purpose}`: the current text of a consent, which every form that asks for it
//! links to.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};

// The base layout names roles.
use crate::db::models::user::Role;
use crate::{
    app::AppState,
    auth::session::AuthSession,
    db::models::consent::ConsentText,
    domain::{consent, values::ConsentPurpose},
    error::AppError,
    web::Layout,
};

#[derive(Template, WebTemplate)]
#[template(path = "pages/consent.html")]
pub struct ConsentPage {
    layout: Layout,
    text: ConsentText,
}

pub async fn show_consent(
    State(state): State<AppState>,
    session: AuthSession,
    Path(purpose): Path<String>,
) -> Result<ConsentPage, AppError> {
    let purpose: ConsentPurpose = purpose.parse().map_err(|_| AppError::NotFound)?;
    let conn = state.db().await?;
    let text = consent::current_texts(&conn)
        .await?
        .into_iter()
        .find(|t| t.purpose == purpose)
        .ok_or(AppError::NotFound)?;
    Ok(ConsentPage {
        layout: Layout::new(&session, None).await?,
        text,
    })
}
