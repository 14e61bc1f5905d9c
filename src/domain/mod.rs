//! The domain core: what a valid account, booking and record is, and the operations on
//! them. It knows nothing of HTTP: operations take narrow values (a pool, the MIS client,
//! the schedule cache, a clock), return their own `thiserror` errors, and leave wording and
//! status codes to the faces (`web`, `api`, `cli`), which map each core error in one `From`
//! impl (`crate::error`).
//!
//! May import: `db`, `integrations`, `redis`, `config` values. Must not import: `app`,
//! `router`, `web`, `api`, `cli`, `error`, axum.

pub mod accounts;
pub mod audit;
pub mod booking;
pub mod clock;
pub mod cluster;
pub mod consent;
pub mod data_rights;
pub mod directory_snapshot;
pub mod invitations;
pub mod mfa;
pub mod phones;
pub mod profile;
pub mod rate;
pub mod refresh;
pub mod retention;
pub mod sessions;
pub mod values;
