//! The `records` table: appointments booked through this server (the MIS owns the slot; a
//! record is written only after the MIS accepted it).

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;

use crate::db::{contains_pattern, folded};
use crate::domain::values::{BranchZone, PageNo};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::prepared::KeepPrepared;

use crate::db::schema::{branches, records, specialists};

pub use crate::domain::values::{RecordSource, RecordStatus};

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = records, check_for_backend(diesel::pg::Pg))]
pub struct Record {
    pub id: i64,
    pub mis_id: i64,
    pub status: RecordStatus,
    pub specialist_id: i64,
    pub branch_id: i64,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub user_id: Option<i64>,
    pub patient_pcode: i64,
    pub patient_last_name: String,
    pub patient_first_name: String,
    pub patient_middle_name: Option<String>,
    pub patient_phone: String,
    pub patient_email: Option<String>,
    pub patient_birth_date: Option<NaiveDate>,
    pub comment: Option<String>,
    pub source: RecordSource,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancelled_by: Option<i64>,
    /// The account that made the booking: the patient, or the staff member at the desk.
    pub booked_by: Option<i64>,
    /// Why the patient cancelled, as they typed it (optional).
    pub cancel_reason: Option<String>,
}

impl Record {
    pub fn patient_full_name(&self) -> String {
        [
            Some(self.patient_last_name.as_str()),
            Some(self.patient_first_name.as_str()),
            self.patient_middle_name.as_deref(),
        ]
        .into_iter()
        .flatten()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
    }

    /// `+7916***4567`: enough for the patient to recognise, not to reuse.
    pub fn phone_masked(&self) -> String {
        crate::integrations::sms::mask_phone(&self.patient_phone)
    }

    pub fn is_active(&self) -> bool {
        self.status == RecordStatus::Booked
    }

    /// Booked and still ahead at `now`: the patient or staff may cancel or move it.
    pub fn is_changeable_at(&self, now: DateTime<Utc>) -> bool {
        self.is_active() && self.starts_at > now
    }
}

/// A record with the names the views show.
#[derive(Debug, Clone)]
pub struct RecordView {
    pub record: Record,
    pub specialist_name: String,
    /// The doctor's active specialities, by name (a visit is booked with a doctor, not for
    /// one of their specialities).
    pub specialities: Vec<String>,
    pub branch_name: String,
    pub branch_address: String,
    pub branch_zone: BranchZone,
}

impl RecordView {
    /// The doctor's full name and the branch's address, as an SMS about the visit names them.
    pub fn place(&self) -> (&str, &str) {
        (&self.specialist_name, &self.branch_address)
    }

    /// Start in the branch's zone, as the interface shows it.
    pub fn local_start(&self) -> chrono::DateTime<chrono_tz::Tz> {
        self.branch_zone.local(&self.record.starts_at)
    }

    pub fn local_end(&self) -> chrono::DateTime<chrono_tz::Tz> {
        self.branch_zone.local(&self.record.ends_at)
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = records)]
pub struct NewRecord<'a> {
    pub mis_id: i64,
    pub specialist_id: i64,
    pub branch_id: i64,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub user_id: Option<i64>,
    pub patient_pcode: i64,
    pub patient_last_name: &'a str,
    pub patient_first_name: &'a str,
    pub patient_middle_name: Option<&'a str>,
    pub patient_phone: &'a str,
    pub patient_email: Option<&'a str>,
    pub patient_birth_date: Option<NaiveDate>,
    pub comment: Option<&'a str>,
    pub source: RecordSource,
    /// SHA-256 of the visit link's token (visits booked without an account).
    pub manage_token_hash: Option<&'a str>,
    /// The account that made the booking (`Record::booked_by`).
    pub booked_by: Option<i64>,
}

pub async fn insert(conn: &mut AsyncPgConnection, record: &NewRecord<'_>) -> QueryResult<Record> {
    KeepPrepared(
        diesel::insert_into(records::table)
            .values(record)
            .returning(Record::as_returning()),
    )
    .get_result(conn)
    .await
}

/// Is this the "one winner per slot" violation?
pub fn is_slot_conflict(err: &diesel::result::Error) -> bool {
    matches!(
        err,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, info)
            if info.constraint_name() == Some("records_one_active_per_slot")
    )
}

