//! The JSON bodies of the booking API: one Rust type per body, serialised for the answer
//! and described by the same type in the OpenAPI document, so the two cannot drift apart.
//! (Directory bodies sit beside their handlers in `directory.rs`.)

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    db::models::{outbox::OutboxMessage, record::RecordView},
    domain::{
        booking::{BookingTarget, records::RecordPage, schedule::Window},
        values::{RecordSource, RecordStatus},
    },
};

pub use crate::error::{ErrorBody, ErrorDetail};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecordSpecialist {
    pub id: i64,
    pub full_name: String,
    /// The doctor's specialities, by name.
    pub specialities: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecordBranch {
    pub id: i64,
    pub name: String,
    pub address: String,
    /// The branch's IANA zone, in which `start` and `end` are given.
    pub timezone: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecordPatient {
    pub full_name: String,
    /// `+7916***4567`: enough to recognise, not to reuse.
    pub phone_masked: String,
}

/// A record; times are RFC 3339 with the branch's offset.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecordOut {
    pub id: i64,
    /// The appointment id in the MIS (`SCHEDID`).
    pub mis_id: i64,
    pub status: RecordStatus,
    #[schema(format = DateTime)]
    pub start: String,
    #[schema(format = DateTime)]
    pub end: String,
    /// The branch's IANA zone.
    pub timezone: String,
    pub specialist: RecordSpecialist,
    pub branch: RecordBranch,
    pub patient: RecordPatient,
    pub source: RecordSource,
    /// What the patient wrote for the doctor when booking.
    pub comment: Option<String>,
    /// The patient's words when cancelling, if any.
    pub cancel_reason: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&RecordView> for RecordOut {
    fn from(view: &RecordView) -> Self {
        let r = &view.record;
        Self {
            id: r.id,
            mis_id: r.mis_id,
            status: r.status,
            start: view.local_start().to_rfc3339(),
            end: view.local_end().to_rfc3339(),
            timezone: view.branch_zone.name().to_owned(),
            specialist: RecordSpecialist {
                id: r.specialist_id,
                full_name: view.specialist_name.clone(),
                specialities: view.specialities.clone(),
            },
            branch: RecordBranch {
                id: r.branch_id,
                name: view.branch_name.clone(),
                address: view.branch_address.clone(),
                timezone: view.branch_zone.name().to_owned(),
            },
            patient: RecordPatient {
                full_name: r.patient_full_name(),
                phone_masked: r.phone_masked(),
            },
            source: r.source,
            comment: r.comment.clone(),
            cancel_reason: r.cancel_reason.clone(),
            created_at: r.created_at.to_rfc3339(),
        }
    }
}

/// The delivery state of the latest SMS about a record.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotificationOut {
    /// `booked`, `moved`, `cancelled` or `reminder`.
    pub kind: String,
    /// `pending`, `sending`, `sent` or `failed`; `unknown` when the gateway may or may not
    /// have taken it (held, never sent twice).
    pub status: String,
    pub attempts: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Once `sent`: `pending` until the gateway's report is final, then `delivered`,
    /// `undelivered` or `expired`; absent before, or when the gateway gives no reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
}

/// A record with its latest SMS (`null` before any was queued).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecordDetailOut {
    #[serde(flatten)]
    pub record: RecordOut,
    pub notification: Option<NotificationOut>,
}

impl RecordDetailOut {
    pub fn new(view: &RecordView, messages: &[OutboxMessage]) -> Self {
        Self {
            record: RecordOut::from(view),
            notification: messages.last().map(|last| NotificationOut {
                kind: last.kind.clone(),
                status: last.status.clone(),
                attempts: last.attempts,
                last_error: last.last_error.clone(),
                delivery: last.delivery.clone(),
            }),
        }
    }
}

impl RecordOut {
    /// The answer to a booking as JSON, also stored for a retry with the same
    /// `Idempotency-Key`.
    pub fn json(view: &RecordView) -> serde_json::Value {
        serde_json::to_value(RecordOut::from(view)).unwrap_or(serde_json::Value::Null)
    }
}

