//! Messy exports handled on purpose: compressed, legacy-encoded, concatenated, empty; and the
//! repairs and warnings that keep a bad input from turning into a wrong "safe" action.

mod common;

use std::fs;
use std::io::Write;

struct Outcome {
    code: i32,
    stderr: String,
    rejects: String,
    breaks: Vec<Vec<String>>,
    summary: serde_json::Value,
    described: String,
}

/// Runs `config` over `files` in a scratch folder.
fn run(config: &str, files: &[(&str, &[u8])]) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        fs::write(dir.path().join(name), bytes).unwrap();
    }
    fs::write(dir.path().join("recon.toml"), config).unwrap();
    let run = common::recon(dir.path(), &["run", "-c", "recon.toml", "-o", "out", "-q"]);
    let out = dir.path().join("out");
    let rejects = fs::read_to_string(out.join("rejects.csv")).unwrap_or_default();
    let mut breaks = Vec::new();
    if let Ok(mut r) = csv::Reader::from_path(out.join("breaks.csv")) {
        breaks = r
            .records()
            .map(|row| row.unwrap().iter().map(String::from).collect())
            .collect();
    }
    let summary = fs::read_to_string(out.join("summary.json"))
        .map_or(serde_json::Value::Null, |t| {
            serde_json::from_str(&t).unwrap()
        });
    Outcome {
        code: run.code(),
        stderr: run.stderr(),
        rejects: rejects.lines().skip(1).map(|l| format!("{l}\n")).collect(),
        breaks,
        summary,
        described: run.described,
    }
}

