//! `SCHEDULE_REC_REMOVE`: cancel an appointment (§2.8). Cancelling twice is not an
//! idempotent success: the second answer is `SPRESULT 0` "Запись пациента не найдена".

use super::Idempotency;
use crate::integrations::infoclinica::xml::XmlWriter;

pub const OP: &str = "SCHEDULE_REC_REMOVE";
pub const IDEMPOTENCY: Idempotency = Idempotency::Mutating;

/// The appointment and, when known, its patient. The filial goes in `MSH.99`.
pub fn write_in(w: &mut XmlWriter, schedid: i64, pcode: Option<i64>) {
    w.leaf_opt("PCODE", pcode).leaf("SCHEDID", schedid);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::infoclinica::xml::{Header, parse, parse_response, request};

    #[test]
    fn a_second_cancel_keeps_the_mis_texts() {
        let body = "<ACK><MSA><MSA.1>AA</MSA.1></MSA><SCHEDULE_REC_REMOVE_OUT><CHECKDATA><CHECKCODE>2</CHECKCODE>\
            <CHECKTEXT>Ваша запись на прием уже отменена, список записей будет обновлен в ближайшее время</CHECKTEXT></CHECKDATA>\
            <SPRESULT>0</SPRESULT><SPCOMMENT>Запись пациента не найдена</SPCOMMENT></SCHEDULE_REC_REMOVE_OUT></ACK>";
        match parse_response(OP, body.as_bytes()) {
            Err(crate::integrations::infoclinica::MisError::Failed {
                spresult,
                comment,
                checks,
            }) => {
                assert_eq!(spresult, 0);
                assert_eq!(comment, "Запись пациента не найдена");
                assert_eq!(checks[0].code, 2);
                assert!(checks[0].text.contains("уже отменена"));
            }
            other => panic!("expected Failed, got {other:?}"),
        }
        let xml = request(OP, &Header::now(Some(1)), |w| write_in(w, 10001001, None));
        let root = parse(xml.as_bytes()).expect("parses");
        assert_eq!(
            root.text_at(&["SCHEDULE_REC_REMOVE_IN", "SCHEDID"]),
            Some("10001001")
        );
        assert!(root.path(&["SCHEDULE_REC_REMOVE_IN", "PCODE"]).is_none());
    }
}
