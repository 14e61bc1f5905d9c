//! The admin area.

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use crate::{
    app::AppState,
    auth::{login::audit, password, roles::CurrentUser, session::AuthSession},
    client_ip::ClientIp,
    db::models::user::{self, NewUser, Role, User},
    error::AppError,
    extract::{Form, Query, path_id},
    web::{Layout, auth::normalize_phone},
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

/// Accounts per page of the admin list.
const USERS_PER_PAGE: i64 = 50;

/// What the new-account form shows back.
#[derive(Deserialize, Default)]
pub struct NewAccountForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    full_name: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/admin/users.html")]
struct UsersPage {
    layout: Layout,
    users: Vec<User>,
    q: String,
    page: i64,
    pages: i64,
    total: i64,
    form: NewAccountForm,
    errors: BTreeMap<&'static str, String>,
    notice: Option<&'static str>,
}

#[derive(Deserialize, Default)]
pub struct UsersQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: String,
    #[serde(default)]
    created: String,
}

async fn users_page(
    state: &AppState,
    session: &AuthSession,
    admin: &User,
    query: &UsersQuery,
    form: NewAccountForm,
    errors: BTreeMap<&'static str, String>,
) -> Result<UsersPage, AppError> {
    let q = crate::web::doctors::parse_name("q", &query.q)?.unwrap_or_default();
    let page = query
        .page
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|p| (1..=100_000).contains(p))
        .unwrap_or(1);
    let mut conn = state.db().await?;
    let (users, total) = user::search(&mut conn, Some(&q), page, USERS_PER_PAGE).await?;
    Ok(UsersPage {
        layout: Layout::with_form(session, Some(admin)).await?,
        users,
        q,
        page,
        pages: ((total + USERS_PER_PAGE - 1) / USERS_PER_PAGE).max(1),
        total,
        form,
        errors,
        notice: (!query.created.is_empty()).then_some("Учётная запись создана."),
    })
}

pub async fn list_users(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(admin): CurrentUser,
    Query(query): Query<UsersQuery>,
) -> Result<Response, AppError> {
    let form = NewAccountForm {
        role: "staff".into(),
        ..NewAccountForm::default()
    };
    Ok(
        users_page(&state, &session, &admin, &query, form, BTreeMap::new())
            .await?
            .into_response(),
    )
}

