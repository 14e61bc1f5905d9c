//! Every SMS text the server sends, in Russian, in one place: the messages about a visit
//! (booked, moved, cancelled, by the patient or by the clinic, the reminder), the phone codes
//! and the notice to an account's owner. Times are the branch's; the doctor is named as
//! «Врач: Голубев Р. А.» (surname and initials after a colon, so no case ending can go
//! wrong).
//!
//! Cyrillic travels as UCS-2: one SMS holds 70 characters, each part of a longer one 67. A
//! text about a visit is kept within two parts ([`MAX_UNITS`]): when long names, a long
//! address or a long link would make it longer, the parts a patient needs least are left out
//! one at a time (`SHAPES`). The clinic's phone is never left out.

use chrono::{DateTime, Datelike, Timelike, Weekday};
use chrono_tz::Tz;

use crate::domain::values::VerificationPurpose;

/// The demo network's call centre, until `CLINIC_PHONE` names the real one.
pub const DEFAULT_CLINIC_PHONE: &str = "+7 (495) 120-34-50";

/// UTF-16 code units two concatenated UCS-2 parts hold (2 × 67).
pub const MAX_UNITS: usize = 134;

/// UTF-16 code units one UCS-2 SMS holds: a code must never cost two.
pub const ONE_PART_UNITS: usize = 70;

/// The length of `text` as a gateway counts a Cyrillic SMS: UTF-16 code units.
pub fn ucs2_units(text: &str) -> usize {
    text.encode_utf16().count()
}

/// What the message about a visit says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Booked,
    Moved,
    Cancelled,
    /// The clinic moved the visit (the front desk, in the MIS).
    MovedByClinic,
    /// The clinic cancelled the visit.
    CancelledByClinic,
    /// `REMINDER_HOURS_BEFORE` before the visit.
    Reminder,
}

impl Notice {
    /// The `sms_outbox.kind` of the message.
    pub fn kind(self) -> &'static str {
        match self {
            Notice::Booked => "booked",
            Notice::Moved | Notice::MovedByClinic => "moved",
            Notice::Cancelled | Notice::CancelledByClinic => "cancelled",
            Notice::Reminder => "reminder",
        }
    }

    /// The first sentence, with the visit's date and time in `when`.
    fn lead(self, when: &str) -> String {
        match self {
            Notice::Booked => format!("вы записаны на {when}."),
            Notice::Moved => format!("приём перенесён на {when}."),
            Notice::Cancelled => format!("запись на {when} отменена."),
            Notice::MovedByClinic => format!("клиника перенесла приём на {when}."),
            Notice::CancelledByClinic => format!("клиника отменила запись на {when}."),
            Notice::Reminder => format!("ждём вас на приём {when}."),
        }
    }

    /// The visit still takes place: its address and its manage link mean something.
    fn goes_on(self) -> bool {
        !matches!(self, Notice::Cancelled | Notice::CancelledByClinic)
    }

    /// How the clinic's phone is offered.
    fn phone_label(self) -> &'static str {
        match self {
            Notice::CancelledByClinic => "Записаться снова:",
            _ => "Тел.",
        }
    }
}

/// The facts a message about a visit needs.
pub struct NoticeFacts<'a> {
    /// The doctor's full name, «Фамилия Имя Отчество».
    pub doctor: &'a str,
    /// The branch's address.
    pub address: &'a str,
    /// The visit's start, in the branch's zone.
    pub start: DateTime<Tz>,
    /// `CLINIC_PHONE`.
    pub clinic_phone: &'a str,
    /// Where the patient manages the visit (`BookingRules::manage_link`), if anywhere.
    pub manage_link: Option<&'a str>,
}

/// How the doctor is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DoctorName {
    Initials,
    Surname,
    Left,
}

/// Which optional parts a text carries.
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// «(местное время)» after a time outside Moscow.
    zone_note: bool,
    /// The branch's address, in a text without a manage link.
    address: bool,
    /// «(пн)» after the date.
    weekday: bool,
    doctor: DoctorName,
    link: bool,
}

