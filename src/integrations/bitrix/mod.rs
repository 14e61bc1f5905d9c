//! The CMS 1C-Bitrix content endpoint (contract A9 of `docs/bitrix-content.md`): the
//! [`Cms`] trait, the item types as the endpoint sends them, and the error type.

pub mod client;

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

/// The content kinds this server syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContentKind {
    Doctors,
    Reviews,
    Specializations,
    Services,
    Pages,
}

impl ContentKind {
    pub const ALL: [ContentKind; 5] = [
        ContentKind::Doctors,
        ContentKind::Reviews,
        ContentKind::Specializations,
        ContentKind::Services,
        ContentKind::Pages,
    ];

    /// The `{kind}` path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentKind::Doctors => "doctors",
            ContentKind::Reviews => "reviews",
            ContentKind::Specializations => "specializations",
            ContentKind::Services => "services",
            ContentKind::Pages => "pages",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A picture object (`preview_picture`, `detail_picture`, `F` property values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Picture {
    pub file_id: i64,
    /// Path from the site root, e.g. `/upload/iblock/5c2/petrova.jpg`.
    pub src: String,
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
}

/// One value of a property: a string for most types, a picture object for `F`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyValue {
    pub value: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enum_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enum_xml_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Property {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub multiple: bool,
    #[serde(default)]
    pub values: Vec<PropertyValue>,
}

impl Property {
    /// The first value as text (`N`, `S`, `E`, `L` values are strings).
    pub fn first_str(&self) -> Option<&str> {
        self.values.first().and_then(|v| v.value.as_str())
    }
}

/// One element of a content kind, as the endpoint sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentItem {
    pub id: i64,
    #[serde(default)]
    pub iblock_code: Option<String>,
    #[serde(default)]
    pub xml_id: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    pub active: bool,
    #[serde(default)]
    pub sort: i64,
    pub name: String,
    #[serde(default)]
    pub active_from: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    pub active_to: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    pub created_at: Option<DateTime<FixedOffset>>,
    pub modified_at: DateTime<FixedOffset>,
    #[serde(default)]
    pub section_ids: Vec<i64>,
    #[serde(default)]
    pub preview_text: Option<String>,
    #[serde(default)]
    pub preview_text_type: Option<String>,
    #[serde(default)]
    pub detail_text: Option<String>,
    #[serde(default)]
    pub detail_text_type: Option<String>,
    #[serde(default)]
    pub detail_page_url: Option<String>,
    #[serde(default)]
    pub preview_picture: Option<Picture>,
    #[serde(default)]
    pub detail_picture: Option<Picture>,
    #[serde(default)]
    pub properties: BTreeMap<String, Property>,
}

/// One page of a kind.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentPage {
    pub items: Vec<ContentItem>,
    pub total: Option<u64>,
    /// The opaque cursor for the next page; `None` on the last page.
    pub next: Option<String>,
    /// `time.server_now`: the watermark base for the next incremental run.
    pub server_now: Option<DateTime<FixedOffset>>,
}

/// Why a CMS call failed.
#[derive(Debug, thiserror::Error)]
pub enum CmsError {
    #[error("CMS client is not configured: {0}")]
    NotConfigured(String),
    #[error("CMS is unreachable: {0}")]
    Unreachable(String),
    #[error("CMS did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// A Bitrix-style error envelope `{"error","error_description"}`, or a non-JSON error page.
    #[error("CMS answered HTTP {status} {code}: {description}")]
    Api {
        status: u16,
        code: String,
        description: String,
    },
    #[error("CMS answered with a redirect to {location:?}; redirects are not followed")]
    Redirect { location: String },
    #[error("CMS answer is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("CMS answer is malformed: {0}")]
    Malformed(String),
}

/// The content endpoint.
#[async_trait]
pub trait Cms: Send + Sync {
    /// One page of `kind`, ordered by (`modified_at`, `id`); `start` is the previous
    /// page's `next`, verbatim.
    async fn page(
        &self,
        kind: ContentKind,
        modified_since: Option<DateTime<FixedOffset>>,
        start: Option<&str>,
        limit: u32,
    ) -> Result<ContentPage, CmsError>;

    /// Every existing element id of `kind`, active or not (delete reconciliation).
    async fn ids(&self, kind: ContentKind) -> Result<Vec<i64>, CmsError>;

    /// The absolute URL of a path from the site root (pictures).
    fn absolute_url(&self, src: &str) -> String;
}
