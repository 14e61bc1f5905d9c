//! Query and form parameters as pages and the API both read them: positive ids, dates,
//! instants, page numbers and the record-list filters. One parser each, so a bad parameter
//! gets the same 422 on a page and in the API. (Values with rules of their own, such as
//! phones, names and comments, are parsed by `crate::domain::values`.)

use std::borrow::Cow;

use axum::{extract::FromRequestParts, http::request::Parts};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::{
    db::models::{
        directory::SpecialistFilter,
        doctor_search::{DoctorOrder, DoctorSearch},
    },
    domain::{
        booking::records::RecordQuery,
        values::{FieldErrors, Invalid, PageNo, RecordStatus, SearchText},
    },
    error::AppError,
};

/// An optional positive id; empty means none.
pub fn optional_id(raw: &str) -> Result<Option<i64>, Invalid> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    match raw.parse::<i64>() {
        Ok(id) if id > 0 => Ok(Some(id)),
        _ => Err(Invalid("Должен быть положительным целым числом")),
    }
}

/// A positive id that must be there.
pub fn required_id(raw: &str) -> Result<i64, Invalid> {
    optional_id(raw)?.ok_or(Invalid("Обязательный параметр"))
}

/// A calendar day, `ГГГГ-ММ-ДД`.
pub fn date(raw: &str) -> Result<NaiveDate, Invalid> {
    // The usual ten characters are read directly: chrono's format parser is a measurable
    // part of the schedule read, the hottest request. Anything else goes to it.
    if let Some(date) = iso_date(raw.as_bytes()) {
        return Ok(date);
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| Invalid("Дата в формате ГГГГ-ММ-ДД"))
}

/// `YYYY-MM-DD` exactly, if it is a real day.
fn iso_date(raw: &[u8]) -> Option<NaiveDate> {
    let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = *raw else {
        return None;
    };
    let digits = [y0, y1, y2, y3, m0, m1, d0, d1];
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = |ds: &[u8]| {
        ds.iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    let year = i32::try_from(n(&digits[..4])).ok()?;
    NaiveDate::from_ymd_opt(year, n(&digits[4..6]), n(&digits[6..]))
}

/// A day that must be there.
pub fn required_date(raw: &str) -> Result<NaiveDate, Invalid> {
    if raw.is_empty() {
        return Err(Invalid("Обязательный параметр"));
    }
    date(raw)
}

/// An optional day; empty means none.
pub fn optional_date(raw: &str) -> Result<Option<NaiveDate>, Invalid> {
    if raw.is_empty() {
        return Ok(None);
    }
    date(raw).map(Some)
}

/// An RFC 3339 instant with an offset, as the schedule gives slot starts. A `+` that a
/// query string turned into a space is read back as `+`.
pub fn instant(raw: &str) -> Result<DateTime<Utc>, Invalid> {
    let raw = raw.trim().replace("%2B", "+").replace(' ', "+");
    DateTime::parse_from_rfc3339(&raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            Invalid("Время в формате RFC 3339 со смещением, например 2030-03-18T09:00:00+05:00")
        })
}

/// One field's value, or a 422 naming the field.
pub fn field<T>(name: &str, parsed: Result<T, Invalid>) -> Result<T, AppError> {
    parsed.map_err(|invalid| FieldErrors::one(name, invalid).into())
}

/// The raw pairs of a query string, for the typed parameter sets below (the last of a
/// repeated name wins).
///
/// An empty value means different things to the two faces: a page's filter form sends
/// every field, empty for "all", so pages read it as absent; an API client can leave a
/// parameter out, so the API refuses an empty one rather than guess (422 on it), and its
/// document can give each parameter its real type.
pub struct QueryPairs<'a> {
    /// In the order given; a handful at most, so a scan beats hashing. Borrowed from the
    /// request's URI unless percent-decoding changed them.
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    empty_is_absent: bool,
}

impl<'a> QueryPairs<'a> {
    /// Decoding never fails: bytes that are not UTF-8 become U+FFFD, which the typed readers
    /// then refuse as they refuse any other odd text.
    fn of(parts: &'a Parts, empty_is_absent: bool) -> Self {
        let query = parts.uri.query().unwrap_or_default().as_bytes();
        Self {
            pairs: form_urlencoded::parse(query).collect(),
            empty_is_absent,
        }
    }

