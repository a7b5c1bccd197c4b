//! Same inputs, same bytes, whatever the thread count; and the same findings whatever the order of
//! the rows (only the line numbers in the evidence, and the ids derived from them, move).

mod common;

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

const CONFIG: &str = r#"
[[source]]
name = "events"
format = "jsonl"
path = "events.jsonl"
key = { column = "id" }
amount = { column = "amount" }
currency = { column = "currency" }
time = { column = "at", format = "epoch_s" }
status = { column = "status" }

[[source]]
name = "ledger"
format = "csv"
path = "ledger.csv"
key = { column = "id" }
amount = { column = "amount", unit = "minor" }
currency = { column = "currency" }
time = { column = "at", format = "epoch_s" }
status = { column = "status" }

[[check]]
name = "events_ledger"
from = "events"
to = "ledger"
compare = ["amount", "currency", "status"]
"#;

/// A small deterministic generator (64-bit LCG), so the test needs no randomness crate.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Writes events and ledger rows with faults; `shuffle` reorders the rows of both files.
fn write_case(dir: &Path, shuffle: bool) {
    let mut rng = Lcg(7);
    let mut events = Vec::new();
    let mut ledger = Vec::new();
    let currencies = ["EUR", "JPY", "BHD", "USD"];
    for i in 0..3000u64 {
        let currency = currencies[rng.next(4) as usize];
        let minor = rng.next(10_000_000) as i64 - 1_000_000;
        let exp = match currency {
            "JPY" => 0,
            "BHD" => 3,
            _ => 2,
        };
        let major = if exp == 0 {
            minor.to_string()
        } else {
            let s = format!("{:0>w$}", minor.unsigned_abs(), w = exp + 1);
            let (a, b) = s.split_at(s.len() - exp);
            format!("{}{a}.{b}", if minor < 0 { "-" } else { "" })
        };
        let at = 1_764_547_200 + i * 7;
        let status = if rng.next(10) == 0 { "pending" } else { "done" };
        events.push(format!(
            "{{\"id\":\"K{i:05}\",\"amount\":\"{major}\",\"currency\":\"{currency}\",\"at\":{at},\"status\":\"{status}\"}}"
        ));
        let row = |m: i64, c: &str, s: &str, t: u64| format!("K{i:05},{m},{c},{t},{s}");
        match rng.next(20) {
            0 => {} // missing
            1 => ledger.extend([
                row(minor, currency, status, at + 5),
                row(minor, currency, status, at + 9),
            ]),
            2 => ledger.extend([
                row(minor, currency, status, at + 5),
                row(minor + 1, currency, status, at + 9),
            ]),
            3 => ledger.push(row(minor - 250, currency, status, at + 5)), // amount edit
            4 => ledger.push(row(minor, currency, "void", at + 5)),       // status differs
            5 => events.push(events.last().unwrap().clone()),             // replayed event
            _ => ledger.push(row(minor, currency, status, at + 5)),
        }
    }
    for i in 0..40 {
        ledger.push(format!("X{i:03},100,EUR,{},done", 1_764_547_200 + i)); // orphans
    }
    if shuffle {
        for rows in [&mut events, &mut ledger] {
            for i in (1..rows.len()).rev() {
                rows.swap(i, rng.next(i as u64 + 1) as usize);
            }
        }
    }
    let mut csv = String::from("id,amount,currency,at,status\n");
    ledger.iter().for_each(|r| writeln!(csv, "{r}").unwrap());
    fs::write(dir.join("ledger.csv"), csv).unwrap();
    fs::write(dir.join("events.jsonl"), events.join("\n") + "\n").unwrap();
    fs::write(dir.join("recon.toml"), CONFIG).unwrap();
}

fn run(dir: &Path, out: &str, threads: Option<&str>) {
    run_with(dir, out, threads.map_or(vec![], |n| vec!["--threads", n]));
}

fn run_with(dir: &Path, out: &str, extra: Vec<&str>) {
    let mut args = vec!["run", "-q", "-c", "recon.toml", "-o", out];
    args.extend(extra);
    common::recon(dir, &args).expect_code(1);
}

