//! The schedule and booking messages of the MIS emulator: SCHEDULE, SCHEDULE_REC_RESERVE,
//! SCHEDULE_REC_REMOVE, SCHEDULE_REC_LIST, CLIENT_CHECK and CLIENT_ADD, over the state of
//! [`crate::emulator::booking`]. Texts follow §2.6–2.16 of the protocol notes; where the
//! real server's answer is unknown, §5's recommendations are followed.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, Timelike};

use super::{Output, Refusal, id_filter, keep, number};
use crate::{
    emulator::{
        World,
        booking::{self, Patient, Refusal as BookingRefusal, Reservation, SLOT_MINUTES},
    },
    integrations::infoclinica::{
        TIME_TAKEN_LABEL,
        messages::mis_phone,
        xml::{Element, XmlWriter, format_date, parse_date, parse_time},
    },
};

/// CHECKTEXT and SPCOMMENT of a taken interval (§2.7).
pub const TIME_TAKEN_TEXT: &str =
    "К сожалению, выбранное время было недавно занято. Пожалуйста, выберите другое время.";
/// CHECKTEXT of a second cancel (§2.8).
pub const ALREADY_CANCELLED_TEXT: &str =
    "Ваша запись на прием уже отменена, список записей будет обновлен в ближайшее время";
/// The longest window SCHEDULE answers, in days.
const MAX_WINDOW_DAYS: i64 = 92;

fn missing(op: &str, field: &str) -> Refusal {
    format!("Не задано обязательное поле {op}_IN/{field}")
}

fn required(input: &Element, op: &str, field: &str) -> Result<i64, Refusal> {
    number(input, field)?.ok_or_else(|| missing(op, field))
}

fn date(input: &Element, field: &str) -> Result<Option<NaiveDate>, Refusal> {
    input
        .text_of(field)
        .map(|raw| parse_date(raw).ok_or_else(|| format!("Неверное значение поля {field}")))
        .transpose()
}

fn text(input: &Element, field: &str) -> String {
    input.text_of(field).unwrap_or("").to_owned()
}

fn write_times(w: &mut XmlWriter, start: chrono::NaiveTime, end: chrono::NaiveTime) {
    w.leaf("BHOUR", start.hour())
        .leaf("BMIN", start.minute())
        .leaf("FHOUR", end.hour())
        .leaf("FMIN", end.minute());
}

/// `SCHEDULE` (§2.6): `DEP/DOCT/WRDATE/SCHEDINT/INTERVAL` for the filial's doctors.
pub(super) fn schedule(world: &World, filial: i64, input: &Element) -> Result<Output, Refusal> {
    const OP: &str = "SCHEDULE";
    let from = date(input, "BDATE")?.ok_or_else(|| missing(OP, "BDATE"))?;
    let to = date(input, "FDATE")?.ok_or_else(|| missing(OP, "FDATE"))?;
    let doctors = match (
        id_filter(input, "INDOCTLIST")?,
        id_filter(input, "DCODEIN")?,
    ) {
        (Some(a), Some(b)) => Some(a.union(&b).copied().collect::<BTreeSet<_>>()),
        (a, b) => a.or(b),
    };
    let idents = id_filter(input, "SCHEDIDENTLIST")?;
    // §5 #6: EXTINTERV cuts the periods; the native length otherwise.
    let step = number(input, "EXTINTERV")?
        .filter(|m| (5..=240).contains(m))
        .unwrap_or(SLOT_MINUTES);
    if world.branch(filial).is_none() {
        return Ok(Output::failed("Филиал не найден"));
    }
    if to < from || (to - from).num_days() > MAX_WINDOW_DAYS {
        return Ok(Output::failed("Неверно задан период расписания"));
    }
    let mut departments: BTreeMap<i64, String> = BTreeMap::new();
    for doctor in world.doctors.iter().filter(|d| keep(&doctors, d.mis_id)) {
        for placement in doctor
            .placements
            .iter()
            .filter(|p| p.branch_mis_id == filial)
        {
            let mut w = XmlWriter::new();
            let mut any = false;
            for date in from.iter_days().take_while(|d| *d <= to) {
                let periods: Vec<_> = world
                    .work_periods(filial, doctor.mis_id, date)
                    .into_iter()
                    .filter(|p| keep(&idents, p.schedident))
                    .collect();
                if periods.is_empty() {
                    continue;
                }
                any = true;
                w.open("WRDATE").leaf("WDATE", format_date(date));
                for period in &periods {
                    w.open("SCHEDINT")
                        .leaf("SCHEDIDENT", period.schedident)
                        .leaf("RNUM", &period.room);
                    for (start, end) in World::intervals(period, step) {
                        w.open("INTERVAL");
                        write_times(&mut w, start, end);
                        w.leaf("FREETYPE", world.free_type(period, start, end))
                            .close("INTERVAL");
                    }
                    w.close("SCHEDINT");
                }
                w.close("WRDATE");
            }
            if any {
                let mut doct = XmlWriter::new();
                doct.open("DOCT")
                    .leaf("DCODE", doctor.mis_id)
                    .leaf("DNAME", &doctor.full_name)
                    .raw(&w.finish())
                    .close("DOCT");
                departments
                    .entry(placement.department_mis_id)
                    .or_default()
                    .push_str(&doct.finish());
            }
        }
    }
    let mut w = XmlWriter::new();
    for (department, doctors) in &departments {
        w.open("DEP")
            .leaf("DEPNUM", department)
            .leaf(
                "DEPNAME",
                world
                    .department(*department)
                    .map_or("", |d| d.name.as_str()),
            )
            .raw(doctors)
            .close("DEP");
    }
    Ok(Output::ok(w.finish(), "Данные по расписанию получены"))
}

