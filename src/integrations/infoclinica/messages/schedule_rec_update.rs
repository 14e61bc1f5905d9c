//! `SCHEDULE_REC_UPDATE`: set (`CLVISIT 1`) or clear (`0`) the "visited" mark of an
//! appointment (§2.12). An unknown appointment is `SPRESULT -2`; the mark of an appointment
//! of an earlier day cannot be changed (`SPRESULT 0`).

use super::Idempotency;
use crate::integrations::infoclinica::xml::XmlWriter;

pub const OP: &str = "SCHEDULE_REC_UPDATE";
/// Setting the same mark twice is harmless, but the protocol says nothing about it, so the
/// message is treated like the other writes and never retried blindly.
pub const IDEMPOTENCY: Idempotency = Idempotency::Mutating;

/// The appointment and the mark. The filial goes in `MSH.99`.
pub fn write_in(w: &mut XmlWriter, schedid: i64, visited: bool) {
    w.leaf("SCHEDID", schedid)
        .leaf("CLVISIT", i64::from(visited));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::infoclinica::{
        MisError,
        xml::{Header, parse, parse_response, request},
    };

    #[test]
    fn the_request_carries_the_appointment_and_the_mark() {
        let xml = request(OP, &Header::now(Some(2)), |w| write_in(w, 20093377, true));
        let root = parse(xml.as_bytes()).expect("parses");
        let input = root.child("SCHEDULE_REC_UPDATE_IN").expect("in");
        assert_eq!(input.text_of("SCHEDID"), Some("20093377"));
        assert_eq!(input.text_of("CLVISIT"), Some("1"));
        assert_eq!(root.text_at(&["MSH", "MSH.99"]), Some("2"));
        let xml = request(OP, &Header::now(Some(2)), |w| write_in(w, 20093377, false));
        let root = parse(xml.as_bytes()).expect("parses");
        assert_eq!(
            root.child("SCHEDULE_REC_UPDATE_IN")
                .and_then(|i| i.text_of("CLVISIT")),
            Some("0")
        );
    }

    #[test]
    fn the_refusals_keep_their_codes() {
        let body = "<ACK><MSA><MSA.1>AA</MSA.1></MSA><SCHEDULE_REC_UPDATE_OUT><SPRESULT>-2</SPRESULT>\
            <SPCOMMENT>Запись пациента не найдена</SPCOMMENT></SCHEDULE_REC_UPDATE_OUT></ACK>";
        assert!(matches!(
            parse_response(OP, body.as_bytes()),
            Err(MisError::Failed { spresult: -2, .. })
        ));
        let body = "<ACK><MSA><MSA.1>AA</MSA.1></MSA><SCHEDULE_REC_UPDATE_OUT><SPRESULT>1</SPRESULT>\
            <SPCOMMENT>Запись обновлена</SPCOMMENT></SCHEDULE_REC_UPDATE_OUT></ACK>";
        assert!(parse_response(OP, body.as_bytes()).is_ok());
    }
}
