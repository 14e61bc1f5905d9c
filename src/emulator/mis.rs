//! The MIS emulator: `POST /api/xml` speaking the Infoclinica protocol
//! (`docs/infoclinica-protocol.md`), dispatching on `MSH.9/MSG.2`.
//!
//! Implemented: GET_FILIAL_LIST, GET_DEPARTMENT_LIST, GET_DOCTOR_LIST (FIRSTROW/LASTROW
//! paging with RECORDSDATA), PRICE_LIST, and the booking messages of `mis/booking.rs`:
//! SCHEDULE, SCHEDULE_REC_RESERVE, SCHEDULE_REC_REMOVE, SCHEDULE_REC_UPDATE, SCHEDULE_REC_LIST, CLIENT_CHECK,
//! CLIENT_ADD (the first four need MSH.99). An unknown MSG.2 or a missing required field is an
//! envelope problem: `MSA.1` `AE` with `MSA.3` and `ERR`; business failures are `SPRESULT`
//! 0 with `SPCOMMENT` and `CHECKDATA`. A body that is not acceptable XML (including any
//! DTD) is answered HTTP 400 in plain text. Messages that change the world run under its
//! write lock, so a reserve is atomic. Every call is counted per `MSG.2`
//! ([`EmulatorControl::mis_calls`]); `GET /_emulator/calls` answers the counts as a JSON
//! object (`{"SCHEDULE": 3, ...}`) for tools outside the process (`just bench`). Also
//! `GET`/`POST /_emulator/faults` with [`MisFaults`]: besides transport faults, well-formed
//! answers a careful client must still refuse (an empty list, a short page, an answer to
//! another message type), made by [`apply_faults`] and [`empty_list`].

mod booking;

use std::collections::BTreeSet;

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};

use super::{EmulatorControl, MisFaults, World, faults_routes};
use crate::integrations::infoclinica::{
    MisError,
    xml::{self, Element, NAMESPACE, XmlWriter},
};

/// The MIS emulator's routes.
pub fn router(control: EmulatorControl) -> Router {
    Router::new()
        .route("/api/xml", post(handle))
        .route(
            "/_emulator/calls",
            get(|State(control): State<EmulatorControl>| async move {
                Json(control.mis_call_counts())
            }),
        )
        .route(
            "/_emulator/front-desk",
            post(
                |State(control): State<EmulatorControl>,
                 Json(action): Json<super::FrontDeskAction>| async move {
                    if control.front_desk(&action) {
                        StatusCode::NO_CONTENT
                    } else {
                        StatusCode::NOT_FOUND
                    }
                },
            ),
        )
        .merge(faults_routes(
            EmulatorControl::mis_faults,
            EmulatorControl::set_mis_faults,
        ))
        .with_state(control)
}

/// A real MIS finishes a message it has started even when the client hangs up (or dies): the
/// work runs in a task of its own, which a dropped connection does not cancel.
async fn handle(State(control): State<EmulatorControl>, body: Bytes) -> Response {
    tokio::spawn(process(control, body))
        .await
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn process(control: EmulatorControl, body: Bytes) -> Response {
    let parsed = xml::parse(&body);
    let op = parsed
        .as_ref()
        .ok()
        .and_then(operation)
        .unwrap_or("")
        .to_owned();
    // Counted before any fault: a test of retries counts what reached the server.
    control.count_mis_call(&op);
    let faults = control.mis_faults();
    if faults.latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(faults.latency_ms)).await;
    }
    if faults.unauthorized {
        return (StatusCode::UNAUTHORIZED, "client certificate required\n").into_response();
    }
    if faults.http_500 {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Html("<html><head><title>500 Internal Server Error</title></head><body><h1>Internal Server Error</h1></body></html>"),
        )
            .into_response();
    }
    if op == "SCHEDULE_REC_RESERVE" && faults.reserve_latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(faults.reserve_latency_ms)).await;
    }
    let mut request = match parsed {
        Ok(request) => request,
        Err(e) => {
            let reason = match e {
                MisError::Malformed(reason) => reason,
                other => other.to_string(),
            };
            return (
                StatusCode::BAD_REQUEST,
                format!("request is not acceptable XML: {reason}\n"),
            )
                .into_response();
        }
    };
    apply_faults(&mut request, &faults);
    let emptied = operation(&request)
        .is_some_and(|answered| faults.empty_lists.contains(answered))
        .then(|| empty_list(&request))
        .flatten();
    let mut answer = if let Some(empty) = emptied {
        empty
    } else if is_mutating(&op) {
        answer_mut(&mut control.shared().world_mut(), &request)
    } else {
        answer(&control.shared().world(), &request)
    };
    if op == "SCHEDULE_CHANGE_LIST" && faults.change_list_late_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(faults.change_list_late_ms)).await;
    }
    if faults.malformed {
        let mut cut = answer.len() / 2;
        while !answer.is_char_boundary(cut) {
            cut -= 1;
        }
        answer.truncate(cut);
    }
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], answer).into_response()
}