/// `SCHEDULE_REC_RESERVE` (§2.7, §5 #9–#11), atomic under the caller's write lock.
pub(super) fn reserve(world: &mut World, filial: i64, input: &Element) -> Result<Output, Refusal> {
    const OP: &str = "SCHEDULE_REC_RESERVE";
    let doctor_mis_id = required(input, OP, "DCODE")?;
    let date = date(input, "WORKDATE")?.ok_or_else(|| missing(OP, "WORKDATE"))?;
    let mut raw = Vec::new();
    for field in ["BHOUR", "BMIN", "FHOUR", "FMIN"] {
        raw.push(input.text_of(field).ok_or_else(|| missing(OP, field))?);
    }
    let schedident = required(input, OP, "SCHEDIDENT")?;
    let pcode = required(input, OP, "PCODE")?;
    let move_schedid = number(input, "SCHEDID")?;
    let (Some(start), Some(end)) = (parse_time(raw[0], raw[1]), parse_time(raw[2], raw[3])) else {
        return Ok(Output::failed("Неверно задано время приема"));
    };
    let reservation = Reservation {
        filial,
        doctor_mis_id,
        date,
        start,
        end,
        schedident,
        pcode,
        move_schedid,
    };
    Ok(match world.reserve(&reservation) {
        Ok(a) => {
            let mut w = XmlWriter::new();
            w.open("SCHED_INFO")
                .leaf("SCHEDID", a.schedid)
                .leaf("WORKDATE", format_date(a.date));
            write_times(&mut w, a.start, a.end);
            w.leaf("FILIAL", a.branch_mis_id)
                .leaf(
                    "FNAME",
                    world
                        .branch(a.branch_mis_id)
                        .map_or("", |b| b.name.as_str()),
                )
                .leaf("DCODE", a.doctor_mis_id)
                .leaf(
                    "DNAME",
                    world
                        .doctor(a.doctor_mis_id)
                        .map_or("", |d| d.full_name.as_str()),
                )
                .leaf(
                    "DEPNAME",
                    world
                        .department(a.department_mis_id)
                        .map_or("", |d| d.name.as_str()),
                )
                .leaf("CASHID", 0)
                .leaf("SCHEDIDENT", a.schedident)
                .leaf("ONLINETYPE", 0)
                .close("SCHED_INFO");
            Output::ok(w.finish(), "Запись на прием успешно зарезервирована")
        }
        Err(BookingRefusal::Taken) => {
            Output::failed(TIME_TAKEN_TEXT).check(2, TIME_TAKEN_LABEL, TIME_TAKEN_TEXT)
        }
        Err(BookingRefusal::AppointmentNotFound) => Output::failed("Запись пациента не найдена"),
        Err(BookingRefusal::Invalid(comment)) => Output::failed(&comment),
    })
}

/// `SCHEDULE_REC_REMOVE` (§2.8): a second cancel is not found.
pub(super) fn remove(world: &mut World, filial: i64, input: &Element) -> Result<Output, Refusal> {
    let schedid = required(input, "SCHEDULE_REC_REMOVE", "SCHEDID")?;
    let pcode = number(input, "PCODE")?;
    Ok(match world.cancel(filial, schedid, pcode) {
        Ok(_) => Output::ok(String::new(), "Запись пациента на прием удалена"),
        Err(_) => Output::failed("Запись пациента не найдена").check(2, "", ALREADY_CANCELLED_TEXT),
    })
}

