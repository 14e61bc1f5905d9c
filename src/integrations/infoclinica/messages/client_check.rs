//! `CLIENT_CHECK`: find a patient card (§2.15). `CHECKMODE 11` searches by portal login
//! (e-mail); `CHECKMODE 2` by phone (the emulator's choice, §5 #18). "Not found" is a
//! business failure (`SPRESULT 0` "Пациент не найден"), read here as no card.

use super::{Idempotency, mis_phone};
use crate::integrations::infoclinica::{
    MisError, PatientQuery,
    xml::{Element, XmlWriter},
};

pub const OP: &str = "CLIENT_CHECK";
pub const IDEMPOTENCY: Idempotency = Idempotency::ReadOnly;

pub fn write_in(w: &mut XmlWriter, query: &PatientQuery) {
    match query {
        PatientQuery::Email(email) => {
            w.leaf("LOGIN", email.trim()).leaf("CHECKMODE", 11);
        }
        PatientQuery::Phone(phone) => {
            w.leaf("PHONE", mis_phone(phone)).leaf("CHECKMODE", 2);
        }
    }
}

/// The `PCODE` of a successful answer (top level, or inside `CLIENT_MAININFO`).
pub fn map(out: &Element) -> Result<Option<i64>, MisError> {
    let raw = out
        .text_of("PCODE")
        .or_else(|| out.text_at(&["CLIENT_MAININFO", "PCODE"]))
        .ok_or_else(|| MisError::Malformed(format!("{OP}_OUT without PCODE")))?;
    raw.parse()
        .map(Some)
        .map_err(|_| MisError::Malformed(format!("{OP}_OUT PCODE is not an integer")))
}

/// Whether a failure is the MIS's "no such patient" answer.
pub fn is_not_found(error: &MisError) -> bool {
    matches!(error, MisError::Failed { spresult: 0, comment, .. }
        if comment.to_lowercase().contains("не найден"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::infoclinica::xml::{Header, parse, parse_response, request};

    fn answer(body: &str) -> Result<Element, MisError> {
        let doc = format!(
            "<ACK><MSA><MSA.1>AA</MSA.1></MSA><CLIENT_CHECK_OUT>{body}</CLIENT_CHECK_OUT></ACK>"
        );
        parse_response(OP, doc.as_bytes())
    }

    #[test]
    fn found_not_found_and_other_failures() {
        let out = answer(
            "<PCODE>990001234</PCODE><CLIENT_MAININFO><PCODE>990001234</PCODE></CLIENT_MAININFO>\
            <SPRESULT>1</SPRESULT><SPCOMMENT>Пациент найден</SPCOMMENT>",
        )
        .expect("found");
        assert_eq!(map(&out).expect("maps"), Some(990001234));
        let nested = answer(
            "<CLIENT_MAININFO><PCODE>990001235</PCODE></CLIENT_MAININFO><SPRESULT>1</SPRESULT>",
        )
        .expect("found");
        assert_eq!(map(&nested).expect("maps"), Some(990001235));
        let missing = answer("<SPRESULT>0</SPRESULT><SPCOMMENT>Пациент не найден</SPCOMMENT>")
            .expect_err("not found");
        assert!(is_not_found(&missing));
        let other =
            answer("<SPRESULT>0</SPRESULT><SPCOMMENT>Режим проверки не поддерживается</SPCOMMENT>")
                .expect_err("other");
        assert!(!is_not_found(&other));
    }

    #[test]
    fn phone_goes_in_the_mis_format() {
        let xml = request(OP, &Header::now(None), |w| {
            write_in(w, &PatientQuery::Phone("+79161234567".into()));
        });
        let root = parse(xml.as_bytes()).expect("parses");
        assert_eq!(
            root.text_at(&["CLIENT_CHECK_IN", "PHONE"]),
            Some("+7(916)123-45-67")
        );
        assert_eq!(root.text_at(&["CLIENT_CHECK_IN", "CHECKMODE"]), Some("2"));
        let xml = request(OP, &Header::now(None), |w| {
            write_in(w, &PatientQuery::Email("a@example.ru".into()));
        });
        let root = parse(xml.as_bytes()).expect("parses");
        assert_eq!(
            root.text_at(&["CLIENT_CHECK_IN", "LOGIN"]),
            Some("a@example.ru")
        );
        assert_eq!(root.text_at(&["CLIENT_CHECK_IN", "CHECKMODE"]), Some("11"));
        assert!(root.path(&["MSH", "MSH.99"]).is_none());
    }
}