/// The paged list messages (`FIRSTROW`/`LASTROW`, `RECORDSDATA`).
const PAGED: [&str; 2] = ["GET_DOCTOR_LIST", "SCHEDULE_REC_LIST"];

/// Rewrites a request as the fault switches say, before it is answered:
/// [`MisFaults::wrong_message_type`] turns it into another message (without its `_IN`
/// block), [`MisFaults::short_pages`] narrows the window of a paged list (the answer's
/// `ITEMSNUMBER` still counts every row).
pub fn apply_faults(request: &mut Element, faults: &MisFaults) {
    let Some(op) = operation(request).map(str::to_owned) else {
        return;
    };
    let block = format!("{op}_IN");
    if faults.wrong_message_type {
        let other = if op == "GET_FILIAL_LIST" {
            "GET_DEPARTMENT_LIST"
        } else {
            "GET_FILIAL_LIST"
        };
        if let Some(msg) = child_mut(request, "MSH")
            .and_then(|msh| child_mut(msh, "MSH.9"))
            .and_then(|msh9| child_mut(msh9, "MSG.2"))
        {
            msg.text = other.to_owned();
        }
        request.children.retain(|c| c.name != block);
        return;
    }
    if let Some(rows) = faults.short_pages
        && PAGED.contains(&op.as_str())
    {
        if child_mut(request, &block).is_none() {
            request.children.push(Element {
                name: block.clone(),
                ..Element::default()
            });
        }
        let Some(input) = child_mut(request, &block) else {
            return;
        };
        let first = input
            .text_of("FIRSTROW")
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(1)
            .max(1);
        let most = first + i64::from(rows) - 1;
        let last = input
            .text_of("LASTROW")
            .and_then(|v| v.parse::<i64>().ok())
            .map_or(most, |asked| asked.min(most));
        set_leaf(input, "FIRSTROW", first);
        set_leaf(input, "LASTROW", last);
    }
}

fn child_mut<'a>(element: &'a mut Element, name: &str) -> Option<&'a mut Element> {
    element.children.iter_mut().find(|c| c.name == name)
}

fn set_leaf(element: &mut Element, name: &str, value: i64) {
    match child_mut(element, name) {
        Some(leaf) => leaf.text = value.to_string(),
        None => element.children.push(Element {
            name: name.to_owned(),
            text: value.to_string(),
            children: Vec::new(),
        }),
    }
}

/// The successful answer of a list message with no items ([`MisFaults::empty_lists`]):
/// `ITEMSNUMBER` 0 on a paged list. `None` when the request is not a list message.
pub fn empty_list(request: &Element) -> Option<String> {
    let op = operation(request)?;
    let comment = match op {
        "GET_FILIAL_LIST" => "Данные по филиалам получены",
        "GET_DEPARTMENT_LIST" => "Данные по отделениям получены",
        "GET_DOCTOR_LIST" => "Данные по врачам получены",
        "PRICE_LIST" => "Данные по ценам получены",
        "SCHEDULE_REC_LIST" => "Список приемов",
        _ => return None,
    };
    let mut w = XmlWriter::new();
    if PAGED.contains(&op) {
        let input = request.child(&format!("{op}_IN"));
        let echo = |field: &str| input.and_then(|i| i.text_of(field)).unwrap_or("");
        w.open("RECORDSDATA")
            .leaf("ITEMSNUMBER", 0)
            .leaf("FIRSTROW", echo("FIRSTROW"))
            .leaf("LASTROW", echo("LASTROW"))
            .close("RECORDSDATA");
    }
    let control_id = request.text_at(&["MSH", "MSH.10"]).unwrap_or("");
    Some(envelope(
        op,
        control_id,
        Ok(Output::ok(w.finish(), comment)),
    ))
}

