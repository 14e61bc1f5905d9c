//! Clients of the external systems: the MIS Infoclinica (XML) and the CMS 1C-Bitrix (JSON).
//! Each has a trait (what the rest of the code uses), a reqwest implementation, and an
//! emulator in `crate::emulator` speaking the same wire protocol.

pub mod bitrix;
pub mod http;
pub mod infoclinica;
pub mod sms;
