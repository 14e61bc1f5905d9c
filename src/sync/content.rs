//! The kinds that come from the CMS: doctor profiles (part of `specialists`), reviews, and
//! content (pages, services, specializations). Incremental through a `modified_since`
//! watermark with a small overlap; deletions found through `/ids`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Datelike, FixedOffset, Utc};
use diesel::{
    ExpressionMethods, NullableExpressionMethods, OptionalExtension, QueryDsl,
    sql_types::{Array, BigInt, Bool, Int2, Int4, Nullable, Text, Timestamptz},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::{
    Counts, Progress, SyncError, SyncKind, SyncOptions,
    guard::{Guard, Subject},
    mis_kinds,
    sanitize::{clean_html, plain_text},
    upsert::{Outcome, Written, count_active, deactivate_missing, digest, settle},
    with_overlap,
};
use crate::{
    db::schema::{specialists, sync_watermarks},
    integrations::bitrix::{Cms, CmsError, ContentItem, ContentKind},
};

/// Items asked for per page.
const PAGE: u32 = 100;

/// Walks a kind page by page with the keyset cursor.
struct Pager<'a> {
    cms: &'a dyn Cms,
    kind: ContentKind,
    since: Option<DateTime<FixedOffset>>,
    start: Option<String>,
    done: bool,
    /// `server_now` of the first page: the next watermark.
    first_server_now: Option<DateTime<FixedOffset>>,
    pages: u32,
    /// Items served so far.
    items: u64,
}

impl<'a> Pager<'a> {
    fn new(cms: &'a dyn Cms, kind: ContentKind, since: Option<DateTime<Utc>>) -> Self {
        Self {
            cms,
            kind,
            since: since.map(|s| s.fixed_offset()),
            start: None,
            done: false,
            first_server_now: None,
            pages: 0,
            items: 0,
        }
    }

    async fn next(&mut self) -> Result<Option<Vec<ContentItem>>, CmsError> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .cms
            .page(self.kind, self.since, self.start.as_deref(), PAGE)
            .await?;
        self.pages += 1;
        if self.pages == 1 {
            self.first_server_now = page.server_now;
        }
        // A cursor that does not move would loop forever; treat it as the end.
        self.done = page.next.is_none() || page.next == self.start || page.items.is_empty();
        self.start = page.next;
        self.items += page.items.len() as u64;
        Ok(Some(page.items))
    }
}

fn watermark_key(kind: ContentKind) -> String {
    format!("cms:{}", kind.as_str())
}

async fn load_watermark(
    conn: &mut AsyncPgConnection,
    kind: ContentKind,
    options: &SyncOptions,
) -> Result<Option<DateTime<Utc>>, SyncError> {
    if options.full {
        return Ok(None);
    }
    let watermark: Option<DateTime<Utc>> = sync_watermarks::table
        .find(watermark_key(kind))
        .select(sync_watermarks::watermark)
        .first(conn)
        .await
        .optional()?;
    Ok(watermark.map(with_overlap))
}

/// Moves the watermark to the first page's `server_now`, but only when the run saw items:
/// with nothing new the old watermark is still right, and the run writes nothing.
async fn store_watermark(
    conn: &mut AsyncPgConnection,
    kind: ContentKind,
    server_now: Option<DateTime<FixedOffset>>,
    items_seen: u64,
) -> Result<(), SyncError> {
    let Some(now) = server_now.filter(|_| items_seen > 0) else {
        return Ok(());
    };
    diesel::sql_query(
        "INSERT INTO sync_watermarks (source, watermark) VALUES ($1, $2) \
         ON CONFLICT (source) DO UPDATE SET watermark = EXCLUDED.watermark \
         WHERE sync_watermarks.watermark <> EXCLUDED.watermark",
    )
    .bind::<Text, _>(watermark_key(kind))
    .bind::<Timestamptz, _>(now.with_timezone(&Utc))
    .execute(conn)
    .await?;
    Ok(())
}

/// The MIS doctor id a CMS profile names: `xml_id` `mis-<id>` or the `MIS_ID` property.
fn mis_id_of(item: &ContentItem) -> Option<i64> {
    item.xml_id
        .as_deref()
        .and_then(|x| x.strip_prefix("mis-"))
        .and_then(|x| x.trim().parse().ok())
        .or_else(|| {
            item.properties
                .get("MIS_ID")
                .and_then(|p| p.first_str())
                .and_then(|v| v.trim().parse().ok())
        })
}

fn is_html(kind: Option<&str>) -> bool {
    kind.is_none_or(|k| k.eq_ignore_ascii_case("html"))
}

