//! `CallerQuery`: what a front-desk operator types to find a patient. A phone in any common
//! form (`8 903 555-12-34`, `+7 (903) 555-12-34`, `9035551234`) is the whole number; a few
//! digits (`903`, `1234`) are a fragment of one; anything else is a name, surname first,
//! compared case- and ё/е-insensitively from the start of each part.

use super::{Invalid, Phone};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerQuery {
    /// A whole number, E.164.
    Phone(Phone),
    /// At least three digits of a number, in order.
    PhoneDigits(String),
    /// Name parts, lower case with ё folded into е: surname, then first name, patronymic.
    Name(Vec<String>),
}

/// Characters a phone is written with besides digits.
fn is_phone_punctuation(c: char) -> bool {
    matches!(c, '+' | '(' | ')' | '-' | ' ' | '.')
}

/// Lower case with ё folded into е: how names are compared.
pub fn fold_name(text: &str) -> String {
    text.to_lowercase().replace('ё', "е")
}

impl CallerQuery {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(Invalid("Введите телефон или фамилию пациента"));
        }
        if raw.chars().count() > 100 {
            return Err(Invalid("Слишком длинный запрос"));
        }
        if raw
            .chars()
            .all(|c| c.is_ascii_digit() || is_phone_punctuation(c))
        {
            let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
            if let Ok(phone) = Phone::parse(raw) {
                return Ok(CallerQuery::Phone(phone));
            }
            if digits.len() < 3 {
                return Err(Invalid("Введите хотя бы три цифры телефона"));
            }
            return Ok(CallerQuery::PhoneDigits(digits));
        }
        let parts: Vec<String> = raw
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|p| !p.is_empty())
            .map(fold_name)
            .collect();
        let letters_only = parts.iter().all(|p| {
            p.chars()
                .all(|c| c.is_alphabetic() || c == '-' || c == '\'')
        });
        if !letters_only {
            return Err(Invalid("Введите телефон цифрами или фамилию буквами"));
        }
        if parts.len() > 3 {
            return Err(Invalid(
                "Введите фамилию, имя и отчество — не больше трёх слов",
            ));
        }
        Ok(CallerQuery::Name(parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_in_every_common_form_is_the_same_phone() {
        for raw in [
            "8 903 555 12 34",
            "8 903 555-12-34",
            "+7 (903) 555-12-34",
            "+79035551234",
            "9035551234",
        ] {
            match CallerQuery::parse(raw) {
                Ok(CallerQuery::Phone(p)) => assert_eq!(p.as_str(), "+79035551234", "{raw}"),
                other => panic!("{raw}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_few_digits_are_a_fragment() {
        assert_eq!(
            CallerQuery::parse("903"),
            Ok(CallerQuery::PhoneDigits("903".into()))
        );
        assert_eq!(
            CallerQuery::parse("555-12"),
            Ok(CallerQuery::PhoneDigits("55512".into()))
        );
        assert!(CallerQuery::parse("90").is_err());
    }

    #[test]
    fn names_fold_case_and_yo() {
        assert_eq!(
            CallerQuery::parse("  Семёнова  Ольга "),
            Ok(CallerQuery::Name(vec!["семенова".into(), "ольга".into()]))
        );
        assert_eq!(
            CallerQuery::parse("смирнова"),
            Ok(CallerQuery::Name(vec!["смирнова".into()]))
        );
    }

    #[test]
    fn nonsense_is_refused_in_words() {
        for raw in ["", "   ", "Смирнова 903", "a%b", "один два три четыре"]
        {
            assert!(CallerQuery::parse(raw).is_err(), "{raw}");
        }
        assert!(CallerQuery::parse(&"я".repeat(101)).is_err());
    }
}
