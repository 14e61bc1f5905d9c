//! The CMS emulator: the site's JSON content endpoint of contract A9
//! (`docs/bitrix-content.md`), plus the picture files under `/upload/`.
//!
//! `GET /api/v1/content/{kind}` pages ordered by (`modified_at`, `id`) with a keyset cursor
//! `next` = `<modified_at RFC 3339>|<id>`; `GET /api/v1/content/{kind}/ids` lists every id.
//! Bitrix-style errors: 401 `INVALID_CREDENTIALS`, 400 `ERROR_BAD_FILTER`, 404
//! `ERROR_KIND_NOT_FOUND`. Also `GET`/`POST /_emulator/faults` with
//! [`CmsFaults`](super::CmsFaults).

use std::cmp::Ordering;

use axum::{
    Json, Router,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use chrono::{DateTime, Duration, FixedOffset, SecondsFormat};
use serde_json::{Map, Value, json};

use super::{EmulatorControl, World, faults_routes, world::site_now};
use crate::integrations::bitrix::{ContentItem, ContentKind};

/// The CMS emulator's routes.
pub fn router(control: EmulatorControl) -> Router {
    Router::new()
        .route("/api/v1/content/{kind}", get(page))
        .route("/api/v1/content/{kind}/ids", get(ids))
        .route("/upload/{*path}", get(upload))
        .merge(faults_routes(
            EmulatorControl::cms_faults,
            EmulatorControl::set_cms_faults,
        ))
        .with_state(control)
}

/// What a PHP fatal error looks like to an HTTP client.
const PHP_FATAL: &str = "<br />\n<b>Fatal error</b>:  Allowed memory size of 134217728 bytes exhausted (tried to allocate 20480 bytes) in <b>/home/bitrix/www/bitrix/modules/iblock/lib/elementtable.php</b> on line <b>412</b><br />\n";

fn api_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": code, "error_description": description })),
    )
        .into_response()
}

/// Latency, forced failures and the bearer token, in that order.
async fn gate(control: &EmulatorControl, headers: &HeaderMap) -> Option<Response> {
    let faults = control.cms_faults();
    if faults.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(faults.latency_ms)).await;
    }
    if faults.http_500 {
        return Some((StatusCode::INTERNAL_SERVER_ERROR, Html(PHP_FATAL)).into_response());
    }
    let expected = format!("Bearer {}", control.shared().cms_token());
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if faults.unauthorized || given != Some(expected.as_str()) {
        return Some(api_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_CREDENTIALS",
            "bad token",
        ));
    }
    None
}

fn unknown_kind(kind: &str) -> Response {
    let shown: String = kind.chars().take(40).collect();
    api_error(
        StatusCode::NOT_FOUND,
        "ERROR_KIND_NOT_FOUND",
        &format!("unknown kind '{shown}'"),
    )
}

fn bad_filter(description: &str) -> Response {
    api_error(StatusCode::BAD_REQUEST, "ERROR_BAD_FILTER", description)
}

/// The parameters of a page request.
struct PageQuery {
    modified_since: Option<DateTime<FixedOffset>>,
    after: Option<(DateTime<FixedOffset>, i64)>,
    limit: usize,
    include_inactive: bool,
}

/// The query, or the `ERROR_BAD_FILTER` description.
fn parse_query(raw: Option<&str>) -> Result<PageQuery, &'static str> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|_| "the query string is not form-encoded")?;
    let mut query = PageQuery {
        modified_since: None,
        after: None,
        limit: 50,
        include_inactive: true,
    };
    for (name, value) in pairs {
        match name.as_str() {
            "modified_since" => {
                query.modified_since =
                    Some(parse_time(&value).ok_or("modified_since is not RFC 3339")?);
            }
            "start" => {
                query.after = Some(parse_cursor(&value).ok_or("start is not a cursor")?);
            }
            "limit" => {
                query.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|l| (1..=200).contains(l))
                    .ok_or("limit must be 1..200")?;
            }
            "include_inactive" => {
                query.include_inactive = match value.as_str() {
                    "1" | "true" | "Y" => true,
                    "0" | "false" | "N" => false,
                    _ => return Err("include_inactive must be 0 or 1"),
                };
            }
            _ => {}
        }
    }
    Ok(query)
}

/// RFC 3339; a `+` decoded to a space by form decoding is put back.
fn parse_time(raw: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(raw)
        .or_else(|_| DateTime::parse_from_rfc3339(&raw.replace(' ', "+")))
        .ok()
}

fn parse_cursor(raw: &str) -> Option<(DateTime<FixedOffset>, i64)> {
    let (time, id) = raw.rsplit_once('|')?;
    Some((parse_time(time)?, id.parse().ok()?))
}

fn cursor_of(item: &ContentItem) -> String {
    format!("{}|{}", rfc3339(item.modified_at), item.id)
}

