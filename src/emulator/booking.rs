//! The booking side of the emulated MIS: doctors' work periods cut into intervals, the
//! appointments made through `SCHEDULE_REC_RESERVE`, the patient cards, and the clock that
//! decides what is already past.
//!
//! Work periods are not stored: they are a pure function of the seed, the doctor, the
//! branch and the date, so they exist for any "today" the clock says. Every visible doctor
//! works in each of their branches from [`DAYS_BACK`] days ago to [`DAYS_AHEAD`] days ahead
//! of the branch's local today, Monday to Saturday (a doctor in two branches works in the
//! home one on Monday, Wednesday and Friday and in the other on the remaining days; one
//! single-branch doctor in four has a weekday off), one or two periods a day (a morning of
//! four hours from 8, 9 or 10 o'clock and/or an afternoon of four hours from 14 or 15),
//! cut into [`SLOT_MINUTES`]-minute intervals. About [`TAKEN_PERCENT`] % of the intervals are
//! taken by other patients from the start (deterministically); appointments made through
//! the protocol or [`World::take_interval`] are stored in [`Booking::appointments`].
//!
//! All times are branch-local wall-clock times: "now" in a branch is the emulator clock
//! ([`Clock`], real UTC time or a fixed instant, plus an offset) shifted by the branch's
//! `TIMEZONE`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc,
    Weekday,
};
use rand::{Rng, SeedableRng, rngs::StdRng};

use super::world::{World, person_name};

/// Length of one interval of the grid.
pub const SLOT_MINUTES: i64 = 30;
/// The schedule starts this many days before the branch's today.
pub const DAYS_BACK: i64 = 7;
/// … and ends this many days after it.
pub const DAYS_AHEAD: i64 = 28;
/// Share of intervals taken by other patients from the start, in percent.
pub const TAKEN_PERCENT: u64 = 25;
/// Patient cards that exist from the start (the "other patients").
pub const SEED_PATIENTS: usize = 30;
/// The first PCODE: patients created over the web start with 99 (§1.6).
const FIRST_PCODE: i64 = 990_000_001;

/// The emulator's clock: real time, or a fixed instant, plus an offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Clock {
    /// Added to the base instant (positive: the emulator lives in the future).
    pub offset: Duration,
    /// The base instant instead of the real time.
    pub fixed: Option<DateTime<Utc>>,
}

impl Clock {
    /// The emulator's "now".
    pub fn now(&self) -> DateTime<Utc> {
        self.fixed.unwrap_or_else(Utc::now) + self.offset
    }
}

/// One work period (`SCHEDIDENT`): a doctor, a branch, a date, a span of wall-clock time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkPeriod {
    pub schedident: i64,
    pub doctor_mis_id: i64,
    pub branch_mis_id: i64,
    pub department_mis_id: i64,
    pub date: NaiveDate,
    pub start: NaiveTime,
    pub end: NaiveTime,
    /// `RNUM`.
    pub room: String,
}

/// An appointment (`SCHEDID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appointment {
    pub schedid: i64,
    pub pcode: i64,
    pub doctor_mis_id: i64,
    pub branch_mis_id: i64,
    pub department_mis_id: i64,
    pub date: NaiveDate,
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub schedident: i64,
}

/// A patient card (`PCODE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patient {
    pub pcode: i64,
    pub last_name: String,
    pub first_name: String,
    /// Empty when the patient has none.
    pub middle_name: String,
    pub birth_date: Option<NaiveDate>,
    /// In the MIS format `+7(916)123-45-67`, or empty.
    pub phone: String,
    /// Empty when unknown.
    pub email: String,
}

