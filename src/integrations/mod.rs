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

/// The booking side of the MIS and the SMS gateway, from the configuration. A missing
/// configuration gives a client whose every call fails naming the variable.
pub fn booking_clients(
    config: &Config,
) -> (Arc<dyn infoclinica::MisBooking>, Arc<dyn sms::SmsGateway>) {
    let reason = config.infoclinica_url.as_ref().map_or_else(
        || "INFOCLINICA_URL is not set".to_owned(),
        |_| "MIS booking client pending".to_owned(),
    );
    let mis: Arc<dyn infoclinica::MisBooking> = Arc::new(unconfigured::Unconfigured(reason));
    let sms: Arc<dyn sms::SmsGateway> =
        Arc::new(unconfigured::Unconfigured("SMS gateway pending".into()));
    (mis, sms)
}