/// From the fullest text to the shortest: each shape leaves out one more part. The first
/// that fits [`MAX_UNITS`] is sent.
const SHAPES: [Shape; 7] = {
    const FULL: Shape = Shape {
        zone_note: true,
        address: true,
        weekday: true,
        doctor: DoctorName::Initials,
        link: true,
    };
    const NO_ZONE: Shape = Shape {
        zone_note: false,
        ..FULL
    };
    const NO_ADDRESS: Shape = Shape {
        address: false,
        ..NO_ZONE
    };
    const NO_WEEKDAY: Shape = Shape {
        weekday: false,
        ..NO_ADDRESS
    };
    const SURNAME: Shape = Shape {
        doctor: DoctorName::Surname,
        ..NO_WEEKDAY
    };
    const NO_DOCTOR: Shape = Shape {
        doctor: DoctorName::Left,
        ..SURNAME
    };
    const NO_LINK: Shape = Shape {
        link: false,
        ..NO_DOCTOR
    };
    [
        FULL, NO_ZONE, NO_ADDRESS, NO_WEEKDAY, SURNAME, NO_DOCTOR, NO_LINK,
    ]
};

/// The message about a visit: the fullest text of two SMS parts at most.
pub fn text(notice: Notice, facts: &NoticeFacts<'_>) -> String {
    let mut shortest = String::new();
    for shape in SHAPES {
        shortest = render(notice, facts, shape);
        if ucs2_units(&shortest) <= MAX_UNITS {
            break;
        }
    }
    shortest
}

/// «30.11 (пн) в 15:00»; «(местное время)» after it outside Moscow when `zone_note`.
fn when(start: DateTime<Tz>, weekday: bool, zone_note: bool) -> String {
    let mut when = format!("{:02}.{:02}", start.day(), start.month());
    if weekday {
        when.push_str(&format!(" ({})", weekday_abbr(start.weekday())));
    }
    when.push_str(&format!(" в {:02}:{:02}", start.hour(), start.minute()));
    if zone_note && start.timezone() != Tz::Europe__Moscow {
        when.push_str(" (местное время)");
    }
    when
}

/// `text` ending with a full stop (initials end with one already).
fn sentence(text: &str) -> String {
    if text.ends_with('.') {
        text.to_owned()
    } else {
        format!("{text}.")
    }
}

fn render(notice: Notice, facts: &NoticeFacts<'_>, shape: Shape) -> String {
    let mut text = String::from("Совамед: ");
    text.push_str(&notice.lead(&when(facts.start, shape.weekday, shape.zone_note)));
    let doctor = match shape.doctor {
        DoctorName::Initials => surname_initials(facts.doctor),
        DoctorName::Surname => facts
            .doctor
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned(),
        DoctorName::Left => String::new(),
    };
    if !doctor.is_empty() {
        text.push_str(&format!(" Врач: {}", sentence(&doctor)));
    }
    let link = facts
        .manage_link
        .filter(|link| shape.link && notice.goes_on() && !link.is_empty());
    let address = facts.address.trim();
    if shape.address && link.is_none() && notice.goes_on() && !address.is_empty() {
        text.push_str(&format!(" Адрес: {}", sentence(address)));
    }
    text.push_str(&format!(" {} {}", notice.phone_label(), facts.clinic_phone));
    // Last, so that no punctuation sticks to the address a phone makes clickable.
    if let Some(link) = link {
        text.push(' ');
        text.push_str(link);
    }
    text
}

/// Patronymic particles of Turkic names («Мамедов Ахмед Рашид оглы»): no initial of their own.
const PARTICLES: [&str; 4] = ["оглы", "кызы", "улы", "уулу"];

/// «Голубев Р. А.» from «Голубев Роман Андреевич»: the surname, then the initials of the
/// other names; a hyphenated name gives hyphenated initials («Анна-Мария» → «А.-М.»), a
/// patronymic particle none. A name of one word stays as it is.
pub fn surname_initials(full_name: &str) -> String {
    let mut words = full_name.split_whitespace();
    let Some(surname) = words.next() else {
        return String::new();
    };
    let initials: Vec<String> = words
        .filter(|word| !PARTICLES.contains(&word.to_lowercase().as_str()))
        .filter_map(initial)
        .collect();
    if initials.is_empty() {
        surname.to_owned()
    } else {
        format!("{surname} {}", initials.join(" "))
    }
}

/// «Р.» of «Роман», «А.-М.» of «Анна-Мария».
fn initial(name: &str) -> Option<String> {
    let letters: Vec<String> = name
        .split('-')
        .filter_map(|part| part.chars().find(|c| c.is_alphabetic()))
        .map(|c| format!("{}.", c.to_uppercase()))
        .collect();
    (!letters.is_empty()).then(|| letters.join("-"))
}

