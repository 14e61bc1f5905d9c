//! Visits as iCalendar (RFC 5545), written with the `icalendar` crate: one visit's `.ics`
//! and a patient's feed.
//!
//! - `UID` is `record-<id>@<host of PUBLIC_BASE_URL>`, the same in every file and feed, so a
//!   calendar app treats a re-imported or refreshed visit as the same event;
//! - `SEQUENCE` is `records.calendar_sequence` and `STATUS` `CONFIRMED` or `CANCELLED`, so a
//!   moved or cancelled visit updates the event instead of leaving a ghost;
//! - `DTSTART`/`DTEND` are UTC instants (`…Z`). The crate writes no `VTIMEZONE`, and a bare
//!   `TZID` without one is invalid, so the instant is given unambiguously and every app shows
//!   it in its own zone; the branch's zone goes with a single visit as `X-WR-TIMEZONE`, and
//!   the description says the time as the branch's clocks show it («время Екатеринбурга»).

use chrono::{DateTime, Utc};
use icalendar::{Calendar, Component, Event, EventLike, EventStatus, Property};

use crate::{
    db::models::record::RecordView,
    domain::{
        booking::{calendar::CalendarVisit, notify},
        values::RecordStatus,
    },
};

/// What every event needs besides its visit.
pub struct IcsFacts<'a> {
    /// The host of `PUBLIC_BASE_URL`, for the events' UIDs.
    pub host: &'a str,
    /// `CLINIC_PHONE`.
    pub clinic_phone: &'a str,
    /// When the calendar is written (`DTSTAMP`).
    pub now: DateTime<Utc>,
}

/// The host of a base URL, for UIDs; `sovamed.invalid` when it has none.
pub fn host_of(base_url: &str) -> String {
    reqwest::Url::parse(base_url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_else(|| "sovamed.invalid".to_owned())
}

/// The event's UID: stable per record.
pub fn uid(record_id: i64, host: &str) -> String {
    format!("record-{record_id}@{host}")
}

/// «Приём: Кардиолог — Голубев Р. А.».
fn summary(view: &RecordView) -> String {
    let doctor = notify::surname_initials(&view.specialist_name);
    if view.specialities.is_empty() {
        format!("Приём: {doctor}")
    } else {
        format!("Приём: {} — {doctor}", view.specialities.join(", "))
    }
}

fn description(view: &RecordView, link: Option<&str>, clinic_phone: &str) -> String {
    let mut lines = Vec::new();
    if view.record.status == RecordStatus::Cancelled {
        lines.push("Запись отменена.".to_owned());
    }
    lines.push(format!("{}, {}", view.branch_name, view.branch_address));
    lines.push(format!(
        "{}, {}",
        notify::spoken_when(view.local_start()),
        view.branch_zone.city_time()
    ));
    lines.push(format!("Телефон клиники: {clinic_phone}"));
    if let Some(link) = link {
        lines.push(format!("Перенести или отменить: {link}"));
    }
    lines.join("\n")
}

/// One visit as an event; `link` is where its patient manages it (left out once cancelled).
fn event(visit: &CalendarVisit, link: Option<&str>, facts: &IcsFacts<'_>) -> Event {
    let view = &visit.view;
    let cancelled = view.record.status == RecordStatus::Cancelled;
    let link = link.filter(|_| !cancelled);
    let status = if cancelled {
        EventStatus::Cancelled
    } else {
        EventStatus::Confirmed
    };
    let mut event = Event::new();
    event
        .uid(&uid(view.record.id, facts.host))
        .timestamp(facts.now)
        .sequence(u32::try_from(visit.sequence).unwrap_or_default())
        .summary(&summary(view))
        .description(&description(view, link, facts.clinic_phone))
        .location(&view.branch_address)
        .starts(view.record.starts_at)
        .ends(view.record.ends_at)
        .status(status);
    if let Some(link) = link {
        event.url(link);
    }
    event.done()
}

/// An empty calendar named `name`, published (not an invitation).
fn calendar(name: &str) -> Calendar {
    let mut calendar = Calendar::empty();
    calendar
        .append_property(Property::new("VERSION", "2.0"))
        .append_property(Property::new("PRODID", "-//Sovamed//Cabinet//RU"))
        .append_property(Property::new("CALSCALE", "GREGORIAN"))
        .append_property(Property::new("METHOD", "PUBLISH"))
        .append_property(Property::new("X-WR-CALNAME", name));
    calendar
}

/// The `.ics` of one visit, to add to a calendar.
pub fn visit_calendar(visit: &CalendarVisit, link: Option<&str>, facts: &IcsFacts<'_>) -> String {
    let mut calendar = calendar("Совамед");
    calendar.append_property(Property::new(
        "X-WR-TIMEZONE",
        visit.view.branch_zone.name(),
    ));
    calendar.push(event(visit, link, facts));
    calendar.to_string()
}

/// A patient's feed: every visit with its cabinet page (`link_of` its record id). Apps are
/// asked to refresh it hourly.
pub fn feed_calendar(
    visits: &[CalendarVisit],
    link_of: impl Fn(i64) -> String,
    facts: &IcsFacts<'_>,
) -> String {
    let mut calendar = calendar("Совамед: мои визиты");
    calendar
        .append_property(Property::new("X-PUBLISHED-TTL", "PT1H"))
        .append_property(
            Property::new("REFRESH-INTERVAL", "PT1H")
                .add_parameter("VALUE", "DURATION")
                .done(),
        );
    for visit in visits {
        let link = link_of(visit.view.record.id);
        calendar.push(event(visit, Some(&link), facts));
    }
    calendar.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_carry_the_record_and_the_site() {
        assert_eq!(host_of("https://lk.sovamed.ru"), "lk.sovamed.ru");
        assert_eq!(host_of("http://127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(host_of("not a url"), "sovamed.invalid");
        assert_eq!(uid(42, "lk.sovamed.ru"), "record-42@lk.sovamed.ru");
    }
}
