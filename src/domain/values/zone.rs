//! `BranchZone`: a branch's IANA time zone. The MIS speaks branch-local wall time, so every
//! time shown or booked goes through it. Stored as the zone's name; a name chrono-tz does
//! not know is an error when read, never a silent Moscow.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use diesel::{
    deserialize::{self, FromSql},
    pg::{Pg, PgValue},
    serialize::{self, Output, ToSql},
    sql_types::Text,
};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    diesel::expression::AsExpression,
    diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = Text)]
pub struct BranchZone(pub Tz);

impl BranchZone {
    pub fn tz(self) -> Tz {
        self.0
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// An instant as the branch's clocks show it.
    pub fn local<Z: TimeZone>(self, instant: &DateTime<Z>) -> DateTime<Tz> {
        instant.with_timezone(&self.0)
    }

    /// The branch's calendar day at `instant`.
    pub fn today(self, now: DateTime<Utc>) -> chrono::NaiveDate {
        now.with_timezone(&self.0).date_naive()
    }
}

impl std::str::FromStr for BranchZone {
    type Err = chrono_tz::ParseError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        name.parse().map(BranchZone)
    }
}

impl std::fmt::Display for BranchZone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name())
    }
}

impl serde::Serialize for BranchZone {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.name())
    }
}

impl ToSql<Text, Pg> for BranchZone {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <str as ToSql<Text, Pg>>::to_sql(self.0.name(), out)
    }
}

impl FromSql<Text, Pg> for BranchZone {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        let name = <String as FromSql<Text, Pg>>::from_sql(bytes)?;
        name.parse()
            .map_err(|_| format!("unknown time zone {name:?}").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_parse_by_name_only() {
        let zone: BranchZone = "Asia/Yekaterinburg".parse().unwrap();
        assert_eq!(zone.name(), "Asia/Yekaterinburg");
        assert!("Mars/Olympus".parse::<BranchZone>().is_err());
        let noon = Utc.with_ymd_and_hms(2026, 11, 30, 20, 0, 0).unwrap();
        assert_eq!(
            zone.today(noon),
            chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap()
        );
    }
}
