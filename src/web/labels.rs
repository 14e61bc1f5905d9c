//! How the pages name the core's codes, in Russian. (Inherent methods may live in any
//! module of the crate, so the words stay in this face while templates call
//! `role.title()` directly.)

use std::borrow::Borrow;

use crate::{
    domain::{
        booking::notify::{month_genitive, weekday_abbr},
        values::{ConsentPurpose, RecordSource, RecordStatus, Role},
    },
    sync::{SyncKind, guard::Subject},
};

impl Role {
    /// The Russian name shown in the interface.
    pub fn title(self) -> &'static str {
        match self {
            Role::Patient => "пациент",
            Role::Staff => "сотрудник",
            Role::Admin => "администратор",
        }
    }

    /// Where this role lands after login.
    pub fn home_path(self) -> &'static str {
        match self {
            Role::Patient => "/cabinet",
            Role::Staff => "/staff",
            Role::Admin => "/admin",
        }
    }
}

impl RecordStatus {
    /// The state of a record as patients and staff read it, in words that agree with
    /// «запись» wherever they stand alone (a status cell, a filter's option).
    pub fn title(self) -> &'static str {
        match self {
            RecordStatus::Booked => "Запись активна",
            RecordStatus::Cancelled => "Запись отменена",
            RecordStatus::Visited => "Приём состоялся",
            RecordStatus::NoShow => "Пациент не пришёл",
        }
    }
}

impl RecordSource {
    pub fn title(self) -> &'static str {
        match self {
            RecordSource::Cabinet => "личный кабинет",
            RecordSource::Anonymous => "сайт, без входа",
            RecordSource::Api => "приложение или сайт, со входом",
            RecordSource::Clinic => "регистратура клиники, в МИС",
            RecordSource::Desk => "регистратура, на этом сайте",
        }
    }
}

impl ConsentPurpose {
    /// What the consent allows, in Russian («согласие на …»).
    pub fn title(self) -> &'static str {
        match self {
            ConsentPurpose::PersonalData => "обработку персональных данных",
            ConsentPurpose::HealthData => "обработку сведений о здоровье",
        }
    }
}

/// The Russian name of an SMS kind (`sms_outbox.kind`); never the code itself.
pub fn sms_kind_title(kind: &str) -> &'static str {
    match kind {
        "booked" => "запись",
        "moved" => "перенос",
        "cancelled" => "отмена",
        "code" => "код подтверждения",
        "notice" => "уведомление",
        "reminder" => "напоминание",
        _ => "сообщение",
    }
}

impl SyncKind {
    /// The Russian name of the kind on `/staff/sync`.
    pub fn title(self) -> &'static str {
        match self {
            SyncKind::Branches => "Филиалы",
            SyncKind::Specialities => "Специальности",
            SyncKind::Specialists => "Врачи",
            SyncKind::Prices => "Цены",
            SyncKind::Reviews => "Отзывы",
            SyncKind::Content => "Материалы сайта",
            SyncKind::Schedules => "Расписание",
        }
    }
}

impl Subject {
    /// What a refused deactivation is about, in Russian (nominative plural, so it needs no
    /// agreement with a number: «врачи: 30 из 37»).
    pub fn title(self) -> &'static str {
        match self {
            Subject::Branches => "филиалы",
            Subject::Specialities => "специальности",
            Subject::Specialists => "врачи",
            Subject::Prices => "цены",
            Subject::Reviews => "отзывы",
            Subject::Pages => "страницы сайта",
            Subject::Services => "услуги на сайте",
            Subject::Specializations => "направления на сайте",
        }
    }
}

/// What an audit event's subject names, so the audit screen can link it and never shows a
/// bare code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditSubject {
    /// A record id: linked to the staff record page.
    Record,
    /// An account id: linked to the admin's account page.
    Account,
    /// `<account id> → <role code>` (a role change).
    RoleChange,
    /// A booking intent id.
    Intent,
    /// An SMS outbox id.
    Sms,
    /// The file format of an export (`csv`, `xlsx`).
    Export,
    /// A sync kind's code, or `all`.
    SyncKind,
    /// Shown as it is: an e-mail tried at login, a path refused, anything else.
    AsIs,
}

