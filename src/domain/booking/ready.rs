//! A day of a doctor's grid ready to serve, as the in-process level of the schedule cache
//! keeps it: the slots as instants sorted by start, and each slot already written as the
//! schedule API's JSON, once taken and once as the MIS gave it.
//!
//! "A slot that has started is never free" is then a cut, not a pass over the day: the
//! slots before `now` are served in their taken form and the rest as the MIS gave them, two
//! slices of text joined by a comma. Nothing is serialised again on a hit.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use super::grid::{DayGrid, GridInterval, Slot};

/// One day of one doctor in one branch, ready to serve.
#[derive(Debug)]
pub struct ReadyDay {
    pub date: NaiveDate,
    /// When the MIS gave this day.
    pub fetched_at: DateTime<Utc>,
    /// The day as Redis and PostgreSQL keep it.
    grid: DayGrid,
    /// The zone the slots below are in (the branch's).
    zone: Tz,
    /// Sorted by start; `free` as the MIS says, before the cut at now.
    slots: Vec<Slot>,
    /// `{"date":"2030-05-06","slots":[`
    opening: String,
    /// Every slot in its taken form, separated by commas; slot `i` ends at `taken_ends[i]`.
    taken: String,
    taken_ends: Vec<usize>,
    /// Every slot as the MIS gave it (free or taken), separated by commas; slot `i` starts
    /// at `given_starts[i]`.
    given: String,
    given_starts: Vec<usize>,
    /// The last whole answer of a one-day read (see [`ReadyDay::answer_at`]).
    answer: ArcSwapOption<KeptAnswer>,
}

/// A whole answer, and the cut at now it was written at.
#[derive(Debug)]
struct KeptAnswer {
    cut: usize,
    body: Bytes,
}

impl ReadyDay {
    /// The day's slots in `zone`, sorted and written out once.
    pub fn new(grid: DayGrid, zone: Tz) -> Self {
        // Free as the MIS says: nothing is before the earliest instant.
        let mut slots = grid.slots(zone, DateTime::<Utc>::MIN_UTC);
        // Wall times map to instants in order (a fold takes the earlier instant), so this
        // stable sort keeps the grid's order; it is what makes the cut at now a cut.
        slots.sort_by_key(|slot| slot.start.with_timezone(&Utc));
        let opening = format!("{{\"date\":\"{}\",\"slots\":[", grid.date);
        let (mut taken, mut given) = (String::new(), String::new());
        let mut taken_ends = Vec::with_capacity(slots.len());
        let mut given_starts = Vec::with_capacity(slots.len());
        for (i, slot) in slots.iter().enumerate() {
            if i > 0 {
                taken.push(',');
                given.push(',');
            }
            write_slot(&mut taken, slot, false);
            taken_ends.push(taken.len());
            given_starts.push(given.len());
            write_slot(&mut given, slot, slot.free);
        }
        Self {
            date: grid.date,
            fetched_at: grid.fetched_at,
            grid,
            zone,
            slots,
            opening,
            taken,
            taken_ends,
            given,
            given_starts,
            answer: ArcSwapOption::empty(),
        }
    }

    /// The zone the day was made ready in.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The whole answer of a read of this day alone at `now`, as `write` writes it, kept
    /// until the next slot starts: the answer changes only when a slot passes (the day itself
    /// changes by replacement, never in place), so every hit in between gets the same bytes,
    /// shared, with nothing written or copied. `write` must depend on nothing but the day,
    /// its doctor and branch (which its cache key fixes) and the cut at `now`.
    pub fn answer_at(&self, now: DateTime<Utc>, write: impl FnOnce() -> Bytes) -> Bytes {
        let cut = self.cut(now);
        if let Some(kept) = self.answer.load().as_ref()
            && kept.cut == cut
        {
            return kept.body.clone();
        }
        let body = write();
        self.answer.store(Some(Arc::new(KeptAnswer {
            cut,
            body: body.clone(),
        })));
        body
    }

