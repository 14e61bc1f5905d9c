//! The emulated clinic network: MIS directory data (branches, departments, doctors,
//! prices) and the CMS content that describes the same doctors, all generated
//! deterministically from a seed out of the names, departments, services and texts in the
//! files of `src/emulator/data/` (the private module `emulator::data`).
//!
//! At scale 1: 3 branches (two in Moscow, one in Yekaterinburg), 13 departments (12 clinical
//! ones and a hidden "Администрация"), 40 doctors of whom 8 work in two branches, 216
//! prices, 36 linked CMS doctor profiles plus 3 unlinked ones, 300 reviews, 12
//! specializations, 30 services and 5 pages. Work periods hang off [`Doctor::placements`]
//! and, with appointments and 30 patient cards, live in [`super::booking`].

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, FixedOffset, TimeZone};
use rand::{
    Rng, SeedableRng,
    rngs::StdRng,
    seq::{IndexedRandom, SliceRandom},
};
use serde::Deserialize;
use serde_json::json;

use super::{
    booking::Booking,
    data::{
        BIO_PARAGRAPHS, CLINIC, FEMALE_NAMES, HOSTILE_HTML, MALE_NAMES, PATRONYMICS, PORTRAIT_SIDE,
        PORTRAITS, REVIEW_AUTHORS, REVIEW_BODIES, REVIEW_OPENINGS, SURNAMES,
    },
};
use crate::integrations::bitrix::{ContentItem, ContentKind, Picture, Property, PropertyValue};

/// A filial (`data/clinic.json`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Branch {
    pub mis_id: i64,
    pub name: String,
    pub address: String,
    pub phone: String,
    pub email: String,
    /// Hours from UTC (`TIMEZONE`).
    pub timezone: i32,
    /// Opening hours as the front desk writes them (`WORKHOURS`).
    pub work_hours: String,
    pub visible: bool,
}

/// A department (speciality).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Department {
    pub mis_id: i64,
    pub name: String,
    pub group_name: String,
    pub visible: bool,
    /// `SPECCODE`/`SPECNAME` of its prices.
    pub spec_code: i64,
    pub spec_name: String,
}

/// Where a doctor works: one `GETDOCTORLIST` row each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub branch_mis_id: i64,
    pub department_mis_id: i64,
}

/// A doctor of the MIS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doctor {
    /// `DCODE`: the first digit is the home branch.
    pub mis_id: i64,
    /// "Фамилия Имя Отчество".
    pub full_name: String,
    pub female: bool,
    pub visible: bool,
    /// At least one; the first is the home branch.
    pub placements: Vec<Placement>,
}

/// One `GETDOCTORLIST` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoctorRow {
    pub doctor_mis_id: i64,
    pub full_name: String,
    pub department_mis_id: i64,
    pub department_name: String,
    pub branch_mis_id: i64,
    pub branch_name: String,
    pub visible: bool,
}

/// One `SCH` of a price list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    pub mis_id: i64,
    /// `KODOPER` as the MIS sends it: some carry a leading space.
    pub code: String,
    pub name: String,
    pub price_kopecks: i64,
    pub branch_mis_id: i64,
    pub department_mis_id: i64,
    /// `SCHSCHEDTYPE` 0 when false.
    pub bookable: bool,
}

/// The whole emulated network. Cloning is cheap enough for tests.
#[derive(Debug, Clone)]
pub struct World {
    pub seed: u64,
    pub scale: u32,
    pub branches: Vec<Branch>,
    pub departments: Vec<Department>,
    /// Ordered by `mis_id`.
    pub doctors: Vec<Doctor>,
    pub prices: Vec<Price>,
    /// CMS elements per kind (any order; the endpoint sorts).
    pub cms: BTreeMap<ContentKind, Vec<ContentItem>>,
    /// PNG files by path from the site root (`/upload/iblock/5c2/name.png`): each is one of
    /// the portraits in `data/pictures/`.
    pub pictures: BTreeMap<String, &'static [u8]>,
    /// Appointments, patient cards and the clock ([`super::booking`]).
    pub booking: Booking,
}

/// The time zone of CMS timestamps (the site runs on Moscow time).
fn site_offset() -> FixedOffset {
    FixedOffset::east_opt(3 * 3600).unwrap_or_else(|| chrono::Offset::fix(&chrono::Utc))
}