/// One audit action: its stored code, its Russian name, and what its subject names.
#[derive(Debug, Clone, Copy)]
pub struct AuditAction {
    pub code: &'static str,
    pub title: &'static str,
    pub subject: AuditSubject,
}

const fn action(code: &'static str, title: &'static str, subject: AuditSubject) -> AuditAction {
    AuditAction {
        code,
        title,
        subject,
    }
}

/// Every action the code writes to the audit trail, in the order the audit screen's select
/// lists them. A code written somewhere but missing here shows as «другое действие» and
/// cannot be filtered on, so add new actions here when they are added to the code.
pub const AUDIT_ACTIONS: &[AuditAction] = &[
    // Logins and accounts (`auth::login`, `auth::roles`, `web::auth`, `domain::profile`).
    action("login_succeeded", "успешный вход", AuditSubject::AsIs),
    action(
        "login_failed",
        "неудачная попытка входа",
        AuditSubject::AsIs,
    ),
    action(
        "login_throttled",
        "вход отклонён: слишком много попыток",
        AuditSubject::AsIs,
    ),
    action("logout", "выход", AuditSubject::Account),
    action("access_denied", "отказ в доступе", AuditSubject::AsIs),
    action("registered", "регистрация", AuditSubject::Account),
    action(
        "registration_email_taken",
        "регистрация на уже занятую почту",
        AuditSubject::Account,
    ),
    action(
        "password_reset_by_code",
        "пароль восстановлен по коду из СМС",
        AuditSubject::Account,
    ),
    action(
        "password_changed",
        "пароль изменён пользователем",
        AuditSubject::Account,
    ),
    action(
        "profile_changed",
        "имя или почта изменены пользователем",
        AuditSubject::Account,
    ),
    action(
        "phone_changed",
        "телефон изменён пользователем",
        AuditSubject::Account,
    ),
    // The second factor and the sessions list (`domain::mfa`, `domain::sessions`).
    action(
        "mfa_enrolled",
        "подключён второй фактор",
        AuditSubject::Account,
    ),
    action("mfa_passed", "второй фактор пройден", AuditSubject::Account),
    action(
        "mfa_failed",
        "неверный код второго фактора",
        AuditSubject::Account,
    ),
    action(
        "mfa_recovery_used",
        "вход по резервному коду",
        AuditSubject::Account,
    ),
    action(
        "mfa_reset",
        "второй фактор сброшен оператором",
        AuditSubject::Account,
    ),
    action(
        "session_ended",
        "сеанс завершён пользователем",
        AuditSubject::Account,
    ),
    // The patient's data rights (`domain::data_rights`, `domain::consent`).
    action(
        "my_data_exported",
        "пациент выгрузил свои данные",
        AuditSubject::Account,
    ),
    action(
        "consent_withdrawn",
        "согласие отозвано",
        AuditSubject::Account,
    ),
    action(
        "consent_given",
        "согласие дано в личном кабинете",
        AuditSubject::Account,
    ),
    // An admin's or the command line's changes (`domain::accounts`).
    action(
        "user_created",
        "учётная запись создана",
        AuditSubject::Account,
    ),
    // Invitations (`domain::invitations`).
    action(
        "user_invited",
        "учётная запись создана по приглашению",
        AuditSubject::Account,
    ),
    action(
        "invitation_reissued",
        "выдана новая ссылка-приглашение",
        AuditSubject::Account,
    ),
    action(
        "invitation_accepted",
        "пароль задан по приглашению",
        AuditSubject::Account,
    ),
    action(
        "user_role_changed",
        "роль изменена",
        AuditSubject::RoleChange,
    ),
    action(
        "user_disabled",
        "учётная запись отключена",
        AuditSubject::Account,
    ),
    action(
        "user_enabled",
        "учётная запись включена",
        AuditSubject::Account,
    ),
    action(
        "user_password_reset",
        "пароль задан администратором",
        AuditSubject::Account,
    ),
    action(
        "user_sessions_ended",
        "завершены все сеансы",
        AuditSubject::Account,
    ),
    // Records (`domain::booking`, the staff pages, the API).
    action("record_booked", "запись создана", AuditSubject::Record),
    action(
        "record_viewed",
        "запись просмотрена сотрудником",
        AuditSubject::Record,
    ),
    action("record_cancelled", "запись отменена", AuditSubject::Record),
    action("record_moved", "запись перенесена", AuditSubject::Record),
    action(
        "record_marked_visited",
        "отмечен приход",
        AuditSubject::Record,
    ),
    action(
        "record_marked_no_show",
        "отмечена неявка",
        AuditSubject::Record,
    ),
    action("records_exported", "выгрузка записей", AuditSubject::Export),
    // A patient's calendar feed (`domain::booking::calendar`); its reads are `records_listed`.
    action(
        "calendar_feed_issued",
        "выдана ссылка на календарь визитов",
        AuditSubject::Account,
    ),
    action(
        "calendar_feed_revoked",
        "ссылка на календарь визитов отключена",
        AuditSubject::Account,
    ),
    action(
        "records_listed",
        "список записей просмотрен",
        AuditSubject::AsIs,
    ),
    action(
        "sync_started",
        "синхронизация запущена вручную",
        AuditSubject::SyncKind,
    ),
    action(
        "desk_branch_set",
        "выбран филиал рабочего места",
        AuditSubject::AsIs,
    ),
    // The clinic's own changes from the MIS change feed and the comparison (system).
    action(
        "record_booked_by_clinic",
        "запись создана клиникой",
        AuditSubject::Record,
    ),
    action(
        "record_cancelled_by_clinic",
        "запись отменена клиникой",
        AuditSubject::Record,
    ),
    action(
        "record_moved_by_clinic",
        "запись перенесена клиникой",
        AuditSubject::Record,
    ),
    action("record_visited", "приём состоялся", AuditSubject::Record),
    action(
        "record_cancelled_by_reconcile",
        "запись отменена при сверке с МИС",
        AuditSubject::Record,
    ),
    action(
        "record_moved_by_reconcile",
        "запись перенесена при сверке с МИС",
        AuditSubject::Record,
    ),
    // The reconciler's settlements of booking intents (system).
    action(
        "intent_completed",
        "незавершённая операция с записью доведена до конца",
        AuditSubject::Intent,
    ),
    action(
        "intent_failed",
        "незавершённая операция с записью признана несостоявшейся",
        AuditSubject::Intent,
    ),
    // The operator's decisions on held SMS (`sovamed sms`).
    action(
        "sms_marked_sent",
        "СМС отмечено отправленным",
        AuditSubject::Sms,
    ),
    action("sms_resent", "СМС отправлено повторно", AuditSubject::Sms),
    action("sms_dropped", "СМС снято с отправки", AuditSubject::Sms),
    // Deletion and retention (`domain::retention`).
    action(
        "account_deletion_requested",
        "пациент удалил учётную запись",
        AuditSubject::Account,
    ),
    action(
        "account_anonymised",
        "персональные данные удалённой учётной записи стёрты",
        AuditSubject::Account,
    ),
    action(
        "retention_run",
        "очистка данных по срокам хранения",
        AuditSubject::AsIs,
    ),
];