/// Two CSV sources `a` -> `b` with columns `k,amt`, EUR, plus `extra_a` / `extra_b` lines.
fn config(extra_a: &str, extra_b: &str) -> String {
    format!(
        r#"
[[source]]
name = "a"
format = "csv"
path = "a*.csv*"
key = {{ column = "k" }}
amount = {{ column = "amt" }}
currency = {{ value = "EUR" }}
{extra_a}

[[source]]
name = "b"
format = "csv"
path = "b.csv"
key = {{ column = "k" }}
amount = {{ column = "amt" }}
currency = {{ value = "EUR" }}
{extra_b}

[[check]]
name = "ab"
from = "a"
to = "b"
"#
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

#[test]
fn gzip_inputs_are_read_whatever_their_name() {
    let o = run(
        &config("", ""),
        &[
            ("a.csv.gz", &gzip(b"k,amt\nK1,1.00\nK2,x\n")),
            ("b.csv", b"k,amt\nK1,1.00\n"),
        ],
    );
    assert_eq!(o.code, 2, "{}", o.described);
    assert_eq!(o.rejects, "a,a.csv.gz,3,amt,not a decimal amount (EUR),x\n");
    assert!(o.breaks.is_empty(), "{}", o.described);
}

#[test]
fn a_declared_legacy_encoding_is_decoded() {
    // "CAFÉ-1" in windows-1252 on one side, UTF-8 on the other: the same key.
    let o = run(
        &config("encoding = \"windows-1252\"", ""),
        &[
            ("a.csv", b"k,amt\nCAF\xc9-1,1.00\n"),
            ("b.csv", "k,amt\nCAFÉ-1,1.00\n".as_bytes()),
        ],
    );
    assert_eq!((o.code, o.rejects.as_str()), (0, ""), "{}", o.described);
}

#[test]
fn undeclared_non_utf8_is_rejected_with_the_text_shown() {
    let o = run(
        &config("max_rejects = 1", ""),
        &[("a.csv", b"k,amt\nCAF\xc9-1,1.00\n"), ("b.csv", b"k,amt\n")],
    );
    assert_eq!(
        o.rejects, "a,a.csv,2,k,not valid UTF-8,CAF\u{fffd}-1\n",
        "{}",
        o.described
    );
}

#[test]
fn concatenated_files_with_repeated_headers_and_boms() {
    let o = run(
        &config("", ""),
        &[
            ("a.csv", b"\xef\xbb\xbfk,amt\nK1,1.00\n\xef\xbb\xbfk,amt\nK2,2.00\n\xef\xbb\xbf\"K3\",3.00\n"),
            ("b.csv", b"k,amt\nK1,1.00\nK2,2.00\nK3,3.00\n"),
        ],
    );
    assert_eq!((o.code, o.rejects.as_str()), (0, ""), "{}", o.described);
    assert_eq!(o.summary["sources"][0]["rows_read"], 3);
    assert_eq!(
        o.summary["warnings"][0],
        "source \"a\": the header line appears again inside the data at a.csv:3 (files concatenated?); those lines are skipped"
    );
}

#[test]
fn hidden_files_and_blank_files() {
    // A wildcard skips hidden files (an editor's lock file here); a file of blank lines is empty.
    let o = run(
        &config("", ""),
        &[
            ("a.csv", b"k,amt\nK1,1.00\n"),
            (".~lock.a.csv#", b"k,amt\nK1,1.00\n"),
            ("a2.csv", b"\n\r\n"),
            ("b.csv", b"k,amt\nK1,1.00\n"),
        ],
    );
    assert_eq!(o.code, 0, "{}", o.described);
    let files: Vec<&str> = o.summary["sources"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["a.csv", "a2.csv"]);
}

#[test]
fn bytes_invalid_in_a_declared_encoding_are_rejected_not_merged() {
    let o = run(
        &config("encoding = \"shift_jis\"\nmax_rejects = 5", ""),
        &[
            (
                "a.csv",
                b"\xef\xbb\xbfk,amt\nORD\xa0,10.00\nORD\xfd,10.00\n",
            ),
            ("b.csv", b"k,amt\n"),
        ],
    );
    assert_eq!(
        o.rejects,
        "a,a.csv,2,k,not valid Shift_JIS,ORD\u{fffd}\na,a.csv,3,k,not valid Shift_JIS,ORD\u{fffd}\n",
        "{}",
        o.described
    );
}

#[test]
fn replays_are_held_back_when_the_receiver_may_hold_the_key() {
    // b rejects K2 (ragged row: its key is still read) and K3 (value), and holds " k4" for K4.
    let a = config("", "max_rejects = 5\nkey = { column = \"k\" }").replace("key = { column = \"k\" }\namount = { column = \"amt\" }\ncurrency = { value = \"EUR\" }\nmax_rejects", "amount = { column = \"amt\" }\ncurrency = { value = \"EUR\" }\nmax_rejects");
    let o = run(
        &a,
        &[
            (
                "a.csv",
                b"k,amt\nK1,1.00\nK2,2.00\nK3,3.00\nK4,4.00\nK5,5.00\n",
            ),
            ("b.csv", b"k,amt\nK1,1.00\nK2,2.00,x\nK3,three\n k4,4.00\n"),
        ],
    );
    let missing: Vec<(&str, &str, &str)> = o
        .breaks
        .iter()
        .filter(|r| r[1] == "missing")
        .map(|r| {
            (
                r[2].as_str(),
                r[r.len() - 2].as_str(),
                r[r.len() - 1].as_str(),
            )
        })
        .collect();
    assert_eq!(
        missing,
        [
            (
                "K2",
                "investigate",
                "b has a rejected row with this key (b.csv:3, see rejects.csv): fix that row instead of replaying"
            ),
            (
                "K3",
                "investigate",
                "b has a rejected row with this key (b.csv:4, see rejects.csv): fix that row instead of replaying"
            ),
            (
                "K4",
                "investigate",
                "b holds \" k4\", which differs from this key only by case or spaces: a clean-up (trim, lowercase) may be missing"
            ),
            ("K5", "replay", ""),
        ],
        "{}",
        o.described
    );
}

#[test]
fn a_check_that_shares_no_key_replays_nothing() {
    let o = run(
        &config("", ""),
        &[
            ("a.csv", b"k,amt\nORD-1,1.00\n"),
            ("b.csv", b"k,amt\nX-1,1.00\n"),
        ],
    );
    let row = o.breaks.iter().find(|r| r[1] == "missing").unwrap();
    assert_eq!(row[row.len() - 2], "investigate");
    assert_eq!(
        row[row.len() - 1],
        "no key occurs in both sides of check \"ab\": check the key columns and clean-up before replaying anything"
    );
}

#[test]
fn an_empty_receiving_side_is_not_taken_for_a_wrong_key_column() {
    let o = run(
        &config("", "allow_empty = true"),
        &[("a.csv", b"k,amt\nORD-1,1.00\n"), ("b.csv", b"k,amt\n")],
    );
    assert_eq!(o.code, 1, "{}", o.described);
    let row = o.breaks.iter().find(|r| r[1] == "missing").unwrap();
    assert_eq!(row[row.len() - 2], "replay", "{}", o.described);
    assert_eq!(
        row[row.len() - 1],
        "b has no records tonight: make sure its export was complete before replaying",
        "{}",
        o.described
    );
    assert_eq!(o.summary["warnings"], serde_json::json!([]));
    // A side with rows but no key at all (a blank key column) is a wrong key column, not empty.
    let o = run(
        &config("", ""),
        &[
            ("a.csv", b"k,amt\nORD-1,1.00\n"),
            ("b.csv", b"k,amt\n,1.00\n"),
        ],
    );
    let row = o.breaks.iter().find(|r| r[1] == "missing").unwrap();
    assert_eq!(row[row.len() - 2], "investigate", "{}", o.described);
    let warning = "check \"ab\": no key occurs in both \"a\" and \"b\"; are the key columns and their clean-up (trim, lowercase, strip_prefix) right?";
    assert_eq!(o.summary["warnings"][0], warning, "{}", o.described);
}

#[test]
fn a_closed_stderr_keeps_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.csv"), b"k,amt\nK1,1.00\nK1,1.00\n").unwrap();
    fs::write(dir.path().join("b.csv"), b"k,amt\nk1,1.00\n").unwrap();
    fs::write(dir.path().join("recon.toml"), config("", "")).unwrap();
    // A pipe whose reading end is closed: writing to it fails with EPIPE.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_recon"))
        .args(["run", "-q", "-c", "recon.toml", "-o", "out"])
        .current_dir(dir.path())
        .stderr(writer)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
}

#[test]
fn a_source_without_rows_makes_the_run_incomplete_unless_allowed() {
    let files: &[(&str, &[u8])] = &[("a.csv", b""), ("b.csv", b"k,amt\n")];
    let o = run(&config("", ""), files);
    assert_eq!(o.code, 2, "{}", o.described);
    assert!(
        o.stderr
            .contains("incomplete: source \"a\" has no rows at all"),
        "{}",
        o.described
    );
    assert!(
        o.stderr
            .contains("incomplete: source \"b\" has no rows at all"),
        "{}",
        o.described
    );
    assert_eq!(o.summary["status"], "incomplete");
    let o = run(&config("allow_empty = true", "allow_empty = true"), files);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""), "{}", o.described);
}

