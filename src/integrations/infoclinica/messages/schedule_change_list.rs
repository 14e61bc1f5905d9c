//! `SCHEDULE_CHANGE_LIST` (§2.13): the change feed of one filial (`MSH.99`): every booking,
//! move, cancel and visit mark made in the MIS, by the web or the clinic's front desk, until
//! it is confirmed with `SCHEDULE_CHANGE_ACCEPT`. The item element is `CHANGE_INFO`.

use super::Idempotency;
use crate::integrations::infoclinica::{
    MisChange, MisChangeOp, MisError,
    xml::{Element, Fields, XmlWriter},
};

pub const OP: &str = "SCHEDULE_CHANGE_LIST";
pub const IDEMPOTENCY: Idempotency = Idempotency::ReadOnly;

/// The request block is empty; the filial goes in `MSH.99`.
pub fn write_in(_: &mut XmlWriter) {}

pub fn map(out: &Element) -> Result<Vec<MisChange>, MisError> {
    out.children_named("CHANGE_INFO")
        .map(|item| {
            let f = Fields::new(item);
            let op = match f.int("CHANGEOP")? {
                0 => MisChangeOp::Added,
                1 => MisChangeOp::Changed,
                2 => MisChangeOp::Deleted,
                other => {
                    return Err(MisError::Malformed(format!(
                        "CHANGEOP {other} is not 0, 1 or 2"
                    )));
                }
            };
            Ok(MisChange {
                change_id: f.int("CHANGEID")?,
                op,
                schedid: f.int("SCHEDID")?,
                branch_mis_id: f.int("FILIAL")?,
                doctor_mis_id: f.int("DCODE")?,
                date: f.date("WORKDATE")?,
                start: f.time("BHOUR", "BMIN")?,
                end: f.time("FHOUR", "FMIN")?,
                pcode: f.int_opt("PCODE")?,
                visited: item.text_of("CLVISIT").is_some_and(|v| v.trim() == "1"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::infoclinica::xml::parse_response;

    #[test]
    fn the_documented_item_is_read() {
        let body = "<ACK><MSA><MSA.1>AA</MSA.1></MSA><SCHEDULE_CHANGE_LIST_OUT>\
            <CHANGE_INFO><CHANGEID>5512</CHANGEID><CHANGEOP>0</CHANGEOP><SCHEDID>20093377</SCHEDID>\
            <WORKDATE>20250318</WORKDATE><BHOUR>9</BHOUR><BMIN>30</BMIN><FHOUR>10</FHOUR><FMIN>0</FMIN>\
            <FILIAL>2</FILIAL><DCODE>20000045</DCODE><PCODE>990001234</PCODE><CLVISIT>0</CLVISIT></CHANGE_INFO>\
            <SPRESULT>1</SPRESULT><SPCOMMENT>Изменения получены</SPCOMMENT></SCHEDULE_CHANGE_LIST_OUT></ACK>";
        let out = parse_response(OP, body.as_bytes()).expect("envelope");
        let changes = map(&out).expect("maps");
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].change_id, 5512);
        assert_eq!(changes[0].op, MisChangeOp::Added);
        assert_eq!(changes[0].schedid, 20093377);
        assert!(!changes[0].visited);
        let odd = body.replace("<CHANGEOP>0</CHANGEOP>", "<CHANGEOP>7</CHANGEOP>");
        let out = parse_response(OP, odd.as_bytes()).expect("envelope");
        assert!(matches!(map(&out), Err(MisError::Malformed(_))));
    }
}
