//! Validated values, parsed once at the edge. Every face (pages, API, CLI) turns raw input
//! into these types through one constructor each, so one input gets one verdict everywhere.
//!
//! A constructor refuses with [`Invalid`], a Russian message for the person who typed the
//! value; the face decides under which field name to show it ([`FieldErrors`]).

mod caller_query;
mod email;
mod enums;
mod person;
mod phone;
mod text;
mod zone;

use std::collections::BTreeMap;

pub use caller_query::{CallerQuery, fold_name};
pub use email::Email;
pub use enums::{
    ConsentPurpose, IntentKind, IntentState, RecordSource, RecordStatus, Role, UnknownCode,
    VerificationPurpose,
};
pub use person::{BirthDate, FullName, NamePart};
pub use phone::Phone;
pub use text::{CancelReason, Comment, PageNo, SearchText};
pub use zone::BranchZone;

/// Why a value was refused, in Russian, ready to show next to the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub &'static str);

/// Refusals by field name, for a form or a JSON body with several fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// One refusal.
    pub fn one(field: &str, invalid: Invalid) -> Self {
        let mut errors = Self::new();
        errors.add(field, invalid);
        errors
    }

    /// Keeps the value, or records the refusal under `field` (the first one per field wins).
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, Invalid>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(invalid) => {
                self.add(field, invalid);
                None
            }
        }
    }

    /// A refusal worded elsewhere (an error mapped back to its field).
    pub fn add_message(&mut self, field: &str, message: String) {
        self.0.entry(field.to_owned()).or_insert(message);
    }

    pub fn add(&mut self, field: &str, invalid: Invalid) {
        self.0
            .entry(field.to_owned())
            .or_insert_with(|| invalid.0.to_owned());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    /// `Ok(value)` when nothing was refused.
    pub fn or_value<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, FieldErrors> {
        if !self.is_empty() {
            return Err(self);
        }
        // Every `check` that returned `None` also recorded a refusal, so `value` is `Some`
        // here; the fallback keeps this total without a panic.
        value().ok_or_else(|| FieldErrors::one("body", Invalid("Проверьте данные")))
    }

    pub fn into_map(self) -> BTreeMap<String, String> {
        self.0
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl std::fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for (field, message) in &self.0 {
            if !first {
                f.write_str("; ")?;
            }
            write!(f, "{field}: {message}")?;
            first = false;
        }
        Ok(())
    }
}

impl std::error::Error for FieldErrors {}

/// Control characters other than line breaks and tabs.
fn has_control(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

/// Runs of whitespace become one space; the ends are trimmed.
fn collapse_spaces(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_keep_the_first_refusal_per_field() {
        let mut errors = FieldErrors::new();
        errors.add("phone", Invalid("первая"));
        errors.add("phone", Invalid("вторая"));
        assert_eq!(errors.get("phone"), Some("первая"));
        assert_eq!(errors.to_string(), "phone: первая");
    }

    #[test]
    fn or_value_gives_the_value_only_without_refusals() {
        let mut errors = FieldErrors::new();
        let phone = errors.check("phone", Phone::parse("8 912 345-67-89"));
        assert_eq!(
            errors.or_value(|| phone).map(|p| p.to_string()),
            Ok("+79123456789".to_owned())
        );
        let mut errors = FieldErrors::new();
        let phone = errors.check("phone", Phone::parse("abc"));
        assert!(errors.or_value(|| phone).is_err());
    }
}
