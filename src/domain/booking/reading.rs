//! Reading a doctor's schedule for people: only days from yesterday to the schedule
//! horizon exist to read (a read of year 9999 must not reach the MIS or store a snapshot),
//! and a client whose reads miss the cache, each costing an MIS call and a snapshot, is
//! limited per minute. Staff pages read without the per-client limit. The pickers' two
//! questions are asked here too: is this time still bookable, and where is the first free
//! time.

use std::{net::IpAddr, time::Duration};

use chrono::{DateTime, Days, NaiveDate, Utc};

use super::{
    Booking, BookingError, BookingTarget,
    grid::Slot,
    schedule::{ScheduleError, Window},
};
use crate::domain::{directory_snapshot::Resolved, rate, values::FieldErrors};

/// The days a schedule read may ask for, in the branch's calendar: yesterday (a visit that
/// ran past midnight is still looked up) to today plus the horizon.
pub fn readable_days(today: NaiveDate, horizon_days: u32) -> (NaiveDate, NaiveDate) {
    (
        today.checked_sub_days(Days::new(1)).unwrap_or(today),
        today
            .checked_add_days(Days::new(u64::from(horizon_days)))
            .unwrap_or(today),
    )
}

/// Why a window is refused, by field, in words.
pub fn check_window(
    (first, last): (NaiveDate, NaiveDate),
    from: NaiveDate,
    to: NaiveDate,
) -> Result<(), FieldErrors> {
    let say = |field: &str| {
        let mut errors = FieldErrors::new();
        errors.add_message(
            field,
            format!(
                "Расписание доступно с {} по {}",
                first.format("%d.%m.%Y"),
                last.format("%d.%m.%Y")
            ),
        );
        errors
    };
    if from < first || from > last {
        return Err(say("date_from"));
    }
    if to > last {
        return Err(say("date_to"));
    }
    Ok(())
}

impl Booking {
    /// The doctor in the branch for a read (a schedule, a picker), from the directory in
    /// memory: no PostgreSQL, the same refusals as [`Booking::target`]. A doctor or branch
    /// the snapshot does not know (added a moment ago, elsewhere) is looked up in
    /// PostgreSQL, and the snapshot rebuilt soon.
    ///
    /// Reads only: booking, moving and cancelling keep the strict [`Booking::target`], which
    /// asks PostgreSQL, so a snapshot that has not yet heard of a deactivation can never
    /// book a doctor or branch that no longer takes patients.
    pub async fn read_target(
        &self,
        specialist_id: i64,
        branch_id: i64,
    ) -> Result<BookingTarget, BookingError> {
        match self.directory.resolve(specialist_id, branch_id) {
            Resolved::Target(target) => Ok(target),
            Resolved::Refused(refusal) => Err(BookingError::Target(refusal)),
            Resolved::Unknown => {
                self.directory.reload_soon();
                self.target(specialist_id, branch_id).await
            }
        }
    }

    /// `from..=to` of the target's grid, for a reader at `reader` (`None`: staff, unlimited).
    pub async fn read_schedule(
        &self,
        target: &BookingTarget,
        from: NaiveDate,
        to: NaiveDate,
        reader: Option<IpAddr>,
    ) -> Result<Window, BookingError> {
        let today = target.zone.today(self.clock.now());
        check_window(
            readable_days(today, self.rules.schedule_horizon_days),
            from,
            to,
        )?;
        let grid = target.grid();
        // Days this process holds cost neither Redis nor the reader's limit.
        if let Some(window) = self.schedule.from_memory(&grid, from, to) {
            return Ok(window);
        }
        if let Some(ip) = reader
            && !self.schedule.is_cached(&grid, from, to).await
        {
            let counter = rate::Counter::new(
                format!("schedmiss:{}", rate::client_key(ip)),
                self.rules.uncached_reads_per_minute,
            );
            if let Err(retry_after_secs) =
                rate::hit(&self.redis, &[counter], Duration::from_secs(60)).await?
            {
                return Err(BookingError::RateLimited { retry_after_secs });
            }
        }
        self.schedule
            .window(&grid, from, to)
            .await
            .map_err(|e: ScheduleError| e.into())
    }

    /// The slot that starts at `start`, refused as a booking would refuse it (passed, not a
    /// slot of the grid, taken), but read like any schedule read of `reader`: through the
    /// cache and within the horizon and the reader's limit. The confirmation page asks it
    /// before anyone presses the button.
    pub async fn bookable_slot(
        &self,
        target: &BookingTarget,
        start: DateTime<Utc>,
        reader: Option<IpAddr>,
    ) -> Result<Slot, BookingError> {
        let now = self.clock.now();
        if start <= now {
            return Err(BookingError::StartInPast);
        }
        let date = target.zone.local(&start).date_naive();
        let window = self.read_schedule(target, date, date, reader).await?;
        let slot = window
            .days
            .iter()
            .flat_map(|day| day.slots(target.zone.tz(), now))
            .find(|slot| slot.start.with_timezone(&Utc) == start);
        match slot {
            Some(slot) if slot.free => Ok(slot),
            Some(_) => Err(BookingError::SlotTaken),
            None => Err(BookingError::NotASlot),
        }
    }

    /// The first free slot from today to the horizon, read a week at a time (weeks of seven
    /// days from today, as the pickers show them) and stopping at the first week that has
    /// one; `None` when no day up to the horizon has a free slot.
    pub async fn first_free_slot(
        &self,
        target: &BookingTarget,
        reader: Option<IpAddr>,
    ) -> Result<Option<Slot>, BookingError> {
        let now = self.clock.now();
        let today = target.zone.today(now);
        let (_, last) = readable_days(today, self.rules.schedule_horizon_days);
        let mut from = today;
        while from <= last {
            let to = from
                .checked_add_days(Days::new(6))
                .map_or(last, |end| end.min(last));
            let window = self.read_schedule(target, from, to, reader).await?;
            let free = window
                .days
                .iter()
                .flat_map(|day| day.slots(target.zone.tz(), now))
                .find(|slot| slot.free);
            if free.is_some() {
                return Ok(free);
            }
            match to.checked_add_days(Days::new(1)) {
                Some(next) => from = next,
                None => break,
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn reads_run_from_yesterday_to_the_horizon() {
        let bounds = readable_days(day("2026-11-30"), 90);
        assert_eq!(bounds, (day("2026-11-29"), day("2027-02-28")));
        assert!(check_window(bounds, day("2026-11-29"), day("2026-11-30")).is_ok());
        assert!(check_window(bounds, day("2027-02-28"), day("2027-02-28")).is_ok());
        let past = check_window(bounds, day("2026-11-28"), day("2026-11-30")).unwrap_err();
        assert!(past.get("date_from").unwrap().contains("29.11.2026"));
        let far = check_window(bounds, day("2027-02-20"), day("2027-03-01")).unwrap_err();
        assert!(far.get("date_to").unwrap().contains("28.02.2027"));
        assert!(check_window(bounds, day("9999-01-01"), day("9999-01-01")).is_err());
    }
}