/// What an operation produced: its items (escaped XML), `CHECKDATA` (code, label, text),
/// `SPRESULT` and `SPCOMMENT`.
struct Output {
    items: String,
    checks: Vec<(i64, &'static str, String)>,
    spresult: i64,
    comment: String,
}

impl Output {
    /// `SPRESULT` 1.
    fn ok(items: String, comment: &str) -> Self {
        Self {
            items,
            checks: Vec::new(),
            spresult: 1,
            comment: comment.to_owned(),
        }
    }

    /// `SPRESULT` 0: a business failure.
    fn failed(comment: &str) -> Self {
        Self {
            items: String::new(),
            checks: Vec::new(),
            spresult: 0,
            comment: comment.to_owned(),
        }
    }

    fn check(mut self, code: i64, label: &'static str, text: &str) -> Self {
        self.checks.push((code, label, text.to_owned()));
        self
    }
}

/// An envelope problem, answered with `MSA.1` `AE`.
type Refusal = String;

/// The operation of a request (`MSH.9/MSG.2`).
pub fn operation(request: &Element) -> Option<&str> {
    request.text_at(&["MSH", "MSH.9", "MSG.2"])
}

/// Whether an operation changes the world (and is answered by [`answer_mut`] under the
/// write lock, which makes a reserve atomic).
pub fn is_mutating(op: &str) -> bool {
    matches!(
        op,
        "SCHEDULE_REC_RESERVE"
            | "SCHEDULE_REC_REMOVE"
            | "SCHEDULE_REC_UPDATE"
            | "CLIENT_ADD"
            | "SCHEDULE_CHANGE_ACCEPT"
    )
}

/// Answers one parsed request that only reads the world.
pub fn answer(world: &World, request: &Element) -> String {
    respond(request, |op, filial, input| {
        read_op(world, op, filial, input).unwrap_or_else(|| {
            Err(if is_mutating(op) {
                format!("{op} изменяет данные и обрабатывается только с блокировкой на запись")
            } else {
                format!("Неизвестный тип сообщения: {op}")
            })
        })
    })
}

/// Answers any parsed request, the caller holding the world for writing.
pub fn answer_mut(world: &mut World, request: &Element) -> String {
    respond(request, |op, filial, input| {
        match op {
            "SCHEDULE_REC_RESERVE" => {
                return booking::reserve(world, required_filial(filial)?, input);
            }
            "SCHEDULE_REC_REMOVE" => {
                return booking::remove(world, required_filial(filial)?, input);
            }
            "SCHEDULE_REC_UPDATE" => {
                return booking::rec_update(world, required_filial(filial)?, input);
            }
            "CLIENT_ADD" => return booking::client_add(world, input),
            "SCHEDULE_CHANGE_ACCEPT" => return booking::change_accept(world, input),
            _ => {}
        }
        read_op(world, op, filial, input)
            .unwrap_or_else(|| Err(format!("Неизвестный тип сообщения: {op}")))
    })
}

/// The envelope around one operation: its `MSG.2`, its `MSH.99` (absent when empty) and
/// its `<op>_IN` block.
fn respond(
    request: &Element,
    run: impl FnOnce(&str, Result<Option<i64>, Refusal>, &Element) -> Result<Output, Refusal>,
) -> String {
    let control_id = request.text_at(&["MSH", "MSH.10"]).unwrap_or("");
    let Some(op) = operation(request) else {
        return envelope("", control_id, Err("MSH.9/MSG.2 is missing".into()));
    };
    let filial = number(
        request.child("MSH").unwrap_or(&Element::default()),
        "MSH.99",
    );
    let empty = Element::default();
    let input = request.child(&format!("{op}_IN")).unwrap_or(&empty);
    envelope(op, control_id, run(op, filial, input))
}

/// `MSH.99` of the schedule and booking messages (§5 #26).
fn required_filial(filial: Result<Option<i64>, Refusal>) -> Result<i64, Refusal> {
    filial?.ok_or_else(|| "Не задан филиал (MSH.99)".to_owned())
}

/// The operations that only read; `None` for an operation that is not one of them.
fn read_op(
    world: &World,
    op: &str,
    filial: Result<Option<i64>, Refusal>,
    input: &Element,
) -> Option<Result<Output, Refusal>> {
    Some(match op {
        "GET_FILIAL_LIST" => filial_list(world, input),
        "GET_DEPARTMENT_LIST" => department_list(world, input),
        "GET_DOCTOR_LIST" => doctor_list(world, input),
        "PRICE_LIST" => price_list(world, input),
        "SCHEDULE" => required_filial(filial).and_then(|f| booking::schedule(world, f, input)),
        "CLIENT_CHECK" => booking::client_check(world, input),
        "SCHEDULE_REC_LIST" => booking::rec_list(world, input),
        "SCHEDULE_CHANGE_LIST" => {
            required_filial(filial).and_then(|f| booking::change_list(world, f))
        }
        _ => return None,
    })
}

/// `ACK` with `MSH`, `MSA` and either `<op>_OUT` (items, `SPRESULT` 1, `SPCOMMENT`) or the
/// `AE` refusal with `MSA.3` and `ERR`.
fn envelope(op: &str, control_id: &str, output: Result<Output, Refusal>) -> String {
    let header = xml::Header::now(None);
    let mut w = XmlWriter::new();
    w.declaration().open_ns("ACK", NAMESPACE).open("MSH");
    w.open("MSH.7")
        .leaf("TS.1", &header.timestamp)
        .close("MSH.7");
    w.open("MSH.9")
        .leaf("MSG.1", "WEB")
        .leaf("MSG.2", op)
        .close("MSH.9");
    w.leaf("MSH.10", &header.control_id)
        .leaf("MSH.18", "UTF-8")
        .close("MSH");
    match output {
        Ok(output) => {
            w.open("MSA")
                .leaf("MSA.1", "AA")
                .leaf("MSA.2", control_id)
                .close("MSA");
            let block = format!("{op}_OUT");
            w.open(&block).raw(&output.items);
            for (code, label, text) in &output.checks {
                w.open("CHECKDATA").leaf("CHECKCODE", code);
                if !label.is_empty() {
                    w.leaf("CHECKLABEL", label);
                }
                w.leaf("CHECKTEXT", text).close("CHECKDATA");
            }
            w.leaf("SPRESULT", output.spresult)
                .leaf("SPCOMMENT", &output.comment)
                .close(&block);
        }
        Err(message) => {
            w.open("MSA")
                .leaf("MSA.1", "AE")
                .leaf("MSA.2", control_id)
                .leaf("MSA.3", &message)
                .close("MSA");
            w.open("ERR")
                .open("ERR.3")
                .leaf("CWE.1", 207)
                .leaf("CWE.2", &message)
                .close("ERR.3")
                .close("ERR");
        }
    }
    w.close("ACK");
    w.finish()
}

/// A multi-id filter: absent, empty or `-1` means none; ids are separated by commas,
/// semicolons or spaces (§5 #7).
fn id_filter(input: &Element, field: &str) -> Result<Option<BTreeSet<i64>>, Refusal> {
    let Some(raw) = input.text_of(field) else {
        return Ok(None);
    };
    if raw == "-1" {
        return Ok(None);
    }
    raw.split([',', ';', ' '])
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i64>()
                .map_err(|_| format!("Неверное значение поля {field}"))
        })
        .collect::<Result<BTreeSet<_>, _>>()
        .map(Some)
}

