//! Runs `recon run` on every bundled fixture and compares every output file, and the operator's
//! table on stdout, with the hand-checked `fixtures/<case>/expected/`.

mod common;

use std::fs;

use common::{assert_same_dir, recon, root, update_expected};

/// Runs a fixture, returns (exit code, output folder holding the four files plus `stdout.txt`).
fn run_fixture(case: &str, extra: &[&str]) -> (i32, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    let config = format!("fixtures/{case}/recon.toml");
    let out_arg = out.path().join("o");
    let mut args = vec![
        "run",
        "--config",
        &config,
        "--out",
        out_arg.to_str().unwrap(),
        // The fixtures' business day: outputs must not depend on the day the tests run.
        "--date",
        "2026-12-01",
    ];
    args.extend_from_slice(extra);
    let run = recon(&root(), &args);
    assert!(
        run.stderr().is_empty(),
        "no warnings or errors expected\n{}",
        run.described
    );
    // The table names the output folder, which is a temporary path here.
    let stdout = run.stdout().replace(out_arg.to_str().unwrap(), "OUT");
    fs::write(out_arg.join("stdout.txt"), stdout).unwrap();
    (run.code(), out)
}

fn check_fixture(case: &str, want_code: i32, extra: &[&str]) {
    let (code, out) = run_fixture(case, extra);
    let expected = root().join("fixtures").join(case).join("expected");
    if !update_expected(&out.path().join("o"), &expected) {
        assert_same_dir(&out.path().join("o"), &expected);
    }
    assert_eq!(code, want_code, "exit code of fixture {case}");
}

#[test]
fn shop_finds_every_planted_break() {
    check_fixture("shop", 1, &[]);
}

#[test]
fn stripe_real_exports() {
    check_fixture("stripe", 1, &[]);
}

#[test]
fn same_bytes_whatever_the_partition_count() {
    // Each partition is matched on its own and only the records behind findings are kept: the
    // outputs must still be the hand-checked ones, byte for byte.
    for n in ["2", "16", "4096"] {
        check_fixture("shop", 1, &["--partitions", n]);
        check_fixture("stripe", 1, &["--partitions", n]);
    }
}

#[test]
fn same_bytes_whatever_the_thread_count() {
    let (c1, one) = run_fixture("shop", &["--threads", "1"]);
    let (c2, two) = run_fixture("shop", &["--threads", "2"]);
    let (c3, default) = run_fixture("shop", &[]);
    assert_eq!((c1, c2, c3), (1, 1, 1));
    assert_same_dir(&one.path().join("o"), &two.path().join("o"));
    assert_same_dir(&one.path().join("o"), &default.path().join("o"));
}

#[test]
fn quiet_prints_nothing_and_keeps_the_exit_code() {
    let out = tempfile::tempdir().unwrap();
    let run = recon(
        &root(),
        &[
            "run",
            "-c",
            "fixtures/shop/recon.toml",
            "-o",
            out.path().to_str().unwrap(),
            "--quiet",
        ],
    );
    run.expect_code(1);
    assert_eq!(run.stdout(), "", "{}", run.described);
    assert_eq!(
        common::files(out.path()),
        [
            "breaks.csv",
            "flows.csv",
            "rejects.csv",
            "repairs.jsonl",
            "resolved.csv",
            "summary.json"
        ]
    );
}

#[test]
fn explain_names_the_repair() {
    let run = recon(&root(), &["explain", "duplicate"]);
    run.expect_code(0);
    assert!(
        run.stdout()
            .starts_with("duplicate (repair: reverse, review)\n"),
        "{}",
        run.described
    );
    let run = recon(&root(), &["explain", "late"]);
    run.expect_code(0);
    assert!(
        run.stdout().starts_with("late (repair: none)\n"),
        "{}",
        run.described
    );
    let run = recon(&root(), &["explain", "dupe"]);
    run.expect_code(2);
    assert!(
        run.stderr()
            .contains("no break kind \"dupe\"; kinds: missing, unexpected"),
        "{}",
        run.described
    );
}

#[test]
fn progress_goes_to_stderr_only_when_asked_or_on_a_terminal() {
    let out = tempfile::tempdir().unwrap();
    let run = |progress: Option<&str>, extra: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_recon"));
        cmd.current_dir(root())
            .args([
                "run",
                "-c",
                "fixtures/shop/recon.toml",
                "--date",
                "2026-12-01",
            ])
            .arg("-o")
            .arg(out.path().join("o"))
            .args(extra)
            .env_remove("RECON_PROGRESS");
        if let Some(v) = progress {
            cmd.env("RECON_PROGRESS", v);
        }
        let o = cmd.output().unwrap();
        assert_eq!(o.status.code(), Some(1));
        String::from_utf8(o.stderr).unwrap()
    };
    // Not a terminal (a cron job, a pipe): quiet.
    assert_eq!(run(None, &[]), "");
    assert_eq!(run(Some("0"), &["--partitions", "4"]), "");
    // Asked for: each phase, with the seconds since the start, and the rows read per source.
    let said = run(Some("1"), &["--partitions", "4", "-q"]);
    let phases: Vec<&str> = said
        .lines()
        .map(|l| l.split_once("s] ").expect("[   0.00s] what").1)
        .collect();
    assert_eq!(phases[0], "loading 4 source(s) for 2026-12-01", "{said}");
    assert!(
        phases.contains(&"  orders: 37 rows read, 0 rejected"),
        "{said}"
    );
    assert!(
        phases.contains(&"matching and classifying 3 check(s) in 4 partition(s)"),
        "{said}"
    );
    assert_eq!(phases.last(), Some(&"done"), "{said}");
}