/// Now, in the site's time zone, to the second (the resolution of `TIMESTAMP_X`).
pub fn site_now() -> DateTime<FixedOffset> {
    let now = chrono::Utc::now().with_timezone(&site_offset());
    now - Duration::nanoseconds(i64::from(chrono::Timelike::nanosecond(&now)))
}

impl World {
    /// Generates the network; the same seed and scale always give the same world.
    pub fn generate(seed: u64, scale: u32) -> World {
        let scale = scale.max(1);
        let mut rng = StdRng::seed_from_u64(seed);
        let branches = branches();
        let departments = departments();
        let doctors = doctors(&mut rng, scale, &departments);
        let prices = prices(&mut rng, scale, &branches, &departments);
        let mut world = World {
            seed,
            scale,
            branches,
            departments,
            doctors,
            prices,
            cms: BTreeMap::new(),
            pictures: BTreeMap::new(),
            booking: Booking::new(seed),
        };
        cms_content(&mut rng, &mut world);
        world
    }

    /// Every `GETDOCTORLIST` row, ordered by (`DCODE`, `FILIAL`, `DEPNUM`).
    pub fn doctor_rows(&self) -> Vec<DoctorRow> {
        let mut rows: Vec<DoctorRow> = self
            .doctors
            .iter()
            .flat_map(|d| {
                d.placements.iter().map(move |p| DoctorRow {
                    doctor_mis_id: d.mis_id,
                    full_name: d.full_name.clone(),
                    department_mis_id: p.department_mis_id,
                    department_name: self
                        .department(p.department_mis_id)
                        .map(|x| x.name.clone())
                        .unwrap_or_default(),
                    branch_mis_id: p.branch_mis_id,
                    branch_name: self
                        .branch(p.branch_mis_id)
                        .map(|x| x.name.clone())
                        .unwrap_or_default(),
                    visible: d.visible,
                })
            })
            .collect();
        rows.sort_by_key(|r| (r.doctor_mis_id, r.branch_mis_id, r.department_mis_id));
        rows
    }

    pub fn branch(&self, mis_id: i64) -> Option<&Branch> {
        self.branches.iter().find(|b| b.mis_id == mis_id)
    }

    pub fn department(&self, mis_id: i64) -> Option<&Department> {
        self.departments.iter().find(|d| d.mis_id == mis_id)
    }

    pub fn doctor(&self, mis_id: i64) -> Option<&Doctor> {
        self.doctors.iter().find(|d| d.mis_id == mis_id)
    }

    /// Doctors shown on the web (`VIEWINWEB` 1).
    pub fn visible_doctor_count(&self) -> usize {
        self.doctors.iter().filter(|d| d.visible).count()
    }

    /// The price list of one department (every branch).
    pub fn prices_of(&self, department_mis_id: i64) -> Vec<&Price> {
        self.prices
            .iter()
            .filter(|p| p.department_mis_id == department_mis_id)
            .collect()
    }

    /// The CMS elements of a kind.
    pub fn cms_items(&self, kind: ContentKind) -> &[ContentItem] {
        self.cms.get(&kind).map_or(&[], Vec::as_slice)
    }

    pub fn cms_item(&self, kind: ContentKind, id: i64) -> Option<&ContentItem> {
        self.cms_items(kind).iter().find(|i| i.id == id)
    }

    /// CMS doctors whose `MIS_ID` names an existing MIS doctor.
    pub fn linked_cms_doctors(&self) -> Vec<&ContentItem> {
        let ids: BTreeSet<i64> = self.doctors.iter().map(|d| d.mis_id).collect();
        self.cms_items(ContentKind::Doctors)
            .iter()
            .filter(|i| {
                i.properties
                    .get("MIS_ID")
                    .and_then(Property::first_str)
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|id| ids.contains(&id))
            })
            .collect()
    }

    /// Reviews with `active` true.
    pub fn published_review_count(&self) -> usize {
        self.cms_items(ContentKind::Reviews)
            .iter()
            .filter(|r| r.active)
            .count()
    }
}

fn branches() -> Vec<Branch> {
    CLINIC.branches.clone()
}

fn departments() -> Vec<Department> {
    let mut list: Vec<Department> = CLINIC
        .departments
        .iter()
        .zip(1..)
        .map(|(seed, n)| Department {
            mis_id: 40_000_000 + n,
            name: seed.name.clone(),
            group_name: "Отделения".into(),
            visible: true,
            spec_code: seed.spec_code,
            spec_name: seed.name.to_uppercase(),
        })
        .collect();
    list.push(Department {
        mis_id: 40_000_099,
        name: "Администрация".into(),
        group_name: "Служебные".into(),
        visible: false,
        spec_code: 0,
        spec_name: "АДМИНИСТРАЦИЯ".into(),
    });
    list
}

