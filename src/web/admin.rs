//! The admin area.

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
    auth::{roles::CurrentUser, session::AuthSession},
    client_ip::ClientIp,
    db::models::user::{self, User},
    domain::{
        accounts::{self, AccountError, NewAccount, NewPassword, Origin},
        audit::Actor,
        values::{Email, FieldErrors, FullName, Invalid, PageNo, Phone, Role, SearchText},
    },
    error::AppError,
    extract::{Form, Query, path_id},
    params,
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
    errors: FieldErrors,
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
    errors: FieldErrors,
) -> Result<UsersPage, AppError> {
    let q = params::field("q", SearchText::parse(&query.q))?;
    let page = params::field("page", PageNo::parse(&query.page))?;
    let mut conn = state.db().await?;
    let (users, total) = user::search(
        &mut conn,
        q.as_ref().map(SearchText::as_str),
        page,
        USERS_PER_PAGE,
    )
    .await?;
    Ok(UsersPage {
        layout: Layout::with_form(session, Some(admin)).await?,
        users,
        q: q.map(|q| q.as_str().to_owned()).unwrap_or_default(),
        page: page.get(),
        pages: PageNo::count(total, USERS_PER_PAGE),
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
        users_page(&state, &session, &admin, &query, form, FieldErrors::new())
            .await?
            .into_response(),
    )
}

fn validate(form: &NewAccountForm) -> Result<NewAccount, FieldErrors> {
    let mut errors = FieldErrors::new();
    let email = errors.check("email", Email::parse(&form.email));
    let full_name = errors.check("full_name", FullName::parse(&form.full_name));
    let phone = errors.check(
        "phone",
        match form.phone.trim() {
            "" => Ok(None),
            raw => Phone::parse(raw).map(Some),
        },
    );
    let role = errors.check(
        "role",
        form.role
            .parse::<Role>()
            .map_err(|_| Invalid("Выберите роль")),
    );
    let password = errors.check("password", NewPassword::parse(&form.password));
    errors.or_value(|| {
        Some(NewAccount {
            email: email?,
            full_name: full_name?,
            phone: phone?,
            birth_date: None,
            role: role?,
            password: password?,
        })
    })
}

pub async fn create_user(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(admin): CurrentUser,
    ClientIp(ip): ClientIp,
    Form(mut form): Form<NewAccountForm>,
) -> Result<Response, AppError> {
    let created: Result<(), FieldErrors> = match validate(&form) {
        Ok(account) => {
            let origin = Origin::Admin(actor(&admin, ip));
            match accounts::create(&state.db, &state.passwords, account, origin).await {
                Ok(_) => return Ok(Redirect::to("/admin/users?created=1").into_response()),
                Err(AccountError::EmailTaken) => Err(FieldErrors::one(
                    "email",
                    Invalid("Этот адрес уже зарегистрирован"),
                )),
                Err(e) => return Err(e.into()),
            }
        }
        Err(errors) => Err(errors),
    };
    let errors = created.err().unwrap_or_default();
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
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

fn actor(admin: &User, ip: std::net::IpAddr) -> Actor {
    Actor {
        user_id: Some(admin.id),
        ip,
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
    Ok(accounts::find(&state.db, path_id(id)?).await?)
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

pub async fn change_role(
    State(state): State<AppState>,
    CurrentUser(admin): CurrentUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Form(form): Form<RoleForm>,
) -> Result<Response, AppError> {
    let account = account(&state, &id).await?;
    let role = params::field(
        "role",
        form.role
            .parse::<Role>()
            .map_err(|_| Invalid("Выберите роль")),
    )?;
    accounts::change_role(&state.db, &account, role, actor(&admin, ip)).await?;
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
    accounts::set_disabled(&state.db, &account, disabled, actor(admin, ip)).await?;
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
    let password = match NewPassword::parse(&form.password) {
        Ok(password) => password,
        Err(invalid) => {
            let is_self = account.id == admin.id;
            let page = UserPage {
                layout: Layout::with_form(&session, Some(&admin)).await?,
                account,
                is_self,
                notice: None,
                error: Some(invalid.0.to_owned()),
            };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    accounts::set_password(
        &state.db,
        &state.passwords,
        &account,
        password,
        actor(&admin, ip),
    )
    .await?;
    Ok(Redirect::to(&format!("/admin/users/{}?done=password", account.id)).into_response())
}

pub async fn end_user_sessions(
    State(state): State<AppState>,
    CurrentUser(admin): CurrentUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let account = account(&state, &id).await?;
    accounts::end_sessions(&state.db, &account, actor(&admin, ip)).await?;
    Ok(Redirect::to(&format!("/admin/users/{}?done=sessions", account.id)).into_response())
}