fn rfc3339(t: DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn by_key(a: &ContentItem, b: &ContentItem) -> Ordering {
    (a.modified_at, a.id).cmp(&(b.modified_at, b.id))
}

/// One page: the items, the count of all matching items, and the next cursor.
fn select(
    world: &World,
    kind: ContentKind,
    q: &PageQuery,
) -> (Vec<ContentItem>, usize, Option<String>) {
    let mut matching: Vec<&ContentItem> = world
        .cms_items(kind)
        .iter()
        .filter(|i| q.include_inactive || i.active)
        .filter(|i| q.modified_since.is_none_or(|since| i.modified_at >= since))
        .collect();
    matching.sort_by(|a, b| by_key(a, b));
    let total = matching.len();
    let rest: Vec<&ContentItem> = matching
        .into_iter()
        .filter(|i| {
            q.after
                .is_none_or(|(time, id)| (i.modified_at, i.id) > (time, id))
        })
        .collect();
    let page: Vec<ContentItem> = rest.iter().take(q.limit).map(|i| (*i).clone()).collect();
    let next = (rest.len() > q.limit)
        .then(|| page.last().map(cursor_of))
        .flatten();
    (page, total, next)
}

async fn page(
    State(control): State<EmulatorControl>,
    Path(kind): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = gate(&control, &headers).await {
        return refusal;
    }
    let Some(kind) = ContentKind::parse(&kind) else {
        return unknown_kind(&kind);
    };
    let query = match parse_query(raw.as_deref()) {
        Ok(query) => query,
        Err(description) => return bad_filter(description),
    };
    let shared = control.shared();
    let (items, total, next) = select(&shared.world(), kind, &query);
    let faults = control.cms_faults();
    if faults.mutate_between_pages && next.is_some() {
        mutate_after_page(&mut shared.world_mut(), kind, &items, &query);
    }

    let mut body = Map::new();
    body.insert("result".into(), json!({ "items": items }));
    body.insert("total".into(), json!(total));
    if let Some(next) = next {
        body.insert("next".into(), Value::String(next));
    }
    body.insert("time".into(), json!({ "server_now": rfc3339(site_now()) }));
    let mut text = Value::Object(body).to_string();
    if faults.malformed {
        text.truncate(text.len().min(40));
        while !text.is_empty() && !text.is_char_boundary(text.len()) {
            text.pop();
        }
    }
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        text,
    )
        .into_response()
}

/// An editor saves two elements mid-sync: the first one of the page just served and the
/// first one of the next page. Both move behind everything else, strictly after the
/// cursor, so keyset paging sees each at least once (offset paging would skip one).
fn mutate_after_page(world: &mut World, kind: ContentKind, served: &[ContentItem], q: &PageQuery) {
    let upcoming = select(
        world,
        kind,
        &PageQuery {
            modified_since: q.modified_since,
            after: served.last().map(|i| (i.modified_at, i.id)),
            limit: 1,
            include_inactive: q.include_inactive,
        },
    )
    .0;
    let latest = world
        .cms_items(kind)
        .iter()
        .map(|i| i.modified_at)
        .max()
        .unwrap_or_else(site_now);
    let at = site_now().max(latest + Duration::seconds(1));
    // With one item per page, moving the served item behind the cursor would serve it
    // forever; only the upcoming one moves then.
    let targets: Vec<i64> = served
        .first()
        .filter(|_| q.limit > 1)
        .into_iter()
        .chain(upcoming.first())
        .map(|i| i.id)
        .collect();
    if let Some(items) = world.cms.get_mut(&kind) {
        for item in items.iter_mut().filter(|i| targets.contains(&i.id)) {
            item.modified_at = at;
        }
    }
}

/// Sets `modified_at` of one element to now. False when it does not exist.
pub(crate) fn touch(world: &mut World, kind: ContentKind, id: i64) -> bool {
    let now = site_now();
    match world
        .cms
        .get_mut(&kind)
        .and_then(|items| items.iter_mut().find(|i| i.id == id))
    {
        Some(item) => {
            item.modified_at = now;
            true
        }
        None => false,
    }
}

async fn ids(
    State(control): State<EmulatorControl>,
    Path(kind): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = gate(&control, &headers).await {
        return refusal;
    }
    let Some(kind) = ContentKind::parse(&kind) else {
        return unknown_kind(&kind);
    };
    let mut ids: Vec<i64> = control
        .shared()
        .world()
        .cms_items(kind)
        .iter()
        .map(|i| i.id)
        .collect();
    ids.sort_unstable();
    if control.cms_faults().malformed {
        return (
            [(header::CONTENT_TYPE, "application/json")],
            "{\"result\":{\"ids\":[1,",
        )
            .into_response();
    }
    Json(json!({ "result": { "ids": ids }, "total": ids.len() })).into_response()
}

async fn upload(State(control): State<EmulatorControl>, Path(path): Path<String>) -> Response {
    let src = format!("/upload/{path}");
    match control.shared().world().pictures.get(&src) {
        Some(png) => ([(header::CONTENT_TYPE, "image/png")], *png).into_response(),
        None => (StatusCode::NOT_FOUND, "404 Not Found\n").into_response(),
    }
}
