//! The patients' doctor list: the search box (a doctor's name or a speciality, forgiving case,
//! ё/е and a typo), the filters, the order, one page of cards with the lowest price and the
//! nearest free time. The free time comes from the stored schedule copy
//! (`schedule_snapshots.free_starts`), never from the MIS: a list of doctors costs no MIS call.
//!
//! The API's list (`directory::search_specialists`) keeps its plain substring match on the
//! name; this search is the pages'.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::{
    QueryableByName,
    sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::directory::{self, Branch, Specialist};
use crate::{
    db::contains_pattern,
    domain::values::{PageNo, fold_name},
};

/// Words of the search text that count; the rest is ignored (each word costs a pass over
/// the doctors).
const MAX_WORDS: usize = 5;

/// How the list is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DoctorOrder {
    /// By name (ё as е).
    #[default]
    Name,
    /// By the nearest free time; doctors without a known one last, by name.
    NearestFree,
}

/// What the patient asked for; every part optional.
#[derive(Debug, Clone, Default)]
pub struct DoctorSearch {
    pub speciality_id: Option<i64>,
    pub branch_id: Option<i64>,
    /// The search box as typed (already one trimmed line, see `SearchText`).
    pub text: Option<String>,
    pub order: DoctorOrder,
}

/// The nearest free slot start of a doctor, and the branch it is in.
#[derive(Debug, Clone)]
pub struct NearestFree {
    pub starts_at: DateTime<Utc>,
    pub branch: Branch,
}

/// One doctor of the list.
#[derive(Debug, Clone)]
pub struct DoctorCard {
    pub doctor: Specialist,
    /// The lowest bookable price of the doctor's specialities in the doctor's branches.
    pub price_from_kopecks: Option<i64>,
    /// Unknown when no stored schedule copy has a free slot ahead.
    pub nearest_free: Option<NearestFree>,
}

/// One page of the list.
#[derive(Debug, Clone)]
pub struct FoundDoctors {
    pub cards: Vec<DoctorCard>,
    /// Doctors found on all pages.
    pub total: i64,
    /// The page shown: the one asked for, or the last one when it asked past the end.
    pub page: PageNo,
    pub pages: i64,
}

#[derive(QueryableByName)]
struct Hit {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    nearest_free: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<BigInt>)]
    nearest_branch_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    price_from_kopecks: Option<i64>,
}

/// One word of the search text, as the query compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Word {
    /// Lower case, ё as е: compared by trigram similarity.
    folded: String,
    /// `%word%`, wildcards escaped: the word anywhere in a name.
    pattern: String,
    /// `%stem%`: the word without its last letters, so «терапевт» finds «Терапия» and
    /// «кардиолога» finds «Кардиология» (specialities only).
    stem_pattern: String,
}

impl Word {
    fn new(folded: String) -> Self {
        let letters = folded.chars().count();
        // Long words lose up to three letters of ending, keeping at least five.
        let keep = if letters > 8 {
            letters - 3
        } else {
            letters.min(5)
        };
        let stem: String = folded.chars().take(keep).collect();
        Self {
            pattern: contains_pattern(&folded),
            stem_pattern: contains_pattern(&stem),
            folded,
        }
    }
}

fn words(text: Option<&str>) -> Vec<Word> {
    text.map(fold_name)
        .unwrap_or_default()
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .take(MAX_WORDS)
        .map(|w| Word::new(w.to_owned()))
        .collect()
}