impl Patient {
    /// "Фамилия Имя Отчество".
    pub fn full_name(&self) -> String {
        [&self.last_name, &self.first_name, &self.middle_name]
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What a change of the feed did (`CHANGEOP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    Added = 0,
    Changed = 1,
    Deleted = 2,
}

/// One item of the change feed (`SCHEDULE_CHANGE_LIST`, §2.13): every booking, move,
/// cancel and visit mark, whoever made it (the web, or the clinic's front desk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub change_id: i64,
    pub op: ChangeOp,
    pub appointment: Appointment,
    /// `CLVISIT`: the patient attended.
    pub visited: bool,
    /// Confirmed with `SCHEDULE_CHANGE_ACCEPT`; no longer listed.
    pub accepted: bool,
}

/// The mutable booking state of the MIS.
#[derive(Debug, Clone, Default)]
pub struct Booking {
    pub clock: Clock,
    /// Active appointments by `SCHEDID`; a cancelled one is removed.
    pub appointments: BTreeMap<i64, Appointment>,
    /// The change feed, oldest first.
    pub changes: Vec<Change>,
    /// Appointments marked attended.
    pub visited: BTreeSet<i64>,
    /// How many `SCHEDULE_CHANGE_ACCEPT` confirmations each change got (tests read it).
    pub accepts: BTreeMap<i64, u32>,
    /// Patient cards by `PCODE`.
    pub patients: BTreeMap<i64, Patient>,
    /// The last `SCHEDID` sequence number per branch.
    schedid_seq: BTreeMap<i64, i64>,
    /// Calls of [`World::take_interval`] so far: picks its "other patient".
    take_seq: u64,
}

/// `SPCOMMENT` of a visit mark on an appointment of an earlier day (§2.12).
pub const PAST_VISIT_MARK_TEXT: &str =
    "Изменение отметки о посещении в прошедших назначениях запрещено";

/// Why a reserve, cancel or visit mark was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The interval overlaps a booking ("Время занято").
    Taken,
    /// The appointment does not exist, is cancelled, or belongs to another patient.
    AppointmentNotFound,
    /// Anything else, with the MIS's comment.
    Invalid(String),
}

/// What a reserve asks for (the fields of `SCHEDULE_REC_RESERVE_IN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// `MSH.99`.
    pub filial: i64,
    pub doctor_mis_id: i64,
    pub date: NaiveDate,
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub schedident: i64,
    pub pcode: i64,
    /// `SCHEDID` of the appointment to move.
    pub move_schedid: Option<i64>,
}

impl Booking {
    /// No appointments, the seeded patient cards, the real clock.
    pub fn new(seed: u64) -> Self {
        Self {
            patients: seed_patients(seed),
            ..Self::default()
        }
    }
}

/// A well-mixed 64-bit hash step (splitmix64): stable across Rust versions, unlike std's.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn hash(parts: &[i64]) -> u64 {
    parts
        .iter()
        .fold(0xC0FF_EE00_u64, |acc, &p| mix(acc ^ p as u64))
}

fn time(hour: u32, minute: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or(NaiveTime::MIN)
}

/// Days since 2020-01-01 (negative before it).
fn day_number(date: NaiveDate) -> i64 {
    let epoch = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or(NaiveDate::MIN);
    (date - epoch).num_days()
}

/// Minutes since midnight.
fn minutes(t: NaiveTime) -> i64 {
    i64::from(t.hour()) * 60 + i64::from(t.minute())
}

/// The patient cards that exist from the start: generated from the seed with their own
/// random stream, so the rest of the world does not change with them.
pub(crate) fn seed_patients(seed: u64) -> BTreeMap<i64, Patient> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5EED_BA55_0000_0001);
    (0..SEED_PATIENTS as i64)
        .map(|n| {
            let female = rng.random_bool(0.5);
            let name = person_name(&mut rng, female);
            let mut parts = name.split(' ').map(str::to_owned);
            let last_name = parts.next().unwrap_or_default();
            let first_name = parts.next().unwrap_or_default();
            let middle_name = parts.next().unwrap_or_default();
            let birth_date = NaiveDate::from_ymd_opt(
                rng.random_range(1945..2008),
                rng.random_range(1..=12),
                rng.random_range(1..=28),
            );
            let phone = format!(
                "+7(9{:02}){:03}-{:02}-{:02}",
                rng.random_range(0..100),
                rng.random_range(0..1000),
                rng.random_range(0..100),
                rng.random_range(0..100)
            );
            let pcode = FIRST_PCODE + n;
            (
                pcode,
                Patient {
                    pcode,
                    last_name,
                    first_name,
                    middle_name,
                    birth_date,
                    phone,
                    email: format!("patient{}@example.ru", n + 1),
                },
            )
        })
        .collect()
}