/// `SCHEDULE_REC_UPDATE` (§2.12): the attended mark; an unknown appointment is
/// `SPRESULT -2`, an earlier day's `SPRESULT 0`.
pub(super) fn rec_update(
    world: &mut World,
    filial: i64,
    input: &Element,
) -> Result<Output, Refusal> {
    const OP: &str = "SCHEDULE_REC_UPDATE";
    let schedid = required(input, OP, "SCHEDID")?;
    let visited = match required(input, OP, "CLVISIT")? {
        0 => false,
        1 => true,
        other => return Err(format!("Недопустимое значение {OP}_IN/CLVISIT: {other}")),
    };
    Ok(match world.update_visit(filial, schedid, visited) {
        Ok(_) => Output::ok(String::new(), "Запись обновлена"),
        Err(BookingRefusal::AppointmentNotFound) => Output {
            spresult: -2,
            ..Output::failed("Запись пациента не найдена")
        },
        Err(BookingRefusal::Invalid(comment)) => Output::failed(&comment),
        Err(BookingRefusal::Taken) => Output::failed(TIME_TAKEN_TEXT),
    })
}

fn main_info(w: &mut XmlWriter, p: &Patient) {
    w.open("CLIENT_MAININFO")
        .leaf("PCODE", p.pcode)
        .leaf("PNAME", p.full_name())
        .leaf("LASTNAME", &p.last_name)
        .leaf("FIRSTNAME", &p.first_name)
        .leaf("MIDNAME", &p.middle_name)
        .leaf_opt("BDATE", p.birth_date.map(format_date))
        .leaf("PPHONE", &p.phone)
        .leaf("PMAIL", &p.email)
        .leaf("LOGIN", &p.email)
        .leaf("REFUSECALL", 0)
        .leaf("REFUSESMS", 0)
        .close("CLIENT_MAININFO");
}

/// `CLIENT_CHECK` (§2.15, §5 #18): mode 11 by login (e-mail), 2 by phone, 1 by last and
/// first name and birth date.
pub(super) fn client_check(world: &World, input: &Element) -> Result<Output, Refusal> {
    const OP: &str = "CLIENT_CHECK";
    let mode = required(input, OP, "CHECKMODE")?;
    let found = match mode {
        11 => {
            let login = input.text_of("LOGIN").ok_or_else(|| missing(OP, "LOGIN"))?;
            world.patient_by_email(login)
        }
        2 => {
            let phone = input.text_of("PHONE").ok_or_else(|| missing(OP, "PHONE"))?;
            world.patient_by_phone(phone)
        }
        1 => {
            let last = text(input, "LASTNAME").to_lowercase();
            let first = text(input, "FIRSTNAME").to_lowercase();
            let birth = date(input, "BDATE")?;
            world.booking.patients.values().find(|p| {
                birth.is_some()
                    && p.birth_date == birth
                    && p.last_name.to_lowercase() == last
                    && p.first_name.to_lowercase() == first
            })
        }
        other => {
            return Ok(Output::failed(&format!(
                "Режим проверки CHECKMODE {other} не поддерживается"
            )));
        }
    };
    Ok(match found {
        None => Output::failed("Пациент не найден"),
        Some(p) => {
            let mut w = XmlWriter::new();
            w.leaf("PCODE", p.pcode);
            main_info(&mut w, p);
            Output::ok(w.finish(), "Пациент найден")
        }
    })
}

/// `CLIENT_ADD` (§2.16, §5 #18): a duplicate (same last and first name and birth date)
/// answers `SPRESULT 0`, `CHECKCODE 2` and the existing `PCODE`.
pub(super) fn client_add(world: &mut World, input: &Element) -> Result<Output, Refusal> {
    const OP: &str = "CLIENT_ADD";
    let last_name = input
        .text_of("LASTNAME")
        .ok_or_else(|| missing(OP, "LASTNAME"))?;
    let first_name = input
        .text_of("FIRSTNAME")
        .ok_or_else(|| missing(OP, "FIRSTNAME"))?;
    let patient = Patient {
        pcode: 0,
        last_name: last_name.to_owned(),
        first_name: first_name.to_owned(),
        middle_name: text(input, "MIDNAME"),
        birth_date: date(input, "BDATE")?,
        phone: input.text_of("PHONE").map(mis_phone).unwrap_or_default(),
        email: text(input, "EMAIL"),
    };
    let (pcode, existed) = world.add_patient(patient);
    let mut w = XmlWriter::new();
    w.leaf("PCODE", pcode);
    Ok(if existed {
        Output {
            items: w.finish(),
            ..Output::failed("Пациент уже существует")
        }
        .check(
            2,
            "Пациент уже существует",
            "Пациент с такими фамилией, именем и датой рождения уже зарегистрирован",
        )
    } else {
        Output::ok(w.finish(), "Пациент добавлен").check(1, "Проверка пройдена", "")
    })
}