    /// The last value given for `name`.
    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }

    /// A parameter's value; `""` when absent (or empty on a page).
    pub fn value(&self, name: &str) -> Result<&str, Invalid> {
        match self.get(name) {
            None => Ok(""),
            Some("") if !self.empty_is_absent => Err(Invalid(
                "Пустое значение: укажите значение или не передавайте параметр",
            )),
            Some(v) => Ok(v),
        }
    }

    /// Free text, where empty is a value of its own (no search).
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }
}

/// A parameter set read from a query string.
pub trait FromQuery: Sized {
    fn from_query(query: &QueryPairs<'_>) -> Result<Self, AppError>;
}

/// A parameter set of an API request: an empty parameter is refused.
pub struct ApiQuery<T>(pub T);

/// A parameter set of a page: an empty field is absent.
pub struct FormQuery<T>(pub T);

impl<S: Send + Sync, T: FromQuery> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(T::from_query(&QueryPairs::of(parts, false))?))
    }
}

impl<S: Send + Sync, T: FromQuery> FromRequestParts<S> for FormQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(T::from_query(&QueryPairs::of(parts, true))?))
    }
}

/// Items per page of a list: `default` when absent, refused outside 1..=`max` (the API's
/// lists allow 100 records or 200 directory entries a page).
pub fn per_page(raw: Result<&str, Invalid>, default: i64, max: i64) -> Result<i64, Invalid> {
    const OUT_OF_RANGE: [(i64, Invalid); 2] = [
        (100, Invalid("Целое число от 1 до 100")),
        (200, Invalid("Целое число от 1 до 200")),
    ];
    let refusal = OUT_OF_RANGE
        .iter()
        .find(|(m, _)| *m == max)
        .map_or(Invalid("Слишком большое значение"), |(_, i)| *i);
    match raw?.trim() {
        "" => Ok(default),
        raw => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or(refusal),
    }
}

/// Directory lists: entries per page when `per_page` is absent, and the most allowed.
pub const DIRECTORY_PER_PAGE: (i64, i64) = (50, 200);
/// Record lists: the same for records.
pub const RECORDS_PER_PAGE: (i64, i64) = (20, 100);

/// A page of a directory list (`page`, `per_page`); the lists are small enough to be cut in
/// memory.
#[derive(Debug, Clone, Copy, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100000)]
    pub page: PageNo,
    /// Entries per page, 50 when absent.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    pub per_page: i64,
}

impl Paging {
    /// Reads `page` and `per_page`, adding refusals to `errors`.
    pub fn read(query: &QueryPairs, errors: &mut FieldErrors) -> Option<Self> {
        let page = errors.check("page", query.value("page").and_then(PageNo::parse));
        let (default, max) = DIRECTORY_PER_PAGE;
        let per_page = errors.check("per_page", per_page(query.value("per_page"), default, max));
        Some(Self {
            page: page?,
            per_page: per_page?,
        })
    }

    /// This page's part of `all`.
    pub fn cut<'a, T>(&self, all: &'a [T]) -> &'a [T] {
        let start = usize::try_from(self.page.offset(self.per_page)).unwrap_or(usize::MAX);
        let len = usize::try_from(self.per_page).unwrap_or(0);
        all.get(start..)
            .map_or(&[], |rest| &rest[..rest.len().min(len)])
    }
}

impl FromQuery for Paging {
    fn from_query(query: &QueryPairs<'_>) -> Result<Self, AppError> {
        let mut errors = FieldErrors::new();
        let paging = Self::read(query, &mut errors);
        Ok(errors.or_value(|| paging)?)
    }
}