/// Digits of a phone in any spelling, a Russian number reduced to its last ten.
pub fn phone_key(phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    match digits.len() {
        11 if digits.starts_with('7') || digits.starts_with('8') => digits[1..].to_owned(),
        _ => digits,
    }
}

impl World {
    /// The emulator's "now" (UTC).
    pub fn now(&self) -> DateTime<Utc> {
        self.booking.clock.now()
    }

    /// The wall-clock time in a branch (its `TIMEZONE`), or `None` for an unknown branch.
    pub fn branch_now(&self, branch_mis_id: i64) -> Option<NaiveDateTime> {
        let branch = self.branch(branch_mis_id)?;
        let offset = FixedOffset::east_opt(branch.timezone * 3600)?;
        Some(self.now().with_timezone(&offset).naive_local())
    }

    /// The date in a branch.
    pub fn branch_today(&self, branch_mis_id: i64) -> Option<NaiveDate> {
        self.branch_now(branch_mis_id).map(|now| now.date())
    }

    /// The doctor's work periods in a branch on a date, in time order; empty outside the
    /// schedule window, on days off, for hidden doctors and for branches they do not
    /// work in.
    pub fn work_periods(
        &self,
        branch_mis_id: i64,
        doctor_mis_id: i64,
        date: NaiveDate,
    ) -> Vec<WorkPeriod> {
        let Some(today) = self.branch_today(branch_mis_id) else {
            return Vec::new();
        };
        if date < today - Duration::days(DAYS_BACK) || date > today + Duration::days(DAYS_AHEAD) {
            return Vec::new();
        }
        let Some(doctor) = self.doctor(doctor_mis_id).filter(|d| d.visible) else {
            return Vec::new();
        };
        let Some(placement) = doctor
            .placements
            .iter()
            .find(|p| p.branch_mis_id == branch_mis_id)
        else {
            return Vec::new();
        };
        let mut branches: Vec<i64> = doctor.placements.iter().map(|p| p.branch_mis_id).collect();
        branches.dedup();
        let weekday = date.weekday();
        if weekday == Weekday::Sun {
            return Vec::new();
        }
        let day = i64::from(weekday.num_days_from_monday());
        let seed = self.seed as i64;
        let per_doctor = hash(&[seed, doctor_mis_id]);
        if branches.len() > 1 {
            let index = branches
                .iter()
                .position(|&b| b == branch_mis_id)
                .unwrap_or(0) as i64;
            if day % 2 != index % 2 {
                return Vec::new();
            }
        } else if per_doctor.is_multiple_of(4) && (per_doctor >> 8) % 6 == day as u64 {
            return Vec::new();
        }
        let shape = hash(&[seed, doctor_mis_id, day_number(date)]) % 3;
        let morning_start = 8 + ((per_doctor >> 16) % 3) as u32;
        let afternoon_start = 14 + ((per_doctor >> 24) % 2) as u32;
        let mut spans = Vec::new();
        if shape != 1 {
            spans.push((0, time(morning_start, 0), time(morning_start + 4, 0)));
        }
        if shape != 0 {
            spans.push((1, time(afternoon_start, 0), time(afternoon_start + 4, 0)));
        }
        let home_digit = doctor_mis_id / 10_000_000 % 10;
        let sequence = doctor_mis_id % 1000;
        spans
            .into_iter()
            .map(|(part, start, end)| {
                // Filial digit, then day, doctor and part: unique for any date of 27 years.
                let local =
                    ((day_number(date).rem_euclid(10_000) * 10 + home_digit) * 1000 + sequence) * 2
                        + part;
                WorkPeriod {
                    schedident: branch_mis_id * 1_000_000_000 + local,
                    doctor_mis_id,
                    branch_mis_id,
                    department_mis_id: placement.department_mis_id,
                    date,
                    start,
                    end,
                    room: format!("{}", 100 + sequence),
                }
            })
            .collect()
    }

