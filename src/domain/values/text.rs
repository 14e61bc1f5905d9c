//! Free text and paging: a booking comment, a reason to cancel, a search box, a page number.

use super::{Invalid, collapse_spaces, has_control};

/// A patient's comment to a booking: at most 500 characters, line breaks allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment(String);

const MAX_COMMENT_CHARS: usize = 500;

impl Comment {
    /// Empty (or only spaces) is no comment.
    pub fn parse(raw: &str) -> Result<Option<Self>, Invalid> {
        let text = raw.trim();
        if text.is_empty() {
            return Ok(None);
        }
        if text.chars().count() > MAX_COMMENT_CHARS || has_control(text) {
            return Err(Invalid("Не длиннее 500 символов, без управляющих символов"));
        }
        Ok(Some(Self(text.to_owned())))
    }

    pub fn parse_optional(raw: Option<&str>) -> Result<Option<Self>, Invalid> {
        raw.map_or(Ok(None), Self::parse)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a patient cancels a visit: one short line, at most 200 characters (line breaks and
/// runs of spaces become one space).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelReason(String);

const MAX_CANCEL_REASON_CHARS: usize = 200;

impl CancelReason {
    /// Empty (or only spaces) is no reason.
    pub fn parse(raw: &str) -> Result<Option<Self>, Invalid> {
        if has_control(raw) {
            return Err(Invalid("Не длиннее 200 символов, без управляющих символов"));
        }
        let text = collapse_spaces(raw);
        if text.chars().count() > MAX_CANCEL_REASON_CHARS {
            return Err(Invalid("Не длиннее 200 символов, без управляющих символов"));
        }
        Ok((!text.is_empty()).then_some(Self(text)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a person typed into a search box: at most 100 characters on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText(String);

impl SearchText {
    /// Empty is no search.
    pub fn parse(raw: &str) -> Result<Option<Self>, Invalid> {
        if raw.chars().any(char::is_control) {
            return Err(Invalid("Не длиннее 100 символов, без управляющих символов"));
        }
        let text = collapse_spaces(raw);
        if text.chars().count() > 100 {
            return Err(Invalid("Не длиннее 100 символов, без управляющих символов"));
        }
        Ok((!text.is_empty()).then_some(Self(text)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A page of a list, from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PageNo(i64);

/// Beyond this the offset arithmetic of any list is meaningless.
const MAX_PAGE: i64 = 100_000;

impl Default for PageNo {
    fn default() -> Self {
        Self::FIRST
    }
}

impl PageNo {
    pub const FIRST: PageNo = PageNo(1);

    /// Empty is the first page.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(Self::FIRST);
        }
        raw.parse::<i64>()
            .ok()
            .and_then(|n| Self::new(n).ok())
            .ok_or(Invalid("Номер страницы: целое число от 1 до 100000"))
    }

    pub fn new(n: i64) -> Result<Self, Invalid> {
        if (1..=MAX_PAGE).contains(&n) {
            Ok(Self(n))
        } else {
            Err(Invalid("Номер страницы: целое число от 1 до 100000"))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }

    /// Rows to skip for pages of `per_page`.
    pub fn offset(self, per_page: i64) -> i64 {
        (self.0 - 1) * per_page
    }

    /// How many pages `total` rows fill (at least one, so an empty list has page 1 of 1).
    pub fn count(total: i64, per_page: i64) -> i64 {
        ((total + per_page - 1) / per_page.max(1)).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_trimmed_and_bounded() {
        assert_eq!(Comment::parse("   "), Ok(None));
        assert_eq!(
            Comment::parse(" боль в колене\nс утра ").map(|c| c.map(|c| c.0)),
            Ok(Some("боль в колене\nс утра".to_owned()))
        );
        assert!(Comment::parse(&"я".repeat(500)).is_ok());
        assert!(Comment::parse(&"я".repeat(501)).is_err());
        assert!(Comment::parse("a\u{0}b").is_err());
        assert!(Comment::parse("a\u{1b}[31m").is_err());
    }

    #[test]
    fn cancel_reasons_are_one_short_line() {
        assert_eq!(CancelReason::parse(" \n "), Ok(None));
        assert_eq!(
            CancelReason::parse(" Заболел,\nперенесу  позже ").map(|r| r.map(|r| r.0)),
            Ok(Some("Заболел, перенесу позже".to_owned()))
        );
        assert!(CancelReason::parse(&"я".repeat(200)).is_ok());
        assert!(CancelReason::parse(&"я".repeat(201)).is_err());
        assert!(CancelReason::parse("a\u{0}b").is_err());
    }

    #[test]
    fn searches_are_one_short_line() {
        assert_eq!(SearchText::parse("  "), Ok(None));
        assert_eq!(
            SearchText::parse(" Семёнова  Ольга ").map(|s| s.map(|s| s.0)),
            Ok(Some("Семёнова Ольга".to_owned()))
        );
        assert!(SearchText::parse(&"x".repeat(101)).is_err());
        assert!(SearchText::parse("a\nb").is_err());
    }

    #[test]
    fn pages_are_between_one_and_a_bound() {
        assert_eq!(PageNo::parse(""), Ok(PageNo::FIRST));
        assert_eq!(PageNo::parse(" 3 ").map(PageNo::get), Ok(3));
        for bad in ["0", "-1", "x", "100001", "99999999999999999999"] {
            assert!(PageNo::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(PageNo::parse("3").map(|p| p.offset(20)), Ok(40));
        assert_eq!(PageNo::count(0, 20), 1);
        assert_eq!(PageNo::count(41, 20), 3);
    }
}
