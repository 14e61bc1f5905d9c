//! What a visit is, as the confirmation page, the booking form without an account and the
//! record pages list it: the doctor and their specialities, the branch with its address,
//! the weekday, date and time on the branch's clocks, and the price when the price list
//! links one to the doctor's speciality in that branch.

use chrono::{DateTime, Utc};

use crate::{
    app::App,
    db::models::{
        directory::{self, Price},
        record::RecordView,
    },
    domain::{booking::BookingTarget, values::BranchZone},
    error::AppError,
    web::labels,
};

/// A visit, in words.
pub struct VisitSummary {
    pub doctor: String,
    /// «Кардиология, терапия»; empty when the doctor has none (or left the directory).
    pub specialities: String,
    pub branch: String,
    pub address: String,
    /// «пн, 30 ноября, 15:00, время Екатеринбурга».
    pub when: String,
    /// «Первичный приём кардиолога — 2 500 ₽», or «от 1 800 ₽»; `None` when unknown.
    pub price: Option<String>,
}

impl VisitSummary {
    /// The visit the doctor's `start` in the target's branch would be.
    pub async fn of_slot(
        app: &App,
        target: &BookingTarget,
        start: DateTime<Utc>,
    ) -> Result<Self, AppError> {
        let (specialities, price) =
            doctor_facts(app, target.specialist_id, target.branch_id).await?;
        Ok(Self {
            doctor: target.specialist_name.to_string(),
            specialities: specialities.unwrap_or_default(),
            branch: target.branch_name.to_string(),
            address: target.branch_address.to_string(),
            when: labels::visit_when_in(target.zone, start),
            price,
        })
    }

    /// The booked visit of a record.
    pub async fn of_record(app: &App, view: &RecordView) -> Result<Self, AppError> {
        let (specialities, price) =
            doctor_facts(app, view.record.specialist_id, view.record.branch_id).await?;
        Ok(Self {
            doctor: view.specialist_name.clone(),
            specialities: specialities.unwrap_or_else(|| view.specialities.join(", ")),
            branch: view.branch_name.clone(),
            address: view.branch_address.clone(),
            when: record_when(view.branch_zone, view),
            price,
        })
    }
}

/// «пн, 30 ноября, 15:00–15:30, время Екатеринбурга».
fn record_when(zone: BranchZone, view: &RecordView) -> String {
    let (start, end) = (view.local_start(), view.local_end());
    format!(
        "{}, {}–{}, {}",
        labels::day_month(start.date_naive()),
        start.format("%H:%M"),
        end.format("%H:%M"),
        zone.city_time()
    )
}

/// The doctor's specialities in words and the price of a visit in the branch; both `None`
/// when the doctor is no longer in the directory.
async fn doctor_facts(
    app: &App,
    specialist_id: i64,
    branch_id: i64,
) -> Result<(Option<String>, Option<String>), AppError> {
    let mut conn = app.db().await?;
    let Some(doctor) = directory::find_specialist(&mut conn, specialist_id).await? else {
        return Ok((None, None));
    };
    let prices = directory::prices_for(&mut conn, &doctor).await?;
    let specialities = doctor
        .specialities
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    Ok((Some(specialities), price_hint(&prices, branch_id)))
}

/// The price a patient should expect in the branch: the first-visit line when the list has
/// one («Первичный приём …»), the only line when there is one, else the lowest price as
/// «от …».
pub fn price_hint(prices: &[Price], branch_id: i64) -> Option<String> {
    let here: Vec<&Price> = prices
        .iter()
        .filter(|p| p.branch_id == Some(branch_id))
        .collect();
    let first_visit = here
        .iter()
        .copied()
        .filter(|p| is_first_visit(&p.name))
        .min_by_key(|p| p.price_kopecks);
    let only = (here.len() == 1).then(|| here[0]);
    if let Some(line) = first_visit.or(only) {
        return Some(format!("{} — {}", line.name, line.display()));
    }
    here.iter()
        .min_by_key(|p| p.price_kopecks)
        .map(|p| format!("от {}", p.display()))
}

fn is_first_visit(name: &str) -> bool {
    name.to_lowercase()
        .replace('ё', "е")
        .starts_with("первичный прием")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(name: &str, kopecks: i64, branch_id: i64) -> Price {
        Price {
            id: kopecks,
            code: "B01".into(),
            name: name.into(),
            price_kopecks: kopecks,
            branch_id: Some(branch_id),
            speciality_id: Some(1),
        }
    }

    #[test]
    fn the_first_visit_line_of_the_branch_is_the_price() {
        let prices = [
            price("Онлайн-консультация кардиолога", 180_000, 1),
            price("Первичный приём кардиолога", 250_000, 1),
            price("Первичный приём кардиолога", 212_500, 2),
        ];
        assert_eq!(
            price_hint(&prices, 1).as_deref(),
            Some("Первичный приём кардиолога — 2\u{a0}500\u{a0}₽")
        );
        assert_eq!(
            price_hint(&prices, 2).as_deref(),
            Some("Первичный приём кардиолога — 2\u{a0}125\u{a0}₽")
        );
        let others = [
            price("Повторный приём", 200_000, 1),
            price("Онлайн-консультация", 180_000, 1),
        ];
        assert_eq!(
            price_hint(&others, 1).as_deref(),
            Some("от 1\u{a0}800\u{a0}₽")
        );
        assert_eq!(price_hint(&others, 3), None);
    }
}
