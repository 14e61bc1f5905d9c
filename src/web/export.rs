//! The filtered record list of `/staff/records` as a file, staff only, each export audited
//! with its filter (`records_exported`):
//! - `GET /staff/records.csv`: CSV that Excel opens with Cyrillic intact (UTF-8 with a
//!   byte-order mark, `;` between fields as Russian Excel expects), streamed a chunk of
//!   records at a time, so memory does not grow with the list;
//! - `GET /staff/records.xlsx`: an Excel workbook, its rows written a chunk at a time to a
//!   temporary file ("constant memory" mode) and the finished file sent whole (a ZIP
//!   cannot be sent before its last entry is written); at most [`XLSX_MAX_ROWS`] rows.

use axum::{
    body::{Body, Bytes},
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use std::net::IpAddr;

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

/// One record's fields, as text, in [`HEADER`]'s order.
fn fields(view: &RecordView) -> [String; 15] {
    let r = &view.record;
    let start = view.local_start();
    [
        r.id.to_string(),
        start.format("%d.%m.%Y").to_string(),
        start.format("%H:%M").to_string(),
        view.branch_zone.city_time(),
        view.specialist_name.clone(),
        view.specialities.join(", "),
        view.branch_name.clone(),
        view.branch_address.clone(),
        r.patient_full_name(),
        r.patient_phone.clone(),
        r.patient_birth_date
            .map(|d| d.format("%d.%m.%Y").to_string())
            .unwrap_or_default(),
        r.status.title().to_owned(),
        r.source.title().to_owned(),
        r.comment.clone().unwrap_or_default(),
        r.mis_id.to_string(),
    ]
}

/// A CSV row: every field defused.
fn row(view: &RecordView) -> [String; 15] {
    fields(view).map(|f| cell(&f))
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

async fn audit_export(
    state: &AppState,
    user: &User,
    ip: IpAddr,
    params: &RecordsParams,
    format: &str,
) -> Result<(), AppError> {
    let query = params.query();
    let patients = state.booking.export_accounts(user, &query).await?;
    audit::append_with(
        &state.db,
        Actor::user(user, ip),
        "records_exported",
        format,
        serde_json::json!({ "filter": params.form(), "patients": patients }),
    )
    .await;
    Ok(())
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
    audit_export(&state, &user, ip, &params, "csv").await?;
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

/// Most rows an XLSX export holds; a bigger list is refused with a request to narrow it
/// (the CSV has no limit).
pub const XLSX_MAX_ROWS: i64 = 100_000;

/// `GET /staff/records.xlsx`, with the filters of `/staff/records`.
pub async fn export_staff_records_xlsx(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ClientIp(ip): ClientIp,
    FormQuery(params): FormQuery<RecordsParams>,
) -> Result<Response, AppError> {
    let query = params.query();
    let total = state
        .booking
        .list_records(
            &user,
            &RecordQuery {
                per_page: Some(1),
                ..query.clone()
            },
            Default::default(),
        )
        .await?
        .total;
    if total > XLSX_MAX_ROWS {
        return Err(AppError::field(
            "date_from",
            "Слишком много записей для Excel (больше 100 000): сузьте период или выгрузите CSV",
        ));
    }
    // Ask before the work: a patient gets 403 here, not an empty workbook.
    state.booking.export_chunk(&user, &query, None, 1).await?;
    audit_export(&state, &user, ip, &params, "xlsx").await?;
    let (rows, received) = tokio::sync::mpsc::channel::<Vec<[String; 15]>>(2);
    let writer = tokio::task::spawn_blocking(move || write_workbook(received));
    let mut after = None;
    loop {
        let views = state
            .booking
            .export_chunk(&user, &query, after, CHUNK)
            .await?;
        let Some(last) = views.last() else { break };
        after = Some((last.record.starts_at, last.record.id));
        let full = views.len() as i64 == CHUNK;
        if rows.send(views.iter().map(fields).collect()).await.is_err() {
            break;
        }
        if !full {
            break;
        }
    }
    drop(rows);
    let file = writer
        .await
        .map_err(|e| AppError::Internal(e.into()))?
        .map_err(|e| AppError::Internal(anyhow::anyhow!("xlsx: {e}")))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"records.xlsx\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        file,
    )
        .into_response())
}

/// The workbook of the rows that arrive, a header in bold and the first row frozen.
fn write_workbook(
    mut received: tokio::sync::mpsc::Receiver<Vec<[String; 15]>>,
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut workbook = Workbook::new();
    let mut sheet = workbook.new_worksheet_with_constant_memory()?;
    sheet.set_name("Записи")?;
    let bold = Format::new().set_bold();
    sheet.write_row_with_format(0, 0, HEADER, &bold)?;
    sheet.set_freeze_panes(1, 0)?;
    for (col, width) in [
        (4, 30),
        (5, 30),
        (6, 24),
        (7, 36),
        (8, 32),
        (9, 16),
        (12, 28),
        (13, 36),
    ] {
        sheet.set_column_width(col, width)?;
    }
    let mut next_row: u32 = 1;
    while let Some(chunk) = received.blocking_recv() {
        for fields in chunk {
            sheet.write_row(next_row, 0, fields.iter().map(String::as_str))?;
            next_row += 1;
        }
    }
    workbook.push_worksheet(sheet);
    workbook.save_to_buffer()
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
