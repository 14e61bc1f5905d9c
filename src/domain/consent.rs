//! Consent on record (152-FZ): what a person agreed to is stored as rows, one per purpose,
//! naming the version of the text they were shown, when, from which address, and by whom
//! (an account, or a phone for a visitor without one).
//!
//! A patient withdraws a purpose from the cabinet (art. 9 part 2): every consent of that
//! purpose still in force gets `withdrawn_at`, and booking for themselves is refused until
//! they give it again ([`withdrawn_purpose`]).

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::{
    db::{
        DbPool,
        models::{
            consent::{self, ConsentText},
            user::User,
        },
    },
    domain::{
        audit::{self, Actor},
        data_rights::DataRightsError,
        values::{ConsentPurpose, Invalid},
    },
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

/// Writes one row per ticked purpose against the current text of that purpose, read and
/// written in one statement. On a shared connection, so a caller may include it in its
/// transaction and send it together with its other statements (a booking does).
pub async fn record(
    conn: &diesel_async::AsyncPgConnection,
    who: Consenter<'_>,
    given: ConsentGiven,
    ip: IpAddr,
) -> Result<(), diesel::result::Error> {
    let (user_id, phone) = match who {
        Consenter::Account(id) => (Some(id), None),
        Consenter::Phone(phone) => (None, Some(phone)),
    };
    let purposes: Vec<ConsentPurpose> = [
        (given.personal_data, ConsentPurpose::PersonalData),
        (given.health_data, ConsentPurpose::HealthData),
    ]
    .into_iter()
    .filter_map(|(ticked, purpose)| ticked.then_some(purpose))
    .collect();
    if purposes.is_empty() {
        return Ok(());
    }
    consent::insert_current(conn, user_id, phone, &purposes, &ip.to_string())
        .await
        .map(drop)
}

/// The texts in force, which a form links to; on a shared connection, so that a booking can
/// send the read together with its other statements.
pub async fn current_texts(
    conn: &diesel_async::AsyncPgConnection,
) -> Result<Vec<ConsentText>, diesel::result::Error> {
    consent::current_texts(conn).await
}

/// Withdraws `patient`'s consent for `purpose` at `now`: every consent of that purpose in
/// force is marked withdrawn; audited (`consent_withdrawn`, the purpose in the details).
/// Nothing in force: [`DataRightsError::NotFound`].
pub async fn withdraw(
    db: &DbPool,
    patient: &User,
    purpose: ConsentPurpose,
    now: DateTime<Utc>,
    ip: IpAddr,
) -> Result<(), DataRightsError> {
    let mut conn = db.get().await?;
    let withdrawn = consent::withdraw(&mut conn, patient.id, purpose, now).await?;
    drop(conn);
    if withdrawn == 0 {
        return Err(DataRightsError::NotFound);
    }
    audit::append_with(
        db,
        Actor::user(patient, ip),
        "consent_withdrawn",
        &patient.id.to_string(),
        serde_json::json!({ "purpose": purpose.as_str(), "consents": withdrawn }),
    )
    .await;
    Ok(())
}

/// `patient` gives consent again from the cabinet (after a withdrawal): rows against the
/// current texts, as at registration; audited (`consent_given`).
pub async fn give_again(
    db: &DbPool,
    patient: &User,
    given: ConsentGiven,
    ip: IpAddr,
) -> Result<(), DataRightsError> {
    let conn = db.get().await?;
    record(&conn, Consenter::Account(patient.id), given, ip).await?;
    drop(conn);
    let purposes: Vec<&str> = [
        (given.personal_data, ConsentPurpose::PersonalData),
        (given.health_data, ConsentPurpose::HealthData),
    ]
    .into_iter()
    .filter(|(ticked, _)| *ticked)
    .map(|(_, purpose)| purpose.as_str())
    .collect();
    audit::append_with(
        db,
        Actor::user(patient, ip),
        "consent_given",
        &patient.id.to_string(),
        serde_json::json!({ "purposes": purposes }),
    )
    .await;
    Ok(())
}

/// A purpose the account withdrew and has not given again, if any (health data first).
/// An account that never gave consent in the cabinet (created by an admin or the command
/// line before consents were kept) is not refused: only a withdrawal stops booking.
pub async fn withdrawn_purpose(
    conn: &mut diesel_async::AsyncPgConnection,
    user_id: i64,
) -> Result<Option<ConsentPurpose>, diesel::result::Error> {
    let rows = consent::of_user(conn, user_id).await?;
    Ok([ConsentPurpose::HealthData, ConsentPurpose::PersonalData]
        .into_iter()
        .find(|purpose| {
            let withdrawn = rows
                .iter()
                .any(|r| r.purpose == *purpose && r.withdrawn_at.is_some());
            let in_force = rows
                .iter()
                .any(|r| r.purpose == *purpose && r.withdrawn_at.is_none());
            withdrawn && !in_force
        }))
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
