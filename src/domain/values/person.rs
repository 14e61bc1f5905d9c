//! A person's name and birth date.

use chrono::{Datelike, NaiveDate};

use super::{Invalid, collapse_spaces};

/// The longest surname, first name or patronymic.
const MAX_PART_CHARS: usize = 100;

/// One part of a name: a surname, a first name or a patronymic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePart(String);

impl NamePart {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let part = collapse_spaces(raw);
        if part.is_empty() {
            return Err(Invalid("Обязательное поле"));
        }
        check_part(&part)?;
        Ok(Self(part))
    }

    /// Like [`NamePart::parse`], but an empty input is no value (a patronymic is optional).
    pub fn parse_optional(raw: Option<&str>) -> Result<Option<Self>, Invalid> {
        match raw.map(str::trim).filter(|r| !r.is_empty()) {
            None => Ok(None),
            Some(raw) => Self::parse(raw).map(Some),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_part(part: &str) -> Result<(), Invalid> {
    if part.chars().count() > MAX_PART_CHARS {
        return Err(Invalid("Не длиннее 100 символов"));
    }
    if part.chars().any(char::is_control) || !part.chars().any(char::is_alphabetic) {
        return Err(Invalid("Имя пишется буквами, без управляющих символов"));
    }
    Ok(())
}

/// «Фамилия Имя \[Отчество\]»: a surname and a first name at least, each at most 100
/// characters; whatever follows the first name is the patronymic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullName {
    pub last: NamePart,
    pub first: NamePart,
    pub middle: Option<NamePart>,
}

impl FullName {
    /// One line as a person types it.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let collapsed = collapse_spaces(raw);
        let mut words = collapsed.split(' ').filter(|w| !w.is_empty());
        let (Some(last), Some(first)) = (words.next(), words.next()) else {
            return Err(Invalid("Укажите фамилию и имя"));
        };
        let middle = words.collect::<Vec<_>>().join(" ");
        for part in [last, first, middle.as_str()] {
            if !part.is_empty() {
                check_part(part)?;
            }
        }
        Ok(Self {
            last: NamePart(last.to_owned()),
            first: NamePart(first.to_owned()),
            middle: (!middle.is_empty()).then_some(NamePart(middle)),
        })
    }

    /// A name stored as one line by an earlier version, read back leniently: a missing
    /// first name becomes «-», which the MIS accepts.
    pub fn from_stored(stored: &str) -> Self {
        Self::parse(stored).unwrap_or_else(|_| Self {
            last: NamePart(collapse_spaces(stored)),
            first: NamePart("-".to_owned()),
            middle: None,
        })
    }

    /// Parts read back from the database, where only parsed parts are written.
    pub fn from_stored_parts(last: &str, first: &str, middle: Option<&str>) -> Self {
        Self {
            last: NamePart(last.to_owned()),
            first: NamePart(first.to_owned()),
            middle: middle
                .filter(|m| !m.is_empty())
                .map(|m| NamePart(m.to_owned())),
        }
    }

    pub fn from_parts(last: NamePart, first: NamePart, middle: Option<NamePart>) -> Self {
        Self {
            last,
            first,
            middle,
        }
    }
}

impl std::fmt::Display for FullName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.last.0, self.first.0)?;
        if let Some(middle) = &self.middle {
            write!(f, " {}", middle.0)?;
        }
        Ok(())
    }
}

/// A birth date: not before 1900 and not in the future.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BirthDate(NaiveDate);

impl BirthDate {
    /// `ГГГГ-ММ-ДД` (what a date input and the API send) or `ДД.ММ.ГГГГ` (what people type).
    pub fn parse(raw: &str, today: NaiveDate) -> Result<Self, Invalid> {
        const BAD: Invalid = Invalid(
            "Укажите дату рождения: ДД.ММ.ГГГГ или ГГГГ-ММ-ДД, не раньше 1900 года и не в будущем",
        );
        let raw = raw.trim();
        let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .or_else(|_| NaiveDate::parse_from_str(raw, "%d.%m.%Y"))
            .map_err(|_| BAD)?;
        if date > today || date.year() < 1900 {
            return Err(BAD);
        }
        Ok(Self(date))
    }

    /// Like [`BirthDate::parse`], but an empty input is no value.
    pub fn parse_optional(raw: Option<&str>, today: NaiveDate) -> Result<Option<Self>, Invalid> {
        match raw.map(str::trim).filter(|r| !r.is_empty()) {
            None => Ok(None),
            Some(raw) => Self::parse(raw, today).map(Some),
        }
    }

    /// A date read back from the database, where only parsed dates are written.
    pub fn from_stored(date: NaiveDate) -> Self {
        Self(date)
    }

    pub fn date(self) -> NaiveDate {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()
    }

    #[test]
    fn full_names_split_into_parts() {
        let name = FullName::parse("  Иванова   Анна Сергеевна ").unwrap();
        assert_eq!(name.last.as_str(), "Иванова");
        assert_eq!(name.first.as_str(), "Анна");
        assert_eq!(
            name.middle.as_ref().map(NamePart::as_str),
            Some("Сергеевна")
        );
        assert_eq!(name.to_string(), "Иванова Анна Сергеевна");
        let two = FullName::parse("Ли Мин").unwrap();
        assert_eq!(two.middle, None);
    }

    #[test]
    fn full_names_need_two_words_of_letters() {
        assert_eq!(FullName::parse(" "), Err(Invalid("Укажите фамилию и имя")));
        assert_eq!(
            FullName::parse("Кто-то"),
            Err(Invalid("Укажите фамилию и имя"))
        );
        assert!(FullName::parse("12 34").is_err());
        assert!(FullName::parse(&format!("{} Иван", "Я".repeat(101))).is_err());
        assert!(FullName::parse(&format!("{} Иван", "Я".repeat(100))).is_ok());
        assert!(FullName::parse("Иванов\u{7} Иван").is_err());
    }

    #[test]
    fn name_parts_are_bounded() {
        assert_eq!(NamePart::parse(""), Err(Invalid("Обязательное поле")));
        assert_eq!(
            NamePart::parse(&"Я".repeat(101)),
            Err(Invalid("Не длиннее 100 символов"))
        );
        assert_eq!(NamePart::parse_optional(Some("  ")), Ok(None));
        assert!(NamePart::parse("О'Нил-Петров").is_ok());
    }

    #[test]
    fn birth_dates_in_both_formats_within_bounds() {
        let d = NaiveDate::from_ymd_opt(1990, 5, 17).unwrap();
        assert_eq!(
            BirthDate::parse("1990-05-17", today()).map(BirthDate::date),
            Ok(d)
        );
        assert_eq!(
            BirthDate::parse("17.05.1990", today()).map(BirthDate::date),
            Ok(d)
        );
        for bad in ["2999-01-01", "1899-12-31", "вчера", "", "1990-02-30"] {
            assert!(BirthDate::parse(bad, today()).is_err(), "{bad:?}");
        }
        assert!(BirthDate::parse("2026-11-30", today()).is_ok());
        assert!(BirthDate::parse("1900-01-01", today()).is_ok());
        assert_eq!(BirthDate::parse_optional(Some(" "), today()), Ok(None));
    }
}
