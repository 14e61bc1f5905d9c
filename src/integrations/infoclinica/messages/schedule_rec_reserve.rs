//! `SCHEDULE_REC_RESERVE`: book one interval, or move an existing appointment to it when
//! `SCHEDID` is given (§2.7, §4.4). A taken interval answers `SPRESULT 0` with the
//! "Время занято" check ([`MisError::is_slot_taken`](crate::integrations::infoclinica::MisError::is_slot_taken)).

use chrono::Timelike;

use super::Idempotency;
use crate::integrations::infoclinica::{
    MisError, ReserveRequest,
    xml::{Element, XmlWriter, find_descendant, format_date},
};

pub const OP: &str = "SCHEDULE_REC_RESERVE";
/// A booking retried after a timeout could book twice.
pub const IDEMPOTENCY: Idempotency = Idempotency::Mutating;

/// The interval, the work period, the patient, `ONLINETYPE` 0 (a visit in the clinic) and,
/// for a move, the appointment. The filial goes in `MSH.99`.
pub fn write_in(w: &mut XmlWriter, request: &ReserveRequest) {
    w.leaf("DCODE", request.doctor_mis_id)
        .leaf("WORKDATE", format_date(request.date))
        .leaf("BHOUR", request.start.hour())
        .leaf("BMIN", request.start.minute())
        .leaf("FHOUR", request.end.hour())
        .leaf("FMIN", request.end.minute())
        .leaf("SCHEDIDENT", request.schedident)
        .leaf("PCODE", request.pcode)
        .leaf("ONLINETYPE", 0)
        .leaf_opt("SCHEDID", request.move_schedid)
        .empty("SCHLIST");
}

/// The appointment's `SCHEDID`, wherever it sits in the block (`SCHED_INFO/SCHEDID` today;
/// clients that ran against production search the whole answer).
pub fn map(out: &Element) -> Result<i64, MisError> {
    let raw = find_descendant(out, "SCHEDID")
        .map(|e| e.text.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| MisError::Malformed(format!("{OP}_OUT without SCHEDID")))?;
    raw.parse()
        .map_err(|_| MisError::Malformed(format!("{OP}_OUT SCHEDID is not an integer")))
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, NaiveTime};

    use super::*;
    use crate::integrations::infoclinica::xml::{self, parse_response};

    fn answer(body: &str) -> Result<Element, MisError> {
        let doc = format!(
            "<ACK xmlns=\"http://sdsys.ru/\"><MSA><MSA.1>AA</MSA.1></MSA><{OP}_OUT>{body}</{OP}_OUT></ACK>"
        );
        parse_response(OP, doc.as_bytes())
    }

    #[test]
    fn schedid_is_found_anywhere_in_the_answer() {
        let out = answer(
            "<SCHED_INFO><SCHEDID>20093377</SCHEDID><WORKDATE>20250318</WORKDATE></SCHED_INFO>\
            <SPRESULT>1</SPRESULT><SPCOMMENT>Запись на прием успешно зарезервирована</SPCOMMENT>",
        )
        .expect("ok");
        assert_eq!(map(&out).expect("id"), 20093377);
        let flat = answer("<SCHEDID> 20093378 </SCHEDID><SPRESULT>1</SPRESULT>").expect("ok");
        assert_eq!(map(&flat).expect("id"), 20093378);
        let none = answer("<SPRESULT>1</SPRESULT>").expect("ok");
        assert!(matches!(map(&none), Err(MisError::Malformed(m)) if m.contains("SCHEDID")));
    }

    #[test]
    fn a_taken_interval_is_recognised() {
        let err = answer(
            "<CHECKDATA><CHECKCODE>2</CHECKCODE><CHECKLABEL>Время занято</CHECKLABEL>\
             <CHECKTEXT>К сожалению, выбранное время было недавно занято. Пожалуйста, выберите другое время.</CHECKTEXT></CHECKDATA>\
             <SPRESULT>0</SPRESULT><SPCOMMENT>К сожалению, выбранное время было недавно занято. Пожалуйста, выберите другое время.</SPCOMMENT>",
        )
        .expect_err("taken");
        assert!(err.is_slot_taken(), "{err}");
        let other = answer("<SPRESULT>0</SPRESULT><SPCOMMENT>Время приема уже прошло</SPCOMMENT>")
            .expect_err("past");
        assert!(!other.is_slot_taken());
    }

    #[test]
    fn the_request_carries_unpadded_times_and_the_move() {
        let request = ReserveRequest {
            branch_mis_id: 2,
            doctor_mis_id: 20000045,
            date: NaiveDate::from_ymd_opt(2025, 3, 19).expect("date"),
            start: NaiveTime::from_hms_opt(9, 0, 0).expect("time"),
            end: NaiveTime::from_hms_opt(9, 30, 0).expect("time"),
            schedident: 20048840,
            pcode: 990001234,
            move_schedid: Some(20093377),
        };
        let header = xml::Header::now(Some(request.branch_mis_id));
        let body = xml::request(OP, &header, |w| write_in(w, &request));
        let root = xml::parse(body.as_bytes()).expect("parses");
        let input = root.child("SCHEDULE_REC_RESERVE_IN").expect("in");
        for (field, value) in [
            ("DCODE", "20000045"),
            ("WORKDATE", "20250319"),
            ("BHOUR", "9"),
            ("BMIN", "0"),
            ("FHOUR", "9"),
            ("FMIN", "30"),
            ("SCHEDIDENT", "20048840"),
            ("PCODE", "990001234"),
            ("ONLINETYPE", "0"),
            ("SCHEDID", "20093377"),
        ] {
            assert_eq!(input.text_of(field), Some(value), "{field}");
        }
        assert_eq!(root.text_at(&["MSH", "MSH.99"]), Some("2"));
    }
}
