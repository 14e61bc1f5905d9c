//! Per-message knowledge: what each operation writes into its `<OP>_IN` block and how its
//! `<OP>_OUT` block maps onto our types. Transport and envelope live elsewhere
//! ([`super::client`], [`super::xml`]); a new operation adds one request writer and one
//! mapper here and one trait method on the client. The directory messages sit in this file;
//! the booking messages (SCHEDULE, SCHEDULE_REC_RESERVE, …) have a file each.

pub mod client_add;
pub mod client_check;
pub mod schedule;
pub mod schedule_change_accept;
pub mod schedule_change_list;
pub mod schedule_rec_list;
pub mod schedule_rec_remove;
pub mod schedule_rec_reserve;
pub mod schedule_rec_update;

use super::{
    MisBranch, MisDepartment, MisDoctor, MisDoctorPage, MisError, MisPrice,
    xml::{Element, Fields, XmlWriter},
};

/// Whether a message may be sent again after a transient failure. Only messages that
/// change nothing may: a booking retried after a timeout could book twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads only; retried on transient errors.
    ReadOnly,
    /// Changes MIS state; sent once, whatever happens.
    Mutating,
}

/// A phone in the MIS's format, `+7(916)123-45-67`, from E.164 or any spelling of a
/// Russian number (`89161234567`, `9161234567`); anything else is passed on trimmed.
pub fn mis_phone(phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let national = match digits.len() {
        11 if digits.starts_with('7') || digits.starts_with('8') => &digits[1..],
        10 => digits.as_str(),
        _ => return phone.trim().to_owned(),
    };
    format!(
        "+7({}){}-{}-{}",
        &national[..3],
        &national[3..6],
        &national[6..8],
        &national[8..]
    )
}

/// `GET_FILIAL_LIST`.
pub mod filial_list {
    use super::*;

    pub const OP: &str = "GET_FILIAL_LIST";
    pub const IDEMPOTENCY: Idempotency = Idempotency::ReadOnly;

    pub fn write_in(w: &mut XmlWriter) {
        w.leaf("FILLIST", -1).leaf("VIEWINWEB", -1);
    }

    pub fn map(out: &Element) -> Result<Vec<MisBranch>, MisError> {
        out.children_named("GETFILIALLIST")
            .map(|item| {
                let f = Fields::new(item);
                let utc_offset_hours = match f.int_opt("TIMEZONE")? {
                    None => None,
                    Some(h) if (-12..=14).contains(&h) => i32::try_from(h).ok(),
                    Some(_) => {
                        return Err(MisError::Malformed(
                            "GETFILIALLIST TIMEZONE is out of range".into(),
                        ));
                    }
                };
                Ok(MisBranch {
                    mis_id: f.int("FILIAL")?,
                    name: f.text("FNAME")?,
                    address: f.text_or_empty("FADDR"),
                    phone: f.text_or_empty("FPHONE"),
                    email: f.text_or_empty("FMAIL"),
                    utc_offset_hours,
                    work_hours: f.text_or_empty("WORKHOURS"),
                    visible: f.flag("VIEWINWEB_OUT", true)?,
                })
            })
            .collect()
    }
}

/// `GET_DEPARTMENT_LIST`.
pub mod department_list {
    use super::*;

    pub const OP: &str = "GET_DEPARTMENT_LIST";
    pub const IDEMPOTENCY: Idempotency = Idempotency::ReadOnly;

    pub fn write_in(w: &mut XmlWriter) {
        w.leaf("DEPNUMIN", -1).leaf("VIEWINWEB", -1);
    }

    pub fn map(out: &Element) -> Result<Vec<MisDepartment>, MisError> {
        out.children_named("GETDEPARTMENTLIST")
            .map(|item| {
                let f = Fields::new(item);
                Ok(MisDepartment {
                    mis_id: f.int("DEPNUM")?,
                    name: f.text("DEPNAME")?,
                    group_name: f.text_or_empty("DEPGRPNAME"),
                    visible: f.flag("VIEWINWEB_OUT", true)?,
                })
            })
            .collect()
    }
}

/// `GET_DOCTOR_LIST`, one page.
pub mod doctor_list {
    use super::*;

    pub const OP: &str = "GET_DOCTOR_LIST";
    pub const IDEMPOTENCY: Idempotency = Idempotency::ReadOnly;

    pub fn write_in(w: &mut XmlWriter, first_row: u32, last_row: u32) {
        w.leaf("VIEWINWEB", -1)
            .leaf("FIRSTROW", first_row)
            .leaf("LASTROW", last_row);
    }