type ViewColumns = (
    diesel::dsl::AsSelect<Record, diesel::pg::Pg>,
    specialists::full_name,
    diesel::expression::SqlLiteral<diesel::sql_types::Array<diesel::sql_types::Text>>,
    branches::name,
    branches::address,
    branches::timezone,
);

/// The doctor's active specialities of a record row, as one column.
const SPECIALITIES: &str = "COALESCE((SELECT array_agg(sp.name ORDER BY sp.name) \
     FROM specialist_specialities ss JOIN specialities sp ON sp.id = ss.speciality_id \
     WHERE ss.specialist_id = records.specialist_id AND sp.active), '{}')";

fn view_columns() -> ViewColumns {
    (
        Record::as_select(),
        specialists::full_name,
        diesel::dsl::sql::<diesel::sql_types::Array<diesel::sql_types::Text>>(SPECIALITIES),
        branches::name,
        branches::address,
        branches::timezone,
    )
}

type ViewRow = (Record, String, Vec<String>, String, String, BranchZone);

fn to_view(
    (record, specialist_name, specialities, branch_name, branch_address, branch_timezone): ViewRow,
) -> RecordView {
    RecordView {
        record,
        specialist_name,
        specialities,
        branch_name,
        branch_address,
        branch_zone: branch_timezone,
    }
}

/// One record's view. Kept prepared: the specialities' subquery is raw SQL, which diesel
/// would otherwise parse and plan anew on every call (a booking reads its view back).
pub async fn find_view(conn: &AsyncPgConnection, id: i64) -> QueryResult<Option<RecordView>> {
    let mut conn = conn;
    KeepPrepared(
        records::table
            .inner_join(specialists::table)
            .inner_join(branches::table)
            .filter(records::id.eq(id))
            .select(view_columns())
            .limit(1),
    )
    .get_result(&mut conn)
    .await
    .optional()
    .map(|row| row.map(to_view))
}

/// Filters of the record lists. A patient's list always carries `user_id`.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    pub user_id: Option<i64>,
    pub status: Option<RecordStatus>,
    /// First and last day, inclusive, in the calendar of the record's branch.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Only records that start after this instant.
    pub after: Option<DateTime<Utc>>,
    pub specialist_id: Option<i64>,
    pub branch_id: Option<i64>,
    /// A phone fragment (digits) or a name fragment.
    pub query: Option<String>,
}

type Joined = diesel::dsl::InnerJoin<
    diesel::dsl::InnerJoin<records::table, specialists::table>,
    branches::table,
>;
type Filtered<'a> = diesel::dsl::IntoBoxed<'a, Joined, diesel::pg::Pg>;

/// Records with their doctor and branch, narrowed by `filter`.
fn filtered(filter: &RecordFilter) -> Filtered<'static> {
    let mut query = records::table
        .inner_join(specialists::table)
        .inner_join(branches::table)
        .into_boxed();
    if let Some(user_id) = filter.user_id {
        query = query.filter(records::user_id.eq(user_id));
    }
    if let Some(status) = &filter.status {
        query = query.filter(records::status.eq(*status));
    }
    // A day is the branch's: 23:30 in Yekaterinburg is the next day in Moscow.
    if let Some(from) = filter.from {
        query = query.filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>(
                "(records.starts_at AT TIME ZONE branches.timezone)::date >= ",
            )
            .bind::<diesel::sql_types::Date, _>(from),
        );
    }
    if let Some(to) = filter.to {
        query = query.filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>(
                "(records.starts_at AT TIME ZONE branches.timezone)::date <= ",
            )
            .bind::<diesel::sql_types::Date, _>(to),
        );
    }
    if let Some(after) = filter.after {
        query = query.filter(records::starts_at.gt(after));
    }
    if let Some(specialist_id) = filter.specialist_id {
        query = query.filter(records::specialist_id.eq(specialist_id));
    }
    if let Some(branch_id) = filter.branch_id {
        query = query.filter(records::branch_id.eq(branch_id));
    }
    if let Some(q) = filter.query.as_deref().filter(|q| !q.is_empty()) {
        let digits: String = q.chars().filter(char::is_ascii_digit).collect();
        // Case and ё/е do not matter: «семенова» finds «Семёнова».
        let pattern = contains_pattern(&crate::domain::values::fold_name(q));
        let by_name = folded(records::patient_last_name)
            .like(pattern.clone())
            .or(folded(records::patient_first_name).like(pattern));
        query = if digits.len() >= 3 {
            query.filter(by_name.or(records::patient_phone.like(contains_pattern(&digits))))
        } else {
            query.filter(by_name)
        };
    }
    query
}