    /// The day as Redis and PostgreSQL keep it.
    pub fn grid(&self) -> &DayGrid {
        &self.grid
    }

    /// How many slots start at or before `now` (and so are never free).
    fn cut(&self, now: DateTime<Utc>) -> usize {
        self.slots
            .partition_point(|slot| slot.start.with_timezone(&Utc) <= now)
    }

    /// The day's slots in `zone`; free only when the MIS says so and the start is after
    /// `now` (as [`DayGrid::slots`]).
    pub fn slots(&self, zone: Tz, now: DateTime<Utc>) -> Vec<Slot> {
        if zone != self.zone {
            return self.grid.slots(zone, now);
        }
        let cut = self.cut(now);
        self.slots
            .iter()
            .enumerate()
            .map(|(i, slot)| Slot {
                free: slot.free && i >= cut,
                ..slot.clone()
            })
            .collect()
    }

    /// Appends the day as the schedule API writes it, `{"date":…,"slots":[…]}`, with the
    /// slots that start at or before `now` taken.
    pub fn write_json(&self, zone: Tz, now: DateTime<Utc>, out: &mut String) {
        out.push_str(&self.opening);
        if zone == self.zone {
            let cut = self.cut(now);
            let past = cut
                .checked_sub(1)
                .and_then(|last| self.taken_ends.get(last))
                .and_then(|&end| self.taken.get(..end))
                .unwrap_or("");
            let ahead = self
                .given_starts
                .get(cut)
                .and_then(|&start| self.given.get(start..))
                .unwrap_or("");
            out.push_str(past);
            if !past.is_empty() && !ahead.is_empty() {
                out.push(',');
            }
            out.push_str(ahead);
        } else {
            // The branch moved to another zone since this day was read: written afresh.
            for (i, slot) in self.grid.slots(zone, now).iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_slot(out, slot, slot.free);
            }
        }
        out.push_str("]}");
    }

    /// An upper bound of what [`ReadyDay::write_json`] appends.
    pub fn json_len(&self) -> usize {
        self.opening.len() + self.given.len().max(self.taken.len()) + 2
    }

    /// The bytes this day holds, for the cache's size bound.
    pub fn weight(&self) -> u32 {
        let bytes = std::mem::size_of::<Self>()
            + self.opening.capacity()
            + self.taken.capacity()
            + self.given.capacity()
            + (self.taken_ends.capacity() + self.given_starts.capacity())
                * std::mem::size_of::<usize>()
            + self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.grid.intervals.capacity() * std::mem::size_of::<GridInterval>()
            // The kept answer, once a read asks for it: the day's JSON and the envelope.
            + self.json_len()
            + 256;
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }
}