/// `VIEWINWEB`: absent or `-1` = no filter, otherwise keep items with that flag.
fn view_filter(input: &Element) -> Result<Option<bool>, Refusal> {
    match input.text_of("VIEWINWEB") {
        None | Some("-1") => Ok(None),
        Some(raw) => raw
            .parse::<i64>()
            .map(|v| Some(v != 0))
            .map_err(|_| "Неверное значение поля VIEWINWEB".to_owned()),
    }
}

fn number(input: &Element, field: &str) -> Result<Option<i64>, Refusal> {
    input
        .text_of(field)
        .map(|raw| {
            raw.parse::<i64>()
                .map_err(|_| format!("Неверное значение поля {field}"))
        })
        .transpose()
}

fn keep(filter: &Option<BTreeSet<i64>>, id: i64) -> bool {
    filter.as_ref().is_none_or(|ids| ids.contains(&id))
}

fn flag(visible: bool) -> u8 {
    u8::from(visible)
}

fn filial_list(world: &World, input: &Element) -> Result<Output, Refusal> {
    let filials = id_filter(input, "FILLIST")?;
    let view = view_filter(input)?;
    let mut w = XmlWriter::new();
    for b in world
        .branches
        .iter()
        .filter(|b| keep(&filials, b.mis_id) && view.is_none_or(|v| v == b.visible))
    {
        w.open("GETFILIALLIST")
            .leaf("FILIAL", b.mis_id)
            .leaf("FNAME", &b.name)
            .leaf("FADDR", &b.address)
            .leaf("FPHONE", &b.phone)
            .leaf("FMAIL", &b.email)
            .leaf("VIEWINWEB_OUT", flag(b.visible))
            .leaf("TIMEZONE", b.timezone)
            .leaf("WORKHOURS", &b.work_hours)
            .close("GETFILIALLIST");
    }
    Ok(Output::ok(w.finish(), "Данные по филиалам получены"))
}

