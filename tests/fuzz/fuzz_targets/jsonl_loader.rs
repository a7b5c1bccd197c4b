//! Raw bytes as a JSON Lines export: never a panic, and every row is either a record or a reject.
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
format = "jsonl"
path = "-"
key = { column = "k" }
amount = { column = "p.a" }
currency = { column = "p.c" }
time = { column = "t" }
extra = { x = "p.x.y" }
"#,
        )
        .expect("valid source")
    })
}

fuzz_target!(|data: &[u8]| {
    // A path that no line has is a config error for the whole source, which is fine here.
    if let Ok(loaded) = load_bytes(source(), data) {
        assert_eq!(loaded.rows(), loaded.records.len() as u64 + loaded.rejected());
        let lines = data.iter().filter(|b| **b == b'\n').count() as u64 + 1;
        for r in &loaded.rejects {
            assert!(r.origin.line >= 1 && r.origin.line <= lines, "line {} of {lines}", r.origin.line);
        }
    }
});
