//! Each config mistake stops the run before any data is read, exits 2, and names the key path or the
//! file and column at fault.

mod common;

use std::fs;

use common::recon;

const ORDERS: &str =
    "{\"id\":\"A1\",\"amount\":\"10.00\",\"currency\":\"EUR\",\"at\":\"2026-12-01T10:00:00Z\"}\n";
const PSP: &str = "ref,amount,currency,created\nA1,1000,EUR,2026-12-01 10:00:01\n";

const GOOD: &str = r#"
[[source]]
name = "orders"
format = "jsonl"
path = "orders.jsonl"
key = { column = "id" }
amount = { column = "amount" }
currency = { column = "currency" }
time = { column = "at" }

[[source]]
name = "psp"
format = "csv"
path = "psp.csv"
key = { column = "ref" }
amount = { column = "amount", unit = "minor" }
currency = { column = "currency" }
time = { column = "created", format = "%Y-%m-%d %H:%M:%S", timezone = "UTC" }

[[check]]
name = "orders_psp"
from = "orders"
to = "psp"
"#;

/// A folder with the inputs and `config` as recon.toml.
fn inputs(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("orders.jsonl"), ORDERS).unwrap();
    fs::write(dir.path().join("psp.csv"), PSP).unwrap();
    fs::write(dir.path().join("recon.toml"), config).unwrap();
    dir
}

/// Writes the inputs and `config`, runs recon, returns (exit code, stderr).
fn run_config(config: &str) -> (i32, String, String) {
    let dir = inputs(config);
    let run = recon(
        dir.path(),
        &["run", "--config", "recon.toml", "--out", "out"],
    );
    let wrote = dir.path().join("out").exists();
    assert!(
        run.code() != 2 || !wrote,
        "a config error must stop the run before any output\n{}",
        run.described
    );
    (run.code(), run.stderr(), run.described)
}

#[test]
fn the_base_config_is_valid() {
    let (code, stderr, described) = run_config(GOOD);
    assert_eq!(code, 0, "{described}");
    assert_eq!(stderr, "");
}

