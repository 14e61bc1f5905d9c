//! The admin area: the home page, the account list with its filters, one account's page and
//! the admin's changes to it. The destructive ones (disable, role, password, end sessions)
//! first answer with a confirmation page and act only on its `confirm=1` post.
//!
//! New accounts are staff and admins, made by invitation: the admin types no password, but
//! is shown once a link (`/invite/<token>`, see `web::invite`) to give the employee, who
//! chooses the password there. Patients register themselves.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    app::AppState,
    auth::{roles::CurrentUser, session::AuthSession},
    client_ip::ClientIp,
    db::models::{
        invitation,
        user::{self, User, UserFilter},
    },
    domain::{
        accounts::{self, AccountError, NewPassword},
        audit::Actor,
        invitations::{self, NewInvitedAccount, STAFF_ONLY},
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

/// What the new-account form shows back. It has no password: the account is invited.
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
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/admin/users.html")]
struct UsersPage {
    layout: Layout,
    users: Vec<User>,
    q: String,
    /// The role select: a role code, or empty for every role.
    role_filter: String,
    /// The status select: `active`, `disabled`, or empty for both.
    status_filter: String,
    base_path: &'static str,
    /// The filters as a query string for the pager's links, ending in `&`.
    query: String,
    page: i64,
    pages: i64,
    total: i64,
    form: NewAccountForm,
    errors: FieldErrors,
}

#[derive(Deserialize, Default)]
pub struct UsersQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    page: String,
}

/// The filters the pager's links carry, URL-encoded by `serde_urlencoded`.
#[derive(Serialize)]
struct UsersLinks<'a> {
    q: &'a str,
    role: &'a str,
    status: &'a str,
}

/// The role select of the list: empty is every role.
fn role_filter(raw: &str) -> Result<Option<Role>, Invalid> {
    match raw.trim() {
        "" => Ok(None),
        code => code
            .parse::<Role>()
            .map(Some)
            .map_err(|_| Invalid("Выберите роль из списка")),
    }
}