fn department_list(world: &World, input: &Element) -> Result<Output, Refusal> {
    let filials = id_filter(input, "FILLIST")?;
    let departments = id_filter(input, "DEPNUMIN")?;
    let view = view_filter(input)?;
    let mut w = XmlWriter::new();
    for d in world.departments.iter().filter(|d| {
        keep(&departments, d.mis_id)
            && view.is_none_or(|v| v == d.visible)
            && (filials.is_none()
                || world.doctors.iter().any(|doc| {
                    doc.placements
                        .iter()
                        .any(|p| p.department_mis_id == d.mis_id && keep(&filials, p.branch_mis_id))
                }))
    }) {
        w.open("GETDEPARTMENTLIST")
            .leaf("DEPNUM", d.mis_id)
            .leaf("DEPNAME", &d.name)
            .leaf("DEPGRPNAME", &d.group_name)
            .leaf("VIEWINWEB_OUT", flag(d.visible))
            .close("GETDEPARTMENTLIST");
    }
    Ok(Output::ok(w.finish(), "Данные по отделениям получены"))
}

fn doctor_list(world: &World, input: &Element) -> Result<Output, Refusal> {
    let filials = id_filter(input, "FILLIST")?;
    let doctors = id_filter(input, "DCODEIN")?;
    let view = view_filter(input)?;
    let first_row = number(input, "FIRSTROW")?;
    let last_row = number(input, "LASTROW")?;
    let rows: Vec<_> = world
        .doctor_rows()
        .into_iter()
        .filter(|r| {
            keep(&filials, r.branch_mis_id)
                && keep(&doctors, r.doctor_mis_id)
                && view.is_none_or(|v| v == r.visible)
        })
        .collect();
    let total = rows.len() as i64;
    let first = first_row.unwrap_or(1).max(1);
    let last = last_row.unwrap_or(total).min(total);
    let mut w = XmlWriter::new();
    if first <= last {
        for r in &rows[(first - 1) as usize..last as usize] {
            w.open("GETDOCTORLIST")
                .leaf("DCODE", r.doctor_mis_id)
                .leaf("DNAME", &r.full_name)
                .leaf("DEPNUM", r.department_mis_id)
                .leaf("DEPNAME", &r.department_name)
                .leaf("FILIAL", r.branch_mis_id)
                .leaf("FNAME", &r.branch_name)
                .leaf("VIEWINWEB", flag(r.visible))
                .close("GETDOCTORLIST");
        }
    }
    // §5 #24: ITEMSNUMBER is every matching row; FIRSTROW/LASTROW echo the request.
    w.open("RECORDSDATA")
        .leaf("ITEMSNUMBER", total)
        .leaf("FIRSTROW", first_row.unwrap_or(1))
        .leaf("LASTROW", last_row.unwrap_or(total))
        .close("RECORDSDATA");
    Ok(Output::ok(w.finish(), "Данные по врачам получены"))
}