pub async fn create_user(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(admin): CurrentUser,
    ClientIp(ip): ClientIp,
    Form(mut form): Form<NewAccountForm>,
) -> Result<Response, AppError> {
    let mut errors = BTreeMap::new();
    let email = user::normalize_email(&form.email);
    if email.len() > 254 || !email_address::EmailAddress::is_valid(&email) {
        errors.insert("email", "Некорректный адрес электронной почты".to_owned());
    }
    let full_name = form
        .full_name
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if full_name.chars().count() < 2
        || full_name.chars().count() > 200
        || full_name.chars().any(char::is_control)
    {
        errors.insert("full_name", "От 2 до 200 символов".to_owned());
    }
    let phone = match form.phone.trim() {
        "" => None,
        raw => {
            let phone = normalize_phone(raw);
            if phone.is_none() {
                errors.insert("phone", "Некорректный номер телефона".to_owned());
            }
            phone
        }
    };
    let role = Role::parse(&form.role);
    if role.is_none() {
        errors.insert("role", "Выберите роль".to_owned());
    }
    if let Err(message) = password::check_new(&form.password) {
        errors.insert("password", message.to_owned());
    }
    let (Some(role), true) = (role, errors.is_empty()) else {
        form.password.clear();
        let page = users_page(
            &state,
            &session,
            &admin,
            &UsersQuery::default(),
            form,
            errors,
        )
        .await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let hash = state.passwords.hash(form.password.clone()).await?;
    let mut conn = state.db().await?;
    let new_user = NewUser {
        email: &email,
        password_hash: &hash,
        full_name: &full_name,
        phone: phone.as_deref(),
        birth_date: None,
        role: role.as_str(),
    };
    match user::insert(&mut conn, &new_user).await {
        Ok(created) => {
            drop(conn);
            audit(
                &state,
                Some(admin.id),
                "user_created",
                &created.id.to_string(),
                ip,
            )
            .await;
            Ok(Redirect::to("/admin/users?created=1").into_response())
        }
        Err(e) if user::is_duplicate_email(&e) => {
            drop(conn);
            form.password.clear();
            let errors = BTreeMap::from([("email", "Этот адрес уже зарегистрирован".to_owned())]);
            let page = users_page(
                &state,
                &session,
                &admin,
                &UsersQuery::default(),
                form,
                errors,
            )
            .await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/admin/user.html")]
struct UserPage {
    layout: Layout,
    account: User,
    is_self: bool,
    notice: Option<&'static str>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    #[serde(default)]
    done: String,
}

async fn account(state: &AppState, id: &str) -> Result<User, AppError> {
    let id = path_id(id)?;
    let mut conn = state.db().await?;
    user::find(&mut conn, id).await?.ok_or(AppError::NotFound)
}

pub async fn show_user(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(admin): CurrentUser,
    Path(id): Path<String>,
    Query(query): Query<DoneQuery>,
) -> Result<Response, AppError> {
    let account = account(&state, &id).await?;
    let notice = match query.done.as_str() {
        "role" => Some("Роль изменена; сеансы пользователя завершены."),
        "disable" => Some("Учётная запись отключена; сеансы завершены."),
        "enable" => Some("Учётная запись включена."),
        "password" => Some("Пароль изменён; сеансы пользователя завершены."),
        "sessions" => Some("Все сеансы пользователя завершены."),
        _ => None,
    };
    let is_self = account.id == admin.id;
    Ok(UserPage {
        layout: Layout::with_form(&session, Some(&admin)).await?,
        account,
        is_self,
        notice,
        error: None,
    }
    .into_response())
}

#[derive(Deserialize, Default)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

/// Admins change other accounts only: an admin cannot demote or disable themselves (and so
/// leave the clinic without an admin by a slip of the mouse).
fn not_self(admin: &User, account: &User) -> Result<(), AppError> {
    if admin.id == account.id {
        return Err(AppError::Conflict {
            code: "conflict",
            message: "Свою роль и статус изменить нельзя".into(),
        });
    }
    Ok(())
}

pub async fn change_role(
    State(state): State<AppState>,
    CurrentUser(admin): CurrentUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Form(form): Form<RoleForm>,
) -> Result<Response, AppError> {
    let account = account(&state, &id).await?;
    not_self(&admin, &account)?;
    let role = Role::parse(&form.role)
        .ok_or_else(|| AppError::field("role", "patient, staff или admin"))?;
    let mut conn = state.db().await?;
    user::set_role(&mut conn, account.id, role).await?;
    drop(conn);
    audit(
        &state,
        Some(admin.id),
        "user_role_changed",
        &format!("{} → {}", account.id, role.as_str()),
        ip,
    )
    .await;
    Ok(Redirect::to(&format!("/admin/users/{}?done=role", account.id)).into_response())
}

async fn set_disabled(
    state: &AppState,
    admin: &User,
    id: &str,
    disabled: bool,
    ip: std::net::IpAddr,
) -> Result<Response, AppError> {
    let account = account(state, id).await?;
    not_self(admin, &account)?;
    let mut conn = state.db().await?;
    user::set_disabled(&mut conn, account.id, disabled).await?;
    drop(conn);
    let action = if disabled {
        "user_disabled"
    } else {
        "user_enabled"
    };
    audit(state, Some(admin.id), action, &account.id.to_string(), ip).await;
    let done = if disabled { "disable" } else { "enable" };
    Ok(Redirect::to(&format!("/admin/users/{}?done={done}", account.id)).into_response())
}

pub async fn disable_user(
    State(state): State<AppState>,
    CurrentUser(admin): CurrentUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    set_disabled(&state, &admin, &id, true, ip).await
}

pub async fn enable_user(
    State(state): State<AppState>,
    CurrentUser(admin): CurrentUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    set_disabled(&state, &admin, &id, false, ip).await
}

#[derive(Deserialize, Default)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
}

pub async fn reset_password(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(admin): CurrentUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Form(form): Form<PasswordForm>,
) -> Result<Response, AppError> {
    let account = account(&state, &id).await?;
    if let Err(message) = password::check_new(&form.password) {
        let is_self = account.id == admin.id;
        let page = UserPage {
            layout: Layout::with_form(&session, Some(&admin)).await?,
            account,
            is_self,
            notice: None,
            error: Some(message.to_owned()),
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let hash = state.passwords.hash(form.password).await?;
    let mut conn = state.db().await?;
    user::set_password_hash(&mut conn, account.id, &hash).await?;
    drop(conn);
    audit(
        &state,
        Some(admin.id),
        "user_password_reset",
        &account.id.to_string(),
        ip,
    )
    .await;
    Ok(Redirect::to(&format!("/admin/users/{}?done=password", account.id)).into_response())
}

pub async fn end_user_sessions(
    State(state): State<AppState>,
    CurrentUser(admin): CurrentUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let account = account(&state, &id).await?;
    let mut conn = state.db().await?;
    user::end_sessions(&mut conn, account.id).await?;
    drop(conn);
    audit(
        &state,
        Some(admin.id),
        "user_sessions_ended",
        &account.id.to_string(),
        ip,
    )
    .await;
    Ok(Redirect::to(&format!("/admin/users/{}?done=sessions", account.id)).into_response())
}
