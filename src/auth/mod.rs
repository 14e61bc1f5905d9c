//! Authentication and authorisation: passwords, cabinet sessions, CSRF, JWT, login
//! throttling and the role extractors.

pub mod csrf;
pub mod device;
pub mod jwt;
pub mod login;
pub mod password;
pub mod roles;
pub mod session;
pub mod throttle;