#[test]
fn same_bytes_in_one_partition_or_many() {
    let dir = tempfile::tempdir().unwrap();
    write_case(dir.path(), false);
    run_with(dir.path(), "p1", vec!["--partitions", "1"]);
    for n in ["2", "64", "1024"] {
        let out = format!("p{n}");
        run_with(dir.path(), &out, vec!["--partitions", n, "--threads", "2"]);
        common::assert_same_dir(&dir.path().join(&out), &dir.path().join("p1"));
    }
}

#[test]
fn same_bytes_with_1_2_and_8_threads() {
    let dir = tempfile::tempdir().unwrap();
    write_case(dir.path(), false);
    run(dir.path(), "t1", Some("1"));
    run(dir.path(), "t2", Some("2"));
    run(dir.path(), "t8", Some("8"));
    run(dir.path(), "tdefault", None);
    for other in ["t2", "t8", "tdefault"] {
        common::assert_same_dir(&dir.path().join(other), &dir.path().join("t1"));
    }
}

/// breaks.csv without the columns that name lines (evidence, and the repair ids hashed from them).
fn findings(out: &Path) -> Vec<String> {
    let mut reader = csv::Reader::from_path(out.join("breaks.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| {
            !["from_evidence", "to_evidence", "repair_id", "repair_note"].contains(&&header[i])
        })
        .collect();
    let mut rows: Vec<String> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            keep.iter()
                .map(|&i| r[i].to_string())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    // Unkeyed or equal-key rows are ordered by line; none here, but keep the comparison honest.
    rows.sort();
    rows
}

#[test]
fn same_findings_whatever_the_row_order() {
    let (plain, shuffled) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_case(plain.path(), false);
    write_case(shuffled.path(), true);
    run(plain.path(), "out", None);
    run(shuffled.path(), "out", None);
    let (a, b) = (
        findings(&plain.path().join("out")),
        findings(&shuffled.path().join("out")),
    );
    assert!(
        a.len() > 500,
        "the case should have many breaks, has {}",
        a.len()
    );
    assert_eq!(a, b);
    let summary = |dir: &Path| {
        let mut v: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.join("out/summary.json")).unwrap())
                .unwrap();
        v.as_object_mut().unwrap().remove("outputs");
        v
    };
    assert_eq!(summary(plain.path()), summary(shuffled.path()));
}

#[test]
fn a_partitioned_run_over_many_files_holds_few_open() {
    // 300 files a source, under a limit of 64 open files: a temporary file per input file (or
    // per chunk) would run out.
    let dir = tempfile::tempdir().unwrap();
    let config = r#"
[[source]]
name = "a"
format = "csv"
path = "a/*.csv"
key = { column = "k" }
amount = { column = "amt" }
currency = { value = "EUR" }

[[source]]
name = "b"
format = "csv"
path = "b/*.csv"
key = { column = "k" }
amount = { column = "amt" }
currency = { value = "EUR" }

[[check]]
name = "ab"
from = "a"
to = "b"
"#;
    fs::write(dir.path().join("recon.toml"), config).unwrap();
    for side in ["a", "b"] {
        fs::create_dir(dir.path().join(side)).unwrap();
        for f in 0..300 {
            let mut text = String::from("k,amt\n");
            for r in 0..3 {
                // b misses one key per file and has another 0.01 more.
                if side == "b" && r == 0 {
                    continue;
                }
                let cents = 100 + r + u32::from(side == "b" && r == 1);
                writeln!(text, "K{f}-{r},{}.{:02}", cents / 100, cents % 100).unwrap();
            }
            fs::write(dir.path().join(format!("{side}/{f:03}.csv")), text).unwrap();
        }
    }
    let limited = |out: &str, partitions: &str| {
        let bin = env!("CARGO_BIN_EXE_recon");
        let script = format!(
            "ulimit -n 64 && exec {bin} run -q -c recon.toml -o {out} --partitions {partitions}"
        );
        let status = std::process::Command::new("sh")
            .args(["-c", &script])
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(1), "--partitions {partitions}");
    };
    limited("one", "1");
    limited("many", "16");
    common::assert_same_dir(&dir.path().join("many"), &dir.path().join("one"));
    let summary = fs::read_to_string(dir.path().join("one/summary.json")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    let breaks = &summary["checks"][0]["breaks"];
    assert_eq!(breaks["missing"]["count"], 300, "{summary}");
    assert_eq!(breaks["amount_mismatch"]["count"], 300, "{summary}");
}
