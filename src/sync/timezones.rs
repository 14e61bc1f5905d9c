//! Each branch's IANA time zone: `BRANCH_TIMEZONES` if it names the branch, else the zone
//! for the MIS's UTC offset (Russian zones have no DST), else Moscow.

use std::collections::BTreeMap;

use chrono_tz::Tz;

/// The zone of the branch with `mis_id` that reports `utc_offset_hours`.
pub fn zone_for(mis_id: i64, utc_offset_hours: Option<i32>, overrides: &BTreeMap<i64, Tz>) -> Tz {
    if let Some(zone) = overrides.get(&mis_id) {
        return *zone;
    }
    match utc_offset_hours {
        Some(2) => Tz::Europe__Kaliningrad,
        Some(3) | None => Tz::Europe__Moscow,
        Some(4) => Tz::Europe__Samara,
        Some(5) => Tz::Asia__Yekaterinburg,
        Some(6) => Tz::Asia__Omsk,
        Some(7) => Tz::Asia__Novosibirsk,
        Some(8) => Tz::Asia__Irkutsk,
        Some(9) => Tz::Asia__Yakutsk,
        Some(10) => Tz::Asia__Vladivostok,
        Some(11) => Tz::Asia__Magadan,
        Some(12) => Tz::Asia__Kamchatka,
        // Etc/GMT zones have the sign inverted: UTC+13 is Etc/GMT-13.
        Some(offset) => format!("Etc/GMT{:+}", -offset).parse().unwrap_or(Tz::UTC),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_russian_zones_and_overrides_win() {
        assert_eq!(zone_for(1, Some(3), &BTreeMap::new()), Tz::Europe__Moscow);
        assert_eq!(
            zone_for(3, Some(5), &BTreeMap::new()),
            Tz::Asia__Yekaterinburg
        );
        assert_eq!(zone_for(3, None, &BTreeMap::new()), Tz::Europe__Moscow);
        assert_eq!(zone_for(9, Some(-5), &BTreeMap::new()).name(), "Etc/GMT+5");
        let overrides = BTreeMap::from([(3, Tz::Europe__Samara)]);
        assert_eq!(zone_for(3, Some(5), &overrides), Tz::Europe__Samara);
    }
}
