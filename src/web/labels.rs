//! How the pages name the core's codes, in Russian. (Inherent methods may live in any
//! module of the crate, so the words stay in this face while templates call
//! `role.title()` directly.)

use crate::{
    domain::values::{RecordSource, RecordStatus, Role},
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
    pub fn title(self) -> &'static str {
        match self {
            RecordStatus::Booked => "запланирован",
            RecordStatus::Cancelled => "отменён",
            RecordStatus::Visited => "состоялся",
            RecordStatus::NoShow => "неявка",
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

/// The Russian name of an SMS kind (`sms_outbox.kind`); never the code itself.
pub fn sms_kind_title(kind: &str) -> &'static str {
    match kind {
        "booked" => "запись",
        "moved" => "перенос",
        "cancelled" => "отмена",
        "code" => "код подтверждения",
        "notice" => "уведомление",
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
