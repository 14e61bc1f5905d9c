//! Consent on record (152-FZ): what a person agreed to is stored as rows, one per purpose,
//! naming the version of the text they were shown, when, from which address, and by whom
//! (an account, or a phone for a visitor without one).

use std::net::IpAddr;

use crate::{
    db::models::consent::{self, ConsentText, NewConsent},
    domain::values::{ConsentPurpose, Invalid},
};

/// The boxes a form or a JSON body ticked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsentGiven {
    pub personal_data: bool,
    pub health_data: bool,
}

impl ConsentGiven {
    /// Booking and registration need both: a visit is health data (art. 10).
    pub fn require_both(self) -> Result<Self, Invalid> {
        match (self.personal_data, self.health_data) {
            (true, true) => Ok(self),
            (false, _) => Err(Invalid(
                "Без согласия на обработку персональных данных запись и регистрация невозможны",
            )),
            (true, false) => Err(Invalid(
                "Без согласия на обработку сведений о здоровье запись и регистрация невозможны",
            )),
        }
    }
}

/// Whose consent it is.
pub enum Consenter<'a> {
    Account(i64),
    Phone(&'a str),
}

/// Writes one row per ticked purpose against the current text of that purpose, on `conn`
/// (so a caller may include it in its transaction).
pub async fn record(
    conn: &mut diesel_async::AsyncPgConnection,
    who: Consenter<'_>,
    given: ConsentGiven,
    ip: IpAddr,
) -> Result<(), diesel::result::Error> {
    let texts = consent::current_texts(conn).await?;
    let ip = ip.to_string();
    let (user_id, phone) = match who {
        Consenter::Account(id) => (Some(id), None),
        Consenter::Phone(phone) => (None, Some(phone)),
    };
    let rows: Vec<NewConsent<'_>> = texts
        .iter()
        .filter(|t| match t.purpose {
            ConsentPurpose::PersonalData => given.personal_data,
            ConsentPurpose::HealthData => given.health_data,
        })
        .map(|t| NewConsent {
            user_id,
            phone,
            text_id: t.id,
            client_ip: &ip,
        })
        .collect();
    consent::insert(conn, &rows).await.map(drop)
}

/// The texts a form links to.
pub async fn current_texts(
    conn: &mut diesel_async::AsyncPgConnection,
) -> Result<Vec<ConsentText>, diesel::result::Error> {
    consent::current_texts(conn).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_purposes_are_needed() {
        let both = ConsentGiven {
            personal_data: true,
            health_data: true,
        };
        assert!(both.require_both().is_ok());
        assert!(ConsentGiven::default().require_both().is_err());
        let only_personal = ConsentGiven {
            personal_data: true,
            health_data: false,
        };
        assert!(
            only_personal
                .require_both()
                .unwrap_err()
                .0
                .contains("здоровье")
        );
    }
}
