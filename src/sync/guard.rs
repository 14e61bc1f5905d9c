//! The guard against mass deactivation.
//!
//! A source that answers a well-formed but empty or truncated list would, taken at its word,
//! deactivate most of a directory. So every deactivation step is checked: deactivating `N`
//! of the `M` rows that were active before the run is refused when
//! `N × 100 > SYNC_MAX_DEACTIVATION_PERCENT × M` (default 20 %), unless the operator passed
//! `sovamed sync … --allow-mass-deactivation`. A refusal fails the kind, so its transaction
//! rolls back and the previous data stays.
//!
//! The rule is plain integer arithmetic with no exemption for small tables: on a table of
//! fewer than five active rows, one row is already more than 20 %, so deactivating 1 of 3
//! branches (33 %) is refused without the flag and done with it. An empty list where rows
//! are active is the extreme case (100 %); a table with no active rows has nothing to lose.
//! `100` turns the guard off; `0` refuses every deactivation without the flag.
//!
//! The refusal's text is what `sync_runs.error` keeps, and a step the flag let through
//! leaves a note in `sync_runs.notes`; [`MassDeactivation::from_refusal`] and
//! [`MassDeactivation::from_allowed_note`] read them back, so `/staff/sync` can say them in
//! Russian.

use std::fmt;

/// What one deactivation step is about: a directory table, or one kind of CMS content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Branches,
    Specialities,
    Specialists,
    Prices,
    Reviews,
    Pages,
    Services,
    Specializations,
}

impl Subject {
    pub const ALL: [Subject; 8] = [
        Subject::Branches,
        Subject::Specialities,
        Subject::Specialists,
        Subject::Prices,
        Subject::Reviews,
        Subject::Pages,
        Subject::Services,
        Subject::Specializations,
    ];

    /// The English plural the command line and `sync_runs` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Subject::Branches => "branches",
            Subject::Specialities => "specialities",
            Subject::Specialists => "specialists",
            Subject::Prices => "prices",
            Subject::Reviews => "reviews",
            Subject::Pages => "pages",
            Subject::Services => "services",
            Subject::Specializations => "specializations",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// `SYNC_MAX_DEACTIVATION_PERCENT` and whether `--allow-mass-deactivation` was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeactivationLimit {
    /// 0 to 100.
    pub max_percent: u8,
    /// `--allow-mass-deactivation`: do what the source says, and report it.
    pub allow_mass: bool,
}

impl Default for DeactivationLimit {
    fn default() -> Self {
        Self {
            max_percent: DEFAULT_MAX_PERCENT,
            allow_mass: false,
        }
    }
}

/// The default of `SYNC_MAX_DEACTIVATION_PERCENT`.
pub const DEFAULT_MAX_PERCENT: u8 = 20;

impl DeactivationLimit {
    /// Whether deactivating `deactivated` of `active_before` rows is more than the limit,
    /// whatever the flag says.
    pub fn exceeded(self, deactivated: u64, active_before: u64) -> bool {
        deactivated > 0
            && deactivated.saturating_mul(100)
                > u64::from(self.max_percent).saturating_mul(active_before)
    }

    /// `Err` when the step must be refused; `Ok(Some)` when it is over the limit but allowed
    /// (to be reported); `Ok(None)` when it is within the limit.
    pub fn check(
        self,
        subject: Subject,
        deactivated: u64,
        active_before: u64,
    ) -> Result<Option<MassDeactivation>, MassDeactivation> {
        if !self.exceeded(deactivated, active_before) {
            return Ok(None);
        }
        let mass = MassDeactivation {
            subject,
            deactivated,
            active_before,
            max_percent: self.max_percent,
        };
        if self.allow_mass {
            Ok(Some(mass))
        } else {
            Err(mass)
        }
    }
}

/// A deactivation step over the limit: `deactivated` of `active_before` rows of `subject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MassDeactivation {
    pub subject: Subject,
    pub deactivated: u64,
    pub active_before: u64,
    pub max_percent: u8,
}

/// How a refusal starts in `sync_runs.error` (the whole text is [`SyncError::Refused`]'s).
///
/// [`SyncError::Refused`]: super::SyncError::Refused
pub const REFUSAL_PREFIX: &str = "refused: would deactivate ";
/// How a refusal ends.
pub const REFUSAL_HINT: &str = "run with --allow-mass-deactivation if this is real";
/// How the note of a step the flag let through starts; the rest is the step's `Display`.
pub const ALLOWED_NOTE_PREFIX: &str = "mass deactivation allowed by --allow-mass-deactivation: ";