/// The audit action with this code, if the code is known.
pub fn audit_action(code: &str) -> Option<&'static AuditAction> {
    AUDIT_ACTIONS.iter().find(|a| a.code == code)
}

/// The Russian name of an audit action; an unknown code is named vaguely rather than shown.
pub fn audit_action_title(code: &str) -> &'static str {
    audit_action(code).map_or("другое действие", |a| a.title)
}

/// "понедельник, 30.11.2026": a date as a patient reads it.
pub fn weekday_date(date: chrono::NaiveDate) -> String {
    use chrono::Datelike;
    let day = match date.weekday() {
        chrono::Weekday::Mon => "понедельник",
        chrono::Weekday::Tue => "вторник",
        chrono::Weekday::Wed => "среда",
        chrono::Weekday::Thu => "четверг",
        chrono::Weekday::Fri => "пятница",
        chrono::Weekday::Sat => "суббота",
        chrono::Weekday::Sun => "воскресенье",
    };
    format!("{day}, {}", date.format("%d.%m.%Y"))
}

/// «пн, 30 ноября, 15:00»: a time as the clocks of the zone it is in show it (no year: the
/// times shown this way are the coming weeks').
pub fn weekday_day_time<Z: chrono::TimeZone>(at: &chrono::DateTime<Z>) -> String
where
    Z::Offset: std::fmt::Display,
{
    day_month_time(at.naive_local())
}

