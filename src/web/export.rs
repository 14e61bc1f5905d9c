//! `GET /staff/records.csv`: the filtered record list as a CSV file that Excel opens with
//! Cyrillic intact (UTF-8 with a byte-order mark, `;` between fields as Russian Excel
//! expects), streamed a chunk of records at a time so memory does not grow with the list.
//! Every export is audited with its filter (`records_exported`).

use axum::{
    body::{Body, Bytes},
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};

use crate::{
    app::AppState,
    auth::roles::CurrentUser,
    client_ip::ClientIp,
    db::models::{record::RecordView, user::User},
    domain::{
        audit::{self, Actor},
        booking::{Booking, records::RecordQuery},
    },
    error::AppError,
    params::{FormQuery, RecordsParams},
};

/// Records read per database round trip.
const CHUNK: i64 = 500;

/// UTF-8's byte-order mark: without it Excel reads the file as Windows-1251.
const BOM: &[u8] = b"\xEF\xBB\xBF";

const HEADER: [&str; 15] = [
    "Запись №",
    "Дата",
    "Время",
    "Часовой пояс",
    "Врач",
    "Специальности",
    "Филиал",
    "Адрес филиала",
    "Пациент",
    "Телефон",
    "Дата рождения",
    "Статус",
    "Кто записал",
    "Комментарий",
    "Номер в МИС",
];

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, a tab or a carriage
/// return first) gets a leading apostrophe (OWASP "CSV injection"): names and comments
/// are typed by patients.
fn cell(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

fn row(view: &RecordView) -> [String; 15] {
    let r = &view.record;
    let start = view.local_start();
    [
        r.id.to_string(),
        start.format("%d.%m.%Y").to_string(),
        start.format("%H:%M").to_string(),
        view.branch_zone.city_time(),
        cell(&view.specialist_name),
        cell(&view.specialities.join(", ")),
        cell(&view.branch_name),
        cell(&view.branch_address),
        cell(&r.patient_full_name()),
        cell(&r.patient_phone),
        r.patient_birth_date
            .map(|d| d.format("%d.%m.%Y").to_string())
            .unwrap_or_default(),
        r.status.title().to_owned(),
        r.source.title().to_owned(),
        cell(r.comment.as_deref().unwrap_or_default()),
        r.mis_id.to_string(),
    ]
}

/// Rows as CSV bytes.
fn encode<I: IntoIterator<Item = [String; 15]>>(rows: I) -> Result<Vec<u8>, AppError> {
    let mut writer = csv::WriterBuilder::new()
        .delimiter(b';')
        .from_writer(Vec::new());
    for row in rows {
        writer
            .write_record(&row)
            .map_err(|e| AppError::Internal(e.into()))?;
    }
    writer
        .into_inner()
        .map_err(|e| AppError::Internal(anyhow::anyhow!(e.to_string())))
}

/// Where the stream is: the next chunk starts after this record.
struct Cursor {
    booking: Booking,
    viewer: User,
    query: RecordQuery,
    after: Option<(DateTime<Utc>, i64)>,
    done: bool,
}

/// The next chunk of CSV, or the end. A database failure mid-way ends the body with an
/// error, so the client sees a broken download rather than a short file that looks whole.
async fn next_chunk(mut cursor: Cursor) -> Option<(Result<Bytes, AppError>, Cursor)> {
    if cursor.done {
        return None;
    }
    let chunk = cursor
        .booking
        .export_chunk(&cursor.viewer, &cursor.query, cursor.after, CHUNK)
        .await;
    let views = match chunk {
        Ok(views) => views,
        Err(e) => {
            cursor.done = true;
            return Some((Err(e.into()), cursor));
        }
    };
    if views.is_empty() {
        return None;
    }
    cursor.done = (views.len() as i64) < CHUNK;
    cursor.after = views.last().map(|v| (v.record.starts_at, v.record.id));
    Some((encode(views.iter().map(row)).map(Bytes::from), cursor))
}

/// `GET /staff/records.csv`, with the filters of `/staff/records`.
pub async fn export_staff_records(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    FormQuery(params): FormQuery<RecordsParams>,
) -> Result<Response, AppError> {
    let query = params.query();
    // The first chunk is read before the answer starts, so a refusal (not staff, the
    // database down) is a proper error page rather than a broken download.
    let first = state
        .booking
        .export_chunk(&user, &query, None, CHUNK)
        .await?;
    audit::append_with(
        &state.db,
        Actor::user(&user, ip),
        "records_exported",
        "csv",
        serde_json::json!({ "filter": params.form() }),
    )
    .await;
    let mut head = BOM.to_vec();
    head.extend(encode(std::iter::once(HEADER.map(str::to_owned)))?);
    head.extend(encode(first.iter().map(row))?);
    let cursor = Cursor {
        done: (first.len() as i64) < CHUNK,
        after: first.last().map(|v| (v.record.starts_at, v.record.id)),
        booking: state.booking.clone(),
        viewer: user,
        query,
    };
    let rest = futures_util::stream::unfold(cursor, next_chunk);
    let body = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok::<_, AppError>(Bytes::from(head)) }),
        rest,
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"records.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn formulas_are_defused_and_plain_text_is_kept() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("+79035551234"), "'+79035551234");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("Смирнова Ольга"), "Смирнова Ольга");
        assert_eq!(cell(""), "");
    }
}
