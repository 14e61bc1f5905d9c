//! The HTML face of [`AppError`]: a layer on the page router that replaces the JSON body
//! of an error response with the error page, and the page fallbacks.

use askama::Template;
use axum::{
    body::Body,
    extract::Request,
    http::{HeaderValue, header},
    middleware::Next,
    response::Response,
};

use crate::{
    db::models::user::Role,
    error::{AppError, ErrorFace},
    web::Layout,
};

#[derive(Template)]
#[template(path = "errors/403.html")]
struct ForbiddenPage {
    layout: Layout,
    message: String,
}

#[derive(Template)]
#[template(path = "errors/404.html")]
struct NotFoundPage {
    layout: Layout,
}

#[derive(Template)]
#[template(path = "errors/500.html")]
struct ServerErrorPage {
    layout: Layout,
    message: String,
    request_id: String,
}

#[derive(Template)]
#[template(path = "errors/other.html")]
struct OtherErrorPage {
    layout: Layout,
    status: u16,
    message: String,
}

/// Marks a response whose body is already the page to show, whatever its status (a form
/// that says why it did nothing when the MIS is down): [`render_html_errors`] leaves it.
#[derive(Debug, Clone, Copy)]
pub struct OwnPage;

/// Swaps the JSON body of an [`AppError`] response for the matching error page, keeping
/// the status and headers (such as `Retry-After`).
pub async fn render_html_errors(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let response = next.run(request).await;
    let face = match response.extensions().get::<ErrorFace>() {
        Some(face) => face.clone(),
        // A bare 5xx from a layer (the session layer when Redis fails on save).
        None if response.extensions().get::<OwnPage>().is_some() => return response,
        None if response.status().is_server_error() => ErrorFace {
            status: response.status(),
            code: "internal",
            message: AppError::Internal(anyhow::anyhow!("layer")).public_message(),
        },
        None => return response,
    };
    let layout = Layout::anonymous();
    let rendered = match face.status.as_u16() {
        403 => ForbiddenPage {
            layout,
            message: face.message,
        }
        .render(),
        404 => NotFoundPage { layout }.render(),
        500..=599 => ServerErrorPage {
            layout,
            message: face.message,
            request_id,
        }
        .render(),
        status => OtherErrorPage {
            layout,
            status,
            message: without_field_code(face.message),
        }
        .render(),
    };
    let html = rendered.unwrap_or_else(|e| {
        tracing::error!(error = %e, "error page did not render");
        "<!doctype html><title>Ошибка</title><p>Ошибка. Повторите позже.</p>".to_owned()
    });
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    Response::from_parts(parts, Body::from(html))
}

/// A refusal's message for a page: the API's `field.path: message` without the field's code,
/// which a visitor cannot act on and which is not Russian.
fn without_field_code(message: String) -> String {
    match message.split_once(": ") {
        Some((field, rest))
            if !field.is_empty()
                && field
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']')) =>
        {
            rest.to_owned()
        }
        _ => message,
    }
}

pub async fn page_not_found() -> AppError {
    AppError::NotFound
}

pub async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}

#[derive(Template, askama_web::WebTemplate)]
#[template(path = "pages/notice.html")]
struct NoticePage {
    layout: Layout,
    title: String,
    message: String,
    alert: bool,
    link_href: String,
    link_text: String,
}

/// A page that says what went wrong in a flow, and where to go on, with `status`.
pub async fn problem_page(
    session: &crate::auth::session::AuthSession,
    status: axum::http::StatusCode,
    title: &str,
    message: &str,
    (link_href, link_text): (&str, &str),
) -> Result<Response, AppError> {
    use axum::response::IntoResponse;
    let page = NoticePage {
        layout: Layout::with_form(session, None).await?,
        title: title.to_owned(),
        message: message.to_owned(),
        alert: !status.is_success(),
        link_href: link_href.to_owned(),
        link_text: link_text.to_owned(),
    };
    Ok((status, page).into_response())
}

#[cfg(test)]
mod tests {
    use super::without_field_code;

    #[test]
    fn a_page_shows_no_field_codes() {
        assert_eq!(
            without_field_code("patient.phone: Обязательное поле".into()),
            "Обязательное поле"
        );
        assert_eq!(
            without_field_code("Время приёма уже прошло".into()),
            "Время приёма уже прошло"
        );
        assert_eq!(
            without_field_code("МИС отказала: время занято".into()),
            "МИС отказала: время занято"
        );
    }
}
