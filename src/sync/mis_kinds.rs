//! The kinds that come from the MIS: branches, specialities, specialists, prices.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use diesel::{
    ExpressionMethods, QueryDsl,
    sql_types::{Array, BigInt, Bool, Text},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::{
    Counts, Progress, SyncError, SyncKind, SyncOptions,
    guard::{Guard, Subject},
    timezones::zone_for,
    upsert::{Outcome, Written, count_active, deactivate_missing, digest, settle},
};
use crate::{
    db::schema::{branches, specialists, specialities},
    integrations::infoclinica::{Mis, messages::doctor_list, paging::Pager},
};

/// Doctor rows asked for per `GET_DOCTOR_LIST` call.
const DOCTOR_PAGE: u32 = 100;
/// At most this many pages (a million rows): a longer list is refused, not read forever.
const DOCTOR_MAX_PAGES: u32 = 10_000;

pub async fn sync_branches(
    conn: &mut AsyncPgConnection,
    mis: &dyn Mis,
    options: &SyncOptions,
    progress: &dyn Progress,
    guard: &mut Guard,
) -> Result<Counts, SyncError> {
    progress.message(SyncKind::Branches, "GET_FILIAL_LIST");
    let items = mis.branches().await?;
    let active_before = count_active(conn, "branches", None).await?;
    let mut counts = Counts::default();
    let mut seen = Vec::new();
    for branch in items.into_iter().filter(|b| b.visible) {
        let zone = zone_for(
            branch.mis_id,
            branch.utc_offset_hours,
            &options.branch_timezones,
        );
        let hash = digest(&(
            &branch.name,
            &branch.address,
            &branch.phone,
            &branch.email,
            zone.name(),
            &branch.work_hours,
        ));
        let rows: Vec<Written> = diesel::sql_query(
            "INSERT INTO branches (mis_id, name, address, phone, email, timezone, source_hash, work_hours) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (mis_id) DO UPDATE SET name = EXCLUDED.name, address = EXCLUDED.address, \
               phone = EXCLUDED.phone, email = EXCLUDED.email, timezone = EXCLUDED.timezone, \
               work_hours = EXCLUDED.work_hours, \
               source_hash = EXCLUDED.source_hash, active = true, updated_at = now() \
             WHERE branches.source_hash <> EXCLUDED.source_hash OR NOT branches.active \
             RETURNING id, (xmax = 0) AS inserted",
        )
        .bind::<BigInt, _>(branch.mis_id)
        .bind::<Text, _>(&branch.name)
        .bind::<Text, _>(&branch.address)
        .bind::<Text, _>(&branch.phone)
        .bind::<Text, _>(&branch.email)
        .bind::<Text, _>(zone.name())
        .bind::<Text, _>(&hash)
        .bind::<Text, _>(&branch.work_hours)
        .load(conn)
        .await?;
        counts.record(Outcome::from_rows(&rows));
        seen.push(branch.mis_id);
    }
    counts.deactivated = deactivate_missing(conn, "branches", "mis_id", None, &seen).await?;
    guard.check(Subject::Branches, counts.deactivated, active_before)?;
    settle(&mut counts, count_active(conn, "branches", None).await?);
    Ok(counts)
}

pub async fn sync_specialities(
    conn: &mut AsyncPgConnection,
    mis: &dyn Mis,
    progress: &dyn Progress,
    guard: &mut Guard,
) -> Result<Counts, SyncError> {
    progress.message(SyncKind::Specialities, "GET_DEPARTMENT_LIST");
    let items = mis.departments().await?;
    let active_before = count_active(conn, "specialities", None).await?;
    let mut counts = Counts::default();
    let mut seen = Vec::new();
    for department in items.into_iter().filter(|d| d.visible) {
        let hash = digest(&(&department.name, &department.group_name));
        let rows: Vec<Written> = diesel::sql_query(
            "INSERT INTO specialities (mis_id, name, group_name, source_hash) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (mis_id) DO UPDATE SET name = EXCLUDED.name, group_name = EXCLUDED.group_name, \
               source_hash = EXCLUDED.source_hash, active = true, updated_at = now() \
             WHERE specialities.source_hash <> EXCLUDED.source_hash OR NOT specialities.active \
             RETURNING id, (xmax = 0) AS inserted",
        )
        .bind::<BigInt, _>(department.mis_id)
        .bind::<Text, _>(&department.name)
        .bind::<Text, _>(&department.group_name)
        .bind::<Text, _>(&hash)
        .load(conn)
        .await?;
        counts.record(Outcome::from_rows(&rows));
        seen.push(department.mis_id);
    }
    counts.deactivated = deactivate_missing(conn, "specialities", "mis_id", None, &seen).await?;
    guard.check(Subject::Specialities, counts.deactivated, active_before)?;
    settle(&mut counts, count_active(conn, "specialities", None).await?);
    Ok(counts)
}