/// «пн» … «вс».
pub fn weekday_abbr(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "пн",
        Weekday::Tue => "вт",
        Weekday::Wed => "ср",
        Weekday::Thu => "чт",
        Weekday::Fri => "пт",
        Weekday::Sat => "сб",
        Weekday::Sun => "вс",
    }
}

/// «ноября»: the month as a date names it.
pub fn month_genitive(month: u32) -> &'static str {
    match month {
        1 => "января",
        2 => "февраля",
        3 => "марта",
        4 => "апреля",
        5 => "мая",
        6 => "июня",
        7 => "июля",
        8 => "августа",
        9 => "сентября",
        10 => "октября",
        11 => "ноября",
        _ => "декабря",
    }
}

/// «пн, 30 ноября, 15:00»: a visit's start as a person reads it (calendar events).
pub fn spoken_when(start: DateTime<Tz>) -> String {
    format!(
        "{}, {} {}, {:02}:{:02}",
        weekday_abbr(start.weekday()),
        start.day(),
        month_genitive(start.month()),
        start.hour(),
        start.minute()
    )
}

/// The SMS with a phone code, one part long; the purpose is named so that a code for one
/// thing is not read out for another.
pub fn code_text(code: &str, purpose: VerificationPurpose) -> String {
    let what = match purpose {
        VerificationPurpose::Booking => "записи на приём",
        VerificationPurpose::Registration => "регистрации",
        VerificationPurpose::PasswordReset => "восстановления пароля",
        VerificationPurpose::PhoneChange => "смены номера телефона",
    };
    format!("Совамед: код {code} для {what}. Никому не сообщайте.")
}