fn female_surname(male: &str) -> String {
    match male.strip_suffix("ский") {
        Some(stem) => format!("{stem}ская"),
        None => format!("{male}а"),
    }
}

pub(crate) fn person_name(rng: &mut StdRng, female: bool) -> String {
    let surname = SURNAMES.choose(rng).copied().unwrap_or("Иванов");
    let (first, patronymic) = if female {
        (
            FEMALE_NAMES.choose(rng).copied().unwrap_or("Анна"),
            PATRONYMICS.choose(rng).map_or("Ивановна", |p| p.1),
        )
    } else {
        (
            MALE_NAMES.choose(rng).copied().unwrap_or("Иван"),
            PATRONYMICS.choose(rng).map_or("Иванович", |p| p.0),
        )
    };
    let surname = if female {
        female_surname(surname)
    } else {
        surname.to_owned()
    };
    format!("{surname} {first} {patronymic}")
}

fn doctors(rng: &mut StdRng, scale: u32, departments: &[Department]) -> Vec<Doctor> {
    let count = 40 * scale as usize;
    let clinical: Vec<&Department> = departments.iter().filter(|d| d.visible).collect();
    let mut names = BTreeSet::new();
    let mut next_seq = [0i64; 4];
    let mut doctors = Vec::with_capacity(count);
    for i in 0..count {
        // 40 % Sadovaya, 35 % Profsoyuznaya, 25 % Yekaterinburg.
        let branch: i64 = match i % 20 {
            0..=7 => 1,
            8..=14 => 2,
            _ => 3,
        };
        // The first doctors cover every department; the rest are random.
        let department = if i < clinical.len() {
            clinical[i]
        } else {
            clinical.choose(rng).copied().unwrap_or(clinical[0])
        };
        let female = rng.random_bool(0.55);
        let mut name = person_name(rng, female);
        while !names.insert(name.clone()) {
            name = person_name(rng, female);
        }
        next_seq[branch as usize] += 1;
        doctors.push(Doctor {
            mis_id: branch * 10_000_000 + next_seq[branch as usize],
            full_name: name,
            female,
            // A few doctors are hidden from the web.
            visible: i % 13 != 5,
            placements: vec![Placement {
                branch_mis_id: branch,
                department_mis_id: department.mis_id,
            }],
        });
    }
    // One doctor in five also works in the other Moscow branch, same department.
    let mut moscow: Vec<usize> = (0..doctors.len())
        .filter(|&i| doctors[i].placements[0].branch_mis_id != 3)
        .collect();
    moscow.shuffle(rng);
    for &i in moscow.iter().take(count / 5) {
        let home = doctors[i].placements[0];
        doctors[i].placements.push(Placement {
            branch_mis_id: if home.branch_mis_id == 1 { 2 } else { 1 },
            department_mis_id: home.department_mis_id,
        });
    }
    with_search_example(&mut doctors, &names);
    doctors.sort_by_key(|d| d.mis_id);
    doctors
}

/// The surname the demo's search is shown with: a patient types «семенова» and finds her.
const SEARCH_EXAMPLE_SURNAME: &str = "Семёнова";

/// Makes sure a visible doctor is a «Семёнова», whatever the seed: when none is, the first
/// visible woman whose surname sorts after it takes it (keeping her first name and
/// patronymic), so the doctors that sort first, which the tests pick, stay the same.
fn with_search_example(doctors: &mut [Doctor], names: &BTreeSet<String>) {
    let prefix = format!("{SEARCH_EXAMPLE_SURNAME} ");
    if doctors
        .iter()
        .any(|d| d.visible && d.full_name.starts_with(&prefix))
    {
        return;
    }
    for doctor in doctors.iter_mut().filter(|d| d.visible && d.female) {
        let Some((surname, given)) = doctor.full_name.split_once(' ') else {
            continue;
        };
        let renamed = format!("{prefix}{given}");
        if surname > SEARCH_EXAMPLE_SURNAME && !names.contains(&renamed) {
            doctor.full_name = renamed;
            return;
        }
    }
}