/// Every word must match the doctor's name (as a substring, or by trigram word similarity
/// of at least 0.5 for words of four letters or more: «семенва» finds «Семёнова») or one of
/// the doctor's specialities (the same, or the word's stem as a substring). Names are
/// compared folded, `translate(lower(...), 'ё', 'е')` as in `db::folded`, the expression the
/// trigram indexes are built on. The nearest free start is one index seek per doctor
/// (`schedule_snapshots.first_free`), plus the whole array of today's days whose first free
/// start has passed; the prices are aggregated once for every doctor.
const SEARCH_SQL: &str = "\
WITH price_from AS (
    SELECT x.specialist_id, min(p.price_kopecks) AS kopecks
      FROM prices p
      JOIN specialist_specialities x ON x.speciality_id = p.speciality_id
      JOIN specialities sp ON sp.id = x.speciality_id AND sp.active
      JOIN specialist_branches y ON y.branch_id = p.branch_id AND y.specialist_id = x.specialist_id
      JOIN branches b ON b.id = y.branch_id AND b.active
     WHERE p.active AND p.bookable
     GROUP BY x.specialist_id)
SELECT s.id,
       nearest.starts_at AS nearest_free,
       nearest.branch_id AS nearest_branch_id,
       price_from.kopecks AS price_from_kopecks
  FROM specialists s
  LEFT JOIN price_from ON price_from.specialist_id = s.id
  LEFT JOIN LATERAL (
        SELECT candidate.starts_at, candidate.branch_id
          FROM ((SELECT ss.first_free AS starts_at, ss.branch_id
                   FROM schedule_snapshots ss
                   JOIN specialist_branches sb ON sb.specialist_id = ss.specialist_id AND sb.branch_id = ss.branch_id
                   JOIN branches b ON b.id = ss.branch_id AND b.active
                  WHERE ss.specialist_id = s.id
                    AND ss.first_free > $1
                    AND ($3::bigint IS NULL OR ss.branch_id = $3)
                  ORDER BY ss.first_free, ss.branch_id
                  LIMIT 1)
                UNION ALL
                (SELECT free.starts_at, ss.branch_id
                   FROM schedule_snapshots ss
                   JOIN specialist_branches sb ON sb.specialist_id = ss.specialist_id AND sb.branch_id = ss.branch_id
                   JOIN branches b ON b.id = ss.branch_id AND b.active
                   CROSS JOIN LATERAL unnest(ss.free_starts) AS free(starts_at)
                  WHERE ss.specialist_id = s.id
                    AND ss.day BETWEEN ($1 AT TIME ZONE 'UTC')::date - 1 AND ($1 AT TIME ZONE 'UTC')::date + 1
                    AND ss.first_free <= $1
                    AND free.starts_at > $1
                    AND ($3::bigint IS NULL OR ss.branch_id = $3))) AS candidate
         ORDER BY candidate.starts_at, candidate.branch_id
         LIMIT 1) AS nearest ON true
 WHERE s.active
   AND ($2::bigint IS NULL OR EXISTS (
        SELECT 1 FROM specialist_specialities x JOIN specialities sp ON sp.id = x.speciality_id AND sp.active
         WHERE x.specialist_id = s.id AND x.speciality_id = $2))
   AND ($3::bigint IS NULL OR EXISTS (
        SELECT 1 FROM specialist_branches y JOIN branches b ON b.id = y.branch_id AND b.active
         WHERE y.specialist_id = s.id AND y.branch_id = $3))
   AND NOT EXISTS (
        SELECT 1 FROM unnest($4::text[], $5::text[], $6::text[]) AS word(folded, pattern, stem_pattern)
         WHERE NOT (
               translate(lower(s.full_name), 'ё', 'е') LIKE word.pattern
            OR (char_length(word.folded) >= 4
                AND word_similarity(word.folded, translate(lower(s.full_name), 'ё', 'е')) >= 0.5)
            OR EXISTS (
               SELECT 1 FROM specialist_specialities x JOIN specialities sp ON sp.id = x.speciality_id AND sp.active
                WHERE x.specialist_id = s.id
                  AND (translate(lower(sp.name), 'ё', 'е') LIKE word.pattern
                    OR translate(lower(sp.name), 'ё', 'е') LIKE word.stem_pattern
                    OR (char_length(word.folded) >= 4
                        AND word_similarity(word.folded, translate(lower(sp.name), 'ё', 'е')) >= 0.5)))))
 ORDER BY CASE WHEN $7 THEN nearest.starts_at END ASC NULLS LAST,
          translate(lower(s.full_name), 'ё', 'е'), s.id";

