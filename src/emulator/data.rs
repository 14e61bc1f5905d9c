//! The seed data of the emulated world, kept in the files of `data/` and compiled in: lists
//! of one item a line (`#` starts a comment line) and the structured records of
//! `clinic.json` with `include_str!`, the doctors' portraits in `pictures/` with
//! `include_bytes!`. [`super::world`] draws from them with the seed's random stream, so
//! reordering or editing a line changes the generated world.

use std::sync::LazyLock;

use serde::Deserialize;

use super::world::Branch;

/// A clinical department and the words service names are made of.
#[derive(Debug, Clone, Deserialize)]
pub struct DepartmentSeed {
    pub name: String,
    /// The specialist in the genitive, for service names ("Первичный приём терапевта").
    pub genitive: String,
    /// The specialist's title ("Врач-терапевт").
    pub title: String,
    /// NMU code of the primary visit; service codes append a suffix.
    pub visit_code: String,
    /// `SPECCODE` of the department's prices.
    pub spec_code: i64,
}

/// A service every department offers.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceSeed {
    /// The name; `{}` is the specialist in the genitive.
    pub template: String,
    /// Appended to the department's visit code.
    pub code_suffix: String,
    pub price_roubles: i64,
    /// Bookable online (`SCHSCHEDTYPE` not 0).
    pub bookable: bool,
}

/// A value of the CMS doctors' `CATEGORY` list property.
#[derive(Debug, Clone, Deserialize)]
pub struct CategorySeed {
    pub value: String,
    pub enum_id: i64,
    pub xml_id: String,
}

/// A content page of the site.
#[derive(Debug, Clone, Deserialize)]
pub struct PageSeed {
    pub name: String,
    pub code: String,
    pub html: String,
}

/// `clinic.json`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clinic {
    pub branches: Vec<Branch>,
    /// The clinical departments, in `mis_id` order.
    pub departments: Vec<DepartmentSeed>,
    pub services: Vec<ServiceSeed>,
    pub doctor_categories: Vec<CategorySeed>,
    pub pages: Vec<PageSeed>,
}

const CLINIC_JSON: &str = include_str!("data/clinic.json");

/// The records of `clinic.json`. The file is compiled in and a test parses it, so the empty
/// fallback is never reached in a build that passed its tests.
pub static CLINIC: LazyLock<Clinic> = LazyLock::new(|| {
    serde_json::from_str(CLINIC_JSON).unwrap_or_else(|e| {
        tracing::error!(error = %e, "emulator data file clinic.json is invalid");
        Clinic::default()
    })
});

/// Male surnames; the female form adds "а" (or turns "-ский" into "-ская").
pub static SURNAMES: LazyLock<Vec<&str>> =
    LazyLock::new(|| lines(include_str!("data/surnames.txt")));
pub static MALE_NAMES: LazyLock<Vec<&str>> =
    LazyLock::new(|| lines(include_str!("data/male_names.txt")));
pub static FEMALE_NAMES: LazyLock<Vec<&str>> =
    LazyLock::new(|| lines(include_str!("data/female_names.txt")));
/// (male, female) patronymics.
pub static PATRONYMICS: LazyLock<Vec<(&str, &str)>> = LazyLock::new(|| {
    lines(include_str!("data/patronymics.txt"))
        .into_iter()
        .filter_map(|line| line.split_once(' '))
        .collect()
});
/// HTML paragraphs of doctors' bios.
pub static BIO_PARAGRAPHS: LazyLock<Vec<&str>> =
    LazyLock::new(|| lines(include_str!("data/bio_paragraphs.txt")));
/// Markup our sync must sanitise; one of these goes into every seventh bio.
pub static HOSTILE_HTML: LazyLock<Vec<&str>> =
    LazyLock::new(|| lines(include_str!("data/hostile_html.txt")));
pub static REVIEW_AUTHORS: LazyLock<Vec<&str>> =
    LazyLock::new(|| lines(include_str!("data/review_authors.txt")));
pub static REVIEW_OPENINGS: LazyLock<Vec<&str>> =
    LazyLock::new(|| lines(include_str!("data/review_openings.txt")));
pub static REVIEW_BODIES: LazyLock<Vec<&str>> =
    LazyLock::new(|| lines(include_str!("data/review_bodies.txt")));

/// The side of the portraits, in pixels.
pub const PORTRAIT_SIDE: u32 = 64;

/// Solid-colour PNG portraits of the CMS doctors, [`PORTRAIT_SIDE`] pixels square. The index
/// in binary is the file name: the high (1) or low (0) red, green and blue of the colour.
pub const PORTRAITS: [&[u8]; 8] = [
    include_bytes!("data/pictures/000.png"),
    include_bytes!("data/pictures/001.png"),
    include_bytes!("data/pictures/010.png"),
    include_bytes!("data/pictures/011.png"),
    include_bytes!("data/pictures/100.png"),
    include_bytes!("data/pictures/101.png"),
    include_bytes!("data/pictures/110.png"),
    include_bytes!("data/pictures/111.png"),
];

/// The items of a list file: its lines, less empty lines and `#` comments.
fn lines(text: &'static str) -> Vec<&'static str> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clinic_json_parses() {
        let clinic: Clinic = serde_json::from_str(CLINIC_JSON).expect("clinic.json");
        assert_eq!(clinic.branches.len(), 3);
        assert_eq!(clinic.departments.len(), 12);
        assert!(clinic.services.iter().all(|s| s.template.contains("{}")));
        assert!(!clinic.doctor_categories.is_empty());
        assert!(!clinic.pages.is_empty());
    }

    #[test]
    fn lists_have_their_items() {
        assert_eq!(SURNAMES.len(), 40);
        assert_eq!(MALE_NAMES.len(), 16);
        assert_eq!(FEMALE_NAMES.len(), 16);
        assert_eq!(PATRONYMICS.len(), 16);
        assert!(
            PATRONYMICS
                .iter()
                .all(|(m, f)| m.ends_with("ич") && f.ends_with("на"))
        );
        assert_eq!(BIO_PARAGRAPHS.len(), 5);
        assert_eq!(HOSTILE_HTML.len(), 3);
        for list in [&REVIEW_AUTHORS, &REVIEW_OPENINGS, &REVIEW_BODIES] {
            assert!(!list.is_empty());
            assert!(list.iter().all(|line| line.trim() == *line));
        }
    }
}
