//! Query and form parameters as pages and the API both read them: positive ids, dates,
//! instants, page numbers and the record-list filters. One parser each, so a bad parameter
//! gets the same 422 on a page and in the API. (Values with rules of their own, such as
//! phones, names and comments, are parsed by `crate::domain::values`.)

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

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

/// The filters of a record list, as the API's query string and the staff page send them;
/// empty means "no filter".
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordsParams {
    /// `booked`, `cancelled`, `visited` or `no_show`.
    #[serde(default)]
    #[param(value_type = Option<String>, pattern = "^(booked|cancelled|visited|no_show)?$")]
    pub status: String,
    /// First day (`YYYY-MM-DD`) in the calendar of the record's branch.
    #[serde(default)]
    #[param(value_type = Option<String>, pattern = "^([0-9]{4}-[0-9]{2}-[0-9]{2})?$")]
    pub date_from: String,
    /// Last day, inclusive.
    #[serde(default)]
    #[param(value_type = Option<String>, pattern = "^([0-9]{4}-[0-9]{2}-[0-9]{2})?$")]
    pub date_to: String,
    #[serde(default)]
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100000)]
    pub page: String,
    #[serde(default)]
    #[param(value_type = Option<i64>, minimum = 1)]
    pub specialist_id: String,
    #[serde(default)]
    #[param(value_type = Option<i64>, minimum = 1)]
    pub branch_id: String,
    /// Staff only: a phone fragment or a surname.
    #[serde(default)]
    #[param(value_type = Option<String>, max_length = 100)]
    pub q: String,
}

impl RecordsParams {
    /// The filters and the page, every bad parameter named.
    pub fn parse(&self) -> Result<(RecordQuery, PageNo), AppError> {
        let mut errors = FieldErrors::new();
        let status = errors.check(
            "status",
            match self.status.as_str() {
                "" => Ok(None),
                code => code
                    .parse::<RecordStatus>()
                    .map(Some)
                    .map_err(|_| Invalid("Неизвестный статус записи")),
            },
        );
        let date_from = errors.check("date_from", optional_date(&self.date_from));
        let date_to = errors.check("date_to", optional_date(&self.date_to));
        let page = errors.check("page", PageNo::parse(&self.page));
        let specialist_id = errors.check("specialist_id", optional_id(&self.specialist_id));
        let branch_id = errors.check("branch_id", optional_id(&self.branch_id));
        let search = errors.check("q", SearchText::parse(&self.q));
        let (
            Some(status),
            Some(date_from),
            Some(date_to),
            Some(page),
            Some(specialist_id),
            Some(branch_id),
            Some(search),
        ) = (
            status,
            date_from,
            date_to,
            page,
            specialist_id,
            branch_id,
            search,
        )
        else {
            return Err(errors.into());
        };
        let query = RecordQuery {
            status,
            date_from,
            date_to,
            specialist_id,
            branch_id,
            search,
            upcoming: false,
        };
        Ok((query, page))
    }
}

/// The doctor-list filters, on the doctors page and in `GET /api/v1/specialists`; empty
/// means "all".
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DirectoryParams {
    #[serde(default)]
    #[param(value_type = Option<i64>, minimum = 1)]
    pub speciality_id: String,
    #[serde(default)]
    #[param(value_type = Option<i64>, minimum = 1)]
    pub branch_id: String,
    /// A part of the name, at most 100 characters.
    #[serde(default)]
    #[param(value_type = Option<String>, max_length = 100)]
    pub q: String,
}

impl DirectoryParams {
    pub fn filter(&self) -> Result<SpecialistFilter, AppError> {
        let mut errors = FieldErrors::new();
        let speciality_id = errors.check("speciality_id", optional_id(&self.speciality_id));
        let branch_id = errors.check("branch_id", optional_id(&self.branch_id));
        let name = errors.check("q", SearchText::parse(&self.q));
        Ok(errors.or_value(|| {
            Some(SpecialistFilter {
                speciality_id: speciality_id?,
                branch_id: branch_id?,
                name: name?.map(|n| n.as_str().to_owned()),
            })
        })?)
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

    #[test]
    fn record_filters_name_every_bad_parameter() {
        let params = RecordsParams {
            status: "lost".into(),
            page: "0".into(),
            date_from: "2026-13-01".into(),
            ..RecordsParams::default()
        };
        let Err(AppError::Validation { fields, .. }) = params.parse() else {
            panic!("expected a validation error");
        };
        for field in ["status", "page", "date_from"] {
            assert!(fields.contains_key(field), "{fields:?}");
        }
        let (query, page) = RecordsParams::default().parse().unwrap();
        assert_eq!(page, PageNo::FIRST);
        assert!(query.status.is_none());
    }
}