#[test]
fn each_mistake_exits_2_and_names_where() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "unknown key in a source",
            "path = \"psp.csv\"\n",
            "path = \"psp.csv\"\ndelimter = \";\"\n",
        ),
        ("unknown source in a check", "to = \"psp\"", "to = \"pps\""),
        (
            "column missing from the header",
            "amount = { column = \"amount\", unit",
            "amount = { column = \"amt\", unit",
        ),
        ("unknown unit", "unit = \"minor\"", "unit = \"cents\""),
        (
            "compared field not mapped",
            "to = \"psp\"",
            "to = \"psp\"\ncompare = [\"amount\", \"status\"]",
        ),
        ("naive time without a zone", ", timezone = \"UTC\"", ""),
        (
            "a glob that matches nothing",
            "path = \"psp.csv\"",
            "path = \"psp/*.csv\"",
        ),
        (
            "a float tolerance",
            "to = \"psp\"",
            "to = \"psp\"\namount_tolerance = 0.01",
        ),
        (
            "an unknown currency",
            "currency = { column = \"currency\" }\ntime = { column = \"at\" }",
            "currency = { value = \"EUX\" }\ntime = { column = \"at\" }",
        ),
        (
            "a bad time zone",
            "timezone = \"UTC\"",
            "timezone = \"Europe/Berlim\"",
        ),
        ("a missing required key", "name = \"orders_psp\"\n", ""),
        ("a TOML syntax error", "to = \"psp\"", "to = psp"),
        (
            "a bad currency override",
            "[[source]]\nname = \"orders\"",
            "[currencies]\nyen = 2\n\n[[source]]\nname = \"orders\"",
        ),
        (
            "a source used by no check",
            "[[check]]",
            "[[source]]\nname = \"bank\"\nformat = \"csv\"\npath = \"psp.csv\"\nkey = { column = \"ref\" }\n\n[[check]]",
        ),
        (
            "a window without unit",
            "to = \"psp\"",
            "to = \"psp\"\nwindow = \"2\"",
        ),
        (
            "a cut-off that is not a time",
            "[[source]]\nname = \"orders\"",
            "[run]\ncutoff = \"5pm\"\n\n[[source]]\nname = \"orders\"",
        ),
        (
            "a DST rule on times with an offset",
            "time = { column = \"at\" }",
            "time = { column = \"at\", dst = \"later\" }",
        ),
        (
            "an unknown DST rule",
            "timezone = \"UTC\"",
            "timezone = \"UTC\", dst = \"first\"",
        ),
        (
            "a zone on a date-only format",
            "time = { column = \"at\" }",
            "time = { column = \"at\", format = \"%Y-%m-%d\", timezone = \"UTC\" }",
        ),
        (
            "a bad date template",
            "path = \"psp.csv\"",
            "path = \"psp-{date+x}.csv\"",
        ),
        (
            "a time field in a date template",
            "path = \"psp.csv\"",
            "path = \"psp-{date:%H%M}.csv\"",
        ),
        (
            "a flow stage that is no source",
            "[[check]]",
            "[[flow]]\nname = \"f\"\nstages = [\"orders\", \"bank\"]\n\n[[check]]",
        ),
    ];
    let expected = [
        "recon.toml: source[1].delimter: unknown field `delimter`, expected one of `name`",
        "recon.toml: check[0].to: no source named \"pps\" (sources: orders, psp)",
        "psp.csv: column \"amt\" (source[1] \"psp\" amount.column) is not in the header; the header has: ref, amount, currency, created",
        "recon.toml: source[1].amount.unit: unknown variant `cents`, expected `major` or `minor`",
        "recon.toml: check[0].compare: \"status\" is not mapped in source \"orders\"",
        "recon.toml: source[1].time.timezone: required, because format \"%Y-%m-%d %H:%M:%S\" has no UTC offset",
        "recon.toml: source[1].path (\"psp\"): \"psp/*.csv\" matched no file",
        "recon.toml: check[0].amount_tolerance: write the tolerance as a string (\"0.01\") so that it stays exact",
        "recon.toml: source[0].currency.value: \"EUX\" is not an ISO 4217 currency code",
        "recon.toml: source[1].time.timezone: \"Europe/Berlim\" is not a time zone",
        "recon.toml: check[0]: missing field `name`",
        "recon.toml: ",
        "recon.toml: currencies: \"yen\" is not a three-letter upper-case currency code",
        "recon.toml: source[2] (\"bank\"): not used by any [[check]]",
        "recon.toml: check[0].window: expected days such as \"2d\", or business days such as \"3bd\", at most 999, found \"2\"",
        "recon.toml: run.cutoff: \"5pm\" is not a local time HH:MM",
        "recon.toml: source[0].time.dst: only naive local times can fall into a DST gap or overlap",
        "recon.toml: source[1].time.dst: expected \"reject\", \"earlier\" or \"later\", found \"first\"",
        "recon.toml: source[0].time.timezone: format \"%Y-%m-%d\" is a date without a time, which no zone shifts; remove timezone",
        "recon.toml: source[1].path: {date+x...}: expected {date}, {date+N} or {date-N}",
        "recon.toml: source[1].path: \"%H%M\" asks for a time or zone; a date template can only hold date fields",
        "recon.toml: flow[0].stages: no source named \"bank\"",
    ];
    let mut failures = Vec::new();
    for ((what, from, to), want) in cases.iter().zip(expected) {
        assert!(
            GOOD.contains(from),
            "case {what:?}: the base config lacks {from:?}"
        );
        let config = GOOD.replacen(from, to, 1);
        let (code, stderr, described) = run_config(&config);
        if code != 2 || !stderr.starts_with("error: ") || !stderr.contains(want) {
            failures.push(format!(
                "case {what:?}: stderr should contain\n  {want}\n{described}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_toml_syntax_error_names_the_line() {
    let (code, stderr, described) = run_config(&GOOD.replacen("to = \"psp\"", "to = psp", 1));
    assert_eq!(code, 2, "{described}");
    let line = GOOD.lines().position(|l| l == "to = \"psp\"").unwrap() + 1;
    assert!(stderr.contains(&format!("line {line}")), "{described}");
}

#[test]
fn a_missing_config_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let run = recon(dir.path(), &["run", "--config", "nope.toml"]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("cannot read config nope.toml"),
        "{}",
        run.described
    );
}

#[test]
fn a_header_that_is_no_header_is_shown_cut_in_the_error() {
    // A first line of a megabyte with no delimiter, and one of 60 columns.
    let long = "q".repeat(1 << 20);
    let many: Vec<String> = (0..60).map(|i| format!("c{i}")).collect();
    for (first, shown) in [
        (
            long.as_str(),
            format!("{}…[1048576 bytes in all]", "q".repeat(80)),
        ),
        // Control characters (a binary file) are shown escaped, not as nothing.
        ("\u{1f}\u{7f}x", "\\u{1f}\\u{7f}x".to_string()),
        (
            &many.join(","),
            format!("{}, … and 10 more", many[..50].join(", ")),
        ),
    ] {
        let dir = inputs(GOOD);
        fs::write(
            dir.path().join("psp.csv"),
            format!("{first}\nA1,1000,EUR,x\n"),
        )
        .unwrap();
        let run = recon(dir.path(), &["run", "-c", "recon.toml", "-o", "out"]);
        assert_eq!(run.code(), 2, "{}", run.described);
        let want = format!(
            "error: psp.csv: column \"ref\" (source[1] \"psp\" key.column) is not in the header; the header has: {shown}\n"
        );
        assert_eq!(run.stderr(), want);
    }
}

#[test]
fn a_gzip_file_cut_in_its_first_block_is_named() {
    // Its first read fails, at the header check: the message names the file.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, PSP.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    for cut in [2, 5, 11, 20] {
        let dir = inputs(GOOD);
        fs::write(dir.path().join("psp.csv"), &gz[..cut]).unwrap();
        let run = recon(dir.path(), &["run", "-c", "recon.toml", "-o", "out"]);
        assert_eq!(run.code(), 2, "{}", run.described);
        // Cut in the gzip header, or in the deflate stream before or within the CSV header.
        let named = [
            "cannot read psp.csv: ",
            "cannot read the header of psp.csv: ",
        ];
        assert!(
            named
                .iter()
                .any(|n| run.stderr().starts_with(&format!("error: {n}"))),
            "cut at {cut}: {}",
            run.described
        );
    }
}

#[test]
fn a_spill_folder_that_cannot_be_written_is_named_before_any_file_is_read() {
    let dir = inputs(GOOD);
    // Whether or not this run spills: one that does not says so too.
    for partitions in ["2", "1"] {
        let args = [
            "run",
            "-c",
            "recon.toml",
            "-o",
            "out",
            "--partitions",
            partitions,
        ];
        let spill = ["--spill", "no-such-folder"];
        let run = recon(dir.path(), &[&args[..], &spill].concat());
        assert_eq!(run.code(), 2, "{}", run.described);
        let want = "error: --spill no-such-folder: cannot create a temporary file there: ";
        assert!(run.stderr().starts_with(want), "{}", run.described);
        assert!(!dir.path().join("out").exists(), "{}", run.described);
    }
}

#[test]
fn a_date_that_is_no_day_and_an_out_folder_that_is_no_folder_of_its_own_are_refused() {
    let dir = inputs(GOOD);
    let run = recon(
        dir.path(),
        &["run", "-c", "recon.toml", "--date", "2026-02-30"],
    );
    assert_eq!(run.code(), 2, "{}", run.described);
    assert!(
        run.stderr()
            .contains("\"2026-02-30\" is not a day of the calendar"),
        "{}",
        run.described
    );
    let run = recon(
        dir.path(),
        &["run", "-c", "recon.toml", "-o", "recon.toml/x"],
    );
    assert_eq!(run.code(), 2, "{}", run.described);
    let want = "error: --out recon.toml/x: recon.toml is a file, not a folder";
    assert!(run.stderr().starts_with(want), "{}", run.described);
    let run = recon(dir.path(), &["run", "-c", "recon.toml", "-o", "."]);
    assert_eq!(run.code(), 2, "{}", run.described);
    assert!(
        run.stderr().starts_with(
            "error: --out .: give a folder of its own (e.g. recon-out), not `.`, `..` or a root"
        ),
        "{}",
        run.described
    );
    // A link would be replaced by the new folder, not followed.
    fs::create_dir(dir.path().join("real")).unwrap();
    std::os::unix::fs::symlink("real", dir.path().join("latest")).unwrap();
    let run = recon(dir.path(), &["run", "-c", "recon.toml", "-o", "latest"]);
    assert_eq!(run.code(), 2, "{}", run.described);
    let real = fs::canonicalize(dir.path().join("real")).unwrap();
    let want = format!(
        "error: --out latest is a link: give the folder it leads to ({}) instead",
        real.display()
    );
    assert!(run.stderr().starts_with(&want), "{}", run.described);
    assert!(dir.path().join("latest").is_symlink());
}

#[test]
fn one_file_matched_by_two_paths_is_refused_not_read_twice() {
    // A `latest` link beside the dated export: read twice, every row would be a duplicate.
    let dir = inputs(&GOOD.replace("path = \"psp.csv\"", "path = \"psp*.csv\""));
    std::os::unix::fs::symlink("psp.csv", dir.path().join("psp-latest.csv")).unwrap();
    let run = recon(dir.path(), &["run", "-c", "recon.toml", "-o", "out"]);
    run.expect_code(2);
    assert!(
        run.stderr()
            .contains("psp-latest.csv and psp.csv are one file (a link?): the path would read it twice; make the path match it once"),
        "{}",
        run.described
    );
    assert!(!dir.path().join("out").exists());
}
