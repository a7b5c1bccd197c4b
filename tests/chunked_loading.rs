//! Large files are read in chunks of whole lines by several threads. Whatever the split, the
//! records, their line numbers, the rejects and the counts must be those of one reader reading the
//! file from start to end.

use std::fmt::Write as _;
use std::fs;

use recon::config::load_plan;
use recon::load::{Loaded, chunk_count, load_all, load_all_in, load_all_partitioned_in};
use recon::model::Record;
use recon::partition::{Store, spill::SpillSpec};

const CONFIG: &str = r#"
[run]
timezone = "UTC"

[[source]]
name = "events"
format = "jsonl"
path = "events.jsonl"
key = { column = "id" }
amount = { column = "amount", unit = "major" }
currency = { column = "currency" }
time = { column = "at", format = "rfc3339" }

[[source]]
name = "ledger"
format = "csv"
path = "ledger.csv"
key = { column = "id" }
amount = { column = "amount", unit = "major" }
currency = { column = "currency" }
time = { column = "at", format = "rfc3339" }
status = { column = "status" }

[[check]]
name = "events_ledger"
from = "events"
to = "ledger"
"#;

/// A small deterministic generator (no dependency on a random crate's stream staying the same).
fn next(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    *state >> 33
}

/// Event lines with blank lines, CRLF, a BOM mid-file, broken JSON, a bad amount, a duplicate
/// mapped key and no final newline: every kind of line a chunk boundary could fall next to.
fn events(n: usize) -> String {
    let mut s = String::new();
    let mut rng = 7;
    for i in 0..n {
        let amount = format!("{}.{:02}", next(&mut rng) % 500, next(&mut rng) % 100);
        let line = match next(&mut rng) % 20 {
            0 => String::new(),
            1 => "{not json".to_string(),
            2 => format!(
                r#"{{"id":"k{i}","amount":"12,5","currency":"EUR","at":"2026-12-02T10:00:00Z"}}"#
            ),
            3 => format!(
                r#"{{"id":"k{i}","id":"k{i}x","amount":"1.00","currency":"EUR","at":"2026-12-02T10:00:00Z"}}"#
            ),
            4 => format!(
                "\u{feff}{{\"id\":\"k{i}\",\"amount\":{amount},\"currency\":\"USD\",\"at\":\"2026-12-02T10:00:00Z\"}}"
            ),
            _ => format!(
                r#"{{"id":"k{}","amount":"{amount}","currency":"EUR","at":"2026-12-02T1{}:00:00+01:00"}}"#,
                i / 2,
                i % 10
            ),
        };
        let end = if i % 7 == 0 { "\r\n" } else { "\n" };
        write!(s, "{line}{end}").unwrap();
    }
    s.push_str(r#"{"id":"last","amount":"1.00","currency":"EUR","at":"2026-12-02T10:00:00Z"}"#);
    s
}

/// Ledger rows with blank lines, CRLF, a repeated header, ragged rows, a line of spaces, bad and
/// non-ASCII values, and one BOM mid-file (the chunk holding it is read by the csv reader, the
/// others line by line).
fn ledger(n: usize) -> String {
    let mut s = String::from("id,amount,currency,at,status\r\n");
    let mut rng = 11;
    for i in 0..n {
        let amount = format!("{}.{:02}", next(&mut rng) % 500, next(&mut rng) % 100);
        let line = match next(&mut rng) % 25 {
            0 => String::new(),
            1 => "id,amount,currency,at,status".to_string(),
            2 => format!("k{i},{amount},EUR"),
            3 => format!("k{i},abc,EUR,2026-12-02T10:00:00Z,posted"),
            4 => format!("k{i},{amount},XXX,2026-12-02T10:00:00Z,posted"),
            5 => "   ".to_string(),
            6 => format!("k{i},{amount},EUR,2026-12-02T10:00:00Z,gebucht-€"),
            _ if i == n / 2 => format!("\u{feff}k{i},{amount},EUR,2026-12-02T10:00:00Z,posted"),
            _ => format!(
                "k{},{amount},EUR,2026-12-02T0{}:30:00Z,posted",
                i / 3,
                i % 10
            ),
        };
        let end = if i % 5 == 0 { "\r\n" } else { "\n" };
        write!(s, "{line}{end}").unwrap();
    }
    s
}

fn assert_same(split: &Loaded, whole: &Loaded, what: &str) {
    assert_eq!(
        split.records.len(),
        whole.records.len(),
        "{what}: record count"
    );
    for (i, (a, b)) in split.records.iter().zip(&whole.records).enumerate() {
        assert_eq!(a, b, "{what}: record {i}");
    }
    assert_eq!(split.rejects, whole.rejects, "{what}: rejects");
    assert_eq!(split.files, whole.files, "{what}: file counts");
    assert_eq!(
        split.header_repeats, whole.header_repeats,
        "{what}: repeated headers"
    );
    assert_eq!(split.fresh, whole.fresh, "{what}: fresh");
}

/// A folder with the config, `n` events and `n` ledger rows, and the run's plan for them.
fn planned(n: usize) -> (tempfile::TempDir, recon::config::RunPlan) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("recon.toml"), CONFIG).unwrap();
    fs::write(dir.path().join("events.jsonl"), events(n)).unwrap();
    fs::write(dir.path().join("ledger.csv"), ledger(n)).unwrap();
    let plan = load_plan(&dir.path().join("recon.toml"), None).unwrap();
    (dir, plan)
}