/// One page of records, soonest first, and the total.
pub async fn list_views(
    conn: &mut AsyncPgConnection,
    filter: &RecordFilter,
    page: PageNo,
    per_page: i64,
) -> QueryResult<(Vec<RecordView>, i64)> {
    let total: i64 = filtered(filter).count().get_result(conn).await?;
    let rows = filtered(filter)
        .order((records::starts_at.asc(), records::id.asc()))
        .limit(per_page)
        .offset(page.offset(per_page))
        .select(view_columns())
        .load(conn)
        .await?;
    Ok((rows.into_iter().map(to_view).collect(), total))
}

/// The accounts whose records a list holds (its patients with a cabinet), for the audit
/// of an export.
pub async fn account_ids(
    conn: &mut AsyncPgConnection,
    filter: &RecordFilter,
) -> QueryResult<Vec<i64>> {
    let ids: Vec<Option<i64>> = filtered(filter)
        .filter(records::user_id.is_not_null())
        .select(records::user_id)
        .distinct()
        .load(conn)
        .await?;
    Ok(ids.into_iter().flatten().collect())
}

/// The next `limit` records of a list in its order (soonest first), after the record at
/// `after` (start, id): an export reads the whole list this way without `OFFSET`.
pub async fn views_after(
    conn: &mut AsyncPgConnection,
    filter: &RecordFilter,
    after: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> QueryResult<Vec<RecordView>> {
    let mut query = filtered(filter);
    if let Some((starts_at, id)) = after {
        query = query.filter(
            records::starts_at
                .gt(starts_at)
                .or(records::starts_at.eq(starts_at).and(records::id.gt(id))),
        );
    }
    let rows = query
        .order((records::starts_at.asc(), records::id.asc()))
        .limit(limit)
        .select(view_columns())
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(to_view).collect())
}