/// One page of records.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RecordList {
    pub items: Vec<RecordOut>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
}

impl From<&RecordPage> for RecordList {
    fn from(page: &RecordPage) -> Self {
        Self {
            items: page.items.iter().map(RecordOut::from).collect(),
            total: page.total,
            page: page.page.get(),
            per_page: page.per_page,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SlotOut {
    #[schema(format = DateTime)]
    pub start: String,
    #[schema(format = DateTime)]
    pub end: String,
    /// Bookable now (never for a slot in the past).
    pub free: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DayOut {
    #[schema(format = Date)]
    pub date: String,
    pub slots: Vec<SlotOut>,
}

/// Where a schedule came from: the cache, the MIS just now, or the last stored copy while
/// the MIS is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleSource {
    Cache,
    Mis,
    Stale,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScheduleOut {
    pub specialist_id: i64,
    pub branch_id: i64,
    pub timezone: String,
    pub days: Vec<DayOut>,
    pub source: ScheduleSource,
    #[schema(format = DateTime)]
    pub fetched_at: String,
}

impl ScheduleOut {
    pub fn new(
        target: &BookingTarget,
        window: &Window,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        use crate::domain::booking::schedule::Source;
        Self {
            specialist_id: target.specialist_id,
            branch_id: target.branch_id,
            timezone: target.zone.name().to_owned(),
            days: window
                .days
                .iter()
                .map(|day| DayOut {
                    date: day.date.to_string(),
                    slots: day
                        .slots(target.zone.tz(), now)
                        .iter()
                        .map(|s| SlotOut {
                            start: s.start.to_rfc3339(),
                            end: s.end.to_rfc3339(),
                            free: s.free,
                        })
                        .collect(),
                })
                .collect(),
            source: match window.source {
                Source::Cache => ScheduleSource::Cache,
                Source::Mis => ScheduleSource::Mis,
                Source::Stale => ScheduleSource::Stale,
            },
            fetched_at: window.fetched_at.to_rfc3339(),
        }
    }

    /// The answer as [`ScheduleOut::json`] writes it; a one-day read from the cache is the
    /// day's kept answer (written once per passing slot, then shared).
    pub fn body(
        target: &BookingTarget,
        window: &Window,
        now: chrono::DateTime<chrono::Utc>,
    ) -> bytes::Bytes {
        use crate::domain::booking::schedule::Source;
        match window.days.as_slice() {
            [day] if window.source == Source::Cache && day.zone() == target.zone.tz() => {
                day.answer_at(now, || Self::json(target, window, now).into())
            }
            _ => Self::json(target, window, now).into(),
        }
    }

    /// The answer's JSON, the same bytes as `serde_json::to_string(&ScheduleOut::new(..))`
    /// (fields in the same order), written from each day's ready JSON: nothing of the
    /// days is serialised again, and the slots that have started are cut off as taken.
    pub fn json(
        target: &BookingTarget,
        window: &Window,
        now: chrono::DateTime<chrono::Utc>,
    ) -> String {
        use std::fmt::Write as _;

        use crate::domain::booking::schedule::Source;
        let days: usize = window.days.iter().map(|day| day.json_len() + 1).sum();
        let mut out = String::with_capacity(200 + days);
        // Writing into a String cannot fail.
        let _ = write!(
            out,
            "{{\"specialist_id\":{},\"branch_id\":{},\"timezone\":",
            target.specialist_id, target.branch_id
        );
        match serde_json::to_string(target.zone.name()) {
            Ok(quoted) => out.push_str(&quoted),
            Err(_) => out.push_str("\"\""),
        }
        out.push_str(",\"days\":[");
        for (i, day) in window.days.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            day.write_json(target.zone.tz(), now, &mut out);
        }
        out.push_str("],\"source\":\"");
        out.push_str(match window.source {
            Source::Cache => "cache",
            Source::Mis => "mis",
            Source::Stale => "stale",
        });
        out.push_str("\",\"fetched_at\":\"");
        out.push_str(&window.fetched_at.to_rfc3339());
        out.push_str("\"}");
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
    use chrono_tz::Tz;

    use super::*;
    use crate::domain::{
        booking::{
            grid::{DayGrid, GridInterval},
            ready::ReadyDay,
            schedule::Source,
        },
        values::BranchZone,
    };

    fn day(date: &str, starts: &[(u32, u32, i64)]) -> Arc<ReadyDay> {
        let intervals = starts
            .iter()
            .map(|&(h, m, free_type)| {
                let start = NaiveTime::from_hms_opt(h, m, 0).unwrap();
                GridInterval {
                    start,
                    end: start + chrono::Duration::minutes(30),
                    free_type,
                    schedident: 5,
                }
            })
            .collect();
        let grid = DayGrid {
            date: date.parse::<NaiveDate>().unwrap(),
            intervals,
            fetched_at: Utc.with_ymd_and_hms(2030, 5, 5, 21, 7, 3).unwrap(),
        };
        Arc::new(ReadyDay::new(grid, Tz::Asia__Yekaterinburg))
    }

    #[test]
    fn the_fast_schedule_json_is_the_typed_answer_byte_for_byte() {
        let target = BookingTarget {
            specialist_id: 42,
            specialist_mis_id: 420,
            specialist_name: "Голубев Роман Андреевич".into(),
            branch_id: 7,
            branch_mis_id: 70,
            branch_name: "На Ленина".into(),
            branch_address: "Екатеринбург, пр. Ленина, 1".into(),
            zone: BranchZone(Tz::Asia__Yekaterinburg),
        };
        let days = vec![
            day("2030-05-06", &[(9, 0, 1), (9, 30, 0), (10, 0, 1)]),
            day("2030-05-07", &[]),
            day("2030-05-08", &[(14, 0, 1)]),
        ];
        for source in [Source::Cache, Source::Mis, Source::Stale] {
            let window = Window::new(days.clone(), source);
            for now in [
                Utc.with_ymd_and_hms(2030, 5, 6, 0, 0, 0).unwrap(),
                Utc.with_ymd_and_hms(2030, 5, 6, 4, 0, 0).unwrap(), // 9:00 there
                Utc.with_ymd_and_hms(2030, 5, 6, 4, 40, 0).unwrap(),
                Utc.with_ymd_and_hms(2030, 5, 9, 0, 0, 0).unwrap(),
            ] {
                let typed = serde_json::to_string(&ScheduleOut::new(&target, &window, now))
                    .expect("serialises");
                assert_eq!(ScheduleOut::json(&target, &window, now), typed, "at {now}");
            }
        }
        // One-day reads: the kept answer is the typed one at every moment, written again
        // only when a slot has started since (a cut moves forward, or a clock back).
        for source in [Source::Cache, Source::Mis] {
            let window = Window::new(vec![Arc::clone(&days[0])], source);
            let mut previous: Option<bytes::Bytes> = None;
            for (h, m) in [(0, 0), (3, 59), (4, 0), (4, 10), (4, 40), (0, 0), (23, 0)] {
                let now = Utc.with_ymd_and_hms(2030, 5, 6, h, m, 0).unwrap();
                let typed = serde_json::to_string(&ScheduleOut::new(&target, &window, now))
                    .expect("serialises");
                let body = ScheduleOut::body(&target, &window, now);
                assert_eq!(
                    std::str::from_utf8(&body).unwrap(),
                    typed,
                    "{source:?} at {now}"
                );
                if (h, m) == (3, 59) || (h, m) == (4, 10) {
                    // No slot started since the last read: the very same bytes, if kept.
                    let same = previous
                        .as_ref()
                        .is_some_and(|p| p.as_ptr() == body.as_ptr());
                    assert_eq!(same, source == Source::Cache, "{source:?} at {now}");
                }
                previous = Some(body);
            }
        }
        let empty = Window::new(Vec::new(), Source::Cache);
        let now = Utc::now();
        assert_eq!(
            ScheduleOut::json(&target, &empty, now),
            serde_json::to_string(&ScheduleOut::new(&target, &empty, now)).expect("serialises")
        );
    }
}
