//! `Patient`: who a record is for, from validated values.

use crate::{
    db::models::user::User,
    domain::values::{BirthDate, Email, FullName, Phone},
    integrations::infoclinica::NewMisPatient,
};

use super::BookingError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patient {
    pub name: FullName,
    pub phone: Phone,
    pub birth_date: Option<BirthDate>,
    pub email: Option<Email>,
    /// The MIS card, when already known (an account's, or a returning caller's at the desk).
    pub mis_pcode: Option<i64>,
}

impl Patient {
    /// From a cabinet account; booking needs the account's phone.
    pub fn of_user(user: &User) -> Result<Self, BookingError> {
        let phone = user.phone.clone().ok_or(BookingError::PatientHasNoPhone)?;
        Ok(Self {
            name: FullName::from_stored(&user.full_name),
            phone: Phone::from_stored(phone),
            birth_date: user.birth_date.map(BirthDate::from_stored),
            email: Some(Email::from_stored(user.email.clone())),
            mis_pcode: user.mis_pcode,
        })
    }

    pub(super) fn mis_card(&self) -> NewMisPatient {
        NewMisPatient {
            last_name: self.name.last.as_str().to_owned(),
            first_name: self.name.first.as_str().to_owned(),
            middle_name: self.name.middle.as_ref().map(|m| m.as_str().to_owned()),
            birth_date: self.birth_date.map(BirthDate::date),
            phone: self.phone.to_string(),
            email: self.email.as_ref().map(ToString::to_string),
        }
    }
}