    /// The doctor's work period `schedident` on `date`, in whichever branch it is.
    pub fn work_period(
        &self,
        doctor_mis_id: i64,
        date: NaiveDate,
        schedident: i64,
    ) -> Option<WorkPeriod> {
        let doctor = self.doctor(doctor_mis_id)?;
        doctor.placements.iter().find_map(|p| {
            self.work_periods(p.branch_mis_id, doctor_mis_id, date)
                .into_iter()
                .find(|w| w.schedident == schedident)
        })
    }

    /// Whether the native interval of `period` starting at `start` was taken by another
    /// patient from the start.
    fn pre_taken(&self, period: &WorkPeriod, start: NaiveTime) -> bool {
        hash(&[self.seed as i64, period.schedident, minutes(start)]) % 100 < TAKEN_PERCENT
    }

    /// Whether any minute of `[start, end)` of the period is booked: taken from the start,
    /// or by an appointment other than `except`.
    pub fn is_taken(
        &self,
        period: &WorkPeriod,
        start: NaiveTime,
        end: NaiveTime,
        except: Option<i64>,
    ) -> bool {
        let (from, to) = (minutes(start), minutes(end));
        let mut slot = minutes(period.start);
        while slot < minutes(period.end) {
            if slot + SLOT_MINUTES > from
                && slot < to
                && self.pre_taken(period, time((slot / 60) as u32, (slot % 60) as u32))
            {
                return true;
            }
            slot += SLOT_MINUTES;
        }
        self.booking.appointments.values().any(|a| {
            Some(a.schedid) != except
                && a.doctor_mis_id == period.doctor_mis_id
                && a.date == period.date
                && minutes(a.start) < to
                && minutes(a.end) > from
        })
    }

    /// `FREETYPE` of `[start, end)` in `period`: -6 when it starts before the branch's now,
    /// 0 when booked, 1 when free.
    pub fn free_type(&self, period: &WorkPeriod, start: NaiveTime, end: NaiveTime) -> i64 {
        let past = self
            .branch_now(period.branch_mis_id)
            .is_none_or(|now| period.date.and_time(start) < now);
        if past {
            -6
        } else if self.is_taken(period, start, end, None) {
            0
        } else {
            1
        }
    }

    /// The period cut into `step`-minute intervals from its start.
    pub fn intervals(period: &WorkPeriod, step: i64) -> Vec<(NaiveTime, NaiveTime)> {
        let step = step.max(5);
        let mut out = Vec::new();
        let mut t = minutes(period.start);
        while t + step <= minutes(period.end) {
            let end = t + step;
            out.push((
                time((t / 60) as u32, (t % 60) as u32),
                time((end / 60) as u32, (end % 60) as u32),
            ));
            t = end;
        }
        out
    }

    /// The free native intervals of a doctor in a branch on a date, with their
    /// `SCHEDIDENT`, in time order.
    pub fn free_intervals(
        &self,
        branch_mis_id: i64,
        doctor_mis_id: i64,
        date: NaiveDate,
    ) -> Vec<(NaiveTime, NaiveTime, i64)> {
        self.work_periods(branch_mis_id, doctor_mis_id, date)
            .iter()
            .flat_map(|p| {
                Self::intervals(p, SLOT_MINUTES)
                    .into_iter()
                    .filter(|(s, e)| self.free_type(p, *s, *e) == 1)
                    .map(|(s, e)| (s, e, p.schedident))
            })
            .collect()
    }

    /// Appends an item to the change feed.
    fn record_change(&mut self, op: ChangeOp, appointment: &Appointment) {
        let change_id = self.booking.changes.len() as i64 + 5001;
        let visited = self.booking.visited.contains(&appointment.schedid);
        self.booking.changes.push(Change {
            change_id,
            op,
            appointment: appointment.clone(),
            visited,
            accepted: false,
        });
    }

