//! `SCHEDULE`: a doctor's slot grid in one filial (§2.6). The answer nests
//! `DEP/DOCT/WRDATE/SCHEDINT/INTERVAL`; every interval carries the `SCHEDIDENT` of the work
//! period (`SCHEDINT`) it sits in, since a reserve must name it.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::Idempotency;
use crate::integrations::infoclinica::{
    MisDaySchedule, MisError, MisInterval,
    xml::{Element, Fields, XmlWriter, format_date},
};

pub const OP: &str = "SCHEDULE";
pub const IDEMPOTENCY: Idempotency = Idempotency::ReadOnly;
/// `EXTINTERV`: the visit length in minutes the grid is cut into.
pub const INTERVAL_MINUTES: u32 = 30;

/// One doctor, `from..=to`. Both doctor spellings are sent (`INDOCTLIST` by production
/// clients, `DCODEIN` by the vendor's tests); the filial goes in `MSH.99`.
pub fn write_in(w: &mut XmlWriter, doctor_mis_id: i64, from: NaiveDate, to: NaiveDate) {
    w.leaf("INDOCTLIST", doctor_mis_id)
        .leaf("DCODEIN", doctor_mis_id)
        .leaf("BDATE", format_date(from))
        .leaf("FDATE", format_date(to))
        .leaf("EXTINTERV", INTERVAL_MINUTES)
        .empty("SCHLIST");
}

/// Every doctor's days in the answer, one [`MisDaySchedule`] per doctor and date (a doctor
/// listed under two departments has their intervals merged), ordered by doctor, date and
/// start.
pub fn map(out: &Element) -> Result<Vec<MisDaySchedule>, MisError> {
    let mut days: BTreeMap<(i64, NaiveDate), Vec<MisInterval>> = BTreeMap::new();
    for dep in out.children_named("DEP") {
        for doct in dep.children_named("DOCT") {
            let doctor = Fields::new(doct).int("DCODE")?;
            for wrdate in doct.children_named("WRDATE") {
                let date = Fields::new(wrdate).date("WDATE")?;
                let intervals = days.entry((doctor, date)).or_default();
                for schedint in wrdate.children_named("SCHEDINT") {
                    let schedident = Fields::new(schedint).int("SCHEDIDENT")?;
                    for interval in schedint.children_named("INTERVAL") {
                        intervals.push(map_interval(interval, schedident)?);
                    }
                }
            }
        }
    }
    Ok(days
        .into_iter()
        .map(|((doctor_mis_id, date), mut intervals)| {
            intervals.sort_by_key(|i| (i.start, i.end));
            MisDaySchedule {
                date,
                doctor_mis_id,
                intervals,
            }
        })
        .collect())
}

fn map_interval(interval: &Element, schedident: i64) -> Result<MisInterval, MisError> {
    let f = Fields::new(interval);
    let start = f.time("BHOUR", "BMIN")?;
    let end = f.time("FHOUR", "FMIN")?;
    if end <= start {
        return Err(MisError::Malformed(format!(
            "INTERVAL ends ({end}) before it starts ({start})"
        )));
    }
    Ok(MisInterval {
        start,
        end,
        free_type: f.int("FREETYPE")?,
        schedident,
    })
}

#[cfg(test)]
mod tests {
    use chrono::NaiveTime;

    use super::*;
    use crate::integrations::infoclinica::xml::{self, parse_response};

