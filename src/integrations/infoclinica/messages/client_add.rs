//! `CLIENT_ADD`: register a patient card (§2.16) with the name + birth date duplicate check
//! (`CHECKMODE 1`). A duplicate answers `SPRESULT 0`, `CHECKCODE 2` and the `PCODE` of the
//! card that exists (§5 #18): that card is the answer, so the block is read unchecked.

use super::{Idempotency, mis_phone};
use crate::integrations::infoclinica::{
    MisError, NewMisPatient,
    xml::{self, Element, XmlWriter, format_date},
};

pub const OP: &str = "CLIENT_ADD";
/// Sent once: a retry after a timeout would meet the duplicate check at best.
pub const IDEMPOTENCY: Idempotency = Idempotency::Mutating;

pub fn write_in(w: &mut XmlWriter, patient: &NewMisPatient) {
    w.leaf("LASTNAME", patient.last_name.trim())
        .leaf("FIRSTNAME", patient.first_name.trim())
        .leaf_opt(
            "MIDNAME",
            patient
                .middle_name
                .as_deref()
                .map(str::trim)
                .filter(|m| !m.is_empty()),
        )
        .leaf_opt("BDATE", patient.birth_date.map(format_date))
        .leaf("PHONE", mis_phone(&patient.phone))
        .leaf_opt(
            "EMAIL",
            patient
                .email
                .as_deref()
                .map(str::trim)
                .filter(|e| !e.is_empty()),
        )
        .leaf("REFUSECALL", 0)
        .leaf("REFUSESMS", 0)
        .leaf("CHECKMODE", 1);
}

/// The new card's `PCODE`, or for a duplicate the existing one; any other failure is
/// [`MisError::Failed`].
pub fn map(out: &Element) -> Result<i64, MisError> {
    let result = xml::spresult(out)?;
    let duplicate = result != 1
        && xml::checks(out).iter().any(|c| c.code == 2)
        && out.text_of("PCODE").is_some();
    if result != 1 && !duplicate {
        return Err(xml::failure(out, result));
    }
    let raw = out
        .text_of("PCODE")
        .ok_or_else(|| MisError::Malformed(format!("{OP}_OUT without PCODE")))?;
    raw.parse()
        .map_err(|_| MisError::Malformed(format!("{OP}_OUT PCODE is not an integer")))
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::integrations::infoclinica::xml::{Header, parse, parse_answer, request};

    fn out(body: &str) -> Element {
        let doc = format!(
            "<ACK><MSA><MSA.1>AA</MSA.1></MSA><CLIENT_ADD_OUT>{body}</CLIENT_ADD_OUT></ACK>"
        );
        parse_answer(OP, doc.as_bytes()).expect("envelope")
    }

    #[test]
    fn new_duplicate_and_refused_cards() {
        let added = out(
            "<PCODE>990001234</PCODE><CHECKDATA><CHECKCODE>1</CHECKCODE></CHECKDATA>\
            <SPRESULT>1</SPRESULT><SPCOMMENT>Пациент добавлен</SPCOMMENT>",
        );
        assert_eq!(map(&added).expect("added"), 990001234);
        let duplicate = out(
            "<PCODE>990000007</PCODE><CHECKDATA><CHECKCODE>2</CHECKCODE>\
            <CHECKLABEL>Пациент уже существует</CHECKLABEL></CHECKDATA><SPRESULT>0</SPRESULT>",
        );
        assert_eq!(map(&duplicate).expect("existing card"), 990000007);
        let refused = out("<SPRESULT>0</SPRESULT><SPCOMMENT>Не указана фамилия</SPCOMMENT>");
        assert!(matches!(
            map(&refused),
            Err(MisError::Failed { spresult: 0, comment, .. }) if comment == "Не указана фамилия"
        ));
        let check_without_card =
            out("<CHECKDATA><CHECKCODE>2</CHECKCODE></CHECKDATA><SPRESULT>0</SPRESULT>");
        assert!(matches!(
            map(&check_without_card),
            Err(MisError::Failed { .. })
        ));
        let no_pcode = out("<SPRESULT>1</SPRESULT>");
        assert!(matches!(map(&no_pcode), Err(MisError::Malformed(_))));
    }

    #[test]
    fn the_card_is_written_in_mis_formats() {
        let patient = NewMisPatient {
            last_name: "Кузнецов".into(),
            first_name: "Андрей".into(),
            middle_name: None,
            birth_date: NaiveDate::from_ymd_opt(1987, 6, 5),
            phone: "+79165550102".into(),
            email: Some("a.kuznetsov@example.ru".into()),
        };
        let xml = request(OP, &Header::now(None), |w| write_in(w, &patient));
        let root = parse(xml.as_bytes()).expect("parses");
        let input = root.child("CLIENT_ADD_IN").expect("in");
        assert_eq!(input.text_of("BDATE"), Some("19870605"));
        assert_eq!(input.text_of("PHONE"), Some("+7(916)555-01-02"));
        assert_eq!(input.text_of("CHECKMODE"), Some("1"));
        assert_eq!(input.text_of("REFUSESMS"), Some("0"));
        assert!(input.child("MIDNAME").is_none());
    }
}
