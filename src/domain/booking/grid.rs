//! A doctor's day grid as the MIS gives it (branch-local wall times) and its conversion to
//! instants in the branch's zone. Slots that start in the past are never free.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::integrations::infoclinica::{MisDaySchedule, MisInterval};

/// One interval of the grid, stored in the cache and in snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridInterval {
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub free_type: i64,
    pub schedident: i64,
}

/// One day of one doctor in one branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayGrid {
    pub date: NaiveDate,
    pub intervals: Vec<GridInterval>,
    pub fetched_at: DateTime<Utc>,
}

/// A slot as clients see it: instants in the branch's zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub start: DateTime<Tz>,
    pub end: DateTime<Tz>,
    pub free: bool,
    pub schedident: i64,
}

impl From<&MisInterval> for GridInterval {
    fn from(i: &MisInterval) -> Self {
        Self {
            start: i.start,
            end: i.end,
            free_type: i.free_type,
            schedident: i.schedident,
        }
    }
}

/// The instant of a branch-local wall time. In a DST fold the earlier instant is taken; a
/// wall time that does not exist (DST gap) has no instant.
pub fn local_instant(zone: Tz, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Tz>> {
    match zone.from_local_datetime(&date.and_time(time)) {
        LocalResult::Single(t) => Some(t),
        LocalResult::Ambiguous(earliest, _) => Some(earliest),
        LocalResult::None => None,
    }
}

impl DayGrid {
    /// Days of the MIS answer for `from..=to`; a day the MIS did not mention is an empty day.
    pub fn from_mis(
        days: &[MisDaySchedule],
        from: NaiveDate,
        to: NaiveDate,
        fetched_at: DateTime<Utc>,
    ) -> Vec<DayGrid> {
        from.iter_days()
            .take_while(|d| *d <= to)
            .map(|date| {
                let mut intervals: Vec<GridInterval> = days
                    .iter()
                    .filter(|d| d.date == date)
                    .flat_map(|d| d.intervals.iter().map(GridInterval::from))
                    .collect();
                intervals.sort_by_key(|i| (i.start, i.schedident));
                DayGrid {
                    date,
                    intervals,
                    fetched_at,
                }
            })
            .collect()
    }

    /// The day's slots in `zone`; free only when the MIS says so and the start is after `now`.
    pub fn slots(&self, zone: Tz, now: DateTime<Utc>) -> Vec<Slot> {
        self.intervals
            .iter()
            .filter_map(|i| {
                let start = local_instant(zone, self.date, i.start)?;
                // The length comes from the wall times; the end is start + length, so a slot
                // that ends inside a DST gap still has its real duration.
                let end = start + (i.end - i.start);
                (end > start).then(|| Slot {
                    free: i.free_type == 1 && start.with_timezone(&Utc) > now,
                    start,
                    end,
                    schedident: i.schedident,
                })
            })
            .collect()
    }

    /// The starts of the day's free slots in `zone` as instants, past ones included: whether
    /// a start is still ahead is decided when it is read (the stored copy outlives the hour).
    pub fn free_starts(&self, zone: Tz) -> Vec<DateTime<Utc>> {
        let mut starts: Vec<DateTime<Utc>> = self
            .slots(zone, DateTime::<Utc>::MIN_UTC)
            .into_iter()
            .filter(|slot| slot.free)
            .map(|slot| slot.start.with_timezone(&Utc))
            .collect();
        // In order: the stored array's first element is the day's first free start
        // (`schedule_snapshots.first_free`, which the doctor list seeks by).
        starts.sort_unstable();
        starts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("time")
    }

    #[test]
    fn nine_local_in_yekaterinburg_is_nine_plus_five() {
        let date = NaiveDate::from_ymd_opt(2030, 3, 18).expect("date");
        let start = local_instant(Tz::Asia__Yekaterinburg, date, t(9, 0)).expect("exists");
        assert_eq!(start.to_rfc3339(), "2030-03-18T09:00:00+05:00");
    }

    #[test]
    fn dst_gaps_are_skipped_and_folds_take_the_earlier_instant() {
        // Berlin: 2030-03-31 02:00 → 03:00; 2030-10-27 03:00 → 02:00.
        let spring = NaiveDate::from_ymd_opt(2030, 3, 31).expect("date");
        assert!(local_instant(Tz::Europe__Berlin, spring, t(2, 30)).is_none());
        let grid = DayGrid {
            date: spring,
            intervals: vec![
                GridInterval {
                    start: t(1, 30),
                    end: t(2, 0),
                    free_type: 1,
                    schedident: 1,
                },
                GridInterval {
                    start: t(2, 0),
                    end: t(2, 30),
                    free_type: 1,
                    schedident: 1,
                },
                GridInterval {
                    start: t(3, 0),
                    end: t(3, 30),
                    free_type: 1,
                    schedident: 1,
                },
            ],
            fetched_at: Utc::now(),
        };
        let slots = grid.slots(
            Tz::Europe__Berlin,
            Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
                .single()
                .expect("now"),
        );
        assert_eq!(slots.len(), 2, "the slot inside the gap has no instant");
        assert_eq!(slots[1].start.to_rfc3339(), "2030-03-31T03:00:00+02:00");
        let autumn = NaiveDate::from_ymd_opt(2030, 10, 27).expect("date");
        let fold = local_instant(Tz::Europe__Berlin, autumn, t(2, 30)).expect("exists");
        assert_eq!(fold.to_rfc3339(), "2030-10-27T02:30:00+02:00");
    }

    #[test]
    fn past_slots_are_never_free() {
        let date = NaiveDate::from_ymd_opt(2030, 5, 6).expect("date");
        let grid = DayGrid {
            date,
            intervals: vec![
                GridInterval {
                    start: t(9, 0),
                    end: t(9, 30),
                    free_type: 1,
                    schedident: 7,
                },
                GridInterval {
                    start: t(9, 30),
                    end: t(10, 0),
                    free_type: 1,
                    schedident: 7,
                },
            ],
            fetched_at: Utc::now(),
        };
        let now = Utc
            .with_ymd_and_hms(2030, 5, 6, 6, 15, 0)
            .single()
            .expect("now"); // 09:15 Moscow
        let slots = grid.slots(Tz::Europe__Moscow, now);
        assert!(!slots[0].free);
        assert!(slots[1].free);
        // The stored free starts keep the past one; the reader compares them with its now.
        let starts = grid.free_starts(Tz::Europe__Moscow);
        assert_eq!(starts.len(), 2);
        assert_eq!(starts[0].to_rfc3339(), "2030-05-06T06:00:00+00:00");
    }
}