/// `SCHEDULE_REC_LIST` (§2.10): the patient's active appointments from `BDATE` on, paged.
pub(super) fn rec_list(world: &World, input: &Element) -> Result<Output, Refusal> {
    let pcode = required(input, "SCHEDULE_REC_LIST", "PCODE")?;
    let from = date(input, "BDATE")?.unwrap_or(NaiveDate::MIN);
    let first_row = number(input, "FIRSTROW")?;
    let last_row = number(input, "LASTROW")?;
    let mut rows: Vec<&booking::Appointment> = world
        .booking
        .appointments
        .values()
        .filter(|a| a.pcode == pcode && a.date >= from)
        .collect();
    rows.sort_by_key(|a| (a.date, a.start, a.schedid));
    let total = rows.len() as i64;
    let first = first_row.unwrap_or(1).max(1);
    let last = last_row.unwrap_or(total).min(total);
    let mut w = XmlWriter::new();
    if first <= last {
        for a in &rows[(first - 1) as usize..last as usize] {
            w.open("SCHEDULEREC")
                .leaf("SCHEDID", a.schedid)
                .leaf("WORKDATE", format_date(a.date));
            write_times(&mut w, a.start, a.end);
            w.leaf("FILIAL", a.branch_mis_id)
                .leaf(
                    "FNAME",
                    world
                        .branch(a.branch_mis_id)
                        .map_or("", |b| b.name.as_str()),
                )
                .leaf("DCODE", a.doctor_mis_id)
                .leaf(
                    "DNAME",
                    world
                        .doctor(a.doctor_mis_id)
                        .map_or("", |d| d.full_name.as_str()),
                )
                .leaf("DEPNUM", a.department_mis_id)
                .leaf(
                    "DEPNAME",
                    world
                        .department(a.department_mis_id)
                        .map_or("", |d| d.name.as_str()),
                )
                .leaf("ONLINETYPE", 0)
                .close("SCHEDULEREC");
        }
    }
    w.open("RECORDSDATA")
        .leaf("ITEMSNUMBER", total)
        .leaf("FIRSTROW", first_row.unwrap_or(1))
        .leaf("LASTROW", last_row.unwrap_or(total))
        .close("RECORDSDATA");
    Ok(Output::ok(w.finish(), "Список приемов"))
}

/// `SCHEDULE_CHANGE_LIST` (§2.13): the filial's changes not yet accepted, oldest first.
pub(super) fn change_list(world: &World, filial: i64) -> Result<Output, Refusal> {
    let mut w = XmlWriter::new();
    for change in world
        .booking
        .changes
        .iter()
        .filter(|c| !c.accepted && c.appointment.branch_mis_id == filial)
    {
        let a = &change.appointment;
        w.open("CHANGE_INFO")
            .leaf("CHANGEID", change.change_id)
            .leaf("CHANGEOP", change.op as i64)
            .leaf("SCHEDID", a.schedid)
            .leaf("WORKDATE", format_date(a.date));
        write_times(&mut w, a.start, a.end);
        w.leaf("FILIAL", a.branch_mis_id)
            .leaf("DCODE", a.doctor_mis_id)
            .leaf("PCODE", a.pcode)
            .leaf("CLVISIT", i64::from(change.visited))
            .close("CHANGE_INFO");
    }
    Ok(Output::ok(w.finish(), "Изменения получены"))
}

/// `SCHEDULE_CHANGE_ACCEPT` (§2.13): confirms the `CHANGE_INFO/CHANGEID`s it carries; with
/// none, the real server's refusal.
pub(super) fn change_accept(world: &mut World, input: &Element) -> Result<Output, Refusal> {
    let ids: Vec<i64> = input
        .children_named("CHANGE_INFO")
        .filter_map(|item| {
            item.text_of("CHANGEID")
                .and_then(|id| id.trim().parse().ok())
        })
        .collect();
    if ids.is_empty() {
        return Ok(Output {
            spresult: -99,
            ..Output::failed("Начало блока CHANGE_INFO не найдено")
        });
    }
    world.accept_changes(&ids);
    Ok(Output::ok(String::new(), "Изменения подтверждены"))
}