#[test]
fn a_source_whose_every_row_is_rejected_makes_the_run_incomplete() {
    // Within max_rejects, but nothing of `a` was compared: not a reconciled night.
    let files: &[(&str, &[u8])] = &[
        ("a.csv", b"k,amt\nK1,12;50\nK2,7;00\n"),
        ("b.csv", b"k,amt\nK1,12.50\n"),
    ];
    let o = run(&config("max_rejects = 5", ""), files);
    assert_eq!(o.code, 2, "{}", o.described);
    let reason = "source \"a\" rejected every one of its 2 rows: nothing of it was reconciled; see rejects.csv";
    assert_eq!(o.summary["incomplete_reasons"], serde_json::json!([reason]));
    assert!(
        o.stderr.contains(&format!("incomplete: {reason}")),
        "{}",
        o.described
    );
    // The table does not call a check with no keys 100% matched.
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        fs::write(dir.path().join(name), bytes).unwrap();
    }
    fs::write(
        dir.path().join("recon.toml"),
        config("max_rejects = 5", "allow_empty = true"),
    )
    .unwrap();
    fs::write(dir.path().join("b.csv"), "k,amt\n").unwrap();
    let table = common::recon(dir.path(), &["run", "-c", "recon.toml", "-o", "out"]).stdout();
    assert!(
        table.contains("check ab (a -> b): 0 keys, nothing to match\n"),
        "{table}"
    );
}

#[test]
fn keys_that_differ_only_by_case_or_spaces_are_warned_about() {
    let o = run(
        &config("", ""),
        &[
            ("a.csv", b"k,amt\nORD-1,1.00\nord-1 ,2.00\n"),
            ("b.csv", b"k,amt\nORD-1,1.00\n"),
        ],
    );
    assert_eq!(o.code, 1, "{}", o.described);
    let warning = "source \"a\": 1 pair(s) of keys differ only by case or surrounding spaces (e.g. \"ORD-1\" and \"ord-1 \"); they are matched as different keys";
    assert_eq!(o.summary["warnings"][0], warning);
    assert!(
        o.stderr.contains(&format!("warning: {warning}")),
        "{}",
        o.described
    );
}

#[test]
fn a_check_whose_sides_share_no_key_is_warned_about() {
    let o = run(
        &config("", ""),
        &[
            ("a.csv", b"k,amt\nORD-1,1.00\n"),
            ("b.csv", b"k,amt\nord-1,1.00\n"),
        ],
    );
    assert_eq!(
        o.summary["warnings"][0],
        "check \"ab\": no key occurs in both \"a\" and \"b\"; are the key columns and their clean-up (trim, lowercase, strip_prefix) right?"
    );
}