/// The status select of the list, as the `disabled` flag it asks for: empty is both.
fn status_filter(raw: &str) -> Result<Option<bool>, Invalid> {
    match raw.trim() {
        "" => Ok(None),
        "active" => Ok(Some(false)),
        "disabled" => Ok(Some(true)),
        _ => Err(Invalid("Выберите статус из списка")),
    }
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
    let role = params::field("role", role_filter(&query.role))?;
    let disabled = params::field("status", status_filter(&query.status))?;
    let page = params::field("page", PageNo::parse(&query.page))?;
    let mut conn = state.db().await?;
    let filter = UserFilter {
        text: q.as_ref().map(SearchText::as_str),
        role,
        disabled,
    };
    let (users, total) = user::search(&mut conn, filter, page, USERS_PER_PAGE).await?;
    drop(conn);
    let q = q.map(|q| q.as_str().to_owned()).unwrap_or_default();
    let role_code = role.map(Role::as_str).unwrap_or_default();
    let status_code = match disabled {
        Some(false) => "active",
        Some(true) => "disabled",
        None => "",
    };
    let links = UsersLinks {
        q: &q,
        role: role_code,
        status: status_code,
    };
    let query_string = serde_urlencoded::to_string(&links)
        .map(|q| format!("{q}&"))
        .unwrap_or_default();
    Ok(UsersPage {
        layout: Layout::with_form(session, Some(admin)).await?,
        users,
        q,
        role_filter: role_code.to_owned(),
        status_filter: status_code.to_owned(),
        base_path: "/admin/users",
        query: query_string,
        page: page.get(),
        pages: PageNo::count(total, USERS_PER_PAGE),
        total,
        form,
        errors,
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

fn validate(form: &NewAccountForm) -> Result<NewInvitedAccount, FieldErrors> {
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
            .map_err(|_| STAFF_ONLY)
            .and_then(|role| {
                if role.is_staff() {
                    Ok(role)
                } else {
                    Err(STAFF_ONLY)
                }
            }),
    );
    errors.or_value(|| {
        Some(NewInvitedAccount {
            email: email?,
            full_name: full_name?,
            phone: phone?,
            role: role?,
        })
    })
}

/// The link an invitee opens, on the configured public address (never the request's `Host`).
fn invitation_link(state: &AppState, token: &str) -> String {
    format!("{}/invite/{token}", state.config.public_base_url)
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/admin/invitation.html")]
struct InvitationPage {
    layout: Layout,
    account: User,
    /// The whole link, token included: shown here once and stored nowhere.
    link: String,
    expires_at: DateTime<Utc>,
    /// A new link for an account that existed (the old one stopped working), or a new account.
    reissued: bool,
}

/// The page with the one-time link: never cached, and no `Referer` from it.
async fn show_invitation_link(
    state: &AppState,
    session: &AuthSession,
    admin: &User,
    account: User,
    token: &str,
    expires_at: DateTime<Utc>,
    reissued: bool,
) -> Result<Response, AppError> {
    let page = InvitationPage {
        layout: Layout::with_form(session, Some(admin)).await?,
        link: invitation_link(state, token),
        expires_at,
        account,
        reissued,
    };
    Ok((
        StatusCode::OK,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        page,
    )
        .into_response())
}

/// `POST /admin/users`: a staff or admin account by invitation; the link page, or the form
/// again with 422.
pub async fn invite_user(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(admin): CurrentUser,
    ClientIp(ip): ClientIp,
    Form(form): Form<NewAccountForm>,
) -> Result<Response, AppError> {
    let errors = match validate(&form) {
        Ok(account) => {
            let now = state.booking.clock.now();
            let invited =
                invitations::invite(&state.db, &state.passwords, account, actor(&admin, ip), now)
                    .await;
            match invited {
                Ok((account, token)) => {
                    let expires_at = invitations::expires_at(now);
                    return show_invitation_link(
                        &state, &session, &admin, account, &token, expires_at, false,
                    )
                    .await;
                }
                Err(AccountError::EmailTaken) => {
                    FieldErrors::one("email", Invalid("Этот адрес уже зарегистрирован"))
                }
                Err(AccountError::Invalid(errors)) => errors,
                Err(e) => return Err(e.into()),
            }
        }
        Err(errors) => errors,
    };
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
    /// For an account without a password of its own: until when its newest link serves,
    /// `None` when no link serves any more.
    invitation_until: Option<DateTime<Utc>>,
}

/// Until when the account's newest invitation serves, if it still does.
async fn open_invitation_until(
    state: &AppState,
    account: &User,
) -> Result<Option<DateTime<Utc>>, AppError> {
    if account.password_set_at.is_some() {
        return Ok(None);
    }
    let mut conn = state.db().await?;
    let latest = invitation::latest_for(&mut conn, account.id).await?;
    let now = state.booking.clock.now();
    Ok(latest
        .filter(|i| invitations::is_open(i, now))
        .map(|i| i.expires_at))
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
    let invitation_until = open_invitation_until(&state, &account).await?;
    Ok(UserPage {
        layout: Layout::with_form(&session, Some(&admin)).await?,
        account,
        is_self,
        notice,
        error: None,
        invitation_until,
    }
    .into_response())
}

/// `POST /admin/users/{id}/invite`: a new link for an account that has not set its password
/// (the earlier one stops working), shown on the link page.
pub async fn reinvite_user(
    State(state): State<AppState>,
    session: AuthSession,
    CurrentUser(admin): CurrentUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let account = account(&state, &id).await?;
    let now = state.booking.clock.now();
    let token = invitations::reinvite(&state.db, &account, actor(&admin, ip), now).await?;
    let expires_at = invitations::expires_at(now);
    show_invitation_link(&state, &session, &admin, account, &token, expires_at, true).await
}

/// A field the confirmation page posts again, hidden.
struct Hidden {
    name: &'static str,
    value: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/admin/confirm.html")]
struct ConfirmPage {
    layout: Layout,
    account: User,
    title: &'static str,
    /// What will happen, in Russian.
    consequence: String,
    /// The form's path: the same action, posted again with `confirm=1`.
    action: String,
    fields: Vec<Hidden>,
}

/// A destructive change waiting for the admin's confirmation.
enum Pending {
    Role(Role),
    Disable,
    Password(String),
    EndSessions,
}

/// The `confirm` field of a destructive action's form. Only `1` acts: a slip of the mouse on
/// the account page costs one more click, never an account.
#[derive(Deserialize, Default)]
pub struct ConfirmForm {
    #[serde(default)]
    confirm: String,
}

fn confirmed(raw: &str) -> bool {
    raw == "1"
}

/// The confirmation page of `pending` on `account`: what will happen, and the same form
/// again with `confirm=1`.
async fn ask_to_confirm(
    session: &AuthSession,
    admin: &User,
    account: User,
    pending: Pending,
) -> Result<Response, AppError> {
    let (title, consequence, path, fields) = match pending {
        Pending::Role(role) => (
            "Сменить роль?",
            format!(
                "Роль изменится с «{}» на «{}». Все сеансы пользователя будут завершены: ему \
                 придётся войти заново.",
                account.role().title(),
                role.title()
            ),
            "role",
            vec![Hidden {
                name: "role",
                value: role.as_str().to_owned(),
            }],
        ),
        Pending::Disable => (
            "Отключить учётную запись?",
            "Пользователь не сможет войти, все его сеансы будут завершены. Включить учётную \
             запись можно будет на её странице."
                .to_owned(),
            "disable",
            Vec::new(),
        ),
        Pending::Password(password) => (
            "Задать новый пароль?",
            "Пароль пользователя заменится введённым, все его сеансы будут завершены: войти \
             можно будет только с новым паролем."
                .to_owned(),
            "password",
            vec![Hidden {
                name: "password",
                value: password,
            }],
        ),
        Pending::EndSessions => (
            "Завершить все сеансы?",
            "Пользователь выйдет из системы на всех устройствах и в приложениях; ему придётся \
             войти заново."
                .to_owned(),
            "sessions/end",
            Vec::new(),
        ),
    };
    Ok(ConfirmPage {
        layout: Layout::with_form(session, Some(admin)).await?,
        action: format!("/admin/users/{}/{path}", account.id),
        account,
        title,
        consequence,
        fields,
    }
    .into_response())
}

#[derive(Deserialize, Default)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
    #[serde(default)]
    confirm: String,
}

pub async fn change_role(
    State(state): State<AppState>,
    session: AuthSession,
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
    if !confirmed(&form.confirm) {
        return ask_to_confirm(&session, &admin, account, Pending::Role(role)).await;
    }
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
    session: AuthSession,
    CurrentUser(admin): CurrentUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, AppError> {
    if !confirmed(&form.confirm) {
        let account = account(&state, &id).await?;
        return ask_to_confirm(&session, &admin, account, Pending::Disable).await;
    }
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
    #[serde(default)]
    confirm: String,
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
            let invitation_until = open_invitation_until(&state, &account).await?;
            let page = UserPage {
                layout: Layout::with_form(&session, Some(&admin)).await?,
                account,
                is_self,
                notice: None,
                error: Some(invalid.0.to_owned()),
                invitation_until,
            };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    if !confirmed(&form.confirm) {
        // The password is checked before asking, so a refused one is shown on the account
        // page at once; the confirmation carries it back in a hidden field (pages are never
        // cached: `Cache-Control: no-store`).
        let pending = Pending::Password(form.password);
        return ask_to_confirm(&session, &admin, account, pending).await;
    }
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
    session: AuthSession,
    CurrentUser(admin): CurrentUser,
    ClientIp(ip): ClientIp,
    Path(id): Path<String>,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, AppError> {
    let account = account(&state, &id).await?;
    if !confirmed(&form.confirm) {
        return ask_to_confirm(&session, &admin, account, Pending::EndSessions).await;
    }
    accounts::end_sessions(&state.db, &account, actor(&admin, ip)).await?;
    Ok(Redirect::to(&format!("/admin/users/{}?done=sessions", account.id)).into_response())
}
