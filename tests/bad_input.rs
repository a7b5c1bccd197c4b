//! Regression tests for hostile input found by trying to break recon: each case either parses
//! exactly or is reported (reject with file and line, or exit 2 with a message), never guessed.

mod common;

use std::fs;

/// Source `b`: CSV `k,amt,cur`, amounts in minor units. Appended to each case's source `a`.
const B: &str = r#"
[[source]]
name = "b"
format = "csv"
path = "b.csv"
key = { column = "k" }
amount = { column = "amt", unit = "minor" }
currency = { column = "cur" }

[[check]]
name = "ab"
from = "a"
to = "b"
"#;

struct Outcome {
    code: i32,
    stderr: String,
    rejects: String,
    breaks: String,
    described: String,
}

/// Runs recon on `files` (name, bytes) with source `a` given by `a_config` plus [`B`].
fn run(a_config: &str, check_extra: &str, files: &[(&str, &[u8])]) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        fs::write(dir.path().join(name), bytes).unwrap();
    }
    fs::write(
        dir.path().join("recon.toml"),
        format!("{a_config}\n{B}{check_extra}"),
    )
    .unwrap();
    let run = common::recon(dir.path(), &["run", "-c", "recon.toml", "-o", "out", "-q"]);
    let read =
        |name: &str| fs::read_to_string(dir.path().join("out").join(name)).unwrap_or_default();
    let body = |text: String| {
        text.lines()
            .skip(1)
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    };
    Outcome {
        code: run.code(),
        stderr: run.stderr(),
        rejects: body(read("rejects.csv")),
        breaks: body(read("breaks.csv"))
            .lines()
            .map(|l| l.split(',').take(5).collect::<Vec<_>>().join(",") + "\n")
            .collect(),
        described: run.described,
    }
}

const CSV_A: &str = r#"
[[source]]
name = "a"
format = "csv"
path = "a.csv"
max_rejects = 10
key = { column = "k" }
amount = { column = "amt" }
currency = { column = "cur" }
"#;

#[test]
fn a_json_number_always_uses_a_dot() {
    let a = r#"
[[source]]
name = "a"
format = "jsonl"
path = "a.jsonl"
decimal = ","
thousands = "."
key = { column = "k" }
amount = { column = "amt" }
currency = { value = "EUR" }
"#;
    let o = run(
        a,
        "",
        &[
            (
                "a.jsonl",
                b"{\"k\":\"K1\",\"amt\":1.25}\n{\"k\":\"K2\",\"amt\":\"1.234,50\"}\n",
            ),
            ("b.csv", b"k,amt,cur\nK1,125,EUR\nK2,123450,EUR\n"),
        ],
    );
    assert_eq!(
        (o.code, o.rejects.as_str(), o.breaks.as_str()),
        (0, "", ""),
        "{}",
        o.described
    );
}

#[test]
fn comparing_amounts_compares_currencies() {
    let o = run(
        CSV_A,
        "compare = [\"amount\"]\n",
        &[
            ("a.csv", b"k,amt,cur\nK1,12.00,EUR\nK2,12.00,EUR\n"),
            ("b.csv", b"k,amt,cur\nK1,1200,JPY\nK2,1000,USD\n"),
        ],
    );
    assert_eq!(o.code, 1, "{}", o.described);
    assert_eq!(
        o.breaks,
        "ab,field_mismatch,K1,b,currency\nab,field_mismatch,K2,b,amount;currency\n"
    );
}

#[test]
fn an_unterminated_quote_stops_the_run() {
    let o = run(
        &CSV_A.replace("currency = { column = \"cur\" }", "currency = { column = \"cur\" }\nextra = { memo = \"memo\" }"),
        "",
        &[
            ("a.csv", b"k,amt,cur,memo\nK1,1.00,EUR,ok\nK2,2.00,EUR,\"refund\nK3,3.00,EUR,ok\nK4,4.00,EUR,ok\n"),
            ("b.csv", b"k,amt,cur\n"),
        ],
    );
    assert_eq!(o.code, 2, "{}", o.described);
    assert!(
        o.stderr
            .contains("cannot read a.csv: line 3: a quoted field opens and never closes"),
        "{}",
        o.described
    );
}

