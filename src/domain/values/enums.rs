//! Closed sets of codes: an account's role, a record's status and where a booking came from.
//! Each is stored as its code in a `TEXT` column (a CHECK constraint holds the same set), so
//! the database never holds a value these types cannot read.

use diesel::{
    deserialize::{self, FromSql},
    pg::{Pg, PgValue},
    serialize::{self, Output, ToSql},
    sql_types::Text,
};

/// A code outside the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown code")]
pub struct UnknownCode;

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash,
            diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
            serde::Serialize, serde::Deserialize, utoipa::ToSchema,
        )]
        #[diesel(sql_type = Text)]
        // The codes are the variants in snake_case; serde and the OpenAPI schema both read
        // this, and a test holds `as_str` to it.
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and transmitted code.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $code),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownCode;

            fn from_str(code: &str) -> Result<Self, UnknownCode> {
                match code {
                    $($code => Ok($name::$variant),)+
                    _ => Err(UnknownCode),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ToSql<Text, Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                <str as ToSql<Text, Pg>>::to_sql(self.as_str(), out)
            }
        }

        impl FromSql<Text, Pg> for $name {
            fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
                let code = <String as FromSql<Text, Pg>>::from_sql(bytes)?;
                code.parse()
                    .map_err(|_| format!("{}: unknown code {code:?}", stringify!($name)).into())
            }
        }
    };
}

text_enum! {
    /// What an account may do.
    Role {
        Patient = "patient",
        Staff = "staff",
        Admin = "admin",
    }
}

text_enum! {
    /// Where a record stands. Only `booked` holds a slot.
    RecordStatus {
        Booked = "booked",
        Cancelled = "cancelled",
        Visited = "visited",
        NoShow = "no_show",
    }
}

text_enum! {
    /// Who made a booking, and through which face.
    RecordSource {
        /// The patient, on the cabinet pages.
        Cabinet = "cabinet",
        /// A visitor without an account, through the public API.
        Anonymous = "anonymous",
        /// A logged-in patient, through the API.
        Api = "api",
        /// The clinic's front desk, in the MIS; brought in by the change feed.
        Clinic = "clinic",
        /// A staff member, on this server's desk pages, for a caller.
        Desk = "desk",
    }
}

text_enum! {
    /// What a booking intent changes.
    IntentKind {
        Book = "book",
        Move = "move",
        Cancel = "cancel",
    }
}

text_enum! {
    /// Where a booking intent stands: `pending` until both sides changed (`done`) or neither
    /// did (`failed`).
    IntentState {
        Pending = "pending",
        Done = "done",
        Failed = "failed",
    }
}

text_enum! {
    /// What a phone is proven for; a proof serves only the purpose it was asked for.
    VerificationPurpose {
        /// A booking without an account.
        Booking = "booking",
        /// A new account.
        Registration = "registration",
        /// A new password for an account whose phone this is.
        PasswordReset = "password_reset",
        /// A new phone on an account.
        PhoneChange = "phone_change",
    }
}

text_enum! {
    /// What a consent covers (152-FZ: personal data, and health data as a special category).
    ConsentPurpose {
        PersonalData = "personal_data",
        HealthData = "health_data",
    }
}

impl Role {
    /// Staff and admins work the records of every patient.
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Staff | Role::Admin)
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;

    #[test]
    fn codes_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(*role));
        }
        for status in RecordStatus::ALL {
            assert_eq!(status.as_str().parse::<RecordStatus>(), Ok(*status));
        }
        for source in RecordSource::ALL {
            assert_eq!(source.as_str().parse::<RecordSource>(), Ok(*source));
        }
        assert_eq!("root".parse::<Role>(), Err(UnknownCode));
        assert_eq!("Booked".parse::<RecordStatus>(), Err(UnknownCode));
    }

    fn assert_one_code<T: Serialize + utoipa::PartialSchema>(value: T, code: &str) {
        assert_eq!(serde_json::to_value(&value).unwrap(), code, "serde");
        let schema = serde_json::to_value(T::schema()).unwrap();
        assert!(
            schema["enum"].as_array().unwrap().iter().any(|v| v == code),
            "OpenAPI schema {schema} lacks {code}"
        );
    }

    #[test]
    fn serde_openapi_and_the_database_use_one_code() {
        for role in Role::ALL {
            assert_one_code(*role, role.as_str());
        }
        for status in RecordStatus::ALL {
            assert_one_code(*status, status.as_str());
        }
        for source in RecordSource::ALL {
            assert_one_code(*source, source.as_str());
        }
        for purpose in VerificationPurpose::ALL {
            assert_one_code(*purpose, purpose.as_str());
        }
        for purpose in ConsentPurpose::ALL {
            assert_one_code(*purpose, purpose.as_str());
        }
    }

    #[test]
    fn serde_uses_the_codes() {
        assert_eq!(
            serde_json::to_string(&RecordStatus::NoShow).unwrap(),
            "\"no_show\""
        );
        assert_eq!(
            serde_json::from_str::<Role>("\"admin\"").unwrap(),
            Role::Admin
        );
    }
}
