//! Query and form parameters as pages and the API both read them: positive ids, dates,
//! instants, page numbers and the record-list filters. One parser each, so a bad parameter
//! gets the same 422 on a page and in the API. (Values with rules of their own, such as
//! phones, names and comments, are parsed by `crate::domain::values`.)

use std::collections::HashMap;

use axum::{extract::FromRequestParts, http::request::Parts};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::{
    db::models::directory::SpecialistFilter,
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
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| Invalid("Дата в формате ГГГГ-ММ-ДД"))
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
/// repeated name wins; an absent name reads as empty).
pub struct QueryPairs(HashMap<String, String>);

impl QueryPairs {
    pub fn of(parts: &Parts) -> Result<Self, AppError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
                .map_err(|_| AppError::BadRequest("unreadable query string".into()))?;
        Ok(Self(pairs.into_iter().collect()))
    }

    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", String::as_str)
    }
}

/// The filters of a record list, as the API's query string and the staff page send them;
/// an empty or absent parameter means "no filter". Each parameter goes through the core's
/// parser, and every bad one is named in one 422.
#[derive(Debug, Clone, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordsParams {
    /// `booked`, `cancelled`, `visited` or `no_show`; empty is no filter (forms send it so).
    #[param(value_type = Option<String>, pattern = "^(booked|cancelled|visited|no_show)?$")]
    pub status: Option<RecordStatus>,
    /// First day (`YYYY-MM-DD`) in the calendar of the record's branch; empty is no bound.
    #[param(value_type = Option<String>, pattern = "^([0-9]{4}-[0-9]{2}-[0-9]{2})?$")]
    pub date_from: Option<NaiveDate>,
    /// Last day, inclusive.
    #[param(value_type = Option<String>, pattern = "^([0-9]{4}-[0-9]{2}-[0-9]{2})?$")]
    pub date_to: Option<NaiveDate>,
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100000)]
    pub page: PageNo,
    #[param(minimum = 1)]
    pub specialist_id: Option<i64>,
    #[param(minimum = 1)]
    pub branch_id: Option<i64>,
    /// Staff only: a phone fragment or a surname.
    #[param(value_type = Option<String>, max_length = 100)]
    pub q: Option<SearchText>,
}

impl<S: Send + Sync> FromRequestParts<S> for RecordsParams {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = QueryPairs::of(parts)?;
        let mut errors = FieldErrors::new();
        let status = errors.check(
            "status",
            match query.get("status") {
                "" => Ok(None),
                code => code
                    .parse::<RecordStatus>()
                    .map(Some)
                    .map_err(|_| Invalid("Неизвестный статус записи")),
            },
        );
        let date_from = errors.check("date_from", optional_date(query.get("date_from")));
        let date_to = errors.check("date_to", optional_date(query.get("date_to")));
        let page = errors.check("page", PageNo::parse(query.get("page")));
        let specialist_id = errors.check("specialist_id", optional_id(query.get("specialist_id")));
        let branch_id = errors.check("branch_id", optional_id(query.get("branch_id")));
        let q = errors.check("q", SearchText::parse(query.get("q")));
        Ok(errors.or_value(|| {
            Some(Self {
                status: status?,
                date_from: date_from?,
                date_to: date_to?,
                page: page?,
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
    #[param(value_type = Option<String>, max_length = 100)]
    pub q: Option<SearchText>,
}

impl<S: Send + Sync> FromRequestParts<S> for DirectoryParams {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = QueryPairs::of(parts)?;
        let mut errors = FieldErrors::new();
        let speciality_id = errors.check("speciality_id", optional_id(query.get("speciality_id")));
        let branch_id = errors.check("branch_id", optional_id(query.get("branch_id")));
        let q = errors.check("q", SearchText::parse(query.get("q")));
        Ok(errors.or_value(|| {
            Some(Self {
                speciality_id: speciality_id?,
                branch_id: branch_id?,
                q: q?,
            })
        })?)
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
        RecordsParams::from_request_parts(&mut parts, &()).await
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
}