fn prices(
    rng: &mut StdRng,
    scale: u32,
    branches: &[Branch],
    departments: &[Department],
) -> Vec<Price> {
    let mut prices = Vec::new();
    let mut seq = [0i64; 4];
    for (dep_index, seed) in CLINIC.departments.iter().enumerate() {
        let department = &departments[dep_index];
        for round in 0..scale {
            for service in &CLINIC.services {
                let base = service.price_roubles;
                let mut name = service.template.replace("{}", &seed.genitive);
                if round > 0 {
                    name = format!("{name} (программа {})", round + 1);
                }
                for branch in branches {
                    let b = branch.mis_id.clamp(1, 3) as usize;
                    seq[b] += 1;
                    // Yekaterinburg is cheaper; some prices carry kopecks.
                    let roubles = if branch.timezone == 5 {
                        base * 85 / 100
                    } else {
                        base + 100 * rng.random_range(0..5)
                    };
                    let kopecks = if rng.random_bool(0.2) { 50 } else { 0 };
                    let mut kodoper = format!("{}{}", seed.visit_code, service.code_suffix);
                    if round > 0 {
                        kodoper = format!("{kodoper}.{}", round + 1);
                    }
                    if rng.random_bool(0.1) {
                        kodoper.insert(0, ' ');
                    }
                    prices.push(Price {
                        mis_id: branch.mis_id * 10_000_000 + 300 + seq[b],
                        code: kodoper,
                        name: name.clone(),
                        price_kopecks: roubles * 100 + kopecks,
                        branch_mis_id: branch.mis_id,
                        department_mis_id: department.mis_id,
                        bookable: service.bookable,
                    });
                }
            }
        }
    }
    prices
}

/// Translit for slugs (`Петрова Ольга` → `petrova-olga`).
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.to_lowercase().chars() {
        let t = match c {
            'а' => "a",
            'б' => "b",
            'в' => "v",
            'г' => "g",
            'д' => "d",
            'е' | 'ё' | 'э' => "e",
            'ж' => "zh",
            'з' => "z",
            'и' => "i",
            'й' => "y",
            'к' => "k",
            'л' => "l",
            'м' => "m",
            'н' => "n",
            'о' => "o",
            'п' => "p",
            'р' => "r",
            'с' => "s",
            'т' => "t",
            'у' => "u",
            'ф' => "f",
            'х' => "kh",
            'ц' => "ts",
            'ч' => "ch",
            'ш' => "sh",
            'щ' => "shch",
            'ы' => "y",
            'ю' => "yu",
            'я' => "ya",
            'ъ' | 'ь' => "",
            c if c.is_ascii_alphanumeric() => {
                out.push(c);
                continue;
            }
            _ => "-",
        };
        out.push_str(t);
    }
    out.split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

fn prop(kind: &str, values: &[&str]) -> Property {
    Property {
        kind: kind.into(),
        multiple: values.len() > 1,
        values: values
            .iter()
            .map(|v| PropertyValue {
                value: json!(v),
                description: None,
                enum_id: None,
                enum_xml_id: None,
            })
            .collect(),
    }
}

/// A bare element; the caller fills the rest.
fn item(kind: ContentKind, id: i64, name: &str) -> ContentItem {
    ContentItem {
        id,
        iblock_code: Some(kind.as_str().into()),
        xml_id: None,
        code: None,
        active: true,
        sort: 500,
        name: name.into(),
        active_from: None,
        active_to: None,
        created_at: None,
        // Replaced by `stamp`.
        modified_at: DateTime::<chrono::Utc>::MIN_UTC.fixed_offset(),
        section_ids: Vec::new(),
        preview_text: None,
        preview_text_type: None,
        detail_text: None,
        detail_text_type: None,
        detail_page_url: None,
        preview_picture: None,
        detail_picture: None,
        properties: BTreeMap::new(),
    }
}

/// Gives the items second-resolution `created_at`/`modified_at` in a shuffled order, three
/// items per timestamp, so ties on `modified_at` are common and ids do not follow time.
fn stamp(rng: &mut StdRng, items: &mut [ContentItem]) {
    let base = site_offset()
        .with_ymd_and_hms(2025, 3, 1, 9, 0, 0)
        .single()
        .unwrap_or_else(site_now);
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.shuffle(rng);
    let mut at = base;
    for (n, &i) in order.iter().enumerate() {
        if n % 3 == 0 {
            at += Duration::seconds(rng.random_range(1..3600));
        }
        items[i].modified_at = at;
        items[i].created_at = Some(at - Duration::days(rng.random_range(30..900)));
    }
}