#[test]
fn a_key_rejected_on_the_receiving_side_is_not_replayed() {
    let o = run(
        &config("", "max_rejects = 1"),
        &[
            ("a.csv", b"k,amt\nK1,1.00\nK2,2.00\n"),
            ("b.csv", b"k,amt\nK1,1.00\nK2,two\n"),
        ],
    );
    assert_eq!(o.code, 1, "{}", o.described);
    let row = &o.breaks[0];
    assert_eq!((row[1].as_str(), row[2].as_str()), ("missing", "K2"));
    assert_eq!(row[row.len() - 2], "investigate");
    assert_eq!(
        row[row.len() - 1],
        "b has a rejected row with this key (b.csv:3, see rejects.csv): fix that row instead of replaying"
    );
}

#[test]
fn a_key_the_sender_holds_with_conflicting_payloads_is_not_replayed() {
    let o = run(
        &config("", ""),
        &[
            (
                "a.csv",
                b"k,amt\nK1,1.00\nD2,2.00\nD2,2.50\nD3,3.00\nD3,3.00\n",
            ),
            ("b.csv", b"k,amt\nK1,1.00\n"),
        ],
    );
    assert_eq!(o.code, 1, "{}", o.described);
    let repairs: Vec<(&str, &str, &str, &str)> = o
        .breaks
        .iter()
        .map(|r| {
            let (action, note) = (&r[r.len() - 2], &r[r.len() - 1]);
            (r[1].as_str(), r[2].as_str(), action.as_str(), note.as_str())
        })
        .collect();
    assert_eq!(
        repairs,
        [
            (
                "missing",
                "D2",
                "investigate",
                "a holds this key more than once with different payloads (conflicting_duplicate): decide which, if any, b should have"
            ),
            ("conflicting_duplicate", "D2", "investigate", ""),
            // A replayed delivery of one payload: that payload, once.
            ("missing", "D3", "replay", ""),
            ("duplicate", "D3", "reverse", ""),
        ],
        "{}",
        o.described
    );
}

#[test]
fn a_json_row_naming_its_key_twice_holds_back_every_replay_into_its_source() {
    let b = r#"
[[source]]
name = "a"
format = "csv"
path = "a.csv"
key = { column = "k" }
amount = { column = "amt" }
currency = { value = "EUR" }

[[source]]
name = "b"
format = "jsonl"
path = "b.jsonl"
key = { column = "k" }
amount = { column = "amt" }
currency = { value = "EUR" }
max_rejects = 1

[[check]]
name = "ab"
from = "a"
to = "b"
"#;
    // The second line is K2 or K2x: either may be the one not to replay.
    let o = run(
        b,
        &[
            ("a.csv", b"k,amt\nK1,1.00\nK2,2.00\n"),
            (
                "b.jsonl",
                b"{\"k\":\"K1\",\"amt\":\"1.00\"}\n{\"k\":\"K2\",\"k\":\"K2x\",\"amt\":\"2.00\"}\n",
            ),
        ],
    );
    assert_eq!(o.code, 1, "{}", o.described);
    let row = &o.breaks[0];
    assert_eq!((row[1].as_str(), row[2].as_str()), ("missing", "K2"));
    assert_eq!(row[row.len() - 2], "replay");
    assert_eq!(
        row[row.len() - 1],
        "b has 1 rejected row(s) whose key could not be read: one may be this key (see rejects.csv)"
    );
}