/// One doctor gathered from all of its `GETDOCTORLIST` rows.
#[derive(Default)]
struct DoctorRows {
    full_name: String,
    branches: BTreeSet<i64>,
    departments: BTreeSet<i64>,
}

/// MIS-id → local-id maps of branches and specialities.
async fn local_ids(
    conn: &mut AsyncPgConnection,
) -> Result<(HashMap<i64, i64>, HashMap<i64, i64>), SyncError> {
    let branch_ids: Vec<(i64, i64)> = branches::table
        .select((branches::mis_id, branches::id))
        .load(conn)
        .await?;
    let speciality_ids: Vec<(i64, i64)> = specialities::table
        .select((specialities::mis_id, specialities::id))
        .load(conn)
        .await?;
    Ok((
        branch_ids.into_iter().collect(),
        speciality_ids.into_iter().collect(),
    ))
}

/// The MIS part of specialists; `touched` collects the ids this run created or updated so the
/// CMS part does not count them twice.
pub async fn sync_specialists(
    conn: &mut AsyncPgConnection,
    mis: &dyn Mis,
    progress: &dyn Progress,
    notes: &mut Vec<String>,
    touched: &mut HashSet<i64>,
    guard: &mut Guard,
) -> Result<Counts, SyncError> {
    // Doctor rows are few (one per doctor, branch and department) and a doctor's rows may
    // sit on different pages, so they are gathered before writing. The pages must add up
    // to ITEMSNUMBER: a short page fails the run before anything is written.
    let mut doctors: BTreeMap<i64, DoctorRows> = BTreeMap::new();
    let mut pager = Pager::new(doctor_list::OP, DOCTOR_PAGE, DOCTOR_MAX_PAGES);
    while let Some((first, last)) = pager.next_window() {
        progress.message(
            SyncKind::Specialists,
            &format!("GET_DOCTOR_LIST rows {first}..{last}"),
        );
        let page = mis.doctors_page(first, last).await?;
        pager.accept(page.items.len(), page.total)?;
        for row in page.items.into_iter().filter(|r| r.visible) {
            let doctor = doctors.entry(row.doctor_mis_id).or_default();
            doctor.full_name = row.full_name;
            doctor.branches.insert(row.branch_mis_id);
            doctor.departments.insert(row.department_mis_id);
        }
    }

    let active_before = active_specialists(conn).await?;
    let (branch_ids, speciality_ids) = local_ids(conn).await?;
    let mut counts = Counts::default();
    let mut seen = Vec::new();
    for (mis_id, doctor) in &doctors {
        let hash = digest(&(&doctor.full_name, &doctor.branches, &doctor.departments));
        let rows: Vec<Written> = diesel::sql_query(
            "INSERT INTO specialists (mis_id, full_name, source_hash) VALUES ($1, $2, $3) \
             ON CONFLICT (mis_id) DO UPDATE SET full_name = EXCLUDED.full_name, \
               source_hash = EXCLUDED.source_hash, active = true, updated_at = now() \
             WHERE specialists.source_hash <> EXCLUDED.source_hash OR NOT specialists.active \
             RETURNING id, (xmax = 0) AS inserted",
        )
        .bind::<BigInt, _>(mis_id)
        .bind::<Text, _>(&doctor.full_name)
        .bind::<Text, _>(&hash)
        .load(conn)
        .await?;
        let outcome = Outcome::from_rows(&rows);
        counts.record(outcome);
        seen.push(*mis_id);
        let Some(id) = outcome.id() else { continue };
        touched.insert(id);
        let branch_links = resolve(
            &doctor.branches,
            &branch_ids,
            "неизвестный филиал",
            *mis_id,
            notes,
        );
        let speciality_links = resolve(
            &doctor.departments,
            &speciality_ids,
            "неизвестное отделение",
            *mis_id,
            notes,
        );
        replace_links(conn, "specialist_branches", "branch_id", id, &branch_links).await?;
        replace_links(
            conn,
            "specialist_specialities",
            "speciality_id",
            id,
            &speciality_links,
        )
        .await?;
    }
    counts.deactivated = deactivate_missing(conn, "specialists", "mis_id", None, &seen).await?;
    guard.check(Subject::Specialists, counts.deactivated, active_before)?;
    Ok(counts)
}