/// Every doctor the search finds, in order, with the lowest price and the nearest free
/// start after `now` (the booking clock's).
async fn search(
    conn: &mut AsyncPgConnection,
    search: &DoctorSearch,
    now: DateTime<Utc>,
) -> diesel::QueryResult<Vec<Hit>> {
    let words = words(search.text.as_deref());
    let folded: Vec<String> = words.iter().map(|w| w.folded.clone()).collect();
    let patterns: Vec<String> = words.iter().map(|w| w.pattern.clone()).collect();
    let stems: Vec<String> = words.iter().map(|w| w.stem_pattern.clone()).collect();
    diesel::sql_query(SEARCH_SQL)
        .bind::<Timestamptz, _>(now)
        .bind::<Nullable<BigInt>, _>(search.speciality_id)
        .bind::<Nullable<BigInt>, _>(search.branch_id)
        .bind::<Array<Text>, _>(folded)
        .bind::<Array<Text>, _>(patterns)
        .bind::<Array<Text>, _>(stems)
        .bind::<Bool, _>(search.order == DoctorOrder::NearestFree)
        .load(conn)
        .await
}

/// One page of `per_page` doctors (a page past the end shows the last one).
pub async fn find_doctors(
    conn: &mut AsyncPgConnection,
    query: &DoctorSearch,
    page: PageNo,
    per_page: i64,
    now: DateTime<Utc>,
) -> diesel::QueryResult<FoundDoctors> {
    let hits = search(conn, query, now).await?;
    let total = i64::try_from(hits.len()).unwrap_or(i64::MAX);
    let pages = PageNo::count(total, per_page);
    let page = if page.get() > pages {
        PageNo::new(pages).unwrap_or(PageNo::FIRST)
    } else {
        page
    };
    let start = usize::try_from(page.offset(per_page)).unwrap_or(usize::MAX);
    let len = usize::try_from(per_page).unwrap_or(0);
    let shown: Vec<&Hit> = hits.iter().skip(start).take(len).collect();
    let ids: Vec<i64> = shown.iter().map(|h| h.id).collect();
    let mut doctors: HashMap<i64, Specialist> = directory::specialists_by_ids(conn, &ids)
        .await?
        .into_iter()
        .map(|d| (d.row.id, d))
        .collect();
    let cards = shown
        .into_iter()
        .filter_map(|hit| {
            let doctor = doctors.remove(&hit.id)?;
            let nearest_free = match (hit.nearest_free, hit.nearest_branch_id) {
                (Some(starts_at), Some(branch_id)) => doctor
                    .branches
                    .iter()
                    .find(|b| b.id == branch_id)
                    .map(|branch| NearestFree {
                        starts_at,
                        branch: branch.clone(),
                    }),
                _ => None,
            };
            Some(DoctorCard {
                price_from_kopecks: hit.price_from_kopecks,
                nearest_free,
                doctor,
            })
        })
        .collect();
    Ok(FoundDoctors {
        cards,
        total,
        page,
        pages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_folded_and_stemmed_for_specialities() {
        let found = words(Some("Кардиолог  СЕМЁНОВА, лор"));
        let folded: Vec<&str> = found.iter().map(|w| w.folded.as_str()).collect();
        assert_eq!(folded, ["кардиолог", "семенова", "лор"]);
        assert_eq!(found[0].pattern, "%кардиолог%");
        assert_eq!(found[0].stem_pattern, "%кардио%");
        assert_eq!(Word::new("терапевт".into()).stem_pattern, "%терап%");
        assert_eq!(found[2].stem_pattern, "%лор%");
        assert_eq!(Word::new("100%".into()).pattern, "%100\\%%");
        assert!(words(None).is_empty());
        assert_eq!(words(Some("а б в г д е ж")).len(), MAX_WORDS);
    }
}
