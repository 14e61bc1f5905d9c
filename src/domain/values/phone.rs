//! `Phone`: a phone number in E.164. Russian numbers may be written with `+7`, `8` or no
//! prefix, with any spaces, dashes and brackets.

use super::Invalid;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(Invalid("Укажите номер телефона"));
        }
        const BAD: Invalid = Invalid("Некорректный номер телефона");
        // Longer input is no phone number, and the parser need not see it.
        if raw.len() > 32 {
            return Err(BAD);
        }
        let number =
            phonenumber::parse(Some(phonenumber::country::Id::RU), raw).map_err(|_| BAD)?;
        if !phonenumber::is_valid(&number) {
            return Err(BAD);
        }
        Ok(Self(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    /// A number read back from the database, where only parsed numbers are written.
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `+7916***4567`: enough for the patient to recognise, not to reuse.
    pub fn masked(&self) -> String {
        crate::integrations::sms::mask_phone(&self.0)
    }
}

impl std::fmt::Display for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn russian_numbers_in_every_common_form() {
        for raw in [
            "+7 912 345-67-89",
            "8 (912) 345-67-89",
            "89123456789",
            "9123456789",
            "+79123456789",
            " 8-912-345-67-89 ",
        ] {
            assert_eq!(
                Phone::parse(raw).map(|p| p.to_string()),
                Ok("+79123456789".to_owned()),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn non_numbers_are_refused() {
        for bad in ["abc", "123", "٠١٢٣٤٥٦٧٨٩", &"9".repeat(1000)] {
            assert_eq!(
                Phone::parse(bad),
                Err(Invalid("Некорректный номер телефона")),
                "{bad:?}"
            );
        }
        assert_eq!(Phone::parse("  "), Err(Invalid("Укажите номер телефона")));
    }
}
