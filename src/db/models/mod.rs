//! One module per table: the row types and the query functions, each taking a connection.

pub mod audit_event;
pub mod booked;
pub mod calendar_feed;
pub mod caller;
pub mod consent;
pub mod directory;
pub mod doctor_search;
pub mod idempotency;
pub mod intent;
pub mod invitation;
pub mod login_session;
pub mod mfa;
pub mod outbox;
pub mod record;
pub mod refresh_token;
pub mod reminder;
pub mod retention;
pub mod schedule_snapshot;
pub mod sync_run;
pub mod user;
pub mod verification;
