//! Raw bytes as a CSV export: never a panic, and every row is either a record or a reject.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use recon::config::{SourcePlan, source_without_files};
use recon::load::load_bytes;

fn source() -> &'static SourcePlan {
    static SOURCE: OnceLock<SourcePlan> = OnceLock::new();
    SOURCE.get_or_init(|| {
        source_without_files(
            r#"
[[source]]
name = "s"
format = "csv"
path = "-"
delimiter = ";"
decimal = ","
thousands = "."
key = { column = "k", trim = true }
amount = { debit = "d", credit = "c" }
currency = { column = "cur" }
time = { column = "t", format = "%d.%m.%Y %H:%M", timezone = "Europe/Berlin" }
status = { column = "s" }
"#,
        )
        .expect("valid source")
    })
}

fuzz_target!(|data: &[u8]| {
    // Start from a valid header so that the fuzzer spends its time on rows.
    let mut input = b"k;d;c;cur;t;s\n".to_vec();
    input.extend_from_slice(data);
    if let Ok(loaded) = load_bytes(source(), &input) {
        assert_eq!(loaded.rows(), loaded.records.len() as u64 + loaded.rejected());
        let lines = input.iter().filter(|b| **b == b'\n' || **b == b'\r').count() as u64 + 1;
        for r in &loaded.rejects {
            assert!(r.origin.line >= 2 && r.origin.line <= lines, "line {} of {lines}", r.origin.line);
        }
    }
});