#[test]
fn a_multi_line_quoted_field_is_fine() {
    let o = run(
        CSV_A,
        "",
        &[
            (
                "a.csv",
                b"k,amt,cur,memo\nK1,1.00,EUR,\"two\nlines\"\nK2,x,EUR,ok",
            ),
            ("b.csv", b"k,amt,cur\nK1,100,EUR\n"),
        ],
    );
    assert_eq!(
        o.rejects, "a,a.csv,4,amt,not a decimal amount (EUR),x\n",
        "{}",
        o.described
    );
}

#[test]
fn line_numbers_survive_blank_lines_and_any_line_end() {
    let cases: &[(&str, &[u8])] = &[
        ("LF with blank lines", b"k,amt,cur\n\n\nK1,bad,EUR\n"),
        (
            "CRLF with blank lines",
            b"k,amt,cur\r\n\r\n\r\nK1,bad,EUR\r\n",
        ),
        ("CR only", b"k,amt,cur\r\r\rK1,bad,EUR\r"),
        ("mixed", b"k,amt,cur\r\n\n\rK1,bad,EUR"),
    ];
    for (what, csv) in cases {
        let o = run(CSV_A, "", &[("a.csv", csv), ("b.csv", b"k,amt,cur\n")]);
        assert_eq!(
            o.rejects, "a,a.csv,4,amt,not a decimal amount (EUR),bad\n",
            "{what}\n{}",
            o.described
        );
    }
}

#[test]
fn a_debit_that_cannot_be_negated_is_rejected() {
    let a = CSV_A.replace(
        "amount = { column = \"amt\" }",
        "amount = { debit = \"D\", credit = \"C\" }",
    );
    let o = run(
        &a,
        "",
        &[
            (
                "a.csv",
                b"k,D,C,cur\nK1,-92233720368547758.08,,EUR\nK2,1.00,,EUR\n",
            ),
            ("b.csv", b"k,amt,cur\nK2,-100,EUR\n"),
        ],
    );
    assert_eq!(
        o.rejects,
        "a,a.csv,2,D,out of range (beyond 64-bit minor units) (EUR),-92233720368547758.08\n"
    );
    assert_eq!(o.breaks, "", "{}", o.described);
}

#[test]
fn ambiguous_values_are_rejected_not_guessed() {
    let o = run(
        &CSV_A.replace(
            "path = \"a.csv\"",
            "path = \"a.csv\"\ndecimal = \",\"\nthousands = \".\"",
        ),
        "",
        &[
            (
                "a.csv",
                b"k,amt,cur\nK1,\"1.234e2\",EUR\nK2,\"(+12)\",EUR\n",
            ),
            ("b.csv", b"k,amt,cur\nK3,12,EUR\nK4,12.00,EUR\n"),
        ],
    );
    assert_eq!(
        o.rejects,
        "a,a.csv,2,amt,not a decimal amount (EUR),1.234e2\n\
         a,a.csv,3,amt,not a decimal amount (EUR),(+12)\n\
         b,b.csv,3,amt,a minor-unit amount must be a whole number (EUR),12.00\n",
        "{}",
        o.described
    );
}