fn cms_content(rng: &mut StdRng, world: &mut World) {
    let mut pictures = BTreeMap::new();
    let mut next_file_id = 9000;
    let mut picture = |rng: &mut StdRng, name: &str| -> Picture {
        let dir = format!("{:03x}", rng.random_range(0..0x1000));
        let src = format!("/upload/iblock/{dir}/{name}.png");
        let png = portrait(rng.random());
        next_file_id += 1;
        let picture = Picture {
            file_id: next_file_id,
            src: src.clone(),
            width: Some(PORTRAIT_SIDE),
            height: Some(PORTRAIT_SIDE),
            content_type: Some("image/png".into()),
            size: Some(png.len() as u64),
        };
        pictures.insert(src, png);
        picture
    };

    // Specializations: one per clinical department.
    let mut specializations = Vec::new();
    let mut spec_of_department = BTreeMap::new();
    for (n, (dep, seed)) in world
        .departments
        .iter()
        .zip(CLINIC.departments.iter())
        .enumerate()
    {
        let (name, title) = (&seed.name, &seed.title);
        let id = 55 + n as i64 * 2;
        let mut it = item(ContentKind::Specializations, id, name);
        it.xml_id = Some(format!("dep-{}", dep.mis_id));
        it.code = Some(slug(name));
        it.sort = 100 + 10 * n as i64;
        it.preview_text = Some(format!("{title}: диагностика и лечение"));
        it.preview_text_type = Some("text".into());
        it.detail_page_url = Some(format!("/specializations/{}/", slug(name)));
        spec_of_department.insert(dep.mis_id, id);
        specializations.push(it);
    }

    // Doctors: nine in ten MIS doctors have a profile, plus three without an MIS match.
    let mut doctors = Vec::new();
    let mut cms_id = 500;
    let mut profiled: Vec<&Doctor> = world.doctors.iter().collect();
    profiled.shuffle(rng);
    let skip = world.doctors.len() / 10;
    let mut profiled: Vec<&Doctor> = profiled.into_iter().skip(skip).collect();
    profiled.sort_by_key(|d| d.mis_id);
    let unlinked: Vec<(i64, String)> = (0..3)
        .map(|n| (19_999_901 + n, person_name(rng, n % 2 == 1)))
        .collect();
    let mut entries: Vec<(i64, String, i64)> = profiled
        .iter()
        .map(|d| {
            (
                d.mis_id,
                d.full_name.clone(),
                d.placements[0].department_mis_id,
            )
        })
        .collect();
    for (mis_id, name) in &unlinked {
        let dep = world.departments[rng.random_range(0..CLINIC.departments.len())].mis_id;
        entries.push((*mis_id, name.clone(), dep));
    }
    for (index, (mis_id, name, dep)) in entries.iter().enumerate() {
        cms_id += rng.random_range(1..4);
        let code = slug(name);
        let dep_index = world
            .departments
            .iter()
            .position(|d| d.mis_id == *dep)
            .unwrap_or(0)
            .min(CLINIC.departments.len().saturating_sub(1));
        let title = CLINIC
            .departments
            .get(dep_index)
            .map_or("Врач", |d| d.title.as_str());
        let career_start = rng.random_range(1988..2019);
        let mut it = item(ContentKind::Doctors, cms_id, name);
        it.xml_id = Some(format!("mis-{mis_id}"));
        it.code = Some(code.clone());
        it.sort = 100;
        it.active = index % 17 != 4;
        it.preview_text = Some(format!("{title}, стаж {} лет", 2025 - career_start));
        it.preview_text_type = Some("text".into());
        let mut bio: String = BIO_PARAGRAPHS
            .iter()
            .filter(|_| rng.random_bool(0.6))
            .copied()
            .collect();
        if bio.is_empty() {
            bio.push_str(BIO_PARAGRAPHS.first().copied().unwrap_or_default());
        }
        if index % 7 == 3 {
            let hostile = HOSTILE_HTML.get((index / 7) % HOSTILE_HTML.len().max(1));
            bio.push_str(hostile.copied().unwrap_or_default());
        }
        it.detail_text = Some(bio);
        it.detail_text_type = Some("html".into());
        it.detail_page_url = Some(format!("/doctors/{code}/"));
        if index % 8 != 6 {
            it.preview_picture = Some(picture(rng, &code));
        }
        it.properties
            .insert("MIS_ID".into(), prop("S", &[&mis_id.to_string()]));
        it.properties.insert(
            "CAREER_START".into(),
            prop("N", &[&career_start.to_string()]),
        );
        let mut specs = vec![spec_of_department.get(dep).copied().unwrap_or(55)];
        if rng.random_bool(0.25) {
            let other = specializations
                .choose(rng)
                .map_or(55, |s: &ContentItem| s.id);
            if !specs.contains(&other) {
                specs.push(other);
            }
        }
        let specs: Vec<String> = specs.iter().map(ToString::to_string).collect();
        let spec_refs: Vec<&str> = specs.iter().map(String::as_str).collect();
        let mut specialization = prop("E", &spec_refs);
        specialization.multiple = true;
        it.properties
            .insert("SPECIALIZATION".into(), specialization);
        let categories = &CLINIC.doctor_categories;
        if rng.random_bool(0.5) && !categories.is_empty() {
            let category = &categories[rng.random_range(0..categories.len())];
            it.properties.insert(
                "CATEGORY".into(),
                Property {
                    kind: "L".into(),
                    multiple: false,
                    values: vec![PropertyValue {
                        value: json!(category.value),
                        description: None,
                        enum_id: Some(category.enum_id),
                        enum_xml_id: Some(category.xml_id.clone()),
                    }],
                },
            );
        }
        doctors.push(it);
    }

    // Reviews: mostly about linked doctors, one in ten unpublished.
    let doctor_ids: Vec<i64> = doctors.iter().map(|d| d.id).collect();
    let mut reviews = Vec::new();
    for n in 0..300 * world.scale as i64 {
        let id = 2000 + n;
        let author = REVIEW_AUTHORS.choose(rng).copied().unwrap_or("Аноним");
        let mut it = item(ContentKind::Reviews, id, author);
        it.active = rng.random_range(0..10) != 0;
        let rating: u32 = match rng.random_range(0..20) {
            0 => 1,
            1 => 2,
            2..=3 => 3,
            4..=8 => 4,
            _ => 5,
        };
        it.preview_text = Some(format!(
            "{} {}",
            REVIEW_OPENINGS.choose(rng).copied().unwrap_or(""),
            REVIEW_BODIES.choose(rng).copied().unwrap_or("")
        ));
        it.preview_text_type = Some("text".into());
        it.active_from = site_offset()
            .with_ymd_and_hms(2024, 1, 1, 12, 0, 0)
            .single()
            .map(|d| d + Duration::hours(rng.random_range(0..10_000)));
        let doctor = doctor_ids.choose(rng).copied().unwrap_or(500);
        it.properties
            .insert("DOCTOR".into(), prop("E", &[&doctor.to_string()]));
        it.properties
            .insert("RATING".into(), prop("N", &[&rating.to_string()]));
        reviews.push(it);
    }

    // Services: the first services of each department, with price and MIS code.
    let mut services = Vec::new();
    let mut service_id = 800;
    for (dep_index, seed) in CLINIC.departments.iter().enumerate() {
        let offered = if dep_index < 6 { 3 } else { 2 };
        for service in CLINIC.services.iter().take(offered) {
            service_id += 1;
            let name = service.template.replace("{}", &seed.genitive);
            let code = format!("{}{}", seed.visit_code, service.code_suffix);
            let mut it = item(ContentKind::Services, service_id, &name);
            it.code = Some(slug(&name));
            it.sort = 100 + service_id;
            it.xml_id = Some(code.clone());
            it.section_ids = vec![
                spec_of_department
                    .get(&world.departments[dep_index].mis_id)
                    .copied()
                    .unwrap_or(55),
            ];
            it.properties.insert(
                "PRICE".into(),
                prop("N", &[&service.price_roubles.to_string()]),
            );
            it.properties.insert("MIS_CODE".into(), prop("S", &[&code]));
            services.push(it);
        }
    }

    // Content pages.
    let mut pages = Vec::new();
    for (n, page) in CLINIC.pages.iter().enumerate() {
        let mut it = item(ContentKind::Pages, 900 + n as i64, &page.name);
        it.code = Some(page.code.clone());
        it.sort = 100 * (n as i64 + 1);
        it.detail_text = Some(page.html.clone());
        it.detail_text_type = Some("html".into());
        it.detail_page_url = Some(format!("/{}/", page.code));
        pages.push(it);
    }

    for (kind, mut items) in [
        (ContentKind::Doctors, doctors),
        (ContentKind::Reviews, reviews),
        (ContentKind::Specializations, specializations),
        (ContentKind::Services, services),
        (ContentKind::Pages, pages),
    ] {
        stamp(rng, &mut items);
        world.cms.insert(kind, items);
    }
    world.pictures = pictures;
}

