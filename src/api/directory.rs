//! Public directory endpoints: branches, specialities, specialists, reviews, prices.

use axum::{
    Json,
    extract::{Path, State},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::extract::path_id;
use crate::{
    app::AppState,
    db::models::directory::{self, Branch, Price, Review, Specialist, Speciality},
    domain::values::{FieldErrors, PageNo, SearchText},
    error::AppError,
    params::{self, ApiQuery, DirectoryParams, FromQuery, Paging, QueryPairs},
};

/// A branch with its IANA time zone.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BranchView {
    id: i64,
    name: String,
    address: String,
    phone: String,
    /// IANA zone, e.g. `Asia/Yekaterinburg`: the MIS speaks this branch's wall time.
    timezone: String,
}

impl From<&Branch> for BranchView {
    fn from(b: &Branch) -> Self {
        Self {
            id: b.id,
            name: b.name.clone(),
            address: b.address.clone(),
            phone: b.phone.clone(),
            timezone: b.timezone.name().to_owned(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SpecialityView {
    id: i64,
    name: String,
}

impl From<&Speciality> for SpecialityView {
    fn from(s: &Speciality) -> Self {
        Self {
            id: s.id,
            name: s.name.clone(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NamedRef {
    id: i64,
    name: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SpecialistCard {
    id: i64,
    full_name: String,
    specialities: Vec<NamedRef>,
    branches: Vec<NamedRef>,
    photo_url: Option<String>,
    rating: Option<f64>,
    reviews_count: i32,
}

impl From<&Specialist> for SpecialistCard {
    fn from(s: &Specialist) -> Self {
        Self {
            id: s.row.id,
            full_name: s.row.full_name.clone(),
            specialities: s
                .specialities
                .iter()
                .map(|x| NamedRef {
                    id: x.id,
                    name: x.name.clone(),
                })
                .collect(),
            branches: s
                .branches
                .iter()
                .map(|x| NamedRef {
                    id: x.id,
                    name: x.name.clone(),
                })
                .collect(),
            photo_url: s.row.photo_url.clone(),
            rating: s.row.rating,
            reviews_count: s.row.reviews_count,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PriceView {
    pub id: i64,
    pub name: String,
    pub code: String,
    /// The price in kopecks (an integer: 250050 is 2 500,50 ₽).
    pub price_kopecks: i64,
    /// ISO 4217: always `RUB`.
    pub currency: String,
    pub branch_id: Option<i64>,
    pub speciality_id: Option<i64>,
}

impl From<&Price> for PriceView {
    fn from(p: &Price) -> Self {
        Self {
            id: p.id,
            name: p.name.clone(),
            code: p.code.clone(),
            price_kopecks: p.price_kopecks,
            currency: "RUB".into(),
            branch_id: p.branch_id,
            speciality_id: p.speciality_id,
        }
    }
}

/// Lists of the directory: one page and the total, the same shape everywhere.
macro_rules! list_of {
    ($(#[$meta:meta])* $name:ident, $item:ty) => {
        $(#[$meta])*
        #[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
        pub struct $name {
            pub items: Vec<$item>,
            pub total: i64,
            pub page: i64,
            pub per_page: i64,
        }

        impl $name {
            fn page<'a, T>(all: &'a [T], paging: Paging, view: impl Fn(&'a T) -> $item) -> Self {
                Self {
                    items: paging.cut(all).iter().map(view).collect(),
                    total: i64::try_from(all.len()).unwrap_or(i64::MAX),
                    page: paging.page.get(),
                    per_page: paging.per_page,
                }
            }
        }
    };
}

list_of!(
    /// A page of branches.
    BranchList,
    BranchView
);
list_of!(
    /// A page of specialities.
    SpecialityList,
    SpecialityView
);
list_of!(
    /// A page of specialists.
    SpecialistList,
    SpecialistCard
);
list_of!(
    /// A page of prices.
    PriceList,
    PriceView
);

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SpecialistDetail {
    #[serde(flatten)]
    card: SpecialistCard,
    summary: String,
    /// Sanitised at sync time (no scripts, handlers or `javascript:` URLs).
    bio_html: String,
    experience_years: Option<i32>,
    branches_detail: Vec<BranchView>,
    prices: Vec<PriceView>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewView {
    id: i64,
    author: String,
    text: String,
    rating: Option<i16>,
    date: Option<DateTime<Utc>>,
}

impl From<Review> for ReviewView {
    fn from(r: Review) -> Self {
        Self {
            id: r.id,
            author: r.author_name,
            text: r.body,
            rating: r.rating,
            date: r.reviewed_at,
        }
    }
}

/// Active branches with their IANA time zones.
#[utoipa::path(get, path = "/api/v1/branches", tag = "directory", params(Paging),
    responses((status = 200, description = "Branches", body = BranchList),
        (status = 422, description = "Bad paging", body = crate::api::types::ErrorBody),
        (status = 503, description = "Database down", body = crate::api::types::ErrorBody)))]
pub async fn list_branches(
    State(state): State<AppState>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<Json<BranchList>, AppError> {
    let mut conn = state.db().await?;
    let branches = directory::list_branches(&mut conn).await?;
    Ok(Json(BranchList::page(&branches, paging, BranchView::from)))
}

/// Active specialities.
#[utoipa::path(get, path = "/api/v1/specialities", tag = "directory", params(Paging),
    responses((status = 200, description = "Specialities", body = SpecialityList),
        (status = 422, description = "Bad paging", body = crate::api::types::ErrorBody),
        (status = 503, description = "Database down", body = crate::api::types::ErrorBody)))]
pub async fn list_specialities(
    State(state): State<AppState>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<Json<SpecialityList>, AppError> {
    let mut conn = state.db().await?;
    let specialities = directory::list_specialities(&mut conn).await?;
    Ok(Json(SpecialityList::page(
        &specialities,
        paging,
        SpecialityView::from,
    )))
}

/// Active specialists, filtered.
#[utoipa::path(get, path = "/api/v1/specialists", tag = "directory", params(DirectoryParams),
    responses((status = 200, description = "Specialists", body = SpecialistList),
        (status = 422, description = "A bad filter value", body = crate::api::types::ErrorBody), (status = 503, description = "Database down", body = crate::api::types::ErrorBody)))]
pub async fn list_specialists(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<DirectoryParams>,
) -> Result<Json<SpecialistList>, AppError> {
    let filter = query.filter();
    let mut conn = state.db().await?;
    let specialists = directory::search_specialists(&mut conn, &filter).await?;
    Ok(Json(SpecialistList::page(
        &specialists,
        query.paging(),
        SpecialistCard::from,
    )))
}

/// One specialist with the sanitised bio and prices.
#[utoipa::path(get, path = "/api/v1/specialists/{id}", tag = "directory", params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, description = "The specialist", body = SpecialistDetail),
        (status = 404, description = "Unknown or inactive", body = crate::api::types::ErrorBody)))]
pub async fn show_specialist(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SpecialistDetail>, AppError> {
    let id = path_id(&id)?;
    let mut conn = state.db().await?;
    let specialist = directory::find_specialist(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let prices = directory::prices_for(&mut conn, &specialist).await?;
    Ok(Json(SpecialistDetail {
        card: SpecialistCard::from(&specialist),
        summary: specialist.row.summary.clone(),
        bio_html: specialist.row.bio_html.clone(),
        experience_years: specialist.experience_years(),
        branches_detail: specialist.branches.iter().map(BranchView::from).collect(),
        prices: prices.iter().map(PriceView::from).collect(),
    }))
}

/// A page of reviews.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewList {
    pub items: Vec<ReviewView>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

/// Published reviews, newest first.
#[utoipa::path(get, path = "/api/v1/specialists/{id}/reviews", tag = "directory", params(("id" = i64, Path, minimum = 1), Paging),
    responses((status = 200, description = "Reviews", body = ReviewList),
        (status = 404, description = "Unknown specialist", body = crate::api::types::ErrorBody), (status = 422, description = "Bad paging", body = crate::api::types::ErrorBody)))]
pub async fn list_specialist_reviews(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> Result<Json<ReviewList>, AppError> {
    let id = path_id(&id)?;
    let mut conn = state.db().await?;
    directory::find_specialist(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound)?;
    let (reviews, total) =
        directory::published_reviews(&mut conn, id, paging.page.get(), paging.per_page).await?;
    Ok(Json(ReviewList {
        items: reviews.into_iter().map(ReviewView::from).collect(),
        total,
        page: paging.page.get(),
        per_page: paging.per_page,
    }))
}

/// The price-list filters; empty means "all".
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PricesQuery {
    #[param(minimum = 1)]
    branch_id: Option<i64>,
    /// A part of the service's name.
    #[param(value_type = Option<String>, max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    q: Option<SearchText>,
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100000)]
    page: PageNo,
    /// Prices per page, 50 when absent.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    per_page: i64,
}

impl FromQuery for PricesQuery {
    fn from_query(query: &QueryPairs<'_>) -> Result<Self, AppError> {
        let mut errors = FieldErrors::new();
        let branch_id = errors.check(
            "branch_id",
            query.value("branch_id").and_then(params::optional_id),
        );
        let q = errors.check("q", SearchText::parse(query.text("q")));
        let paging = Paging::read(query, &mut errors);
        Ok(errors.or_value(|| {
            let paging = paging?;
            Some(Self {
                branch_id: branch_id?,
                q: q?,
                page: paging.page,
                per_page: paging.per_page,
            })
        })?)
    }
}

/// Prices, filtered by branch and name.
#[utoipa::path(get, path = "/api/v1/prices", tag = "directory", params(PricesQuery),
    responses((status = 200, description = "Prices", body = PriceList), (status = 422, description = "A bad filter value", body = crate::api::types::ErrorBody)))]
pub async fn list_prices(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PricesQuery>,
) -> Result<Json<PriceList>, AppError> {
    let mut conn = state.db().await?;
    let name = query.q.as_ref().map(SearchText::as_str);
    let prices = directory::list_prices(&mut conn, query.branch_id, name).await?;
    let paging = Paging {
        page: query.page,
        per_page: query.per_page,
    };
    Ok(Json(PriceList::page(&prices, paging, PriceView::from)))
}