    /// The clinic's front desk cancels an appointment (a patient called, a doctor fell ill).
    pub fn front_desk_cancel(&mut self, schedid: i64) -> Option<Appointment> {
        let removed = self.booking.appointments.remove(&schedid)?;
        self.record_change(ChangeOp::Deleted, &removed);
        Some(removed)
    }

    /// The front desk moves an appointment to the free interval of the same doctor and
    /// branch that starts at `start` on `date`.
    pub fn front_desk_move(
        &mut self,
        schedid: i64,
        date: NaiveDate,
        start: NaiveTime,
    ) -> Option<Appointment> {
        let current = self.booking.appointments.get(&schedid)?.clone();
        let interval =
            self.free_interval(current.branch_mis_id, current.doctor_mis_id, date, start)?;
        self.reserve_interval(
            current.branch_mis_id,
            current.doctor_mis_id,
            date,
            interval,
            current.pcode,
            Some(schedid),
        )
    }

    /// The free native interval (start, end, `SCHEDIDENT`) of a doctor that starts at `start`.
    fn free_interval(
        &self,
        branch_mis_id: i64,
        doctor_mis_id: i64,
        date: NaiveDate,
        start: NaiveTime,
    ) -> Option<(NaiveTime, NaiveTime, i64)> {
        self.free_intervals(branch_mis_id, doctor_mis_id, date)
            .into_iter()
            .find(|(s, _, _)| *s == start)
    }

    /// Reserves `interval` for card `pcode` (or moves `move_schedid` there).
    fn reserve_interval(
        &mut self,
        branch_mis_id: i64,
        doctor_mis_id: i64,
        date: NaiveDate,
        (start, end, schedident): (NaiveTime, NaiveTime, i64),
        pcode: i64,
        move_schedid: Option<i64>,
    ) -> Option<Appointment> {
        self.reserve(&Reservation {
            filial: branch_mis_id,
            doctor_mis_id,
            date,
            start,
            end,
            schedident,
            pcode,
            move_schedid,
        })
        .ok()
    }

    /// The front desk books a caller into the free interval starting at `start`.
    pub fn front_desk_create(
        &mut self,
        branch_mis_id: i64,
        doctor_mis_id: i64,
        date: NaiveDate,
        start: NaiveTime,
        pcode: i64,
    ) -> Option<Appointment> {
        let interval = self.free_interval(branch_mis_id, doctor_mis_id, date, start)?;
        self.reserve_interval(branch_mis_id, doctor_mis_id, date, interval, pcode, None)
    }

    /// The front desk marks the patient as attended (`CLVISIT 1`).
    pub fn front_desk_mark_visited(&mut self, schedid: i64) -> bool {
        let Some(appointment) = self.booking.appointments.get(&schedid).cloned() else {
            return false;
        };
        self.booking.visited.insert(schedid);
        self.record_change(ChangeOp::Changed, &appointment);
        true
    }

    /// `SCHEDULE_REC_UPDATE`: sets (`CLVISIT 1`) or clears (`0`) the attended mark of an
    /// appointment in `filial`. The real server refuses to change the mark of an appointment
    /// of an earlier day (§2.12); the change feed reports the new mark.
    pub fn update_visit(
        &mut self,
        filial: i64,
        schedid: i64,
        visited: bool,
    ) -> Result<Appointment, Refusal> {
        let appointment = self
            .booking
            .appointments
            .get(&schedid)
            .filter(|a| a.branch_mis_id == filial)
            .cloned()
            .ok_or(Refusal::AppointmentNotFound)?;
        let earlier_day = self
            .branch_today(filial)
            .is_none_or(|today| appointment.date < today);
        if earlier_day {
            return Err(Refusal::Invalid(PAST_VISIT_MARK_TEXT.to_owned()));
        }
        if visited {
            self.booking.visited.insert(schedid);
        } else {
            self.booking.visited.remove(&schedid);
        }
        self.record_change(ChangeOp::Changed, &appointment);
        Ok(appointment)
    }