#[test]
fn chunks_read_exactly_what_one_reader_reads() {
    // The folder is kept until the end: the plan names its files.
    let (_dir, plan) = planned(20_000);
    // Chunks are made per thread: run with four whatever the machine has.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap();
    pool.install(|| {
        let whole = load_all(&plan.sources).unwrap();
        assert!(whole[0].rejected() > 1000 && whole[1].rejected() > 1000);
        assert!(!whole[1].header_repeats.is_empty());
        for min_chunk in [1000, 4096, 100_000] {
            for source in &plan.sources {
                let n = chunk_count(source, 0, min_chunk).unwrap();
                assert!(n > 1, "{}: {n} chunk(s) of {min_chunk} bytes", source.name);
            }
            let split = load_all_in(&plan.sources, min_chunk).unwrap();
            for s in 0..2 {
                let what = format!("{} in chunks of {min_chunk}", plan.sources[s].name);
                assert_same(&split[s], &whole[s], &what);
            }
        }
    });
    // The last event line has no newline and is still read, at its line.
    let whole = load_all(&plan.sources).unwrap();
    let last = whole[0].records.last().unwrap();
    assert_eq!(last.key.as_deref(), Some("last"));
    assert_eq!(last.origin.line, 20_001);
}

#[test]
fn chunks_spilled_to_partitions_read_back_what_one_reader_reads() {
    let (dir, plan) = planned(20_000);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap();
    pool.install(|| {
        let whole = load_all(&plan.sources).unwrap();
        let spills = [(1000, None), (4096, Some(dir.path().to_path_buf()))];
        for (min_chunk, spill) in spills {
            let spec = SpillSpec::new(3, spill.as_deref()).unwrap();
            let mut split = load_all_partitioned_in(&plan.sources, &spec, min_chunk).unwrap();
            let store = Store::new(&mut split, 3);
            let mut back: Vec<Vec<Record>> = vec![Vec::new(); 2];
            for p in 0..store.len() {
                for (s, part) in store.take(p).unwrap().into_iter().enumerate() {
                    back[s].extend(part.records);
                }
            }
            for s in 0..2 {
                let what = format!("{} spilled ({spill:?}), chunks of {min_chunk}", s);
                back[s].sort_by_key(|r| r.origin);
                split[s].records = std::mem::take(&mut back[s]);
                split[s].fresh = split[s].records.len();
                assert_same(&split[s], &whole[s], &what);
            }
        }
    });
}

#[test]
fn a_csv_with_quotes_is_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("recon.toml"), CONFIG).unwrap();
    fs::write(dir.path().join("events.jsonl"), events(2_000)).unwrap();
    let mut csv = ledger(20_000);
    csv.push_str("\"k1\",\"1.00\",EUR,2026-12-02T10:00:00Z,\"posted\nlate\"\n");
    fs::write(dir.path().join("ledger.csv"), csv).unwrap();
    let plan = load_plan(&dir.path().join("recon.toml"), None).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap();
    pool.install(|| {
        assert_eq!(chunk_count(&plan.sources[1], 0, 1000).unwrap(), 1);
        let split = load_all_in(&plan.sources, 1000).unwrap();
        let whole = load_all(&plan.sources).unwrap();
        assert_same(&split[1], &whole[1], "ledger with a quoted newline");
        let last = split[1].records.last().unwrap();
        assert_eq!(last.status.as_deref(), Some("posted\nlate"));
    });
}

#[test]
fn a_file_that_changes_after_it_was_sized_is_not_used() {
    let (dir, plan) = planned(2000);
    // Still being written: a line more than when the run sized it, read whole or in chunks.
    let mut grown = ledger(2000);
    grown.push_str("L-late,1.00,EUR,2026-12-01T00:00:00Z,posted\n");
    fs::write(dir.path().join("ledger.csv"), grown).unwrap();
    let spec = SpillSpec::new(2, Some(dir.path())).unwrap();
    for min_chunk in [1 << 30, 1000] {
        let errors = [
            load_all_in(&plan.sources, min_chunk).unwrap_err(),
            load_all_partitioned_in(&plan.sources, &spec, min_chunk).unwrap_err(),
        ];
        for err in errors.map(|e| format!("{e:#}")) {
            assert!(
                err.starts_with("cannot read ledger.csv: the file changed while it was read ("),
                "{err}"
            );
            assert!(
                err.ends_with("now); run again once it is complete"),
                "{err}"
            );
        }
    }
}