/// One slot as the schedule API writes it (`SlotOut`: start, end, free); RFC 3339 times need
/// no escaping.
fn write_slot(out: &mut String, slot: &Slot, free: bool) {
    out.push_str("{\"start\":\"");
    out.push_str(&slot.start.to_rfc3339());
    out.push_str("\",\"end\":\"");
    out.push_str(&slot.end.to_rfc3339());
    out.push_str(if free {
        "\",\"free\":true}"
    } else {
        "\",\"free\":false}"
    });
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveTime, TimeZone};

    use super::*;

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("time")
    }

    fn interval(h: u32, m: u32, free_type: i64) -> GridInterval {
        let start = t(h, m);
        GridInterval {
            start,
            end: start + chrono::Duration::minutes(30),
            free_type,
            schedident: 7,
        }
    }

    /// Three slots (9:00 free, 9:30 taken, 10:00 free) on 2030-05-06 in Moscow.
    fn day() -> ReadyDay {
        let grid = DayGrid {
            date: NaiveDate::from_ymd_opt(2030, 5, 6).expect("date"),
            intervals: vec![interval(9, 0, 1), interval(9, 30, 0), interval(10, 0, 1)],
            fetched_at: Utc::now(),
        };
        ReadyDay::new(grid, Tz::Europe__Moscow)
    }

    fn moscow(h: u32, m: u32) -> DateTime<Utc> {
        Tz::Europe__Moscow
            .with_ymd_and_hms(2030, 5, 6, h, m, 0)
            .single()
            .expect("instant")
            .with_timezone(&Utc)
    }

    /// The JSON written slot by slot from the typed slots, as the API's types would.
    fn expected(day: &ReadyDay, now: DateTime<Utc>) -> String {
        let slots: Vec<String> = day
            .slots(Tz::Europe__Moscow, now)
            .iter()
            .map(|s| {
                format!(
                    "{{\"start\":\"{}\",\"end\":\"{}\",\"free\":{}}}",
                    s.start.to_rfc3339(),
                    s.end.to_rfc3339(),
                    s.free
                )
            })
            .collect();
        format!(
            "{{\"date\":\"2030-05-06\",\"slots\":[{}]}}",
            slots.join(",")
        )
    }

    #[test]
    fn slots_that_have_started_are_cut_off_as_taken() {
        let day = day();
        for (now, free) in [
            (moscow(8, 0), [true, false, true]),
            (moscow(9, 0), [false, false, true]),
            (moscow(9, 45), [false, false, true]),
            (moscow(10, 0), [false, false, false]),
            (moscow(23, 0), [false, false, false]),
        ] {
            let slots = day.slots(Tz::Europe__Moscow, now);
            let got: Vec<bool> = slots.iter().map(|s| s.free).collect();
            assert_eq!(got, free, "at {now}");
            // The same answer as the grid's own pass over the day.
            assert_eq!(slots, day.grid().slots(Tz::Europe__Moscow, now), "at {now}");
            let mut json = String::new();
            day.write_json(Tz::Europe__Moscow, now, &mut json);
            assert_eq!(json, expected(&day, now), "at {now}");
            assert!(json.len() <= day.json_len());
            assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
        }
    }

    #[test]
    fn an_empty_day_and_another_zone_are_written_too() {
        let empty = ReadyDay::new(
            DayGrid {
                date: NaiveDate::from_ymd_opt(2030, 5, 6).expect("date"),
                intervals: Vec::new(),
                fetched_at: Utc::now(),
            },
            Tz::Europe__Moscow,
        );
        let mut json = String::new();
        empty.write_json(Tz::Europe__Moscow, moscow(8, 0), &mut json);
        assert_eq!(json, "{\"date\":\"2030-05-06\",\"slots\":[]}");

        // Read in Moscow, the branch now in Yekaterinburg: written afresh in its zone.
        let day = day();
        let mut json = String::new();
        day.write_json(Tz::Asia__Yekaterinburg, moscow(8, 0), &mut json);
        assert!(
            json.contains("\"start\":\"2030-05-06T09:00:00+05:00\""),
            "{json}"
        );
        assert_eq!(
            day.slots(Tz::Asia__Yekaterinburg, moscow(8, 0)),
            day.grid().slots(Tz::Asia__Yekaterinburg, moscow(8, 0))
        );
    }

    #[test]
    fn a_day_weighs_at_least_its_text_and_grows_with_its_slots() {
        let small = day();
        let intervals: Vec<GridInterval> = (8..20)
            .flat_map(|h| [interval(h, 0, 1), interval(h, 30, 0)])
            .collect();
        let big = ReadyDay::new(
            DayGrid {
                date: NaiveDate::from_ymd_opt(2030, 5, 6).expect("date"),
                intervals,
                fetched_at: Utc::now(),
            },
            Tz::Europe__Moscow,
        );
        for day in [&small, &big] {
            let text = day.opening.len() + day.taken.len() + day.given.len();
            let weight = usize::try_from(day.weight()).expect("fits");
            assert!(weight >= text + std::mem::size_of::<ReadyDay>());
        }
        assert!(big.weight() > small.weight() * 3, "24 slots against 3");
    }
}