impl MassDeactivation {
    /// The share in tenths of a percent, rounded half up (1 of 3 is 333).
    pub fn share_tenths(&self) -> u64 {
        if self.active_before == 0 {
            return 0;
        }
        (self.deactivated.saturating_mul(2000) / self.active_before).div_ceil(2)
    }

    /// The share as text with `separator` before the decimal: `33.3`, `100`, `81.1`. Whole
    /// percents only when exact, so a share just over the limit never reads as the limit.
    pub fn share_text(&self, separator: char) -> String {
        let exact = self.active_before == 0
            || self
                .deactivated
                .saturating_mul(100)
                .is_multiple_of(self.active_before);
        let tenths = self.share_tenths();
        if exact {
            format!("{}", tenths / 10)
        } else {
            format!("{}{separator}{}", tenths / 10, tenths % 10)
        }
    }

    /// Reads back the text of a refusal (`sync_runs.error`); `None` for any other error.
    pub fn from_refusal(error: &str) -> Option<Self> {
        let (mass, rest) = Self::read(error.strip_prefix(REFUSAL_PREFIX)?)?;
        (rest == format!("; {REFUSAL_HINT}")).then_some(mass)
    }

    /// Reads back the note of a step the flag let through (a line of `sync_runs.notes`);
    /// `None` for any other note.
    pub fn from_allowed_note(note: &str) -> Option<Self> {
        let (mass, rest) = Self::read(note.strip_prefix(ALLOWED_NOTE_PREFIX)?)?;
        rest.is_empty().then_some(mass)
    }

    /// Reads what `Display` wrote at the start of `text`; the step and what follows it.
    fn read(text: &str) -> Option<(Self, &str)> {
        let (deactivated, rest) = text.split_once(" of ")?;
        let (active_before, rest) = rest.split_once(' ')?;
        let (subject, rest) = rest.split_once(" (")?;
        let (_, rest) = rest.split_once(", limit ")?;
        let (max_percent, rest) = rest.split_once(" %)")?;
        let mass = Self {
            subject: Subject::parse(subject)?,
            deactivated: deactivated.parse().ok()?,
            active_before: active_before.parse().ok()?,
            max_percent: max_percent.parse().ok()?,
        };
        Some((mass, rest))
    }
}

/// `30 of 37 specialists (81.1 %, limit 20 %)`.
impl fmt::Display for MassDeactivation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} {} ({} %, limit {} %)",
            self.deactivated,
            self.active_before,
            self.subject.as_str(),
            self.share_text('.'),
            self.max_percent
        )
    }
}

/// The limit of one kind's run, and the steps over it that the flag let through.
#[derive(Debug)]
pub struct Guard {
    limit: DeactivationLimit,
    allowed: Vec<MassDeactivation>,
}

impl Guard {
    pub fn new(limit: DeactivationLimit) -> Self {
        Self {
            limit,
            allowed: Vec::new(),
        }
    }

    /// Checks one deactivation step (see [`DeactivationLimit::check`]).
    pub fn check(
        &mut self,
        subject: Subject,
        deactivated: u64,
        active_before: u64,
    ) -> Result<(), super::SyncError> {
        match self.limit.check(subject, deactivated, active_before) {
            Ok(None) => Ok(()),
            Ok(Some(allowed)) => {
                self.allowed.push(allowed);
                Ok(())
            }
            Err(refused) => Err(super::SyncError::Refused(refused)),
        }
    }

