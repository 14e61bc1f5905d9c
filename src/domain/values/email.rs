//! `Email`: an e-mail address, trimmed and lower-cased (accounts compare it that way).

use super::Invalid;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// The longest address SMTP allows.
const MAX_BYTES: usize = 254;

impl Email {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(Invalid("Укажите электронную почту"));
        }
        if email.len() > MAX_BYTES
            || email.chars().any(char::is_control)
            || !email_address::EmailAddress::is_valid(&email)
        {
            return Err(Invalid("Некорректный адрес электронной почты"));
        }
        Ok(Self(email))
    }

    /// An address read back from the database, where only parsed addresses are written.
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Anna@Example.RU ").map(|e| e.to_string()),
            Ok("anna@example.ru".to_owned())
        );
    }

    #[test]
    fn bad_addresses_are_refused() {
        for bad in ["", " ", "not-an-email", "a@", "a\0b@example.ru"] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.ru", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
        assert_eq!(Email::parse(""), Err(Invalid("Укажите электронную почту")));
    }
}
