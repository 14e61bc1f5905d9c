//! Read side of the synced directories: branches, specialities, specialists, prices,
//! reviews, as the public pages and the API show them (active rows only).

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Utc};
use diesel::prelude::*;

use crate::db::contains_pattern;
use crate::domain::values::BranchZone;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::{
    branches, prices, reviews, specialist_branches, specialist_specialities, specialists,
    specialities,
};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = branches, check_for_backend(diesel::pg::Pg))]
pub struct Branch {
    pub id: i64,
    pub name: String,
    pub address: String,
    pub phone: String,
    pub timezone: BranchZone,
    /// Opening hours as the MIS writes them; empty when it gives none.
    pub work_hours: String,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = specialities, check_for_backend(diesel::pg::Pg))]
pub struct Speciality {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = specialists, check_for_backend(diesel::pg::Pg))]
pub struct SpecialistRow {
    pub id: i64,
    pub full_name: String,
    pub summary: String,
    pub bio_html: String,
    pub photo_url: Option<String>,
    pub career_start: Option<i32>,
    pub rating: Option<f64>,
    pub reviews_count: i32,
}

/// A specialist with the specialities and branches they work in.
#[derive(Debug, Clone)]
pub struct Specialist {
    pub row: SpecialistRow,
    pub specialities: Vec<Speciality>,
    pub branches: Vec<Branch>,
}

impl Specialist {
    /// Full years since the career start, when the CMS gives one.
    pub fn experience_years(&self) -> Option<i32> {
        self.row
            .career_start
            .map(|start| (Utc::now().year() - start).max(0))
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = prices, check_for_backend(diesel::pg::Pg))]
pub struct Price {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub price_kopecks: i64,
    pub branch_id: Option<i64>,
    pub speciality_id: Option<i64>,
}

impl Price {
    /// Roubles as shown: `2 500 ₽`, or `2 500,50 ₽` when there are kopecks.
    pub fn display(&self) -> String {
        roubles_label(self.price_kopecks)
    }

    /// The price in roubles for JSON.
    pub fn roubles(&self) -> f64 {
        // Prices are far below 2^53 kopecks, so the conversion is exact to the kopeck.
        #[allow(clippy::cast_precision_loss)]
        let value = self.price_kopecks as f64 / 100.0;
        value
    }
}

/// An amount in kopecks as shown: `2 500 ₽`, or `2 500,50 ₽` when there are kopecks.
pub fn roubles_label(amount_kopecks: i64) -> String {
    let roubles = amount_kopecks / 100;
    let kopecks = amount_kopecks % 100;
    let digits = roubles.to_string();
    let mut grouped = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push('\u{a0}');
        }
        grouped.push(ch);
    }
    if kopecks == 0 {
        format!("{grouped}\u{a0}₽")
    } else {
        format!("{grouped},{kopecks:02}\u{a0}₽")
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = reviews, check_for_backend(diesel::pg::Pg))]
pub struct Review {
    pub id: i64,
    pub author_name: String,
    pub body: String,
    pub rating: Option<i16>,
    pub reviewed_at: Option<DateTime<Utc>>,
}

/// Filters of the specialist list; all optional.
#[derive(Debug, Clone, Default)]
pub struct SpecialistFilter {
    pub speciality_id: Option<i64>,
    pub branch_id: Option<i64>,
    pub name: Option<String>,
}

