//! Shared pieces of the per-kind upserts: source digests, write outcomes, deactivation.

use diesel::{
    QueryableByName,
    sql_types::{Array, BigInt, Bool, Text},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Counts;

/// The digest of a row's source fields; a row is rewritten only when it changes.
pub fn digest(value: &impl Serialize) -> String {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    format!("{:x}", Sha256::digest(&bytes))
}

/// What an `INSERT … ON CONFLICT DO UPDATE … WHERE changed RETURNING id, (xmax = 0)` did.
#[derive(QueryableByName)]
pub struct Written {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Bool)]
    pub inserted: bool,
}

/// The outcome of one upsert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created(i64),
    Updated(i64),
    Unchanged,
}

impl Outcome {
    /// No row came back when the conditional update found nothing to change.
    pub fn from_rows(rows: &[Written]) -> Self {
        match rows.first() {
            Some(w) if w.inserted => Outcome::Created(w.id),
            Some(w) => Outcome::Updated(w.id),
            None => Outcome::Unchanged,
        }
    }

    pub fn id(self) -> Option<i64> {
        match self {
            Outcome::Created(id) | Outcome::Updated(id) => Some(id),
            Outcome::Unchanged => None,
        }
    }
}

impl Counts {
    pub(crate) fn record(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Created(_) => self.created += 1,
            Outcome::Updated(_) => self.updated += 1,
            Outcome::Unchanged => {}
        }
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Deactivates the active rows of `table` whose `key_column` is not in `seen`.
/// `table` and `key_column` are code constants, never input.
pub async fn deactivate_missing(
    conn: &mut AsyncPgConnection,
    table: &'static str,
    key_column: &'static str,
    extra_filter: Option<(&'static str, &str)>,
    seen: &[i64],
) -> diesel::QueryResult<u64> {
    let (filter, value) = match extra_filter {
        Some((column, value)) => (format!(" AND {column} = $2"), value.to_owned()),
        None => (" AND $2 = $2".to_owned(), String::new()),
    };
    let sql = format!(
        "WITH gone AS (UPDATE {table} SET active = false, updated_at = now() \
         WHERE active AND NOT ({key_column} = ANY($1)){filter} RETURNING 1) SELECT count(*) AS n FROM gone"
    );
    let rows: Vec<Count> = diesel::sql_query(sql)
        .bind::<Array<BigInt>, _>(seen)
        .bind::<Text, _>(value)
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .next()
        .map_or(0, |c| u64::try_from(c.n).unwrap_or(0)))
}

/// Active rows of `table` (optionally of one `kind`), for the `unchanged` figure.
pub async fn count_active(
    conn: &mut AsyncPgConnection,
    table: &'static str,
    extra_filter: Option<(&'static str, &str)>,
) -> diesel::QueryResult<u64> {
    let (filter, value) = match extra_filter {
        Some((column, value)) => (format!(" AND {column} = $1"), value.to_owned()),
        None => (" AND $1 = $1".to_owned(), String::new()),
    };
    let rows: Vec<Count> = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM {table} WHERE active{filter}"
    ))
    .bind::<Text, _>(value)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .next()
        .map_or(0, |c| u64::try_from(c.n).unwrap_or(0)))
}

/// Sets `unchanged` to the active rows this run did not create or update.
pub fn settle(counts: &mut Counts, active_after: u64) {
    counts.unchanged = active_after.saturating_sub(counts.created + counts.updated);
}