    /// `SCHEDULE_CHANGE_ACCEPT`: confirms changes by id; unknown ids are ignored.
    pub fn accept_changes(&mut self, change_ids: &[i64]) {
        for change in self
            .booking
            .changes
            .iter_mut()
            .filter(|c| change_ids.contains(&c.change_id))
        {
            change.accepted = true;
            *self.booking.accepts.entry(change.change_id).or_default() += 1;
        }
    }

    fn next_schedid(&mut self, branch_mis_id: i64) -> i64 {
        let seq = self
            .booking
            .schedid_seq
            .entry(branch_mis_id)
            .or_insert(1000);
        *seq += 1;
        branch_mis_id * 10_000_000 + *seq
    }

    /// `SCHEDULE_REC_RESERVE`: books (or moves) atomically, the caller holding the world's
    /// write lock.
    pub fn reserve(&mut self, r: &Reservation) -> Result<Appointment, Refusal> {
        let invalid = |m: &str| Err(Refusal::Invalid(m.to_owned()));
        if !self.booking.patients.contains_key(&r.pcode) {
            return invalid("Пациент не найден");
        }
        if r.end <= r.start {
            return invalid("Время окончания приема раньше времени начала");
        }
        let Some(period) = self.work_period(r.doctor_mis_id, r.date, r.schedident) else {
            return invalid("Расписание врача (SCHEDIDENT) на указанную дату не найдено");
        };
        if period.branch_mis_id != r.filial {
            return invalid("Расписание врача относится к другому филиалу");
        }
        if r.start < period.start || r.end > period.end {
            return invalid("Время приема вне расписания врача");
        }
        let aligned = |t: NaiveTime| (minutes(t) - minutes(period.start)) % SLOT_MINUTES == 0;
        if !aligned(r.start) || !aligned(r.end) {
            return invalid("Время приема не совпадает с интервалами расписания");
        }
        let past = self
            .branch_now(period.branch_mis_id)
            .is_none_or(|now| r.date.and_time(r.start) < now);
        if past {
            return invalid("Время приема уже прошло");
        }
        if let Some(schedid) = r.move_schedid {
            let owned = self
                .booking
                .appointments
                .get(&schedid)
                .is_some_and(|a| a.pcode == r.pcode);
            if !owned {
                return Err(Refusal::AppointmentNotFound);
            }
        }
        if self.is_taken(&period, r.start, r.end, r.move_schedid) {
            return Err(Refusal::Taken);
        }
        let schedid = match r.move_schedid {
            Some(schedid) => schedid,
            None => self.next_schedid(period.branch_mis_id),
        };
        let appointment = Appointment {
            schedid,
            pcode: r.pcode,
            doctor_mis_id: r.doctor_mis_id,
            branch_mis_id: period.branch_mis_id,
            department_mis_id: period.department_mis_id,
            date: r.date,
            start: r.start,
            end: r.end,
            schedident: period.schedident,
        };
        self.booking
            .appointments
            .insert(schedid, appointment.clone());
        let op = if r.move_schedid.is_some() {
            ChangeOp::Changed
        } else {
            ChangeOp::Added
        };
        self.record_change(op, &appointment);
        Ok(appointment)
    }

    /// `SCHEDULE_REC_REMOVE`: the appointment must exist in `filial` and, when `pcode` is
    /// given, belong to that patient.
    pub fn cancel(
        &mut self,
        filial: i64,
        schedid: i64,
        pcode: Option<i64>,
    ) -> Result<Appointment, Refusal> {
        let matches = self
            .booking
            .appointments
            .get(&schedid)
            .is_some_and(|a| a.branch_mis_id == filial && pcode.is_none_or(|p| p == a.pcode));
        if !matches {
            return Err(Refusal::AppointmentNotFound);
        }
        let removed = self
            .booking
            .appointments
            .remove(&schedid)
            .ok_or(Refusal::AppointmentNotFound)?;
        self.record_change(ChangeOp::Deleted, &removed);
        Ok(removed)
    }