pub async fn list_branches(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Branch>> {
    branches::table
        .filter(branches::active.eq(true))
        .order((branches::name, branches::id))
        .select(Branch::as_select())
        .load(conn)
        .await
}

pub async fn list_specialities(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Speciality>> {
    specialities::table
        .filter(specialities::active.eq(true))
        .order((specialities::name, specialities::id))
        .select(Speciality::as_select())
        .load(conn)
        .await
}

pub async fn search_specialists(
    conn: &mut AsyncPgConnection,
    filter: &SpecialistFilter,
) -> QueryResult<Vec<Specialist>> {
    let mut query = specialists::table
        .filter(specialists::active.eq(true))
        .order((specialists::full_name, specialists::id))
        .select(SpecialistRow::as_select())
        .into_boxed();
    if let Some(speciality_id) = filter.speciality_id {
        query = query.filter(
            specialists::id.eq_any(
                specialist_specialities::table
                    .filter(specialist_specialities::speciality_id.eq(speciality_id))
                    .select(specialist_specialities::specialist_id),
            ),
        );
    }
    if let Some(branch_id) = filter.branch_id {
        query = query.filter(
            specialists::id.eq_any(
                specialist_branches::table
                    .filter(specialist_branches::branch_id.eq(branch_id))
                    .select(specialist_branches::specialist_id),
            ),
        );
    }
    if let Some(name) = filter.name.as_deref().filter(|n| !n.is_empty()) {
        query = query.filter(specialists::full_name.ilike(contains_pattern(name)));
    }
    let rows = query.load(conn).await?;
    with_links(conn, rows).await
}

/// One active specialist with links, or `None`.
pub async fn find_specialist(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> QueryResult<Option<Specialist>> {
    let row = specialists::table
        .filter(specialists::id.eq(id))
        .filter(specialists::active.eq(true))
        .select(SpecialistRow::as_select())
        .first(conn)
        .await
        .optional()?;
    match row {
        Some(row) => Ok(with_links(conn, vec![row]).await?.into_iter().next()),
        None => Ok(None),
    }
}

/// Active specialists with links, in the order of `ids` (an id that is not active is left
/// out).
pub async fn specialists_by_ids(
    conn: &mut AsyncPgConnection,
    ids: &[i64],
) -> QueryResult<Vec<Specialist>> {
    let rows = specialists::table
        .filter(specialists::id.eq_any(ids.to_vec()))
        .filter(specialists::active.eq(true))
        .select(SpecialistRow::as_select())
        .load(conn)
        .await?;
    let mut found: HashMap<i64, Specialist> = with_links(conn, rows)
        .await?
        .into_iter()
        .map(|s| (s.row.id, s))
        .collect();
    Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
}

async fn with_links(
    conn: &mut AsyncPgConnection,
    rows: Vec<SpecialistRow>,
) -> QueryResult<Vec<Specialist>> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let speciality_links: Vec<(i64, Speciality)> = specialist_specialities::table
        .inner_join(specialities::table)
        .filter(specialist_specialities::specialist_id.eq_any(&ids))
        .filter(specialities::active.eq(true))
        .order(specialities::name)
        .select((
            specialist_specialities::specialist_id,
            Speciality::as_select(),
        ))
        .load(conn)
        .await?;
    let branch_links: Vec<(i64, Branch)> = specialist_branches::table
        .inner_join(branches::table)
        .filter(specialist_branches::specialist_id.eq_any(&ids))
        .filter(branches::active.eq(true))
        .order(branches::name)
        .select((specialist_branches::specialist_id, Branch::as_select()))
        .load(conn)
        .await?;
    let mut by_specialist: HashMap<i64, (Vec<Speciality>, Vec<Branch>)> = HashMap::new();
    for (id, speciality) in speciality_links {
        by_specialist.entry(id).or_default().0.push(speciality);
    }
    for (id, branch) in branch_links {
        by_specialist.entry(id).or_default().1.push(branch);
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let (specialities, branches) = by_specialist.remove(&row.id).unwrap_or_default();
            Specialist {
                row,
                specialities,
                branches,
            }
        })
        .collect())
}

/// Prices of the specialist's specialities in the branches they work in.
pub async fn prices_for(
    conn: &mut AsyncPgConnection,
    specialist: &Specialist,
) -> QueryResult<Vec<Price>> {
    let speciality_ids: Vec<i64> = specialist.specialities.iter().map(|s| s.id).collect();
    let branch_ids: Vec<i64> = specialist.branches.iter().map(|b| b.id).collect();
    prices::table
        .filter(prices::active.eq(true))
        .filter(prices::speciality_id.eq_any(speciality_ids))
        .filter(prices::branch_id.eq_any(branch_ids))
        .order((prices::name, prices::id))
        .select(Price::as_select())
        .load(conn)
        .await
}

pub async fn list_prices(
    conn: &mut AsyncPgConnection,
    branch_id: Option<i64>,
    name: Option<&str>,
) -> QueryResult<Vec<Price>> {
    let mut query = prices::table
        .filter(prices::active.eq(true))
        .order((prices::name, prices::id))
        .select(Price::as_select())
        .into_boxed();
    if let Some(branch_id) = branch_id {
        query = query.filter(prices::branch_id.eq(branch_id));
    }
    if let Some(name) = name.filter(|n| !n.is_empty()) {
        query = query.filter(prices::name.ilike(contains_pattern(name)));
    }
    query.load(conn).await
}

/// Published reviews of a specialist, newest first: one page and the total.
pub async fn published_reviews(
    conn: &mut AsyncPgConnection,
    specialist_id: i64,
    page: i64,
    per_page: i64,
) -> QueryResult<(Vec<Review>, i64)> {
    let visible = reviews::specialist_id
        .eq(specialist_id)
        .and(reviews::published.eq(true))
        .and(reviews::active.eq(true));
    let total = reviews::table
        .filter(visible)
        .count()
        .get_result(conn)
        .await?;
    let items = reviews::table
        .filter(visible)
        .order((reviews::reviewed_at.desc().nulls_last(), reviews::id.desc()))
        .limit(per_page)
        .offset((page - 1).max(0) * per_page)
        .select(Review::as_select())
        .load(conn)
        .await?;
    Ok((items, total))
}