fn price_list(world: &World, input: &Element) -> Result<Output, Refusal> {
    let department = number(input, "DEPNUM")?
        .ok_or_else(|| "Не задано обязательное поле PRICE_LIST_IN/DEPNUM".to_owned())?;
    let (spec_code, spec_name) = world
        .department(department)
        .map_or((0, String::new()), |d| (d.spec_code, d.spec_name.clone()));
    let mut w = XmlWriter::new();
    for p in world.prices_of(department) {
        let amount = format_kopecks(p.price_kopecks);
        w.open("SCH")
            .leaf("SCHID", p.mis_id)
            .leaf("KODOPER", &p.code)
            .leaf("SCHNAME", &p.name)
            .leaf("SPRICE", &amount)
            .leaf("DISCPERCENT", "100.00")
            .leaf("DISCPRICE", &amount)
            .leaf("STRUCTNAME", "Текущий прейскурант")
            .leaf("FILIAL", p.branch_mis_id)
            .leaf("FNAME", "Основной прейскурант")
            .leaf("SPECCODE", spec_code)
            .leaf("SPECNAME", &spec_name);
        // SCHSCHEDTYPE is often absent (= bookable); sent when 0 and on some others.
        if !p.bookable {
            w.leaf("SCHSCHEDTYPE", 0);
        } else if p.mis_id % 2 == 0 {
            w.leaf("SCHSCHEDTYPE", 1);
        }
        w.close("SCH");
    }
    Ok(Output::ok(w.finish(), "Данные по ценам получены"))
}

