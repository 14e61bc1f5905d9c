//! A week of a doctor's schedule in a branch, as every booking page pages through it: seven
//! days from today or from a multiple of seven days after it, never past the schedule
//! horizon. The doctor page shows the times as links, the pages that move a visit (the
//! patient's record, the visit link, the desk) as radio inputs; one model serves them all.

use std::net::IpAddr;

use chrono::{Days, NaiveDate, Utc};

use crate::{
    app::App,
    domain::{
        booking::{
            BookingError, BookingTarget,
            grid::Slot,
            reading::readable_days,
            schedule::{Source, Window},
        },
        values::BranchZone,
    },
    error::AppError,
    web::labels,
};

/// Days in a week of a picker.
const WEEK_DAYS: u64 = 7;

/// A time of a week.
pub struct WeekSlot {
    /// «15:00».
    pub time: String,
    /// RFC 3339 with the branch's offset, as the forms post it.
    pub start: String,
    /// `start` for a query string (`+` escaped).
    pub start_param: String,
    pub free: bool,
    /// The time a jump to the nearest free time found.
    pub marked: bool,
}

impl WeekSlot {
    fn of(slot: &Slot) -> Self {
        let start = slot.start.to_rfc3339();
        Self {
            time: slot.start.format("%H:%M").to_string(),
            start_param: start.replace('+', "%2B"),
            start,
            free: slot.free,
            marked: false,
        }
    }
}

/// A day of a week.
pub struct WeekDay {
    pub date: NaiveDate,
    /// «Пн 30.11».
    pub heading: String,
    /// «пн, 30 ноября»: legends and screen readers.
    pub title: String,
    /// The grid's times of the day, free and taken, in order.
    pub slots: Vec<WeekSlot>,
    /// Past the schedule horizon: booking for it is not open yet.
    pub closed: bool,
}

impl WeekDay {
    fn new(date: NaiveDate, slots: Vec<WeekSlot>, closed: bool) -> Self {
        Self {
            date,
            heading: labels::week_day_heading(date),
            title: labels::day_month(date),
            slots,
            closed,
        }
    }

    /// The times a patient may still take.
    pub fn free_slots(&self) -> Vec<&WeekSlot> {
        self.slots.iter().filter(|s| s.free).collect()
    }

    pub fn has_free(&self) -> bool {
        self.slots.iter().any(|s| s.free)
    }
}

/// Where the weeks begin and end for a branch today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeekBounds {
    pub today: NaiveDate,
    /// The last day of the schedule horizon.
    pub last: NaiveDate,
}

impl WeekBounds {
    pub fn new(today: NaiveDate, horizon_days: u32) -> Self {
        Self {
            today,
            last: readable_days(today, horizon_days).1,
        }
    }

    /// The bounds of `zone`'s calendar now.
    pub fn of(app: &App, zone: BranchZone) -> Self {
        Self::new(
            zone.today(app.booking.clock.now()),
            app.booking.rules.schedule_horizon_days,
        )
    }

    /// The first day of the week that holds `date`: a day before today is in today's week;
    /// a day past the horizon is in none.
    pub fn start_of(self, date: NaiveDate) -> Option<NaiveDate> {
        if date > self.last {
            return None;
        }
        if date <= self.today {
            return Some(self.today);
        }
        let whole_weeks = (date - self.today).num_days() / 7;
        let offset = u64::try_from(whole_weeks * 7).unwrap_or(0);
        self.today.checked_add_days(Days::new(offset))
    }

    /// The last week that is open for booking.
    pub fn last_start(self) -> NaiveDate {
        self.start_of(self.last).unwrap_or(self.today)
    }

    pub fn prev(self, from: NaiveDate) -> Option<NaiveDate> {
        (from > self.today).then(|| {
            from.checked_sub_days(Days::new(WEEK_DAYS))
                .map_or(self.today, |d| d.max(self.today))
        })
    }