/// The filters of a record list, as the API's query string and the staff page send them;
/// an empty or absent parameter means "no filter". Each parameter goes through the core's
/// parser, and every bad one is named in one 422.
#[derive(Debug, Clone, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordsParams {
    pub status: Option<RecordStatus>,
    /// First day in the calendar of the record's branch.
    pub date_from: Option<NaiveDate>,
    /// Last day, inclusive.
    pub date_to: Option<NaiveDate>,
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100000)]
    pub page: PageNo,
    /// Records per page, 20 when absent.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
    #[param(minimum = 1)]
    pub specialist_id: Option<i64>,
    #[param(minimum = 1)]
    pub branch_id: Option<i64>,
    /// Staff only: a phone fragment or a surname.
    #[param(value_type = Option<String>, max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub q: Option<SearchText>,
}

impl FromQuery for RecordsParams {
    fn from_query(query: &QueryPairs<'_>) -> Result<Self, AppError> {
        let mut errors = FieldErrors::new();
        let status = errors.check(
            "status",
            query.value("status").and_then(|code| match code {
                "" => Ok(None),
                code => code
                    .parse::<RecordStatus>()
                    .map(Some)
                    .map_err(|_| Invalid("Неизвестный статус записи")),
            }),
        );
        let date_from = errors.check(
            "date_from",
            query.value("date_from").and_then(optional_date),
        );
        let date_to = errors.check("date_to", query.value("date_to").and_then(optional_date));
        let page = errors.check("page", query.value("page").and_then(PageNo::parse));
        let (default, max) = RECORDS_PER_PAGE;
        let per_page = errors.check("per_page", per_page(query.value("per_page"), default, max));
        let specialist_id = errors.check(
            "specialist_id",
            query.value("specialist_id").and_then(optional_id),
        );
        let branch_id = errors.check("branch_id", query.value("branch_id").and_then(optional_id));
        let q = errors.check("q", SearchText::parse(query.text("q")));
        Ok(errors.or_value(|| {
            Some(Self {
                status: status?,
                date_from: date_from?,
                date_to: date_to?,
                page: page?,
                per_page: Some(per_page?),
                specialist_id: specialist_id?,
                branch_id: branch_id?,
                q: q?,
            })
        })?)
    }
}

/// The record filters as a form shows them back, and as a query string for paging links.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecordsForm {
    pub status: String,
    pub date_from: String,
    pub date_to: String,
    pub specialist_id: String,
    pub branch_id: String,
    pub q: String,
}

impl RecordsParams {
    /// What the core's list operation takes.
    pub fn query(&self) -> RecordQuery {
        RecordQuery {
            status: self.status,
            date_from: self.date_from,
            date_to: self.date_to,
            specialist_id: self.specialist_id,
            branch_id: self.branch_id,
            search: self.q.clone(),
            upcoming: false,
            per_page: self.per_page,
        }
    }

    pub fn form(&self) -> RecordsForm {
        let text = |v: Option<String>| v.unwrap_or_default();
        RecordsForm {
            status: text(self.status.map(|s| s.as_str().to_owned())),
            date_from: text(self.date_from.map(|d| d.to_string())),
            date_to: text(self.date_to.map(|d| d.to_string())),
            specialist_id: text(self.specialist_id.map(|id| id.to_string())),
            branch_id: text(self.branch_id.map(|id| id.to_string())),
            q: text(self.q.as_ref().map(|q| q.as_str().to_owned())),
        }
    }
}

/// The doctor-list filters, on the doctors page and in `GET /api/v1/specialists`; empty
/// means "all".
#[derive(Debug, Clone, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DirectoryParams {
    #[param(minimum = 1)]
    pub speciality_id: Option<i64>,
    #[param(minimum = 1)]
    pub branch_id: Option<i64>,
    /// A part of the name.
    #[param(value_type = Option<String>, max_length = 100, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub q: Option<SearchText>,
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100000)]
    pub page: PageNo,
    /// Doctors per page, 50 when absent.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    pub per_page: i64,
}

impl DirectoryParams {
    pub fn paging(&self) -> Paging {
        Paging {
            page: self.page,
            per_page: self.per_page,
        }
    }
}