    /// The notes of the steps over the limit that `--allow-mass-deactivation` let through.
    pub fn notes(&self) -> impl Iterator<Item = String> + '_ {
        self.allowed
            .iter()
            .map(|m| format!("{ALLOWED_NOTE_PREFIX}{m}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(max_percent: u8) -> DeactivationLimit {
        DeactivationLimit {
            max_percent,
            allow_mass: false,
        }
    }

    #[test]
    fn the_default_is_twenty_percent_and_the_limit_itself_is_allowed() {
        let default = DeactivationLimit::default();
        assert_eq!(default.max_percent, 20);
        assert!(!default.allow_mass);
        assert!(!default.exceeded(1, 5), "20 % is not more than 20 %");
        assert!(default.exceeded(2, 9), "22.2 %");
        assert!(!default.exceeded(7, 37), "18.9 %");
        assert!(default.exceeded(8, 37), "21.6 %");
        assert!(!default.exceeded(1, 37));
        assert!(!default.exceeded(200, 1000));
        assert!(default.exceeded(201, 1000));
    }

    #[test]
    fn small_tables_need_the_flag_for_any_deactivation() {
        let default = DeactivationLimit::default();
        // 1 of 3 branches is 33 %: refused without the flag...
        let refused = default
            .check(Subject::Branches, 1, 3)
            .expect_err("over 20 %");
        assert_eq!(refused.to_string(), "1 of 3 branches (33.3 %, limit 20 %)");
        // ...and done, but reported, with it.
        let allowed = DeactivationLimit {
            allow_mass: true,
            ..default
        };
        assert_eq!(allowed.check(Subject::Branches, 1, 3), Ok(Some(refused)));
        // From five active rows on, one row is within the default.
        assert_eq!(default.check(Subject::Branches, 1, 5), Ok(None));
        assert!(default.exceeded(1, 4));
        assert!(default.exceeded(1, 1));
    }

    #[test]
    fn an_empty_list_is_the_extreme_case_and_nothing_to_lose_is_fine() {
        let default = DeactivationLimit::default();
        let all = default
            .check(Subject::Specialists, 37, 37)
            .expect_err("everything");
        assert_eq!(all.share_text('.'), "100");
        assert_eq!(default.check(Subject::Specialists, 0, 37), Ok(None));
        assert_eq!(default.check(Subject::Specialists, 0, 0), Ok(None));
    }

    #[test]
    fn zero_and_a_hundred_are_the_ends_of_the_scale() {
        assert!(limit(0).exceeded(1, 1_000_000));
        assert!(!limit(0).exceeded(0, 10));
        assert!(!limit(100).exceeded(37, 37));
        assert!(!limit(100).exceeded(u64::MAX, u64::MAX));
    }

    #[test]
    fn shares_round_to_tenths_and_whole_percents_only_when_exact() {
        let share = |deactivated, active_before| MassDeactivation {
            subject: Subject::Prices,
            deactivated,
            active_before,
            max_percent: 20,
        };
        assert_eq!(share(1, 3).share_text(','), "33,3");
        assert_eq!(share(2, 3).share_text('.'), "66.7");
        assert_eq!(share(30, 37).share_text('.'), "81.1");
        assert_eq!(share(1, 4).share_text('.'), "25");
        assert_eq!(share(2001, 10_000).share_text('.'), "20.0");
        assert_eq!(share(0, 0).share_text('.'), "0");
    }

    #[test]
    fn a_refusal_reads_back_from_its_text() {
        for subject in Subject::ALL {
            let mass = MassDeactivation {
                subject,
                deactivated: 30,
                active_before: 37,
                max_percent: 20,
            };
            let text = super::super::SyncError::Refused(mass.clone()).to_string();
            assert_eq!(
                text,
                format!(
                    "refused: would deactivate 30 of 37 {} (81.1 %, limit 20 %); run with --allow-mass-deactivation if this is real",
                    subject.as_str()
                )
            );
            assert_eq!(MassDeactivation::from_refusal(&text), Some(mass));
        }
        for other in [
            "",
            "MIS: MIS answered HTTP 500: oops",
            "refused: would deactivate many of 37 specialists (9 %, limit 20 %); run with --allow-mass-deactivation if this is real",
            "refused: would deactivate 3 of 3 doctors (100 %, limit 20 %); run with --allow-mass-deactivation if this is real",
            "refused: would deactivate 3 of 3 branches (100 %, limit 20 %)",
        ] {
            assert_eq!(MassDeactivation::from_refusal(other), None, "{other}");
        }
    }

    #[test]
    fn the_guard_collects_what_the_flag_let_through() {
        let mut guard = Guard::new(DeactivationLimit {
            max_percent: 20,
            allow_mass: true,
        });
        guard.check(Subject::Pages, 1, 100).expect("within");
        guard.check(Subject::Services, 5, 5).expect("allowed");
        let notes: Vec<String> = guard.notes().collect();
        assert_eq!(
            notes,
            [
                "mass deactivation allowed by --allow-mass-deactivation: 5 of 5 services (100 %, limit 20 %)"
            ]
        );
        assert_eq!(
            MassDeactivation::from_allowed_note(&notes[0]),
            Some(MassDeactivation {
                subject: Subject::Services,
                deactivated: 5,
                active_before: 5,
                max_percent: 20,
            })
        );
        assert_eq!(
            MassDeactivation::from_allowed_note("doctor 7: unknown branch 9 (sync it first)"),
            None
        );
        assert_eq!(
            MassDeactivation::from_allowed_note(&format!("{} and more", notes[0])),
            None
        );
        let mut strict = Guard::new(DeactivationLimit::default());
        assert!(matches!(
            strict.check(Subject::Services, 5, 5),
            Err(super::super::SyncError::Refused(_))
        ));
    }
}