/// Links CMS doctor profiles to specialists and stores bio, photo and experience.
/// `counts` and `touched` come from the MIS part: a specialist counts once.
pub async fn sync_profiles(
    conn: &mut AsyncPgConnection,
    cms: &dyn Cms,
    options: &SyncOptions,
    progress: &dyn Progress,
    notes: &mut Vec<String>,
    counts: &mut Counts,
    touched: &mut HashSet<i64>,
) -> Result<(), SyncError> {
    let since = load_watermark(conn, ContentKind::Doctors, options).await?;
    let mut pager = Pager::new(cms, ContentKind::Doctors, since);
    let mut linked_this_run = HashSet::new();
    while let Some(items) = pager.next().await? {
        progress.message(
            SyncKind::Specialists,
            &format!("CMS doctors page {}", pager.pages),
        );
        for item in items {
            let Some(mis_id) = mis_id_of(&item) else {
                notes.push(format!(
                    "врач на сайте № {} «{}»: не указан номер врача в МИС",
                    item.id, item.name
                ));
                continue;
            };
            if !linked_this_run.insert(mis_id) {
                notes.push(format!(
                    "врач на сайте № {}: второй профиль врача МИС № {mis_id}, пропущен",
                    item.id
                ));
                continue;
            }
            let exists: Option<i64> = specialists::table
                .filter(specialists::mis_id.eq(mis_id))
                .select(specialists::id)
                .first(conn)
                .await
                .optional()?;
            if exists.is_none() {
                notes.push(format!(
                    "врач на сайте № {} «{}»: в МИС нет врача № {mis_id}",
                    item.id, item.name
                ));
                continue;
            }
            let written = if item.active {
                write_profile(conn, cms, mis_id, &item).await?
            } else {
                clear_profile(conn, item.id, None).await?
            };
            for id in written {
                if touched.insert(id) {
                    counts.updated += 1;
                }
            }
        }
    }
    // Profiles deleted in the CMS leave the specialist without one.
    let existing = cms.ids(ContentKind::Doctors).await?;
    for id in clear_missing_profiles(conn, &existing).await? {
        if touched.insert(id) {
            counts.updated += 1;
        }
    }
    store_watermark(
        conn,
        ContentKind::Doctors,
        pager.first_server_now,
        pager.items,
    )
    .await?;
    super::upsert::settle(counts, mis_kinds::active_specialists(conn).await?);
    Ok(())
}

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

async fn write_profile(
    conn: &mut AsyncPgConnection,
    cms: &dyn Cms,
    mis_id: i64,
    item: &ContentItem,
) -> Result<Vec<i64>, SyncError> {
    let bio = clean_html(
        item.detail_text.as_deref().unwrap_or_default(),
        is_html(item.detail_text_type.as_deref()),
    );
    let summary = plain_text(item.preview_text.as_deref().unwrap_or_default());
    let photo = item
        .preview_picture
        .as_ref()
        .or(item.detail_picture.as_ref())
        .map(|p| cms.absolute_url(&p.src));
    let career_start: Option<i32> = item
        .properties
        .get("CAREER_START")
        .and_then(|p| p.first_str())
        .and_then(|v| v.trim().parse().ok())
        .filter(|year| (1950..=Utc::now().year()).contains(year));
    let hash = digest(&(item.id, &bio, &summary, &photo, career_start));
    // The profile moves to this specialist: a previous holder of this CMS id lets go first.
    let mut ids = clear_profile(conn, item.id, Some(mis_id)).await?;
    let rows: Vec<Id> = diesel::sql_query(
        "UPDATE specialists SET cms_id = $2, bio_html = $3, summary = $4, photo_url = $5, career_start = $6, \
           profile_hash = $7, updated_at = now() \
         WHERE mis_id = $1 AND profile_hash IS DISTINCT FROM $7 RETURNING id",
    )
    .bind::<BigInt, _>(mis_id)
    .bind::<BigInt, _>(item.id)
    .bind::<Text, _>(&bio)
    .bind::<Text, _>(&summary)
    .bind::<Nullable<Text>, _>(photo.as_deref())
    .bind::<Nullable<Int4>, _>(career_start)
    .bind::<Text, _>(&hash)
    .load(conn)
    .await?;
    ids.extend(rows.into_iter().map(|r| r.id));
    Ok(ids)
}

