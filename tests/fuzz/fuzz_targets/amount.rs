//! Any text through the amount parser, in every number format: never a panic, and an accepted
//! amount reads back exactly from its canonical decimal form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recon::normalize::currency::format_scaled;
use recon::normalize::money::{NumberFormat, Unit, parse_amount};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let separators = [('.', None), ('.', Some(',')), (',', Some('.')), (',', Some(' ')), ('.', Some('\''))];
    for (decimal, thousands) in separators {
        for unit in [Unit::Major, Unit::Minor] {
            for exponent in [0u8, 2, 3, 4] {
                let format = NumberFormat { decimal, thousands, unit };
                if let Ok(minor) = parse_amount(text, &format, exponent) {
                    let scale = if unit == Unit::Major { exponent } else { 0 };
                    let canonical = format_scaled(minor as i128, scale);
                    let plain = NumberFormat { decimal: '.', thousands: None, unit };
                    assert_eq!(parse_amount(&canonical, &plain, exponent), Ok(minor), "{text:?} via {canonical:?}");
                }
            }
        }
    }
});