/// 250000 → `2500.00`.
pub fn format_kopecks(kopecks: i64) -> String {
    let sign = if kopecks < 0 { "-" } else { "" };
    let abs = kopecks.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(world: &World, op: &str, input: &str) -> Element {
        let body = format!(
            "<WEB_{op} xmlns=\"http://sdsys.ru/\"><MSH><MSH.10>abc</MSH.10><MSH.9><MSG.1>WEB</MSG.1><MSG.2>{op}</MSG.2></MSH.9></MSH><{op}_IN>{input}</{op}_IN></WEB_{op}>"
        );
        let request = xml::parse(body.as_bytes()).expect("request parses");
        xml::parse(answer(world, &request).as_bytes()).expect("answer parses")
    }

    #[test]
    fn doctor_pages_and_filters_follow_the_protocol() {
        let world = World::generate(1, 1);
        let rows = world.doctor_rows();
        let ack = ask(
            &world,
            "GET_DOCTOR_LIST",
            "<FIRSTROW>3</FIRSTROW><LASTROW>7</LASTROW>",
        );
        let out = ack.child("GET_DOCTOR_LIST_OUT").expect("out");
        assert_eq!(out.children_named("GETDOCTORLIST").count(), 5);
        assert_eq!(
            out.text_at(&["RECORDSDATA", "ITEMSNUMBER"]),
            Some(rows.len().to_string().as_str())
        );
        assert_eq!(
            out.child("GETDOCTORLIST").and_then(|d| d.text_of("DCODE")),
            Some(rows[2].doctor_mis_id.to_string().as_str())
        );
        let ack = ask(&world, "GET_DOCTOR_LIST", "<FILLIST>3</FILLIST>");
        let out = ack.child("GET_DOCTOR_LIST_OUT").expect("out");
        assert!(
            out.children_named("GETDOCTORLIST")
                .all(|d| d.text_of("FILIAL") == Some("3"))
        );
        assert_eq!(ack.text_at(&["MSA", "MSA.2"]), Some("abc"));
    }

    #[test]
    fn unknown_messages_and_missing_fields_are_refused() {
        let world = World::generate(1, 1);
        let ack = ask(&world, "SCHEDULE_REC_RESERVE", "");
        assert_eq!(ack.text_at(&["MSA", "MSA.1"]), Some("AE"));
        assert!(ack.text_at(&["ERR", "ERR.3", "CWE.2"]).is_some());
        let ack = ask(&world, "PRICE_LIST", "");
        assert_eq!(ack.text_at(&["MSA", "MSA.1"]), Some("AE"));
        assert!(
            ack.text_at(&["MSA", "MSA.3"])
                .is_some_and(|m| m.contains("DEPNUM"))
        );
    }

    fn request(op: &str, input: &str) -> Element {
        let body = format!(
            "<WEB_{op} xmlns=\"http://sdsys.ru/\"><MSH><MSH.10>abc</MSH.10><MSH.9><MSG.1>WEB</MSG.1><MSG.2>{op}</MSG.2></MSH.9></MSH><{op}_IN>{input}</{op}_IN></WEB_{op}>"
        );
        xml::parse(body.as_bytes()).expect("request parses")
    }

    #[test]
    fn fault_switches_make_well_formed_answers_a_client_must_refuse() {
        let world = World::generate(1, 1);
        let total = world.doctor_rows().len();
        // A short page: 10 rows, ITEMSNUMBER still counts all.
        let faults = MisFaults {
            short_pages: Some(10),
            ..MisFaults::default()
        };
        let mut asked = request(
            "GET_DOCTOR_LIST",
            "<FIRSTROW>1</FIRSTROW><LASTROW>100</LASTROW>",
        );
        apply_faults(&mut asked, &faults);
        let ack = xml::parse(answer(&world, &asked).as_bytes()).expect("answer");
        let out = ack.child("GET_DOCTOR_LIST_OUT").expect("out");
        assert_eq!(out.children_named("GETDOCTORLIST").count(), 10.min(total));
        assert_eq!(
            out.text_at(&["RECORDSDATA", "ITEMSNUMBER"]),
            Some(total.to_string().as_str())
        );
        // An empty list.
        let empty = empty_list(&request("GET_DOCTOR_LIST", "<FIRSTROW>1</FIRSTROW>"))
            .expect("a list message");
        let ack = xml::parse(empty.as_bytes()).expect("answer");
        assert_eq!(ack.text_at(&["MSA", "MSA.1"]), Some("AA"));
        let out = ack.child("GET_DOCTOR_LIST_OUT").expect("out");
        assert_eq!(out.children_named("GETDOCTORLIST").count(), 0);
        assert_eq!(out.text_at(&["RECORDSDATA", "ITEMSNUMBER"]), Some("0"));
        assert_eq!(out.text_of("SPRESULT"), Some("1"));
        assert!(empty_list(&request("SCHEDULE", "")).is_none());
        // Another message type.
        let faults = MisFaults {
            wrong_message_type: true,
            ..MisFaults::default()
        };
        for (asked, answered) in [
            ("GET_DOCTOR_LIST", "GET_FILIAL_LIST"),
            ("GET_FILIAL_LIST", "GET_DEPARTMENT_LIST"),
        ] {
            let mut request = request(asked, "");
            apply_faults(&mut request, &faults);
            let ack = xml::parse(answer(&world, &request).as_bytes()).expect("answer");
            assert_eq!(ack.text_at(&["MSH", "MSH.9", "MSG.2"]), Some(answered));
            assert!(ack.child(&format!("{answered}_OUT")).is_some());
            assert_eq!(ack.text_at(&["MSA", "MSA.1"]), Some("AA"));
        }
    }

    #[test]
    fn money_is_written_with_two_decimals() {
        assert_eq!(format_kopecks(250_000), "2500.00");
        assert_eq!(format_kopecks(9_950), "99.50");
        assert_eq!(format_kopecks(-5), "-0.05");
    }
}
