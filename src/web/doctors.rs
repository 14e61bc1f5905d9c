//! The public doctor directory: `/doctors`, the search and the filters (htmx swaps the list
//! and pushes its address; without JavaScript the form reloads the page, and a reload or Back
//! renders the page from the address), paginated, each doctor with the lowest price and the
//! nearest free time; and `/doctors/{id}` with bio, prices and reviews.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    extract::{Path, State},
    http::{HeaderMap, HeaderName, HeaderValue},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use crate::extract::path_id as parse_path_id;
use crate::{
    app::AppState,
    auth::{roles::MaybeUser, session::AuthSession},
    db::models::{
        directory::{self, Branch, Price, Review, Specialist, Speciality},
        doctor_search::{self, DoctorCard, DoctorOrder, FoundDoctors},
        user::Role,
    },
    error::AppError,
    extract::Query,
    web::{
        Layout, labels,
        slots::{SlotsQuery, slots_partial},
    },
};
use crate::{
    domain::values::PageNo,
    params::{DoctorListParams, FormQuery},
};

/// Reviews per page on the doctor page.
const REVIEWS_PER_PAGE: i64 = 10;
/// Doctors per page of the list.
const DOCTORS_PER_PAGE: i64 = 10;

#[derive(Template, WebTemplate)]
#[template(path = "pages/doctors/index.html")]
struct DoctorsPage {
    layout: Layout,
    specialities: Vec<Speciality>,
    branches: Vec<Branch>,
    filter: ListFilter,
    list: DoctorList,
}

#[derive(Template, WebTemplate)]
#[template(path = "partials/doctors/list.html")]
struct DoctorListPartial {
    list: DoctorList,
}

/// The filter form's values, as the URL gave them: a reload or Back shows what the list shows.
struct ListFilter {
    q: String,
    speciality_id: Option<i64>,
    branch_id: Option<i64>,
    nearest_first: bool,
}

/// One page of the list as shown.
struct DoctorList {
    cards: Vec<DoctorCardView>,
    total: i64,
    page: i64,
    pages: i64,
    prev_href: Option<String>,
    next_href: Option<String>,
}

/// One doctor of the list, every text ready.
struct DoctorCardView {
    href: String,
    full_name: String,
    photo_url: Option<String>,
    specialities: String,
    branches: String,
    rating: Option<f64>,
    reviews_count: i32,
    /// «от 1 800 ₽».
    price_from: Option<String>,
    nearest: Option<NearestView>,
}

/// The nearest free time of a doctor: «пн, 30 ноября, 15:00», whose clocks, and the link to
/// that day of the doctor's schedule.
struct NearestView {
    when: String,
    /// The branch, when the doctor works in more than one.
    branch: Option<String>,
    city_time: String,
    href: String,
}

/// Whether htmx asks for the list only. A history restore (`HX-History-Restore-Request`)
/// also says `HX-Request`, but replaces the whole page: it gets the page.
fn wants_list_only(headers: &HeaderMap) -> bool {
    let says = |name: &str| headers.get(name).is_some_and(|v| v == "true");
    says("hx-request") && !says("hx-history-restore-request")
}

/// `/doctors` with the filters and the order of `params` and `page` (the first page carries
/// no `page`): the address the list is at, pushed into the history by htmx.
fn list_href(params: &DoctorListParams, page: i64) -> String {
    let mut pairs = params.pairs();
    if page > 1 {
        pairs.push(("page", page.to_string()));
    }
    match serde_urlencoded::to_string(&pairs) {
        Ok(query) if !query.is_empty() => format!("/doctors?{query}"),
        _ => "/doctors".to_owned(),
    }
}

fn card_view(card: DoctorCard) -> DoctorCardView {
    let doctor = card.doctor;
    let id = doctor.row.id;
    let nearest = card.nearest_free.map(|nearest| {
        let zone = nearest.branch.timezone;
        let local = zone.local(&nearest.starts_at);
        let date = serde_urlencoded::to_string([
            ("branch_id", nearest.branch.id.to_string()),
            ("date", local.date_naive().to_string()),
        ])
        .unwrap_or_default();
        NearestView {
            when: labels::weekday_day_time(&local),
            branch: (doctor.branches.len() > 1).then(|| nearest.branch.name.clone()),
            city_time: zone.city_time(),
            href: format!("/doctors/{id}?{date}#slots"),
        }
    });
    let specialities: Vec<&str> = doctor
        .specialities
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    let branches: Vec<&str> = doctor.branches.iter().map(|b| b.name.as_str()).collect();
    DoctorCardView {
        href: format!("/doctors/{id}"),
        specialities: specialities.join(", "),
        branches: branches.join("; "),
        full_name: doctor.row.full_name,
        photo_url: doctor.row.photo_url,
        rating: doctor.row.rating,
        reviews_count: doctor.row.reviews_count,
        price_from: card
            .price_from_kopecks
            .map(|kopecks| format!("от {}", directory::roubles_label(kopecks))),
        nearest,
    }
}

fn list_view(params: &DoctorListParams, found: FoundDoctors) -> DoctorList {
    let page = found.page.get();
    DoctorList {
        total: found.total,
        pages: found.pages,
        prev_href: (page > 1).then(|| list_href(params, page - 1)),
        next_href: (page < found.pages).then(|| list_href(params, page + 1)),
        page,
        cards: found.cards.into_iter().map(card_view).collect(),
    }
}

pub async fn list_doctors(
    State(state): State<AppState>,
    session: AuthSession,
    MaybeUser(user): MaybeUser,
    headers: HeaderMap,
    FormQuery(params): FormQuery<DoctorListParams>,
) -> Result<Response, AppError> {
    let now = state.booking.clock.now();
    let mut conn = state.db().await?;
    let found = doctor_search::find_doctors(
        &mut conn,
        &params.search(),
        params.directory.page,
        DOCTORS_PER_PAGE,
        now,
    )
    .await?;
    let shown_href = list_href(&params, found.page.get());
    let list = list_view(&params, found);
    if wants_list_only(&headers) {
        let mut response = DoctorListPartial { list }.into_response();
        // The address of what is shown, without empty fields and with the page actually
        // shown, replaces the form's raw query in the history.
        if let Ok(href) = HeaderValue::from_str(&shown_href) {
            response
                .headers_mut()
                .insert(HeaderName::from_static("hx-push-url"), href);
        }
        return Ok(response);
    }
    Ok(DoctorsPage {
        layout: Layout::new(&session, user.as_ref()).await?,
        specialities: directory::list_specialities(&mut conn).await?,
        branches: directory::list_branches(&mut conn).await?,
        filter: ListFilter {
            q: params
                .directory
                .q
                .as_ref()
                .map(|q| q.as_str().to_owned())
                .unwrap_or_default(),
            speciality_id: params.directory.speciality_id,
            branch_id: params.directory.branch_id,
            nearest_first: params.order == DoctorOrder::NearestFree,
        },
        list,
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