    /// Books the native interval starting at `start` for one of the other patients, as if
    /// someone else had just won it. The new `SCHEDID`, or `None` when the interval is not
    /// a free one of the doctor's periods in that branch.
    pub fn take_interval(
        &mut self,
        branch_mis_id: i64,
        doctor_mis_id: i64,
        date: NaiveDate,
        start: NaiveTime,
    ) -> Option<i64> {
        let interval = self.free_interval(branch_mis_id, doctor_mis_id, date, start)?;
        self.booking.take_seq += 1;
        let pick = hash(&[self.seed as i64, self.booking.take_seq as i64]);
        let pcodes: Vec<i64> = self.booking.patients.keys().copied().collect();
        let pcode = match pcodes.len() {
            0 => return None,
            n => pcodes[(pick % n as u64) as usize],
        };
        self.reserve_interval(branch_mis_id, doctor_mis_id, date, interval, pcode, None)
            .map(|a| a.schedid)
    }

    /// Adds a card, or finds the one with the same last name, first name and birth date
    /// (`CHECKMODE 1`). `(pcode, existed)`.
    pub fn add_patient(&mut self, patient: Patient) -> (i64, bool) {
        let same = |p: &Patient| {
            p.birth_date.is_some()
                && p.birth_date == patient.birth_date
                && p.last_name.to_lowercase() == patient.last_name.to_lowercase()
                && p.first_name.to_lowercase() == patient.first_name.to_lowercase()
        };
        if let Some(existing) = self.booking.patients.values().find(|p| same(p)) {
            return (existing.pcode, true);
        }
        let pcode = self
            .booking
            .patients
            .keys()
            .next_back()
            .map_or(FIRST_PCODE, |last| last + 1);
        self.booking
            .patients
            .insert(pcode, Patient { pcode, ..patient });
        (pcode, false)
    }

    /// The card with this login (e-mail, any case).
    pub fn patient_by_email(&self, email: &str) -> Option<&Patient> {
        let email = email.trim().to_lowercase();
        self.booking
            .patients
            .values()
            .find(|p| !p.email.is_empty() && p.email.to_lowercase() == email)
    }

