//! The front desk's patient search: cabinet accounts of patients, and the people of earlier
//! records who have no account (one row per MIS card, from their latest record).

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::{
    db::{
        contains_pattern, folded,
        schema::{records, users},
    },
    domain::values::{CallerQuery, Role},
};

/// Most matches a search answers; the operator narrows the query past that.
pub const MAX_MATCHES: i64 = 20;

/// A person the search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerMatch {
    /// Their cabinet account, if any.
    pub account_id: Option<i64>,
    /// Without an account: the record their details come from.
    pub record_id: Option<i64>,
    pub full_name: String,
    pub phone: Option<String>,
    pub birth_date: Option<NaiveDate>,
}

/// `LIKE` pattern of a name prefix, escaped.
fn prefix_pattern(text: &str) -> String {
    let contains = contains_pattern(text);
    // `contains_pattern` wraps in `%…%`; a name part matches from its start.
    contains[1..].to_owned()
}

/// A record's id and its patient: surname, first name, patronymic, phone, birth date.
type PersonRow = (
    i64,
    String,
    String,
    Option<String>,
    String,
    Option<NaiveDate>,
);

/// Accounts first, then people without one, each group by name.
pub async fn search(
    conn: &mut AsyncPgConnection,
    query: &CallerQuery,
) -> QueryResult<Vec<CallerMatch>> {
    let mut found = search_accounts(conn, query).await?;
    found.extend(search_records(conn, query).await?);
    found.truncate(MAX_MATCHES as usize);
    Ok(found)
}

async fn search_accounts(
    conn: &mut AsyncPgConnection,
    query: &CallerQuery,
) -> QueryResult<Vec<CallerMatch>> {
    let mut q = users::table
        .filter(users::role.eq(Role::Patient))
        .filter(users::disabled.eq(false))
        .into_boxed();
    q = match query {
        CallerQuery::Phone(phone) => q.filter(users::phone.eq(phone.as_str().to_owned())),
        CallerQuery::PhoneDigits(digits) => q.filter(users::phone.like(contains_pattern(digits))),
        CallerQuery::Name(parts) => {
            q.filter(folded(users::full_name).like(prefix_pattern(&parts.join(" "))))
        }
    };
    let rows: Vec<(i64, String, Option<String>, Option<NaiveDate>)> = q
        .order((users::full_name, users::id))
        .limit(MAX_MATCHES)
        .select((users::id, users::full_name, users::phone, users::birth_date))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, full_name, phone, birth_date)| CallerMatch {
            account_id: Some(id),
            record_id: None,
            full_name,
            phone,
            birth_date,
        })
        .collect())
}

async fn search_records(
    conn: &mut AsyncPgConnection,
    query: &CallerQuery,
) -> QueryResult<Vec<CallerMatch>> {
    let mut q = records::table
        .filter(records::user_id.is_null())
        .distinct_on(records::patient_pcode)
        .into_boxed();
    q = match query {
        CallerQuery::Phone(phone) => q.filter(records::patient_phone.eq(phone.as_str().to_owned())),
        CallerQuery::PhoneDigits(digits) => {
            q.filter(records::patient_phone.like(contains_pattern(digits)))
        }
        CallerQuery::Name(parts) => {
            let mut q = q;
            if let Some(last) = <[String]>::first(parts) {
                q = q.filter(folded(records::patient_last_name).like(prefix_pattern(last)));
            }
            if let Some(first) = parts.get(1) {
                q = q.filter(folded(records::patient_first_name).like(prefix_pattern(first)));
            }
            if let Some(middle) = parts.get(2) {
                q = q.filter(
                    folded(diesel::dsl::sql::<diesel::sql_types::Text>(
                        "coalesce(records.patient_middle_name, '')",
                    ))
                    .like(prefix_pattern(middle)),
                );
            }
            q
        }
    };
    // The latest record of each card carries the details the patient gave last.
    let rows: Vec<PersonRow> = q
        .order((records::patient_pcode, records::created_at.desc()))
        .limit(MAX_MATCHES)
        .select((
            records::id,
            records::patient_last_name,
            records::patient_first_name,
            records::patient_middle_name,
            records::patient_phone,
            records::patient_birth_date,
        ))
        .load(conn)
        .await?;
    let mut found: Vec<CallerMatch> = rows
        .into_iter()
        .map(|(id, last, first, middle, phone, birth_date)| CallerMatch {
            account_id: None,
            record_id: Some(id),
            full_name: [Some(last), Some(first), middle]
                .into_iter()
                .flatten()
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
            phone: Some(phone),
            birth_date,
        })
        .collect();
    found.sort_by(|a, b| a.full_name.cmp(&b.full_name));
    Ok(found)
}