    pub fn next(self, from: NaiveDate) -> Option<NaiveDate> {
        from.checked_add_days(Days::new(WEEK_DAYS))
            .filter(|d| *d <= self.last)
    }
}

/// A week of a doctor in a branch, read.
pub struct Week {
    pub from: NaiveDate,
    /// «30 ноября — 6 декабря»; empty when the week asked for is past the horizon.
    pub title: String,
    /// Seven days (none when the schedule could not be read, or the week is past the
    /// horizon).
    pub days: Vec<WeekDay>,
    pub prev: Option<NaiveDate>,
    pub next: Option<NaiveDate>,
    /// «время Екатеринбурга».
    pub zone_city: String,
    /// The MIS did not answer and the days are its last known copy.
    pub stale: bool,
    /// Why no days are shown, in words.
    pub error: Option<String>,
    /// The page of the week before and after (see [`Week::with_hrefs`]).
    pub prev_href: Option<String>,
    pub next_href: Option<String>,
}

impl Week {
    /// Today's week, not read: `error` says why.
    pub fn unread(bounds: WeekBounds, zone: BranchZone, error: String) -> Self {
        let end = bounds
            .today
            .checked_add_days(Days::new(WEEK_DAYS - 1))
            .unwrap_or(bounds.today);
        Self {
            from: bounds.today,
            title: week_title(bounds.today, end),
            days: Vec::new(),
            prev: None,
            next: bounds.next(bounds.today),
            zone_city: zone.city_time(),
            stale: false,
            error: Some(error),
            prev_href: None,
            next_href: None,
        }
    }

    /// Marks the time that starts at `start` (RFC 3339, as [`WeekSlot::start`]).
    pub fn mark(&mut self, start: &str) {
        for slot in self.days.iter_mut().flat_map(|d| d.slots.iter_mut()) {
            slot.marked = slot.start == start;
        }
    }

    /// The week with the addresses of its neighbours, made by `href` from their first day.
    pub fn with_hrefs(mut self, href: impl Fn(NaiveDate) -> String) -> Self {
        self.prev_href = self.prev.map(&href);
        self.next_href = self.next.map(&href);
        self
    }

    /// No day of the week has a free time (and the week was read).
    pub fn no_free_time(&self) -> bool {
        self.error.is_none() && !self.days.iter().any(WeekDay::has_free)
    }
}

/// Who reads the week: a patient or visitor (from an address, under its limit of reads
/// that miss the cache) or staff (unlimited); each is told of a missing grid in its words.
#[derive(Debug, Clone, Copy)]
pub enum WeekReader {
    Patient(IpAddr),
    Staff,
}

impl WeekReader {
    fn ip(self) -> Option<IpAddr> {
        match self {
            WeekReader::Patient(ip) => Some(ip),
            WeekReader::Staff => None,
        }
    }
}

/// The week holding `wanted` (today's when `None`) of the target, read through the cache.
/// The MIS being down or the reader being over its limit is a message in the week, not an
/// error page; a week past the horizon is a message and no read at all.
pub async fn read_week(
    app: &App,
    target: &BookingTarget,
    wanted: Option<NaiveDate>,
    reader: WeekReader,
) -> Result<Week, AppError> {
    let now = app.booking.clock.now();
    let bounds = WeekBounds::of(app, target.zone);
    let zone_city = target.zone.city_time();
    let Some(from) = bounds.start_of(wanted.unwrap_or(bounds.today)) else {
        return Ok(Week {
            from: bounds.last_start(),
            title: String::new(),
            days: Vec::new(),
            prev: Some(bounds.last_start()),
            next: None,
            zone_city,
            stale: false,
            error: Some(format!(
                "Запись открыта до {} включительно: выберите неделю раньше.",
                labels::day_and_month(bounds.last)
            )),
            prev_href: None,
            next_href: None,
        });
    };
    let end = from
        .checked_add_days(Days::new(WEEK_DAYS - 1))
        .unwrap_or(from);
    let read_to = end.min(bounds.last);
    let (days, stale, error) = match app
        .booking
        .read_schedule(target, from, read_to, reader.ip())
        .await
    {
        Ok(window) => (
            week_days(&window, target.zone, (from, end), bounds.last, now),
            window.source == Source::Stale,
            None,
        ),
        Err(e) => (Vec::new(), false, Some(schedule_gap(e, reader)?)),
    };
    Ok(Week {
        from,
        title: week_title(from, end),
        days,
        prev: bounds.prev(from),
        next: bounds.next(from),
        zone_city,
        stale,
        error,
        prev_href: None,
        next_href: None,
    })
}