impl DirectoryParams {
    /// Reads the filters and the paging, adding refusals to `errors`.
    pub fn read(query: &QueryPairs, errors: &mut FieldErrors) -> Option<Self> {
        let speciality_id = errors.check(
            "speciality_id",
            query.value("speciality_id").and_then(optional_id),
        );
        let branch_id = errors.check("branch_id", query.value("branch_id").and_then(optional_id));
        let q = errors.check("q", SearchText::parse(query.text("q")));
        let paging = Paging::read(query, errors)?;
        Some(Self {
            speciality_id: speciality_id?,
            branch_id: branch_id?,
            q: q?,
            page: paging.page,
            per_page: paging.per_page,
        })
    }
}

impl FromQuery for DirectoryParams {
    fn from_query(query: &QueryPairs<'_>) -> Result<Self, AppError> {
        let mut errors = FieldErrors::new();
        let params = Self::read(query, &mut errors);
        Ok(errors.or_value(|| params)?)
    }
}

/// The doctor list of the pages: the directory filters (`speciality_id`, `branch_id`, `q`,
/// `page`) and the order (`sort`: `name`, the default, or `nearest`).
#[derive(Debug, Clone, Default)]
pub struct DoctorListParams {
    pub directory: DirectoryParams,
    pub order: DoctorOrder,
}

/// `sort` of the doctor list; empty is by name.
pub fn doctor_order(raw: &str) -> Result<DoctorOrder, Invalid> {
    match raw.trim() {
        "" | "name" => Ok(DoctorOrder::Name),
        "nearest" => Ok(DoctorOrder::NearestFree),
        _ => Err(Invalid("Неизвестный порядок списка")),
    }
}

impl FromQuery for DoctorListParams {
    fn from_query(query: &QueryPairs<'_>) -> Result<Self, AppError> {
        let mut errors = FieldErrors::new();
        let directory = DirectoryParams::read(query, &mut errors);
        let order = errors.check("sort", query.value("sort").and_then(doctor_order));
        Ok(errors.or_value(|| {
            Some(Self {
                directory: directory?,
                order: order?,
            })
        })?)
    }
}

impl DoctorListParams {
    /// What the doctor search takes.
    pub fn search(&self) -> DoctorSearch {
        DoctorSearch {
            speciality_id: self.directory.speciality_id,
            branch_id: self.directory.branch_id,
            text: self.directory.q.as_ref().map(|q| q.as_str().to_owned()),
            order: self.order,
        }
    }

    /// The parameters as the filter form shows them back and the list's links carry them:
    /// `(name, value)` pairs, empty ones left out, `page` not among them.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(q) = &self.directory.q {
            pairs.push(("q", q.as_str().to_owned()));
        }
        if let Some(id) = self.directory.speciality_id {
            pairs.push(("speciality_id", id.to_string()));
        }
        if let Some(id) = self.directory.branch_id {
            pairs.push(("branch_id", id.to_string()));
        }
        if self.order == DoctorOrder::NearestFree {
            pairs.push(("sort", "nearest".to_owned()));
        }
        pairs
    }
}