/// Removes the CMS profile `cms_id` from every specialist holding it, except the one with
/// MIS id `keep_mis_id` (the profile may have moved to another doctor).
async fn clear_profile(
    conn: &mut AsyncPgConnection,
    cms_id: i64,
    keep_mis_id: Option<i64>,
) -> Result<Vec<i64>, SyncError> {
    let rows: Vec<Id> = diesel::sql_query(
        "UPDATE specialists SET cms_id = NULL, bio_html = '', summary = '', photo_url = NULL, career_start = NULL, \
           profile_hash = NULL, updated_at = now() \
         WHERE cms_id = $1 AND mis_id IS DISTINCT FROM $2 RETURNING id",
    )
    .bind::<BigInt, _>(cms_id)
    .bind::<Nullable<BigInt>, _>(keep_mis_id)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

async fn clear_missing_profiles(
    conn: &mut AsyncPgConnection,
    existing: &[i64],
) -> Result<Vec<i64>, SyncError> {
    let rows: Vec<Id> = diesel::sql_query(
        "UPDATE specialists SET cms_id = NULL, bio_html = '', summary = '', photo_url = NULL, career_start = NULL, \
           profile_hash = NULL, updated_at = now() WHERE cms_id IS NOT NULL AND NOT (cms_id = ANY($1)) RETURNING id",
    )
    .bind::<Array<BigInt>, _>(existing)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

pub async fn sync_reviews(
    conn: &mut AsyncPgConnection,
    cms: &dyn Cms,
    options: &SyncOptions,
    progress: &dyn Progress,
    notes: &mut Vec<String>,
    guard: &mut Guard,
) -> Result<Counts, SyncError> {
    let active_before = count_active(conn, "reviews", None).await?;
    let by_cms_id: HashMap<i64, i64> = specialists::table
        .filter(specialists::cms_id.is_not_null())
        .select((specialists::cms_id.assume_not_null(), specialists::id))
        .load::<(i64, i64)>(conn)
        .await?
        .into_iter()
        .collect();
    let since = load_watermark(conn, ContentKind::Reviews, options).await?;
    let mut pager = Pager::new(cms, ContentKind::Reviews, since);
    let mut counts = Counts::default();
    let mut orphans = 0;
    while let Some(items) = pager.next().await? {
        progress.message(SyncKind::Reviews, &format!("page {}", pager.pages));
        for item in items {
            let specialist_id = item
                .properties
                .get("DOCTOR")
                .and_then(|p| p.first_str())
                .and_then(|v| v.trim().parse::<i64>().ok())
                .and_then(|cms_doctor| by_cms_id.get(&cms_doctor).copied());
            if specialist_id.is_none() {
                orphans += 1;
            }
            let rating: Option<i16> = item
                .properties
                .get("RATING")
                .and_then(|p| p.first_str())
                .and_then(|v| v.trim().parse().ok())
                .filter(|r| (1..=5).contains(r));
            let body = plain_text(
                item.preview_text
                    .as_deref()
                    .or(item.detail_text.as_deref())
                    .unwrap_or_default(),
            );
            let author = plain_text(&item.name);
            let reviewed_at = item
                .active_from
                .or(item.created_at)
                .map(|d| d.with_timezone(&Utc));
            let hash = digest(&(
                &author,
                &body,
                rating,
                item.active,
                reviewed_at,
                specialist_id,
            ));
            let rows: Vec<Written> = diesel::sql_query(
                "INSERT INTO reviews (cms_id, specialist_id, author_name, body, rating, published, reviewed_at, source_hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (cms_id) DO UPDATE SET specialist_id = EXCLUDED.specialist_id, \
                   author_name = EXCLUDED.author_name, body = EXCLUDED.body, rating = EXCLUDED.rating, \
                   published = EXCLUDED.published, reviewed_at = EXCLUDED.reviewed_at, \
                   source_hash = EXCLUDED.source_hash, active = true, updated_at = now() \
                 WHERE reviews.source_hash <> EXCLUDED.source_hash OR NOT reviews.active \
                 RETURNING id, (xmax = 0) AS inserted",
            )
            .bind::<BigInt, _>(item.id)
            .bind::<Nullable<BigInt>, _>(specialist_id)
            .bind::<Text, _>(&author)
            .bind::<Text, _>(&body)
            .bind::<Nullable<Int2>, _>(rating)
            .bind::<Bool, _>(item.active)
            .bind::<Nullable<Timestamptz>, _>(reviewed_at)
            .bind::<Text, _>(&hash)
            .load(conn)
            .await?;
            counts.record(Outcome::from_rows(&rows));
        }
    }
    if orphans > 0 {
        notes.push(format!("отзывов без найденного врача: {orphans}"));
    }
    let existing = cms.ids(ContentKind::Reviews).await?;
    counts.deactivated = deactivate_missing(conn, "reviews", "cms_id", None, &existing).await?;
    guard.check(Subject::Reviews, counts.deactivated, active_before)?;
    refresh_ratings(conn).await?;
    store_watermark(
        conn,
        ContentKind::Reviews,
        pager.first_server_now,
        pager.items,
    )
    .await?;
    settle(&mut counts, count_active(conn, "reviews", None).await?);
    Ok(counts)
}

/// Recomputes each specialist's rating and review count from published reviews, writing
/// only the rows whose figures changed.
async fn refresh_ratings(conn: &mut AsyncPgConnection) -> Result<(), SyncError> {
    diesel::sql_query(
        "UPDATE specialists s SET rating = agg.rating, reviews_count = agg.reviews, updated_at = now() \
         FROM (SELECT sp.id, \
                 (SELECT round(avg(r.rating)::numeric, 2)::float8 FROM reviews r \
                   WHERE r.specialist_id = sp.id AND r.published AND r.active AND r.rating IS NOT NULL) AS rating, \
                 (SELECT count(*) FROM reviews r WHERE r.specialist_id = sp.id AND r.published AND r.active)::int AS reviews \
               FROM specialists sp) agg \
         WHERE s.id = agg.id AND (s.rating IS DISTINCT FROM agg.rating OR s.reviews_count <> agg.reviews)",
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Pages, services and specializations.
pub async fn sync_content(
    conn: &mut AsyncPgConnection,
    cms: &dyn Cms,
    options: &SyncOptions,
    progress: &dyn Progress,
    guard: &mut Guard,
) -> Result<Counts, SyncError> {
    let mut total = Counts::default();
    for (kind, subject) in [
        (ContentKind::Pages, Subject::Pages),
        (ContentKind::Services, Subject::Services),
        (ContentKind::Specializations, Subject::Specializations),
    ] {
        let active_before =
            count_active(conn, "content_items", Some(("kind", kind.as_str()))).await?;
        let since = load_watermark(conn, kind, options).await?;
        let mut pager = Pager::new(cms, kind, since);
        let mut counts = Counts::default();
        while let Some(items) = pager.next().await? {
            progress.message(
                SyncKind::Content,
                &format!("{} page {}", kind.as_str(), pager.pages),
            );
            for item in items {
                let body = clean_html(
                    item.detail_text.as_deref().unwrap_or_default(),
                    is_html(item.detail_text_type.as_deref()),
                );
                let summary = plain_text(item.preview_text.as_deref().unwrap_or_default());
                let title = plain_text(&item.name);
                let hash = digest(&(&item.code, &title, &summary, &body, item.active));
                let rows: Vec<Written> = diesel::sql_query(
                    "INSERT INTO content_items (kind, cms_id, code, title, summary, body_html, active, modified_at, source_hash) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (kind, cms_id) DO UPDATE SET code = EXCLUDED.code, title = EXCLUDED.title, \
                       summary = EXCLUDED.summary, body_html = EXCLUDED.body_html, active = EXCLUDED.active, \
                       modified_at = EXCLUDED.modified_at, source_hash = EXCLUDED.source_hash, updated_at = now() \
                     WHERE content_items.source_hash <> EXCLUDED.source_hash \
                     RETURNING id, (xmax = 0) AS inserted",
                )
                .bind::<Text, _>(kind.as_str())
                .bind::<BigInt, _>(item.id)
                .bind::<Nullable<Text>, _>(item.code.as_deref())
                .bind::<Text, _>(&title)
                .bind::<Text, _>(&summary)
                .bind::<Text, _>(&body)
                .bind::<Bool, _>(item.active)
                .bind::<Timestamptz, _>(item.modified_at.with_timezone(&Utc))
                .bind::<Text, _>(&hash)
                .load(conn)
                .await?;
                counts.record(Outcome::from_rows(&rows));
            }
        }
        let existing = cms.ids(kind).await?;
        counts.deactivated = deactivate_missing(
            conn,
            "content_items",
            "cms_id",
            Some(("kind", kind.as_str())),
            &existing,
        )
        .await?;
        guard.check(subject, counts.deactivated, active_before)?;
        store_watermark(conn, kind, pager.first_server_now, pager.items).await?;
        settle(
            &mut counts,
            count_active(conn, "content_items", Some(("kind", kind.as_str()))).await?,
        );
        total.created += counts.created;
        total.updated += counts.updated;
        total.unchanged += counts.unchanged;
        total.deactivated += counts.deactivated;
    }
    Ok(total)
}
