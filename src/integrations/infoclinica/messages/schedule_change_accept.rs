//! `SCHEDULE_CHANGE_ACCEPT` (§2.13): confirms processed changes, one `CHANGE_INFO/CHANGEID`
//! each (an empty block is refused by the MIS with `SPRESULT -99`). Confirming twice is
//! harmless, but it is still a write: never retried.

use super::Idempotency;
use crate::integrations::infoclinica::xml::XmlWriter;

pub const OP: &str = "SCHEDULE_CHANGE_ACCEPT";
pub const IDEMPOTENCY: Idempotency = Idempotency::Mutating;

pub fn write_in(w: &mut XmlWriter, change_ids: &[i64]) {
    for id in change_ids {
        w.open("CHANGE_INFO")
            .leaf("CHANGEID", id)
            .close("CHANGE_INFO");
    }
}