/// «пн, 30 ноября»: a day as a patient reads it.
pub fn day_month(date: chrono::NaiveDate) -> String {
    use chrono::Datelike;
    format!(
        "{}, {} {}",
        weekday_abbr(date.weekday()),
        date.day(),
        month_genitive(date.month())
    )
}

/// «пн, 30 ноября, 15:00»: a wall-clock time (a branch's, already converted) as a patient
/// reads it.
pub fn day_month_time(at: chrono::NaiveDateTime) -> String {
    format!("{}, {}", day_month(at.date()), at.format("%H:%M"))
}

/// A visit's time on its branch's clocks: «пн, 30 ноября, 15:00», with the year when it is
/// not this year («пн, 1 декабря 2025, 15:00»), so lists of past visits stay unambiguous.
/// Takes the time or a reference to it (templates pass fields by reference).
pub fn visit_when(at: impl Borrow<chrono::DateTime<chrono_tz::Tz>>) -> String {
    visit_when_at(*at.borrow(), chrono::Utc::now())
}

fn visit_when_at(
    at: chrono::DateTime<chrono_tz::Tz>,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    use chrono::Datelike;
    let local = at.naive_local();
    if local.year() == now.with_timezone(&at.timezone()).year() {
        return day_month_time(local);
    }
    format!(
        "{} {}, {}",
        day_month(local.date()),
        local.year(),
        local.format("%H:%M")
    )
}

/// «30 ноября 2026, 15:00 мск»: an instant on Moscow clocks, for logs and lists of events,
/// where the year matters and no branch's zone applies. Never UTC on a page. Takes the
/// instant or a reference to it (templates pass fields by reference).
pub fn moscow_time(at: impl Borrow<chrono::DateTime<chrono::Utc>>) -> String {
    on_moscow_clocks(*at.borrow(), "%H:%M")
}

/// [`moscow_time`] with seconds, for the audit trail: «30 ноября 2026, 15:00:07 мск».
pub fn moscow_time_seconds(at: impl Borrow<chrono::DateTime<chrono::Utc>>) -> String {
    on_moscow_clocks(*at.borrow(), "%H:%M:%S")
}

fn on_moscow_clocks(at: chrono::DateTime<chrono::Utc>, clock: &str) -> String {
    use chrono::Datelike;
    let local = at.with_timezone(&chrono_tz::Europe::Moscow);
    format!(
        "{} {} {}, {} мск",
        local.day(),
        month_genitive(local.month()),
        local.year(),
        local.format(clock)
    )
}

/// [`moscow_time`] of an optional instant, or `otherwise`.
pub fn moscow_time_or(
    at: impl Borrow<Option<chrono::DateTime<chrono::Utc>>>,
    otherwise: &str,
) -> String {
    match *at.borrow() {
        Some(at) => moscow_time(at),
        None => otherwise.to_owned(),
    }
}

/// What went wrong with an SMS, for staff, in Russian: the gateway's own error text stays in
/// the log and the API; `None` when nothing did.
pub fn sms_problem(message: &crate::db::models::outbox::OutboxMessage) -> Option<&'static str> {
    use crate::db::models::outbox::status;
    if let Some(note) = message.status_note() {
        return Some(note);
    }
    message.last_error.as_ref()?;
    Some(match message.status.as_str() {
        status::PENDING | status::SENDING => "попытка не удалась, отправка повторится",
        status::FAILED => "шлюз не принял сообщение или попытки исчерпаны",
        _ => "ошибка отправки",
    })
}