/// The stored portrait nearest to a colour: the high bit of each channel picks one of the
/// eight, so the index reads as the file name (`101.png`: high red, low green, high blue).
fn portrait([red, green, blue]: [u8; 3]) -> &'static [u8] {
    PORTRAITS[usize::from(red >> 7) << 2 | usize::from(green >> 7) << 1 | usize::from(blue >> 7)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_world() {
        let a = World::generate(42, 1);
        let b = World::generate(42, 1);
        assert_eq!(a.doctors, b.doctors);
        assert_eq!(a.prices, b.prices);
        assert_eq!(a.cms, b.cms);
        assert_ne!(World::generate(43, 1).doctors, a.doctors);
    }

    #[test]
    fn scale_one_has_the_documented_shape() {
        let w = World::generate(42, 1);
        assert_eq!(w.branches.len(), 3);
        assert_eq!(w.branches.iter().filter(|b| b.timezone == 5).count(), 1);
        assert!(w.departments.len() >= 10);
        assert_eq!(w.doctors.len(), 40);
        let doubled = w.doctors.iter().filter(|d| d.placements.len() == 2).count();
        assert_eq!(doubled, 8);
        assert!(w.doctors.iter().any(|d| !d.visible));
        assert!(
            w.doctors
                .iter()
                .all(|d| d.mis_id / 10_000_000 == d.placements[0].branch_mis_id)
        );
        assert!(w.prices.len() >= 200);
        assert!(w.prices.iter().any(|p| p.code.starts_with(' ')));
        assert!(w.prices.iter().any(|p| !p.bookable));
        assert_eq!(w.linked_cms_doctors().len(), 36);
        assert_eq!(w.cms_items(ContentKind::Doctors).len(), 39);
        assert_eq!(w.cms_items(ContentKind::Reviews).len(), 300);
        assert!(w.cms_items(ContentKind::Pages).len() >= 5);
        let bios: String = w
            .cms_items(ContentKind::Doctors)
            .iter()
            .filter_map(|d| d.detail_text.clone())
            .collect();
        for hostile in HOSTILE_HTML.iter() {
            assert!(bios.contains(hostile), "{hostile}");
        }
        for d in &w.doctors {
            let parts: Vec<&str> = d.full_name.split(' ').collect();
            assert_eq!(parts.len(), 3);
            assert_eq!(parts[2].ends_with("на"), d.female, "{}", d.full_name);
        }
        // The examples the search is shown with: a Семёнова and cardiologists.
        assert!(
            w.doctors
                .iter()
                .any(|d| d.visible && d.full_name.starts_with("Семёнова "))
        );
        let cardiology = w
            .departments
            .iter()
            .find(|d| d.name == "Кардиология")
            .expect("cardiology")
            .mis_id;
        assert!(w.doctors.iter().any(|d| {
            d.visible
                && d.placements
                    .iter()
                    .any(|p| p.department_mis_id == cardiology)
        }));
    }

    #[test]
    fn pictures_are_the_stored_pngs() {
        for png in PORTRAITS {
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
            // IHDR first: width, height, 8-bit RGB.
            assert_eq!(&png[12..16], b"IHDR");
            assert_eq!(&png[16..20], &PORTRAIT_SIDE.to_be_bytes());
            assert_eq!(&png[20..24], &PORTRAIT_SIDE.to_be_bytes());
            assert_eq!(&png[24..26], &[8, 2]);
            assert!(png.ends_with(b"\0\0\0\0IEND\xAE\x42\x60\x82"));
        }
        let w = World::generate(42, 1);
        let pictures: Vec<&Picture> = w
            .cms_items(ContentKind::Doctors)
            .iter()
            .filter_map(|d| d.preview_picture.as_ref())
            .collect();
        assert!(pictures.len() >= 30);
        for picture in pictures {
            let png = w.pictures.get(&picture.src).expect("stored");
            assert_eq!(picture.size, Some(png.len() as u64));
        }
        assert_eq!(portrait([0xFF, 0x00, 0x80]), PORTRAITS[0b101]);
    }
}