#[test]
fn duplicate_json_keys_and_a_scalar_on_a_mapped_path_are_rejected_as_such() {
    let a = r#"
[[source]]
name = "a"
format = "jsonl"
path = "a.jsonl"
key = { column = "k" }
amount = { column = "p.amt" }
currency = { value = "EUR" }
max_rejects = 5
"#;
    let o = run(
        a,
        "",
        &[
            ("a.jsonl", b"{\"k\":\"K1\",\"p\":{\"amt\":\"1.00\",\"amt\":\"999.00\"}}\n{\"k\":\"K2\",\"p\":{\"amt\":\"2.00\"},\"x\":1,\"x\":2}\n{\"k\":\"K3\",\"p\":\"3.00\"}\n"),
            ("b.csv", b"k,amt,cur\nK2,200,EUR\n"),
        ],
    );
    assert_eq!(
        o.rejects,
        "a,a.jsonl,1,,\"the key \"\"amt\"\" appears twice (at column 33)\",\"{\"\"k\"\":\"\"K1\"\",\"\"p\"\":{\"\"amt\"\":\"\"1.00\"\",\"\"amt\"\":\"\"999.00\"\"}}\"\n\
         a,a.jsonl,3,,\"invalid type: string \"\"3.00\"\", expected an object under \"\"p\"\", which a mapped path goes into (at column 20)\",\"{\"\"k\"\":\"\"K3\"\",\"\"p\"\":\"\"3.00\"\"}\"\n",
        "{}",
        o.described
    );
}

#[test]
fn a_json_path_no_line_has_is_a_config_mistake() {
    let a = r#"
[[source]]
name = "a"
format = "jsonl"
path = "a.jsonl"
key = { column = "orderid" }
amount = { column = "amt" }
currency = { value = "EUR" }
"#;
    let o = run(
        a,
        "",
        &[
            ("a.jsonl", b"{\"order_id\":\"K1\",\"amt\":\"1.00\"}\n"),
            ("b.csv", b"k,amt,cur\n"),
        ],
    );
    assert_eq!(o.code, 2, "{}", o.described);
    assert!(
        o.stderr.contains("error: recon.toml: source[0] \"a\" key.column: the path \"orderid\" is not in its one JSON object; check the path\n"),
        "{}",
        o.described
    );
}

#[test]
fn a_column_named_twice_in_the_header_is_ambiguous() {
    let o = run(
        CSV_A,
        "",
        &[
            ("a.csv", b"k,amt,cur,amt\nK1,1.00,EUR,2.00\n"),
            ("b.csv", b"k,amt,cur\n"),
        ],
    );
    assert_eq!(o.code, 2, "{}", o.described);
    assert!(o.stderr.contains(
        "a.csv: column \"amt\" (source[0] \"a\" amount.column) appears 2 times in the header"
    ));
}

#[test]
fn stdout_on_a_full_disk_is_said_not_a_panic() {
    let into_full = |args: &[&str], cwd: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_recon"))
            .args(args)
            .current_dir(cwd)
            .stdout(fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap()
    };
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // explain has nothing but stdout: it fails.
    let o = into_full(&["explain"], here);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.starts_with("error: cannot write to stdout: "),
        "{stderr}"
    );
    // A run's outputs are written: its exit code stays what it found, and the lost table is said.
    let dir = tempfile::tempdir().unwrap();
    let config = here.join("fixtures/shop/recon.toml");
    let out = dir.path().join("out");
    let args = [
        "run",
        "-c",
        config.to_str().unwrap(),
        "--date",
        "2026-12-01",
        "-o",
    ];
    let o = into_full(&[&args[..], &[out.to_str().unwrap()]].concat(), dir.path());
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("warning: cannot write the table to stdout: "),
        "{stderr}"
    );
    assert!(out.join("summary.json").exists());
}

#[test]
fn keys_stay_text_even_as_json_numbers() {
    // A 25-digit JSON number key is its literal text, never a float: it matches the CSV's text.
    let a = r#"
[[source]]
name = "a"
format = "jsonl"
path = "a.jsonl"
key = { column = "k" }
amount = { column = "amt" }
currency = { value = "EUR" }
"#;
    let o = run(
        a,
        "",
        &[
            ("a.jsonl", b"{\"k\":1234567890123456789012345,\"amt\":\"1.00\"}\n{\"k\":\"000123\",\"amt\":\"2.00\"}\n"),
            ("b.csv", b"k,amt,cur\n1234567890123456789012345,100,EUR\n000123,200,EUR\n"),
        ],
    );
    assert_eq!(
        (o.code, o.rejects.as_str(), o.breaks.as_str()),
        (0, "", ""),
        "{}",
        o.described
    );
}