#[test]
fn a_read_only_system_gets_no_automatic_repair() {
    let o = run(
        &config("", "read_only = true"),
        &[
            ("a.csv", b"k,amt\nK1,1.00\nK2,2.00\n"),
            ("b.csv", b"k,amt\nK1,1.50\n"),
        ],
    );
    let actions: Vec<(&str, &str, &str)> = o
        .breaks
        .iter()
        .map(|r| {
            (
                r[1].as_str(),
                r[r.len() - 2].as_str(),
                r[r.len() - 1].as_str(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            (
                "amount_mismatch",
                "investigate",
                "b is read_only: recon will not adjust there; correct the other side or book it by hand"
            ),
            (
                "missing",
                "investigate",
                "b is read_only: recon will not replay there; correct the other side or book it by hand"
            ),
        ],
        "{}",
        o.described
    );
    assert_eq!(o.breaks[0][5], "amount: 1.00 -> 1.50");
}

#[test]
fn two_digit_years_and_epochs_parse_as_configured() {
    let config = r#"
[[source]]
name = "a"
format = "csv"
path = "a.csv"
key = { column = "k" }
time = { column = "t", format = "%d/%m/%y %H:%M", timezone = "UTC" }

[[source]]
name = "b"
format = "jsonl"
path = "b.jsonl"
max_rejects = 1
key = { column = "k" }
time = { column = "t", format = "epoch_ms" }

[[check]]
name = "ab"
from = "a"
to = "b"
compare = []
"#;
    let o = run(
        config,
        &[
            ("a.csv", b"k,t\nK1,01/12/26 09:15\nK2,30/02/26 09:15\n"),
            (
                "b.jsonl",
                b"{\"k\":\"K1\",\"t\":1764580500000}\n{\"k\":\"K3\",\"t\":\"17e11\"}\n",
            ),
        ],
    );
    assert_eq!(
        o.rejects,
        "a,a.csv,3,t,not a time in the format %d/%m/%y %H:%M,30/02/26 09:15\nb,b.jsonl,2,t,not a time in the format epoch_ms,17e11\n",
        "{}",
        o.described
    );
}

#[test]
fn a_run_may_give_a_currency_another_exponent() {
    // This export writes yen with two decimals; without the override 3165.01 JPY is rejected.
    let a = config("", "").replace(
        "currency = { value = \"EUR\" }",
        "currency = { value = \"JPY\" }",
    );
    let files: &[(&str, &[u8])] = &[
        ("a.csv", b"k,amt\nK1,3165.01\n"),
        ("b.csv", b"k,amt\nK1,3165.01\n"),
    ];
    let o = run(&a, files);
    assert_eq!(o.code, 2, "{}", o.described);
    assert!(
        o.rejects
            .contains("more decimals than the currency's minor unit allows (0) (JPY)"),
        "{}",
        o.described
    );
    let o = run(&format!("[currencies]\nJPY = 2\n{a}"), files);
    assert_eq!((o.code, o.rejects.as_str()), (0, ""), "{}", o.described);
}

#[test]
fn a_json_source_with_many_mapped_fields_reads_every_one() {
    // Fifteen mapped fields, more than a line's slots on the stack: the last ones still compare,
    // on a flat line and on one the serde path reads (it holds an object).
    let extra = (1..=12)
        .map(|i| format!("f{i:02} = \"f{i:02}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let source = |name: &str| {
        format!(
            "[[source]]\nname = \"{name}\"\nformat = \"jsonl\"\npath = \"{name}.jsonl\"\nkey = {{ column = \"k\" }}\namount = {{ column = \"amt\" }}\ncurrency = {{ value = \"EUR\" }}\nextra = {{ {extra} }}\n"
        )
    };
    let config = format!(
        "{}\n{}\n[[check]]\nname = \"ab\"\nfrom = \"a\"\nto = \"b\"\ncompare = [\"amount\", \"f01\", \"f12\"]\n",
        source("a"),
        source("b")
    );
    let line = |k: &str, f01: &str, f12: &str, more: &str| {
        let middle: String = (2..=11).map(|i| format!(",\"f{i:02}\":\"v{i}\"")).collect();
        format!(
            "{{\"k\":\"{k}\",\"amt\":\"1.00\",\"f01\":\"{f01}\"{middle},\"f12\":\"{f12}\"{more}}}\n"
        )
    };
    let a = [
        line("K1", "x", "y", ""),
        line("K2", "x", "y", ""),
        line("K3", "x", "y", ",\"meta\":{\"n\":1}"),
    ]
    .concat();
    let b = [
        line("K1", "x", "y", ""),
        line("K2", "x", "z", ""),
        line("K3", "w", "y", ",\"meta\":{\"n\":1}"),
    ]
    .concat();
    let o = run(
        &config,
        &[("a.jsonl", a.as_bytes()), ("b.jsonl", b.as_bytes())],
    );
    assert_eq!(o.code, 1, "{}", o.described);
    let found: Vec<(&str, &str, &str)> = o
        .breaks
        .iter()
        .map(|r| (r[1].as_str(), r[2].as_str(), r[4].as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("field_mismatch", "K2", "f12"),
            ("field_mismatch", "K3", "f01")
        ],
        "{}",
        o.described
    );
}

#[test]
fn of_two_unreadable_inputs_the_first_is_named_on_every_run() {
    // Both sources' files are gzip cut short after their header: the sources are read in
    // parallel, and the error must not name whichever failed first.
    let rows: String = (0..20_000).map(|i| format!("K{i},1.00\n")).collect();
    let cut = gzip(format!("k,amt\n{rows}").as_bytes())[..2000].to_vec();
    for _ in 0..12 {
        let o = run(&config("", ""), &[("a.csv.gz", &cut), ("b.csv", &cut)]);
        assert_eq!(o.code, 2, "{}", o.described);
        assert!(
            o.stderr.starts_with("error: cannot read a.csv.gz: "),
            "{}",
            o.described
        );
    }
}