    pub fn map(out: &Element) -> Result<MisDoctorPage, MisError> {
        let items = out
            .children_named("GETDOCTORLIST")
            .map(|item| {
                let f = Fields::new(item);
                Ok(MisDoctor {
                    doctor_mis_id: f.int("DCODE")?,
                    full_name: f.text("DNAME")?,
                    department_mis_id: f.int("DEPNUM")?,
                    department_name: f.text_or_empty("DEPNAME"),
                    branch_mis_id: f.int("FILIAL")?,
                    visible: f.flag("VIEWINWEB", true)?,
                })
            })
            .collect::<Result<Vec<_>, MisError>>()?;
        let total = match out.text_at(&["RECORDSDATA", "ITEMSNUMBER"]) {
            None => None,
            Some(raw) => Some(raw.parse::<u32>().map_err(|_| {
                MisError::Malformed("RECORDSDATA ITEMSNUMBER is not a count".into())
            })?),
        };
        Ok(MisDoctorPage { items, total })
    }
}

/// `PRICE_LIST` of one department.
pub mod price_list {
    use super::*;

    pub const OP: &str = "PRICE_LIST";
    pub const IDEMPOTENCY: Idempotency = Idempotency::ReadOnly;

    pub fn write_in(w: &mut XmlWriter, department_mis_id: i64) {
        w.leaf("DEPNUM", department_mis_id);
    }

    pub fn map(out: &Element, department_mis_id: i64) -> Result<Vec<MisPrice>, MisError> {
        out.children_named("SCH")
            .map(|item| {
                let f = Fields::new(item);
                Ok(MisPrice {
                    mis_id: f.int("SCHID")?,
                    code: f.text_or_empty("KODOPER"),
                    name: f.text("SCHNAME")?,
                    price_kopecks: f.money("SPRICE")?,
                    branch_mis_id: f.int("FILIAL")?,
                    department_mis_id,
                    bookable: f.flag("SCHSCHEDTYPE", true)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::infoclinica::xml::parse_response;

    #[test]
    fn phones_are_written_the_mis_way() {
        assert_eq!(mis_phone("+79161234567"), "+7(916)123-45-67");
        assert_eq!(mis_phone("8 (916) 123-45-67"), "+7(916)123-45-67");
        assert_eq!(mis_phone("9161234567"), "+7(916)123-45-67");
        assert_eq!(mis_phone(" +7(916)123-45-67 "), "+7(916)123-45-67");
        assert_eq!(mis_phone("+380441234567"), "+380441234567");
    }

    #[test]
    fn a_doctor_without_dcode_is_malformed_naming_the_field() {
        let body = "<ACK xmlns=\"http://sdsys.ru/\"><MSA><MSA.1>AA</MSA.1></MSA><GET_DOCTOR_LIST_OUT>\
            <GETDOCTORLIST><DNAME>Иванов Иван Иванович</DNAME><DEPNUM>1</DEPNUM><FILIAL>1</FILIAL></GETDOCTORLIST>\
            <SPRESULT>1</SPRESULT></GET_DOCTOR_LIST_OUT></ACK>";
        let out = parse_response(doctor_list::OP, body.as_bytes()).expect("envelope is fine");
        let err = doctor_list::map(&out).expect_err("DCODE is required");
        assert!(err.to_string().contains("DCODE"), "{err}");
    }

    #[test]
    fn prices_trim_codes_and_read_kopecks() {
        let body = "<ACK><MSA><MSA.1>AA</MSA.1></MSA><PRICE_LIST_OUT>\
            <SCH><SCHID>7</SCHID><KODOPER> У 1055</KODOPER><SCHNAME>Приём</SCHNAME><SPRICE>2500.00</SPRICE>\
            <FILIAL>2</FILIAL><SCHSCHEDTYPE>0</SCHSCHEDTYPE></SCH>\
            <SPRESULT>1</SPRESULT></PRICE_LIST_OUT></ACK>";
        let out = parse_response(price_list::OP, body.as_bytes()).expect("envelope");
        let prices = price_list::map(&out, 40000012).expect("maps");
        assert_eq!(prices.len(), 1);
        assert_eq!(prices[0].code, "У 1055");
        assert_eq!(prices[0].price_kopecks, 250_000);
        assert_eq!(prices[0].department_mis_id, 40000012);
        assert!(!prices[0].bookable);
    }
}
