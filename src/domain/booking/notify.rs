//! The SMS texts about a record, in Russian, with the date and time in the branch's zone.

use chrono::DateTime;
use chrono_tz::Tz;

/// What happened to the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Booked,
    Moved,
    Cancelled,
    /// The clinic moved the visit (the front desk, in the MIS).
    MovedByClinic,
    /// The clinic cancelled the visit.
    CancelledByClinic,
}

impl Notice {
    pub fn kind(self) -> &'static str {
        match self {
            Notice::Booked => "booked",
            Notice::Moved | Notice::MovedByClinic => "moved",
            Notice::Cancelled | Notice::CancelledByClinic => "cancelled",
        }
    }
}

/// The facts a message needs.
pub struct NoticeFacts<'a> {
    pub doctor: &'a str,
    pub branch: &'a str,
    pub address: &'a str,
    pub start: DateTime<Tz>,
}

/// The message text. Times are local to the branch, and said so outside Moscow time.
pub fn text(notice: Notice, facts: &NoticeFacts<'_>) -> String {
    let when = facts.start.format("%d.%m.%Y в %H:%M");
    let zone = if facts.start.timezone() == Tz::Europe__Moscow {
        String::new()
    } else {
        " (местное время)".into()
    };
    match notice {
        Notice::Booked => format!(
            "Совамед: вы записаны к врачу {} {when}{zone}, {}, {}.",
            facts.doctor, facts.branch, facts.address
        ),
        Notice::Moved => format!(
            "Совамед: приём у врача {} перенесён на {when}{zone}, {}, {}.",
            facts.doctor, facts.branch, facts.address
        ),
        Notice::Cancelled => format!(
            "Совамед: запись к врачу {} на {when}{zone} отменена.",
            facts.doctor
        ),
        Notice::MovedByClinic => format!(
            "Совамед: клиника перенесла ваш приём у врача {} на {when}{zone}, {}, {}. Если время не подходит, позвоните в клинику.",
            facts.doctor, facts.branch, facts.address
        ),
        Notice::CancelledByClinic => format!(
            "Совамед: клиника отменила вашу запись к врачу {} на {when}{zone}. Выберите другое время в личном кабинете или позвоните в клинику.",
            facts.doctor
        ),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn texts_carry_local_time_and_the_place() {
        let start = Tz::Asia__Yekaterinburg
            .with_ymd_and_hms(2030, 3, 18, 9, 0, 0)
            .single()
            .expect("time");
        let facts = NoticeFacts {
            doctor: "Смирнова О. П.",
            branch: "Совамед Екатеринбург",
            address: "ул. Малышева, 51",
            start,
        };
        let booked = text(Notice::Booked, &facts);
        assert!(
            booked.contains("18.03.2030 в 09:00 (местное время)"),
            "{booked}"
        );
        assert!(booked.contains("ул. Малышева, 51"));
        assert!(text(Notice::Cancelled, &facts).contains("отменена"));
    }
}