    fn out(body: &str) -> Element {
        let doc = format!(
            "<ACK xmlns=\"http://sdsys.ru/\"><MSA><MSA.1>AA</MSA.1></MSA><SCHEDULE_OUT>{body}\
             <SPRESULT>1</SPRESULT><SPCOMMENT>Данные по расписанию получены</SPCOMMENT></SCHEDULE_OUT></ACK>"
        );
        parse_response(OP, doc.as_bytes()).expect("envelope")
    }

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("time")
    }

    #[test]
    fn the_nested_grid_maps_to_days_with_their_schedidents() {
        let out = out(
            "<DEP><DEPNUM>40000012</DEPNUM><DOCT><DCODE>20000045</DCODE>\
            <WRDATE><WDATE>20250318</WDATE>\
              <SCHEDINT><SCHEDIDENT>20048812</SCHEDIDENT><RNUM>214</RNUM>\
                <INTERVAL><BHOUR>14</BHOUR><BMIN>0</BMIN><FHOUR>14</FHOUR><FMIN>30</FMIN><FREETYPE>1</FREETYPE></INTERVAL>\
              </SCHEDINT>\
              <SCHEDINT><SCHEDIDENT>20048811</SCHEDIDENT>\
                <INTERVAL><BHOUR>8</BHOUR><BMIN>0</BMIN><FHOUR>8</FHOUR><FMIN>30</FMIN><FREETYPE>-6</FREETYPE></INTERVAL>\
                <INTERVAL><BHOUR>09</BHOUR><BMIN>00</BMIN><FHOUR>9</FHOUR><FMIN>30</FMIN><FREETYPE>0</FREETYPE></INTERVAL>\
              </SCHEDINT>\
            </WRDATE>\
            <WRDATE><WDATE>20250319</WDATE><SCHEDINT><SCHEDIDENT>20048840</SCHEDIDENT></SCHEDINT></WRDATE>\
            </DOCT></DEP>",
        );
        let days = map(&out).expect("maps");
        assert_eq!(days.len(), 2);
        let first = &days[0];
        assert_eq!(first.doctor_mis_id, 20000045);
        assert_eq!(
            first.date,
            NaiveDate::from_ymd_opt(2025, 3, 18).expect("date")
        );
        let starts: Vec<_> = first.intervals.iter().map(|i| i.start).collect();
        assert_eq!(starts, vec![t(8, 0), t(9, 0), t(14, 0)]);
        assert_eq!(first.intervals[0].free_type, -6);
        assert_eq!(first.intervals[0].schedident, 20048811);
        assert_eq!(first.intervals[2].schedident, 20048812);
        assert!(first.intervals[2].is_free());
        assert!(!first.intervals[1].is_free());
        assert_eq!(first.intervals[1].end, t(9, 30));
        assert!(days[1].intervals.is_empty());
    }

    #[test]
    fn hour_24_and_odd_times_are_malformed() {
        for (bh, bm, fh, fm) in [
            ("23", "30", "24", "0"),
            ("9", "60", "10", "0"),
            ("9", "x", "10", "0"),
            ("10", "0", "9", "30"),
            ("-1", "0", "9", "30"),
        ] {
            let out = out(&format!(
                "<DEP><DOCT><DCODE>1</DCODE><WRDATE><WDATE>20250318</WDATE><SCHEDINT><SCHEDIDENT>5</SCHEDIDENT>\
                 <INTERVAL><BHOUR>{bh}</BHOUR><BMIN>{bm}</BMIN><FHOUR>{fh}</FHOUR><FMIN>{fm}</FMIN><FREETYPE>1</FREETYPE></INTERVAL>\
                 </SCHEDINT></WRDATE></DOCT></DEP>"
            ));
            assert!(
                matches!(map(&out), Err(MisError::Malformed(_))),
                "{bh}:{bm}-{fh}:{fm}"
            );
        }
        let bad_date = out(
            "<DEP><DOCT><DCODE>1</DCODE><WRDATE><WDATE>2025-03-18</WDATE></WRDATE></DOCT></DEP>",
        );
        assert!(matches!(map(&bad_date), Err(MisError::Malformed(m)) if m.contains("WDATE")));
        let no_ident = out(
            "<DEP><DOCT><DCODE>1</DCODE><WRDATE><WDATE>20250318</WDATE><SCHEDINT/></WRDATE></DOCT></DEP>",
        );
        assert!(matches!(map(&no_ident), Err(MisError::Malformed(m)) if m.contains("SCHEDIDENT")));
    }

    #[test]
    fn the_request_names_the_doctor_both_ways_and_the_window() {
        let header = xml::Header {
            timestamp: "20250312101530".into(),
            control_id: "0".repeat(32),
            filial: Some(2),
        };
        let day = NaiveDate::from_ymd_opt(2025, 3, 18).expect("date");
        let body = xml::request(OP, &header, |w| write_in(w, 20000045, day, day));
        let root = xml::parse(body.as_bytes()).expect("parses");
        assert_eq!(root.text_at(&["MSH", "MSH.99"]), Some("2"));
        let input = root.child("SCHEDULE_IN").expect("in");
        assert_eq!(input.text_of("INDOCTLIST"), Some("20000045"));
        assert_eq!(input.text_of("DCODEIN"), Some("20000045"));
        assert_eq!(input.text_of("BDATE"), Some("20250318"));
        assert_eq!(input.text_of("FDATE"), Some("20250318"));
        assert_eq!(input.text_of("EXTINTERV"), Some("30"));
    }
}