    /// The card with this phone (any spelling).
    pub fn patient_by_phone(&self, phone: &str) -> Option<&Patient> {
        let key = phone_key(phone);
        if key.is_empty() {
            return None;
        }
        self.booking
            .patients
            .values()
            .find(|p| phone_key(&p.phone) == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world_at(utc: &str) -> World {
        let mut world = World::generate(42, 1);
        world.booking.clock.fixed = Some(utc.parse().expect("instant"));
        world
    }

    /// The first visible doctor with periods on `date` in their home branch.
    fn working(world: &World, date: NaiveDate) -> (i64, i64, Vec<WorkPeriod>) {
        world
            .doctors
            .iter()
            .filter(|d| d.visible)
            .find_map(|d| {
                let branch = d.placements[0].branch_mis_id;
                let periods = world.work_periods(branch, d.mis_id, date);
                (!periods.is_empty()).then_some((branch, d.mis_id, periods))
            })
            .expect("someone works")
    }

    #[test]
    fn the_schedule_follows_the_documented_shape() {
        // Wednesday 2030-03-13, 10:00 in Moscow.
        let world = world_at("2030-03-13T07:00:00Z");
        let today = NaiveDate::from_ymd_opt(2030, 3, 13).expect("date");
        assert_eq!(world.branch_today(1), Some(today));
        let sunday = NaiveDate::from_ymd_opt(2030, 3, 17).expect("date");
        let mut periods = 0;
        let mut intervals = 0;
        let mut taken = 0;
        for d in world.doctors.iter() {
            for p in &d.placements {
                assert!(
                    world
                        .work_periods(p.branch_mis_id, d.mis_id, sunday)
                        .is_empty()
                );
                assert!(
                    world
                        .work_periods(p.branch_mis_id, d.mis_id, today + Duration::days(29))
                        .is_empty()
                );
                for offset in 1..=DAYS_AHEAD {
                    for period in world.work_periods(
                        p.branch_mis_id,
                        d.mis_id,
                        today + Duration::days(offset),
                    ) {
                        assert!(d.visible);
                        assert_eq!(period.schedident / 1_000_000_000, p.branch_mis_id);
                        periods += 1;
                        for (s, e) in World::intervals(&period, SLOT_MINUTES) {
                            intervals += 1;
                            if world.free_type(&period, s, e) == 0 {
                                taken += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(periods > 500, "{periods}");
        let share = taken * 100 / intervals;
        assert!((18..=32).contains(&share), "{share} % taken");
        let (_, _, past) = working(&world, today - Duration::days(DAYS_BACK));
        assert_eq!(
            world.free_type(
                &past[0],
                past[0].start,
                past[0].start + Duration::minutes(30)
            ),
            -6
        );
    }

    #[test]
    fn reserve_is_checked_and_moves_keep_the_id() {
        let mut world = world_at("2030-03-13T07:00:00Z");
        let date = NaiveDate::from_ymd_opt(2030, 3, 15).expect("date");
        let (branch, doctor, periods) = working(&world, date);
        let free = world.free_intervals(branch, doctor, date);
        assert!(free.len() >= 2);
        let pcode = *world.booking.patients.keys().next().expect("patients");
        let request = |(start, end, schedident): (NaiveTime, NaiveTime, i64)| Reservation {
            filial: branch,
            doctor_mis_id: doctor,
            date,
            start,
            end,
            schedident,
            pcode,
            move_schedid: None,
        };
        let first = world.reserve(&request(free[0])).expect("books");
        assert_eq!(first.schedid / 10_000_000, branch);
        assert_eq!(world.reserve(&request(free[0])), Err(Refusal::Taken));
        let moved = world
            .reserve(&Reservation {
                move_schedid: Some(first.schedid),
                ..request(free[1])
            })
            .expect("moves");
        assert_eq!(moved.schedid, first.schedid);
        assert_eq!(world.booking.appointments.len(), 1);
        assert!(
            world
                .free_intervals(branch, doctor, date)
                .contains(&free[0])
        );
        let stranger = Reservation {
            pcode: pcode + 1,
            move_schedid: Some(first.schedid),
            ..request(free[0])
        };
        assert_eq!(world.reserve(&stranger), Err(Refusal::AppointmentNotFound));
        let mut misaligned = request(free[0]);
        misaligned.start += Duration::minutes(10);
        assert!(matches!(
            world.reserve(&misaligned),
            Err(Refusal::Invalid(_))
        ));
        let wrong_ident = Reservation {
            schedident: periods[0].schedident + 2,
            ..request(free[0])
        };
        assert!(matches!(
            world.reserve(&wrong_ident),
            Err(Refusal::Invalid(_))
        ));
        let wrong_branch = Reservation {
            filial: branch % 3 + 1,
            ..request(free[0])
        };
        assert!(matches!(
            world.reserve(&wrong_branch),
            Err(Refusal::Invalid(_))
        ));
        assert!(world.cancel(branch, first.schedid, Some(pcode)).is_ok());
        assert_eq!(
            world.cancel(branch, first.schedid, Some(pcode)),
            Err(Refusal::AppointmentNotFound)
        );
    }

    #[test]
    fn patients_are_deduplicated_by_name_and_birth_date() {
        let mut world = World::generate(42, 1);
        let existing = world
            .booking
            .patients
            .values()
            .next()
            .expect("seeded")
            .clone();
        let (pcode, existed) = world.add_patient(Patient {
            pcode: 0,
            last_name: existing.last_name.to_uppercase(),
            phone: String::new(),
            email: String::new(),
            ..existing.clone()
        });
        assert!(existed);
        assert_eq!(pcode, existing.pcode);
        assert_eq!(
            world.patient_by_phone(&existing.phone).map(|p| p.pcode),
            Some(existing.pcode)
        );
        assert_eq!(
            world
                .patient_by_email(&existing.email.to_uppercase())
                .map(|p| p.pcode),
            Some(existing.pcode)
        );
        let (new, existed) = world.add_patient(Patient {
            pcode: 0,
            birth_date: NaiveDate::from_ymd_opt(1901, 1, 1),
            ..existing
        });
        assert!(!existed);
        assert!(new > pcode && new / 10_000_000 == 99);
    }
}