/// The SMS to the owner of an e-mail someone tried to register again.
pub fn email_taken_text(clinic_phone: &str) -> String {
    let text = "Совамед: с вашей почтой пытались зарегистрироваться снова. \
                Если это вы, войдите или восстановите пароль.";
    let with_phone = format!("{text} Тел. {clinic_phone}");
    if ucs2_units(&with_phone) <= MAX_UNITS {
        with_phone
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const PHONE: &str = "+7 (800) 555-35-35";

    fn at(zone: Tz, day: u32, hour: u32) -> DateTime<Tz> {
        zone.with_ymd_and_hms(2026, 11, day, hour, 0, 0)
            .single()
            .expect("time")
    }

    const ALL: [Notice; 6] = [
        Notice::Booked,
        Notice::Moved,
        Notice::Cancelled,
        Notice::MovedByClinic,
        Notice::CancelledByClinic,
        Notice::Reminder,
    ];

    #[test]
    fn initials_follow_the_surname() {
        for (full, short) in [
            ("Голубев Роман Андреевич", "Голубев Р. А."),
            ("Голубев Роман", "Голубев Р."),
            ("Голубев", "Голубев"),
            ("  Голубев   Роман   Андреевич ", "Голубев Р. А."),
            ("Салтыков-Щедрин Михаил Евграфович", "Салтыков-Щедрин М. Е."),
            ("Петрова Анна-Мария Сергеевна", "Петрова А.-М. С."),
            ("Ёлкин Пётр Фёдорович", "Ёлкин П. Ф."),
            ("Семёнова ёлена эдуардовна", "Семёнова Ё. Э."),
            ("Мамедов Ахмед Рашид оглы", "Мамедов А. Р."),
            ("Голубев Р. А.", "Голубев Р. А."),
            ("", ""),
        ] {
            assert_eq!(surname_initials(full), short, "{full:?}");
        }
    }

    #[test]
    fn units_are_utf16_code_units() {
        assert_eq!(ucs2_units("Совамед"), 7);
        assert_eq!(ucs2_units("ё"), 1);
        // Outside the basic plane a character takes two units, as UCS-2 gateways count it.
        assert_eq!(ucs2_units("😀"), 2);
    }

    #[test]
    fn texts_name_the_doctor_without_declension_and_give_the_phone_and_link() {
        let facts = NoticeFacts {
            doctor: "Голубев Роман Андреевич",
            address: "Москва, ул. Садовая-Кудринская, д. 12",
            start: at(Tz::Europe__Moscow, 30, 15),
            clinic_phone: PHONE,
            manage_link: Some("https://sovamed.ru/cabinet/records/42"),
        };
        let booked = text(Notice::Booked, &facts);
        assert_eq!(
            booked,
            "Совамед: вы записаны на 30.11 (пн) в 15:00. Врач: Голубев Р. А. \
             Тел. +7 (800) 555-35-35 https://sovamed.ru/cabinet/records/42"
        );
        for notice in ALL {
            let text = text(notice, &facts);
            assert!(!text.contains("к врачу"), "{text}");
            assert!(text.contains(PHONE), "{text}");
            assert!(text.contains("Голубев"), "{text}");
            assert_eq!(
                text.contains("/cabinet/records/42"),
                notice.goes_on(),
                "a link only while the visit goes on: {text}"
            );
        }
        assert!(text(Notice::Reminder, &facts).contains("ждём вас на приём 30.11"));
        assert!(text(Notice::Cancelled, &facts).contains("отменена"));
    }

    #[test]
    fn without_a_link_the_address_is_given() {
        let facts = NoticeFacts {
            doctor: "Смирнова Ольга Петровна",
            address: "ул. Малышева, 51",
            start: at(Tz::Asia__Yekaterinburg, 30, 9),
            clinic_phone: PHONE,
            manage_link: None,
        };
        let moved = text(Notice::Moved, &facts);
        assert_eq!(
            moved,
            "Совамед: приём перенесён на 30.11 (пн) в 09:00 (местное время). \
             Врач: Смирнова О. П. Адрес: ул. Малышева, 51. Тел. +7 (800) 555-35-35"
        );
        assert!(!text(Notice::Cancelled, &facts).contains("Малышева"));
    }

    /// Every text about a visit, with the longest values a clinic plausibly has, fits two
    /// UCS-2 parts; so do the codes one part and the notice two.
    #[test]
    fn every_text_fits_two_sms_parts() {
        let base = "https://lk.sovamed-clinic.ru";
        let links = [
            format!("{base}/cabinet/records/9999999"),
            format!(
                "{base}/v/{}",
                "A".repeat(super::super::rules::LINK_TOKEN_LEN)
            ),
            format!("{base}/v/{}", "f".repeat(32)),
        ];
        let doctors = [
            "Голубев Роман Андреевич",
            "Константинопольская-Щедрина Анна-Мария Владимировна",
            "Мамедов Ахмед Рашид оглы",
        ];
        let address =
            "Екатеринбург, ул. Малышева, д. 51, корп. 2, бизнес-центр «Высоцкий», 3-й этаж";
        let phones = [PHONE, "+7 (3452) 12-34-56 доб. 1234"];
        for notice in ALL {
            for doctor in doctors {
                for phone in phones {
                    for link in links.iter().map(|l| Some(l.as_str())).chain([None]) {
                        for zone in [Tz::Europe__Moscow, Tz::Asia__Yekaterinburg] {
                            let facts = NoticeFacts {
                                doctor,
                                address,
                                start: at(zone, 30, 15),
                                clinic_phone: phone,
                                manage_link: link,
                            };
                            let text = text(notice, &facts);
                            assert!(
                                ucs2_units(&text) <= MAX_UNITS,
                                "{} units: {text}",
                                ucs2_units(&text)
                            );
                            assert!(text.contains(phone), "the phone stays: {text}");
                        }
                    }
                }
            }
        }
        for purpose in [
            VerificationPurpose::Booking,
            VerificationPurpose::Registration,
            VerificationPurpose::PasswordReset,
            VerificationPurpose::PhoneChange,
        ] {
            let code = code_text("042917", purpose);
            assert!(ucs2_units(&code) <= ONE_PART_UNITS, "{code}");
            assert!(code.contains("код 042917"), "{code}");
        }
        for phone in phones {
            assert!(ucs2_units(&email_taken_text(phone)) <= MAX_UNITS);
        }
        assert!(email_taken_text(PHONE).contains(PHONE));
    }

    #[test]
    fn a_long_doctor_name_gives_way_before_the_link() {
        let link = "https://lk.sovamed-clinic.ru/v/AAAAAAAAAAAAAAAAAAAAAA";
        let facts = NoticeFacts {
            doctor: "Константинопольская-Щедрина Анна-Мария Владимировна",
            address: "",
            start: at(Tz::Europe__Moscow, 30, 15),
            clinic_phone: PHONE,
            manage_link: Some(link),
        };
        let reminder = text(Notice::Reminder, &facts);
        assert!(reminder.ends_with(link), "{reminder}");
        assert!(ucs2_units(&reminder) <= MAX_UNITS, "{reminder}");
    }

    #[test]
    fn a_visit_is_spoken_of_with_its_weekday_and_month() {
        assert_eq!(
            spoken_when(at(Tz::Europe__Moscow, 30, 15)),
            "пн, 30 ноября, 15:00"
        );
    }
}
