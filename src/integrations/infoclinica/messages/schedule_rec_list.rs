//! `SCHEDULE_REC_LIST`: a patient's appointments, paged with `FIRSTROW`/`LASTROW` (§2.10).
//! The item element is not documented; `SCHEDULEREC` of `SCHEDULE_LIST` is assumed (§5 #14).

use chrono::NaiveDate;

use super::Idempotency;
use crate::integrations::infoclinica::{
    MisAppointment, MisError,
    xml::{Element, Fields, XmlWriter, format_date},
};

pub const OP: &str = "SCHEDULE_REC_LIST";
pub const IDEMPOTENCY: Idempotency = Idempotency::ReadOnly;
/// Rows asked per page.
pub const PAGE_SIZE: u32 = 50;

pub fn write_in(w: &mut XmlWriter, pcode: i64, from: NaiveDate, first_row: u32, last_row: u32) {
    w.leaf("PCODE", pcode)
        .leaf("BDATE", format_date(from))
        .leaf("FIRSTROW", first_row)
        .leaf("LASTROW", last_row);
}

/// One page: its appointments and `RECORDSDATA/ITEMSNUMBER` when sent.
pub fn map(out: &Element) -> Result<(Vec<MisAppointment>, Option<u32>), MisError> {
    let items = out
        .children_named("SCHEDULEREC")
        .map(|item| {
            let f = Fields::new(item);
            let start = f.time("BHOUR", "BMIN")?;
            let end = f.time("FHOUR", "FMIN")?;
            if end <= start {
                return Err(MisError::Malformed(
                    "SCHEDULEREC ends before it starts".into(),
                ));
            }
            Ok(MisAppointment {
                schedid: f.int("SCHEDID")?,
                branch_mis_id: f.int("FILIAL")?,
                doctor_mis_id: f.int("DCODE")?,
                date: f.date("WORKDATE")?,
                start,
                end,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let total =
        match out.text_at(&["RECORDSDATA", "ITEMSNUMBER"]) {
            None => None,
            Some(raw) => Some(raw.parse::<u32>().map_err(|_| {
                MisError::Malformed("RECORDSDATA ITEMSNUMBER is not a count".into())
            })?),
        };
    Ok((items, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::infoclinica::xml::parse_response;

    #[test]
    fn items_and_total_are_read() {
        let body = "<ACK><MSA><MSA.1>AA</MSA.1></MSA><SCHEDULE_REC_LIST_OUT>\
            <SCHEDULEREC><SCHEDID>20093377</SCHEDID><WORKDATE>20250318</WORKDATE>\
            <BHOUR>9</BHOUR><BMIN>30</BMIN><FHOUR>10</FHOUR><FMIN>0</FMIN>\
            <FILIAL>2</FILIAL><DCODE>20000045</DCODE><DNAME>Смирнова Ольга Петровна</DNAME></SCHEDULEREC>\
            <RECORDSDATA><ITEMSNUMBER>3</ITEMSNUMBER><FIRSTROW>1</FIRSTROW><LASTROW>1</LASTROW></RECORDSDATA>\
            <SPRESULT>1</SPRESULT><SPCOMMENT>Список приемов</SPCOMMENT></SCHEDULE_REC_LIST_OUT></ACK>";
        let out = parse_response(OP, body.as_bytes()).expect("envelope");
        let (items, total) = map(&out).expect("maps");
        assert_eq!(total, Some(3));
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].schedid, 20093377);
        assert_eq!(items[0].branch_mis_id, 2);
        assert_eq!(items[0].start.to_string(), "09:30:00");
        assert_eq!(items[0].end.to_string(), "10:00:00");

        let bad = "<ACK><MSA><MSA.1>AA</MSA.1></MSA><SCHEDULE_REC_LIST_OUT>\
            <SCHEDULEREC><SCHEDID>1</SCHEDID><WORKDATE>20250318</WORKDATE>\
            <BHOUR>24</BHOUR><BMIN>0</BMIN><FHOUR>24</FHOUR><FMIN>30</FMIN><FILIAL>2</FILIAL><DCODE>2</DCODE></SCHEDULEREC>\
            <SPRESULT>1</SPRESULT></SCHEDULE_REC_LIST_OUT></ACK>";
        let out = parse_response(OP, bad.as_bytes()).expect("envelope");
        assert!(matches!(map(&out), Err(MisError::Malformed(_))));
    }
}