impl DirectoryParams {
    pub fn filter(&self) -> SpecialistFilter {
        SpecialistFilter {
            speciality_id: self.speciality_id,
            branch_id: self.branch_id,
            name: self.q.as_ref().map(|q| q.as_str().to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_reads_the_same_on_the_fast_path_and_through_chrono() {
        for raw in [
            "2030-03-18",
            "2028-02-29",
            "2027-02-29",
            "2030-13-01",
            "2030-00-10",
            "0000-01-01",
            "2030-3-18",
            "2030-03-1",
            " 2030-03-18",
            "2030/03/18",
            "20300318",
            "",
            "2030-03-18x",
        ] {
            let chrono = NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok();
            assert_eq!(date(raw).ok(), chrono, "{raw:?}");
        }
    }

    #[test]
    fn ids_are_positive_integers() {
        assert_eq!(optional_id(""), Ok(None));
        assert_eq!(optional_id(" 7 "), Ok(Some(7)));
        for bad in ["0", "-3", "x", "1.5", "99999999999999999999"] {
            assert!(optional_id(bad).is_err(), "{bad:?}");
        }
        assert_eq!(required_id(""), Err(Invalid("Обязательный параметр")));
    }

    #[test]
    fn instants_need_an_offset() {
        assert!(instant("2030-03-18T09:00:00+05:00").is_ok());
        assert!(instant("2030-03-18T09:00:00%2B05:00").is_ok());
        assert!(instant("2030-03-18T09:00:00 05:00").is_ok());
        assert!(instant("2030-03-18T09:00:00").is_err());
        assert!(instant("завтра").is_err());
    }

    async fn records(query: &str) -> Result<RecordsParams, AppError> {
        let request = axum::http::Request::get(format!("/records?{query}"))
            .body(())
            .unwrap();
        let (mut parts, ()) = request.into_parts();
        ApiQuery::<RecordsParams>::from_request_parts(&mut parts, &())
            .await
            .map(|ApiQuery(params)| params)
    }

    #[tokio::test]
    async fn an_empty_parameter_is_absent_on_pages_and_refused_in_the_api() {
        let request = axum::http::Request::get("/records?status=&branch_id=&q=")
            .body(())
            .unwrap();
        let (mut parts, ()) = request.into_parts();
        let FormQuery(params) = FormQuery::<RecordsParams>::from_request_parts(&mut parts, &())
            .await
            .unwrap();
        assert!(params.status.is_none() && params.branch_id.is_none() && params.q.is_none());
        let Err(AppError::Validation { fields, .. }) = records("status=&branch_id=&q=").await
        else {
            panic!("expected a validation error");
        };
        assert!(fields.contains_key("status") && fields.contains_key("branch_id"));
        assert!(!fields.contains_key("q"), "an empty search is no search");
    }

    #[tokio::test]
    async fn record_filters_name_every_bad_parameter() {
        let Err(AppError::Validation { fields, .. }) =
            records("status=lost&page=0&date_from=2026-13-01&branch_id=7").await
        else {
            panic!("expected a validation error");
        };
        for field in ["status", "page", "date_from"] {
            assert!(fields.contains_key(field), "{fields:?}");
        }
        assert!(!fields.contains_key("branch_id"));
        let params = records("").await.unwrap();
        assert_eq!(params.page, PageNo::FIRST);
        assert!(params.status.is_none());
        let params =
            records("status=no_show&q=%D0%A1%D0%B5%D0%BC%D1%91%D0%BD%D0%BE%D0%B2%D0%B0&page=3")
                .await
                .unwrap();
        assert_eq!(params.status, Some(RecordStatus::NoShow));
        assert_eq!(params.page.get(), 3);
        assert_eq!(params.form().q, "Семёнова");
    }

    async fn doctor_list(query: &str) -> Result<DoctorListParams, AppError> {
        let request = axum::http::Request::get(format!("/doctors?{query}"))
            .body(())
            .unwrap();
        let (mut parts, ()) = request.into_parts();
        FormQuery::<DoctorListParams>::from_request_parts(&mut parts, &())
            .await
            .map(|FormQuery(params)| params)
    }

    #[tokio::test]
    async fn the_doctor_list_reads_its_order_and_names_every_bad_parameter() {
        let params = doctor_list(
            "q=%D0%BA%D0%B0%D1%80%D0%B4%D0%B8%D0%BE%D0%BB%D0%BE%D0%B3&speciality_id=&sort=nearest&page=2",
        )
        .await
        .unwrap();
        assert_eq!(params.order, DoctorOrder::NearestFree);
        assert_eq!(params.directory.page.get(), 2);
        assert_eq!(
            params.pairs(),
            vec![
                ("q", "кардиолог".to_owned()),
                ("sort", "nearest".to_owned())
            ]
        );
        assert_eq!(params.search().text.as_deref(), Some("кардиолог"));
        let Err(AppError::Validation { fields, .. }) =
            doctor_list("page=abc&sort=random&branch_id=0").await
        else {
            panic!("expected a validation error");
        };
        for field in ["page", "sort", "branch_id"] {
            assert!(fields.contains_key(field), "{fields:?}");
        }
        assert_eq!(doctor_list("sort=").await.unwrap().order, DoctorOrder::Name);
        assert!(doctor_list("page=0").await.is_err());
    }
}
