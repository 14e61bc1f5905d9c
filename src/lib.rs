//! sovamed: the patient cabinet, staff desk and JSON API of a clinic network, in one process.
//!
//! The binary in `main.rs` only parses the command line; everything lives here so the
//! integration tests can start the real server in-process.

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod client_ip;
pub mod config;
pub mod db;
pub mod demo;
pub mod domain;
pub mod emulator;
pub mod error;
pub mod extract;
pub mod integrations;
pub mod ops;
pub mod params;
pub mod redis;
pub mod router;
pub mod server;
pub mod static_files;
pub mod sync;
pub mod telemetry;
pub mod web;
