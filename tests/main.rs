//! The one integration-test binary: the real server against real PostgreSQL and Redis.

// Test code may stop at the first surprise; the crate denies these for application code.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod admin;
mod admin_screens;
mod api_auth;
mod api_cors;
mod api_tokens;
mod api_types;
mod booking;
mod booking_integrations;
mod browser;
mod calendar;
mod cli;
mod core_booking;
mod crash;
mod data_rights;
mod desk;
mod doctor_search;
mod holes;
mod integrations;
mod intents;
mod invitations;
mod mfa;
mod ops;
mod pages_auth;
mod patient_booking;
mod registration;
mod reminders;
mod replicas;
mod retention;
mod roles;
mod schedule_cache;
mod sms_outbox;
mod support;
mod sync;
mod throttling;
mod verdicts;
mod verified_phones;
