//! The home page: the doctor search box, the specialities, the branches (address, phone,
//! opening hours, a map link) and the clinic's phone.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use crate::{
    app::AppState,
    auth::{roles::MaybeUser, session::AuthSession},
    db::models::{
        directory::{self, Branch, Speciality},
        user::Role,
    },
    error::AppError,
    web::Layout,
};

#[derive(Template, WebTemplate)]
#[template(path = "pages/home.html")]
struct HomePage {
    layout: Layout,
    clinic_phone: String,
    /// `tel:…` of the clinic phone; `None` when it has no digits to dial.
    clinic_phone_href: Option<String>,
    specialities: Vec<SpecialityLink>,
    branches: Vec<BranchCard>,
}

/// A speciality and its doctor list.
struct SpecialityLink {
    name: String,
    href: String,
}

/// A branch as the home page shows it.
struct BranchCard {
    name: String,
    address: String,
    phone: String,
    phone_href: Option<String>,
    work_hours: String,
    /// The address on Yandex Maps.
    map_href: Option<String>,
    doctors_href: String,
}

/// `tel:+74951203456` for a phone written any way (`+7(495)120-34-56`, `8 800 …`): its digits,
/// with the `+` when it starts with one.
fn tel_href(phone: &str) -> Option<String> {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return None;
    }
    let plus = if phone.trim_start().starts_with('+') {
        "+"
    } else {
        ""
    };
    Some(format!("tel:{plus}{digits}"))
}

/// The address searched for on Yandex Maps.
fn map_href(address: &str) -> Option<String> {
    if address.trim().is_empty() {
        return None;
    }
    serde_urlencoded::to_string([("text", address.trim())])
        .ok()
        .map(|query| format!("https://yandex.ru/maps/?{query}"))
}

impl From<Branch> for BranchCard {
    fn from(branch: Branch) -> Self {
        Self {
            phone_href: tel_href(&branch.phone),
            map_href: map_href(&branch.address),
            doctors_href: format!("/doctors?branch_id={}", branch.id),
            name: branch.name,
            address: branch.address,
            phone: branch.phone,
            work_hours: branch.work_hours,
        }
    }
}

impl From<Speciality> for SpecialityLink {
    fn from(speciality: Speciality) -> Self {
        Self {
            href: format!("/doctors?speciality_id={}", speciality.id),
            name: speciality.name,
        }
    }
}

pub async fn show_home(
    State(state): State<AppState>,
    session: AuthSession,
    MaybeUser(user): MaybeUser,
) -> Result<impl axum::response::IntoResponse, AppError> {
    let mut conn = state.db().await?;
    let specialities = directory::list_specialities(&mut conn).await?;
    let branches = directory::list_branches(&mut conn).await?;
    drop(conn);
    let clinic_phone = state.config.clinic_phone.clone();
    Ok(HomePage {
        layout: Layout::new(&session, user.as_ref()).await?,
        clinic_phone_href: tel_href(&clinic_phone),
        clinic_phone,
        specialities: specialities.into_iter().map(SpecialityLink::from).collect(),
        branches: branches.into_iter().map(BranchCard::from).collect(),
    })
}

/// Keeps `Role` in scope for the templates' comparisons.
const _: Option<Role> = None;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_dial_their_digits_and_addresses_open_the_map() {
        assert_eq!(
            tel_href("+7(495)120-34-56").as_deref(),
            Some("tel:+74951203456")
        );
        assert_eq!(
            tel_href("8 800 555-35-35").as_deref(),
            Some("tel:88005553535")
        );
        assert_eq!(tel_href("звоните"), None);
        assert_eq!(
            map_href("Москва, ул. Садовая, д. 12").as_deref(),
            Some(
                "https://yandex.ru/maps/?text=%D0%9C%D0%BE%D1%81%D0%BA%D0%B2%D0%B0%2C+%D1%83%D0%BB.+%D0%A1%D0%B0%D0%B4%D0%BE%D0%B2%D0%B0%D1%8F%2C+%D0%B4.+12"
            )
        );
        assert_eq!(map_href("  "), None);
    }
}
