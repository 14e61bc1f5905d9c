//! The public doctor directory: `/doctors` with filters (htmx swaps the list; without
//! JavaScript the form reloads the page) and `/doctors/{id}` with bio, prices and reviews.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, State},
    http::HeaderMap,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use crate::extract::path_id as parse_path_id;
use crate::{
    app::AppState,
    auth::{roles::MaybeUser, session::AuthSession},
    db::models::{
        directory::{self, Branch, Price, Review, Specialist, Speciality},
        user::Role,
    },
    error::AppError,
    extract::Query,
    web::{
        Layout,
        slots::{SlotsQuery, slots_partial},
    },
};
use crate::{
    domain::values::PageNo,
    params::{DirectoryParams, FormQuery},
};

/// Reviews per page on the doctor page.
const REVIEWS_PER_PAGE: i64 = 10;

#[derive(Template, WebTemplate)]
#[template(path = "pages/doctors/index.html")]
struct DoctorsPage {
    layout: Layout,
    specialities: Vec<Speciality>,
    branches: Vec<Branch>,
    doctors: Vec<Specialist>,
    filter_speciality: Option<i64>,
    filter_branch: Option<i64>,
    filter_name: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "partials/doctors/list.html")]
struct DoctorListPartial {
    doctors: Vec<Specialist>,
}

fn is_htmx(headers: &HeaderMap) -> bool {
    headers.get("hx-request").is_some_and(|v| v == "true")
}

pub async fn list_doctors(
    State(state): State<AppState>,
    session: AuthSession,
    MaybeUser(user): MaybeUser,
    headers: HeaderMap,
    FormQuery(query): FormQuery<DirectoryParams>,
) -> Result<Response, AppError> {
    let filter = query.filter();
    let mut conn = state.db().await?;
    let doctors = directory::search_specialists(&mut conn, &filter).await?;
    if is_htmx(&headers) {
        return Ok(DoctorListPartial { doctors }.into_response());
    }
    Ok(DoctorsPage {
        layout: Layout::new(&session, user.as_ref()).await?,
        specialities: directory::list_specialities(&mut conn).await?,
        branches: directory::list_branches(&mut conn).await?,
        doctors,
        filter_speciality: filter.speciality_id,
        filter_branch: filter.branch_id,
        filter_name: filter.name.unwrap_or_default(),
    }
    .into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/doctors/show.html")]
struct DoctorPage {
    layout: Layout,
    doctor: Specialist,
    prices: Vec<Price>,
    doctor_id: i64,
    reviews: Vec<Review>,
    reviews_page: i64,
    reviews_pages: i64,
    /// The slot grid partial, rendered in place (htmx replaces it on navigation).
    slots_html: String,
}

impl DoctorPage {
    fn branch_name(&self, branch_id: &Option<i64>) -> String {
        self.doctor
            .branches
            .iter()
            .find(|b| Some(b.id) == *branch_id)
            .map(|b| b.name.clone())
            .unwrap_or_default()
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "partials/doctors/reviews.html")]
struct ReviewsPartial {
    doctor_id: i64,
    reviews: Vec<Review>,
    reviews_page: i64,
    reviews_pages: i64,
}

#[derive(Debug, Deserialize, Default)]
pub struct PageQuery {
    #[serde(default)]
    page: String,
    /// The slot picker's: see [`crate::web::slots::SlotsQuery`].
    #[serde(default)]
    date: String,
    #[serde(default)]
    week: String,
    #[serde(default)]
    branch_id: String,
    #[serde(default)]
    nearest: String,
}

/// A 1-based page number; absent or invalid reads as the first page.
/// The reviews page: empty is the first, anything but 1 to 100000 a 422 (as on every list).
fn page_number(raw: &str) -> Result<i64, AppError> {
    Ok(crate::params::field("page", PageNo::parse(raw))?.get())
}

async fn load_reviews(
    state: &AppState,
    doctor_id: i64,
    page: i64,
) -> Result<(Vec<Review>, i64, i64), AppError> {
    let mut conn = state.db().await?;
    let (reviews, total) =
        directory::published_reviews(&mut conn, doctor_id, page, REVIEWS_PER_PAGE).await?;
    let pages = ((total + REVIEWS_PER_PAGE - 1) / REVIEWS_PER_PAGE).max(1);
    Ok((reviews, page.min(pages), pages))
}

pub async fn show_doctor(
    State(state): State<AppState>,
    session: AuthSession,
    MaybeUser(user): MaybeUser,
    crate::client_ip::ClientIp(ip): crate::client_ip::ClientIp,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Response, AppError> {
    let id = parse_path_id(&id)?;
    let mut conn = state.db().await?;
    let doctor = directory::find_specialist(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let prices = directory::prices_for(&mut conn, &doctor).await?;
    drop(conn);
    let reviews_page = page_number(&query.page)?;
    let slots_query = SlotsQuery {
        branch_id: query.branch_id.clone(),
        week: query.week.clone(),
        date: query.date.clone(),
        nearest: query.nearest.clone(),
    };
    let slots_html = match slots_partial(&state, &doctor, &slots_query, ip).await? {
        // Without JavaScript the jump is a page of its own: the address becomes the week's,
        // so that reload and Back show it.
        Some(partial) if partial.found_free => {
            return Ok(Redirect::to(&format!("{}#slots", partial.page_url)).into_response());
        }
        Some(partial) => {
            askama::Template::render(&partial).map_err(|e| AppError::Internal(e.into()))?
        }
        None => String::new(),
    };
    let (reviews, reviews_page, reviews_pages) = load_reviews(&state, id, reviews_page).await?;
    Ok(DoctorPage {
        layout: Layout::new(&session, user.as_ref()).await?,
        doctor,
        prices,
        doctor_id: id,
        reviews,
        reviews_page,
        reviews_pages,
        slots_html,
    }
    .into_response())
}

pub async fn list_doctor_reviews(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Response, AppError> {
    let id = parse_path_id(&id)?;
    let mut conn = state.db().await?;
    directory::find_specialist(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound)?;
    drop(conn);
    let (reviews, reviews_page, reviews_pages) =
        load_reviews(&state, id, page_number(&query.page)?).await?;
    Ok(ReviewsPartial {
        doctor_id: id,
        reviews,
        reviews_page,
        reviews_pages,
    }
    .into_response())
}

/// Keeps `Role` in scope for the base layout's comparisons.
const _: Option<Role> = None;