fn resolve(
    mis_ids: &BTreeSet<i64>,
    local: &HashMap<i64, i64>,
    what: &str,
    doctor: i64,
    notes: &mut Vec<String>,
) -> Vec<i64> {
    mis_ids
        .iter()
        .filter_map(|mis_id| {
            let found = local.get(mis_id).copied();
            if found.is_none() {
                notes.push(format!(
                    "врач МИС № {doctor}: {what} № {mis_id} (сначала синхронизируйте филиалы и специальности)"
                ));
            }
            found
        })
        .collect()
}

/// Makes the link table hold exactly `targets` for `specialist_id`.
async fn replace_links(
    conn: &mut AsyncPgConnection,
    table: &'static str,
    column: &'static str,
    specialist_id: i64,
    targets: &[i64],
) -> Result<(), SyncError> {
    diesel::sql_query(format!(
        "DELETE FROM {table} WHERE specialist_id = $1 AND NOT ({column} = ANY($2))"
    ))
    .bind::<BigInt, _>(specialist_id)
    .bind::<Array<BigInt>, _>(targets)
    .execute(conn)
    .await?;
    diesel::sql_query(format!(
        "INSERT INTO {table} (specialist_id, {column}) SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING"
    ))
    .bind::<BigInt, _>(specialist_id)
    .bind::<Array<BigInt>, _>(targets)
    .execute(conn)
    .await?;
    Ok(())
}

/// Active specialists now, for the `unchanged` figure after the CMS part.
pub async fn active_specialists(conn: &mut AsyncPgConnection) -> Result<u64, SyncError> {
    let n: i64 = specialists::table
        .filter(specialists::active.eq(true))
        .count()
        .get_result(conn)
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub async fn sync_prices(
    conn: &mut AsyncPgConnection,
    mis: &dyn Mis,
    progress: &dyn Progress,
    guard: &mut Guard,
) -> Result<Counts, SyncError> {
    let active_before = count_active(conn, "prices", None).await?;
    let (branch_ids, speciality_ids) = local_ids(conn).await?;
    let departments: Vec<i64> = specialities::table
        .filter(specialities::active.eq(true))
        .select(specialities::mis_id)
        .order(specialities::mis_id)
        .load(conn)
        .await?;
    let mut counts = Counts::default();
    let mut seen = Vec::new();
    // One department's list at a time: memory stays flat however long the price list is.
    for department in departments {
        progress.message(
            SyncKind::Prices,
            &format!("PRICE_LIST department {department}"),
        );
        for price in mis.prices(department).await? {
            let branch_id = branch_ids.get(&price.branch_mis_id).copied();
            let speciality_id = speciality_ids.get(&price.department_mis_id).copied();
            let hash = digest(&(
                &price.code,
                &price.name,
                price.price_kopecks,
                price.branch_mis_id,
                price.department_mis_id,
                price.bookable,
                branch_id,
                speciality_id,
            ));
            let rows: Vec<Written> = diesel::sql_query(
                "INSERT INTO prices (mis_id, code, name, price_kopecks, branch_id, speciality_id, bookable, source_hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (mis_id) DO UPDATE SET code = EXCLUDED.code, name = EXCLUDED.name, \
                   price_kopecks = EXCLUDED.price_kopecks, branch_id = EXCLUDED.branch_id, \
                   speciality_id = EXCLUDED.speciality_id, bookable = EXCLUDED.bookable, \
                   source_hash = EXCLUDED.source_hash, active = true, updated_at = now() \
                 WHERE prices.source_hash <> EXCLUDED.source_hash OR NOT prices.active \
                 RETURNING id, (xmax = 0) AS inserted",
            )
            .bind::<BigInt, _>(price.mis_id)
            .bind::<Text, _>(&price.code)
            .bind::<Text, _>(&price.name)
            .bind::<BigInt, _>(price.price_kopecks)
            .bind::<diesel::sql_types::Nullable<BigInt>, _>(branch_id)
            .bind::<diesel::sql_types::Nullable<BigInt>, _>(speciality_id)
            .bind::<Bool, _>(price.bookable)
            .bind::<Text, _>(&hash)
            .load(conn)
            .await?;
            counts.record(Outcome::from_rows(&rows));
            seen.push(price.mis_id);
        }
    }
    counts.deactivated = deactivate_missing(conn, "prices", "mis_id", None, &seen).await?;
    guard.check(Subject::Prices, counts.deactivated, active_before)?;
    settle(&mut counts, count_active(conn, "prices", None).await?);
    Ok(counts)
}
