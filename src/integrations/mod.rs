//! Clients of the external systems: the MIS Infoclinica (XML) and the CMS 1C-Bitrix (JSON).
//! Each has a trait (what the rest of the code uses), a reqwest implementation, and an
//! emulator in `crate::emulator` speaking the same wire protocol.

pub mod bitrix;
pub mod http;
pub mod infoclinica;
pub mod sms;
pub mod unconfigured;

use std::sync::Arc;

use crate::config::Config;

/// The booking side of the MIS and the SMS gateway, from the configuration. A missing or
/// invalid configuration gives a client whose every call fails naming the variable.
pub fn booking_clients(
    config: &Config,
) -> (Arc<dyn infoclinica::MisBooking>, Arc<dyn sms::SmsGateway>) {
    let mis: Arc<dyn infoclinica::MisBooking> =
        match infoclinica::client::InfoclinicaClient::from_config(config) {
            Ok(client) => Arc::new(client),
            Err(e) => Arc::new(unconfigured::Unconfigured(e.to_string())),
        };
    let sms = sms::gateway_from_config(config).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "SMS gateway not configured; messages wait in the outbox");
        Arc::new(unconfigured::Unconfigured(e.to_string()))
    });
    (mis, sms)
}