#[cfg(test)]
mod date_tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone, Utc};

    #[test]
    fn dates_read_as_weekday_day_and_month() {
        let monday = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        assert_eq!(day_month(monday), "пн, 30 ноября");
        assert_eq!(
            day_month_time(monday.and_hms_opt(15, 0, 0).unwrap()),
            "пн, 30 ноября, 15:00"
        );
        let sunday = NaiveDate::from_ymd_opt(2027, 5, 9).unwrap();
        assert_eq!(
            day_month_time(sunday.and_hms_opt(9, 5, 0).unwrap()),
            "вс, 9 мая, 09:05"
        );
        for month in 1..=12 {
            let first = NaiveDate::from_ymd_opt(2026, month, 1).unwrap();
            let text = day_month(first);
            assert!(
                !text.chars().any(|c| c.is_ascii_alphabetic())
                    && (text.ends_with('я') || text.ends_with('а')),
                "{text}"
            );
        }
    }

    #[test]
    fn a_visit_names_its_year_only_when_it_is_not_this_year() {
        let zone = chrono_tz::Asia::Yekaterinburg;
        let visit = zone.with_ymd_and_hms(2026, 11, 30, 15, 0, 0).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        assert_eq!(visit_when_at(visit, now), "пн, 30 ноября, 15:00");
        let next_year = Utc.with_ymd_and_hms(2027, 1, 10, 0, 0, 0).unwrap();
        assert_eq!(visit_when_at(visit, next_year), "пн, 30 ноября 2026, 15:00");
    }

    #[test]
    fn instants_are_shown_on_moscow_clocks_never_utc() {
        // 21:30 UTC on the last day of the year is already the next year in Moscow.
        let late = Utc.with_ymd_and_hms(2026, 12, 31, 21, 30, 0).unwrap();
        assert_eq!(moscow_time(late), "1 января 2027, 00:30 мск");
        let by_reference = &late;
        assert_eq!(moscow_time(by_reference), "1 января 2027, 00:30 мск");
        assert_eq!(
            moscow_time_seconds(late + chrono::Duration::seconds(7)),
            "1 января 2027, 00:30:07 мск"
        );
        assert_eq!(moscow_time_or(None, "не входил"), "не входил");
        assert_eq!(
            moscow_time_or(
                Some(Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap()),
                "—"
            ),
            "30 ноября 2026, 15:00 мск"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_actions_are_unique_and_named_in_russian() {
        for (i, a) in AUDIT_ACTIONS.iter().enumerate() {
            assert!(
                AUDIT_ACTIONS[..i].iter().all(|b| b.code != a.code),
                "{} twice",
                a.code
            );
            assert!(
                !a.title.chars().any(|c| c.is_ascii_alphabetic()),
                "{}: {}",
                a.code,
                a.title
            );
        }
        assert_eq!(audit_action_title("login_succeeded"), "успешный вход");
        assert_eq!(audit_action_title("no_such_action"), "другое действие");
    }

    #[test]
    fn times_read_with_a_short_weekday_and_the_month_in_words() {
        use chrono::TimeZone;
        let at = chrono_tz::Asia::Yekaterinburg
            .with_ymd_and_hms(2026, 11, 30, 15, 0, 0)
            .single()
            .expect("a time");
        assert_eq!(weekday_day_time(&at), "пн, 30 ноября, 15:00");
        let at = chrono_tz::Europe::Moscow
            .with_ymd_and_hms(2027, 1, 2, 9, 5, 0)
            .single()
            .expect("a time");
        assert_eq!(weekday_day_time(&at), "сб, 2 января, 09:05");
    }
}

impl crate::domain::values::BranchZone {
    /// "время Екатеринбурга": whose clocks a branch's times are on, by the city of its
    /// zone; a zone without a Russian city is told by its offset from UTC.
    pub fn city_time(self) -> String {
        zone_city(self)
    }
}

fn zone_city(zone: crate::domain::values::BranchZone) -> String {
    let city = match zone.name() {
        "Europe/Kaliningrad" => "Калининграда",
        "Europe/Moscow" => "Москвы",
        "Europe/Simferopol" => "Симферополя",
        "Europe/Volgograd" => "Волгограда",
        "Europe/Kirov" => "Кирова",
        "Europe/Astrakhan" => "Астрахани",
        "Europe/Saratov" => "Саратова",
        "Europe/Ulyanovsk" => "Ульяновска",
        "Europe/Samara" => "Самары",
        "Asia/Yekaterinburg" => "Екатеринбурга",
        "Asia/Omsk" => "Омска",
        "Asia/Novosibirsk" => "Новосибирска",
        "Asia/Barnaul" => "Барнаула",
        "Asia/Tomsk" => "Томска",
        "Asia/Novokuznetsk" => "Новокузнецка",
        "Asia/Krasnoyarsk" => "Красноярска",
        "Asia/Irkutsk" => "Иркутска",
        "Asia/Chita" => "Читы",
        "Asia/Yakutsk" => "Якутска",
        "Asia/Vladivostok" => "Владивостока",
        "Asia/Sakhalin" => "Сахалина",
        "Asia/Magadan" => "Магадана",
        "Asia/Kamchatka" => "Камчатки",
        "Asia/Anadyr" => "Анадыря",
        _ => {
            use chrono::Offset;
            let now = chrono::Utc::now().with_timezone(&zone.tz());
            let hours = now.offset().fix().local_minus_utc() / 3600;
            return format!("местное время (UTC{hours:+})");
        }
    };
    format!("время {city}")
}

#[cfg(test)]
mod zone_tests {
    use crate::domain::values::BranchZone;

    fn zone_city(zone: BranchZone) -> String {
        zone.city_time()
    }

    #[test]
    fn branches_are_told_by_their_city() {
        assert_eq!(
            zone_city(BranchZone(chrono_tz::Asia::Yekaterinburg)),
            "время Екатеринбурга"
        );
        assert_eq!(
            zone_city(BranchZone(chrono_tz::Europe::Moscow)),
            "время Москвы"
        );
        assert_eq!(
            zone_city(BranchZone(chrono_tz::Asia::Dubai)),
            "местное время (UTC+4)"
        );
    }
}

// ---- dates as the booking pages show them --------------------------------------------

/// «30 ноября»: the day and the month in the genitive.
pub fn day_and_month(date: chrono::NaiveDate) -> String {
    use chrono::Datelike;
    format!("{} {}", date.day(), month_genitive(date.month()))
}

/// «Пн 30.11»: a day's heading in a week picker.
pub fn week_day_heading(date: chrono::NaiveDate) -> String {
    use chrono::Datelike;
    let weekday = weekday_abbr(date.weekday());
    let mut chars = weekday.chars();
    let capital: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    format!("{capital} {}", date.format("%d.%m"))
}

/// «пн, 30 ноября, 15:00, время Екатеринбурга»: when a visit is, on the branch's clocks.
pub fn visit_when_in(
    zone: crate::domain::values::BranchZone,
    start: chrono::DateTime<chrono::Utc>,
) -> String {
    let local = zone.local(&start);
    format!(
        "{}, {}, {}",
        day_month(local.date_naive()),
        local.format("%H:%M"),
        zone.city_time()
    )
}

#[cfg(test)]
mod booking_date_tests {
    use chrono::{NaiveDate, TimeZone, Utc};

    use super::*;
    use crate::domain::values::BranchZone;

    #[test]
    fn visits_are_told_by_weekday_day_month_time_and_city() {
        let monday = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        assert_eq!(day_month(monday), "пн, 30 ноября");
        assert_eq!(week_day_heading(monday), "Пн 30.11");
        assert_eq!(
            day_and_month(NaiveDate::from_ymd_opt(2027, 5, 1).unwrap()),
            "1 мая"
        );
        let start = Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 0).unwrap();
        assert_eq!(
            visit_when_in(BranchZone(chrono_tz::Asia::Yekaterinburg), start),
            "пн, 30 ноября, 15:00, время Екатеринбурга"
        );
    }
}
