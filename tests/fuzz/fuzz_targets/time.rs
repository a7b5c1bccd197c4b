//! Any text through the time parser, in each kind of format and zone: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recon::normalize::time::{DstRule, TimeFormat, Zone, parse_time};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let berlin = Zone::parse("Europe/Berlin").expect("known zone");
    let fixed = Zone::parse("+14:00").expect("valid offset");
    for format in ["rfc3339", "epoch_s", "epoch_ms", "%d.%m.%Y %H:%M:%S", "%Y-%m-%d", "%y%m%d %H%M %z"] {
        let format = TimeFormat::parse(format).expect("valid format");
        for zone in [&berlin, &fixed] {
            for rule in [DstRule::Reject, DstRule::Earlier, DstRule::Later] {
                let _ = parse_time(text, &format, Some(zone), rule);
            }
        }
    }
});