/// Marks a booked record cancelled, with the patient's reason if they gave one; `None` when
/// it was not booked any more.
pub async fn mark_cancelled(
    conn: &mut AsyncPgConnection,
    id: i64,
    by: Option<i64>,
    reason: Option<&str>,
) -> QueryResult<Option<Record>> {
    diesel::update(
        records::table
            .filter(records::id.eq(id))
            .filter(records::status.eq(RecordStatus::Booked)),
    )
    .set((
        records::status.eq(RecordStatus::Cancelled),
        records::cancelled_at.eq(diesel::dsl::now),
        records::cancelled_by.eq(by),
        records::cancel_reason.eq(reason),
        records::updated_at.eq(diesel::dsl::now),
    ))
    .returning(Record::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// PostgreSQL's clock (`now()`), the one `updated_at` is written with.
pub async fn database_now(conn: &mut AsyncPgConnection) -> QueryResult<DateTime<Utc>> {
    diesel::select(diesel::dsl::sql::<diesel::sql_types::Timestamptz>("now()"))
        .get_result(conn)
        .await
}

/// Locks the record for the rest of the transaction if it is still booked and unchanged
/// since it was read with `updated_at`; `false` when it is not.
pub async fn lock_as_read(
    conn: &mut AsyncPgConnection,
    id: i64,
    updated_at: DateTime<Utc>,
) -> QueryResult<bool> {
    records::table
        .filter(records::id.eq(id))
        .filter(records::status.eq(RecordStatus::Booked))
        .filter(records::updated_at.eq(updated_at))
        .select(records::id)
        .for_update()
        .first::<i64>(conn)
        .await
        .optional()
        .map(|row| row.is_some())
}

/// Moves a booked record to another interval (the MIS keeps its SCHEDID).
pub async fn mark_moved(
    conn: &mut AsyncPgConnection,
    id: i64,
    mis_id: i64,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
) -> QueryResult<Option<Record>> {
    diesel::update(
        records::table
            .filter(records::id.eq(id))
            .filter(records::status.eq(RecordStatus::Booked)),
    )
    .set((
        records::mis_id.eq(mis_id),
        records::starts_at.eq(starts_at),
        records::ends_at.eq(ends_at),
        records::updated_at.eq(diesel::dsl::now),
    ))
    .returning(Record::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// The record of an MIS appointment (`SCHEDID`) in a branch, with the names the views show.
pub async fn find_view_by_mis_id(
    conn: &mut AsyncPgConnection,
    branch_id: i64,
    mis_id: i64,
) -> QueryResult<Option<RecordView>> {
    records::table
        .inner_join(specialists::table)
        .inner_join(branches::table)
        .filter(records::branch_id.eq(branch_id))
        .filter(records::mis_id.eq(mis_id))
        .order(records::id.desc())
        .select(view_columns())
        .first(conn)
        .await
        .optional()
        .map(|row| row.map(to_view))
}

/// Marks a booked record's outcome (`visited` or `no_show`); `None` when it was not booked
/// any more.
pub async fn mark_outcome(
    conn: &mut AsyncPgConnection,
    id: i64,
    status: RecordStatus,
) -> QueryResult<Option<Record>> {
    diesel::update(
        records::table
            .filter(records::id.eq(id))
            .filter(records::status.eq(RecordStatus::Booked)),
    )
    .set((
        records::status.eq(status),
        records::updated_at.eq(diesel::dsl::now),
    ))
    .returning(Record::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// Marks a booked record attended (`visited`); `None` when it was not booked any more.
pub async fn mark_visited(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Record>> {
    mark_outcome(conn, id, RecordStatus::Visited).await
}

/// Booked visits of the account still ahead.
pub async fn count_upcoming(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    now: DateTime<Utc>,
) -> QueryResult<i64> {
    records::table
        .filter(records::user_id.eq(user_id))
        .filter(records::status.eq(RecordStatus::Booked))
        .filter(records::starts_at.gt(now))
        .count()
        .get_result(conn)
        .await
}

/// When each booking the account made since `since` was made (any status now).
pub async fn created_since(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    since: DateTime<Utc>,
) -> QueryResult<Vec<DateTime<Utc>>> {
    records::table
        .filter(records::user_id.eq(user_id))
        .filter(records::created_at.gt(since))
        .filter(records::source.ne(RecordSource::Clinic))
        .select(records::created_at)
        .load(conn)
        .await
}

/// The account's other booked visits that overlap `[start, end)`.
pub async fn overlapping(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    except: Option<i64>,
) -> QueryResult<Vec<RecordView>> {
    records::table
        .inner_join(specialists::table)
        .inner_join(branches::table)
        .filter(records::user_id.eq(user_id))
        .filter(records::status.eq(RecordStatus::Booked))
        .filter(records::starts_at.lt(end))
        .filter(records::ends_at.gt(start))
        .filter(records::id.ne(except.unwrap_or(0)))
        .order(records::starts_at)
        .select(view_columns())
        .load(conn)
        .await
        .map(|rows| rows.into_iter().map(to_view).collect())
}

/// The visit whose link token hashes to `token_hash`: the link of its booking SMS, or the
/// one of its reminder.
pub async fn find_view_by_manage_token(
    conn: &mut AsyncPgConnection,
    token_hash: &str,
) -> QueryResult<Option<RecordView>> {
    records::table
        .inner_join(specialists::table)
        .inner_join(branches::table)
        .filter(
            records::manage_token_hash
                .eq(token_hash)
                .or(records::reminder_token_hash.eq(token_hash)),
        )
        .select(view_columns())
        .first(conn)
        .await
        .optional()
        .map(|row| row.map(to_view))
}

/// Visits booked without an account on `phone` become the account's.
pub async fn adopt_by_phone(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    phone: &str,
) -> QueryResult<usize> {
    diesel::update(
        records::table
            .filter(records::user_id.is_null())
            .filter(records::patient_phone.eq(phone)),
    )
    .set((
        records::user_id.eq(user_id),
        records::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await
}

/// The account's records with the names the views show, latest first; `only` narrows them
/// to these ids (ids of other accounts' records are never returned).
pub async fn views_of_user(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    only: Option<&[i64]>,
) -> QueryResult<Vec<RecordView>> {
    let filter = RecordFilter {
        user_id: Some(user_id),
        ..RecordFilter::default()
    };
    let mut query = filtered(&filter);
    if let Some(ids) = only {
        query = query.filter(records::id.eq_any(ids.to_vec()));
    }
    let rows = query
        .order((records::starts_at.desc(), records::id.desc()))
        .select(view_columns())
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(to_view).collect())
}

/// Whose record `id` is: `None` when there is no such record, `Some(None)` for a record
/// without an account.
pub async fn owner_of(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Option<i64>>> {
    records::table
        .find(id)
        .select(records::user_id)
        .first(conn)
        .await
        .optional()
}