/// «30 ноября — 6 декабря».
fn week_title(from: NaiveDate, end: NaiveDate) -> String {
    format!(
        "{} — {}",
        labels::day_and_month(from),
        labels::day_and_month(end)
    )
}

/// The seven days `from..=end` with the window's times; days past `last` are closed.
fn week_days(
    window: &Window,
    zone: BranchZone,
    (from, end): (NaiveDate, NaiveDate),
    last: NaiveDate,
    now: chrono::DateTime<Utc>,
) -> Vec<WeekDay> {
    from.iter_days()
        .take_while(|d| *d <= end)
        .map(|date| {
            let slots = window
                .days
                .iter()
                .filter(|day| day.date == date)
                .flat_map(|day| day.slots(zone.tz(), now))
                .map(|slot| WeekSlot::of(&slot))
                .collect();
            WeekDay::new(date, slots, date > last)
        })
        .collect()
}

/// Why a week shows no days, in words for its reader; other failures stay errors.
pub fn schedule_gap(e: BookingError, reader: WeekReader) -> Result<String, AppError> {
    match (e, reader) {
        (BookingError::MisUnavailable(_) | BookingError::MisRefused(_), WeekReader::Staff) => Ok(
            "Сетка расписания сейчас недоступна: МИС не отвечает. Записи, сделанные через этот сайт, видны."
                .to_owned(),
        ),
        (BookingError::MisUnavailable(_) | BookingError::MisRefused(_), _) => {
            Ok("Расписание сейчас недоступно: МИС не отвечает. Попробуйте позже.".to_owned())
        }
        (BookingError::RateLimited { retry_after_secs }, _) => Ok(format!(
            "Слишком много запросов расписания с вашего адреса. Повторите через {retry_after_secs} с."
        )),
        (BookingError::Invalid(errors), _) => Ok(errors
            .get("date_from")
            .or(errors.get("date_to"))
            .unwrap_or("Расписание на эти дни недоступно")
            .to_owned()),
        (other, _) => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn weeks_run_seven_days_from_today_up_to_the_horizon() {
        let bounds = WeekBounds::new(day("2026-11-30"), 20);
        assert_eq!(bounds.last, day("2026-12-20"));
        assert_eq!(bounds.start_of(day("2026-11-01")), Some(day("2026-11-30")));
        assert_eq!(bounds.start_of(day("2026-11-30")), Some(day("2026-11-30")));
        assert_eq!(bounds.start_of(day("2026-12-06")), Some(day("2026-11-30")));
        assert_eq!(bounds.start_of(day("2026-12-07")), Some(day("2026-12-07")));
        assert_eq!(bounds.start_of(day("2026-12-20")), Some(day("2026-12-14")));
        assert_eq!(bounds.start_of(day("2026-12-21")), None);
        assert_eq!(bounds.last_start(), day("2026-12-14"));
        assert_eq!(bounds.prev(day("2026-11-30")), None);
        assert_eq!(bounds.prev(day("2026-12-07")), Some(day("2026-11-30")));
        assert_eq!(bounds.next(day("2026-12-07")), Some(day("2026-12-14")));
        assert_eq!(bounds.next(day("2026-12-14")), None);
    }
}
