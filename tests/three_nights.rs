//! fixtures/three_nights: three nightly runs sharing one `--state` folder. Each night's outputs,
//! its stdout and the state it leaves must equal `expected/<date>/`; re-running a night changes
//! nothing.

mod common;

use std::fs;
use std::path::Path;

use common::{assert_same_dir, recon, root, update_expected};

const NIGHTS: [&str; 3] = ["2026-10-24", "2026-10-25", "2026-10-26"];

/// Runs one night into `work/out-<date>`, then gathers its outputs, stdout and the state file it
/// wrote into `work/seen-<date>`, which is compared with the expected folder. Returns the exit code.
fn run_night(work: &Path, date: &str) -> i32 {
    run_night_with(work, date, &[])
}

/// [`run_night`] with more arguments.
fn run_night_with(work: &Path, date: &str, extra: &[&str]) -> i32 {
    let out = work.join(format!("out-{date}"));
    let state = work.join("state");
    let run = night(date, Some(&state), &out, false, extra);
    assert!(
        run.stderr().is_empty(),
        "no warnings expected\n{}",
        run.described
    );
    let seen = work.join(format!("seen-{date}"));
    let _ = fs::remove_dir_all(&seen);
    fs::create_dir_all(&seen).unwrap();
    for name in common::files(&out) {
        fs::copy(out.join(&name), seen.join(&name)).unwrap();
    }
    let stdout = run.stdout().replace(out.to_str().unwrap(), "OUT");
    fs::write(seen.join("stdout.txt"), stdout).unwrap();
    fs::copy(state.join(format!("{date}.json")), seen.join("state.json"))
        .unwrap_or_else(|e| panic!("no state written for {date}: {e}\n{}", run.described));
    run.code()
}

/// Runs the fixture's config for `date` with `--state` (if given) into `out`.
fn night(date: &str, state: Option<&Path>, out: &Path, quiet: bool, extra: &[&str]) -> common::Run {
    let mut args = vec![
        "run",
        "-c",
        "fixtures/three_nights/recon.toml",
        "--date",
        date,
    ];
    args.extend(["-o", out.to_str().unwrap()]);
    if let Some(state) = state {
        args.extend(["--state", state.to_str().unwrap()]);
    }
    if quiet {
        args.push("-q");
    }
    args.extend_from_slice(extra);
    recon(&root(), &args)
}

fn expected(date: &str) -> std::path::PathBuf {
    root().join("fixtures/three_nights/expected").join(date)
}

#[test]
fn three_nights_night_by_night() {
    let work = tempfile::tempdir().unwrap();
    for date in NIGHTS {
        let code = run_night(work.path(), date);
        let seen = work.path().join(format!("seen-{date}"));
        if !update_expected(&seen, &expected(date)) {
            assert_same_dir(&seen, &expected(date));
        }
        assert_eq!(code, 1, "night {date}: breaks are open every night");
    }
}

#[test]
fn three_nights_in_partitions_give_the_same_outputs_and_state() {
    // Carried records, flows and resolutions cross partitions only through the state: split into
    // 8 partitions (every key of this fixture alone in one, or nearly), nothing may change.
    let work = tempfile::tempdir().unwrap();
    for date in NIGHTS {
        let code = run_night_with(work.path(), date, &["--partitions", "8"]);
        assert_same_dir(&work.path().join(format!("seen-{date}")), &expected(date));
        assert_eq!(code, 1);
    }
}

#[test]
fn re_running_a_night_changes_nothing() {
    let work = tempfile::tempdir().unwrap();
    for date in NIGHTS {
        run_night(work.path(), date);
        let first = work.path().join(format!("first-{date}"));
        fs::rename(work.path().join(format!("seen-{date}")), &first).unwrap();
        // The same night again: it starts from the state before it, not from its own.
        run_night(work.path(), date);
        assert_same_dir(&work.path().join(format!("seen-{date}")), &first);
        assert_same_dir(&first, &expected(date));
    }
}

#[test]
fn a_night_without_state_reports_only_what_it_sees() {
    // Night two alone: nothing carried in, so A03's payment and A02's bank credit are orphans
    // inside no window (unexpected), and nothing is resolved.
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("o");
    let run = night(NIGHTS[1], None, &out, true, &[]);
    run.expect_code(1);
    let breaks = fs::read_to_string(out.join("breaks.csv")).unwrap();
    let unexpected: Vec<&str> = breaks
        .lines()
        .filter(|l| l.contains(",unexpected,"))
        .map(|l| l.split(',').take(3).collect::<Vec<_>>()[2])
        .collect();
    assert_eq!(unexpected, ["A03", "A06", "A11", "A02"], "{breaks}");
    let resolved = fs::read_to_string(out.join("resolved.csv")).unwrap();
    assert_eq!(resolved.lines().count(), 1, "header only: {resolved}");
    assert!(!work.path().join("state").exists());
}

#[test]
fn a_skipped_night_is_warned_about_and_nothing_is_replayed_blindly() {
    let work = tempfile::tempdir().unwrap();
    run_night(work.path(), NIGHTS[0]);
    let out = work.path().join("o");
    let run = night(NIGHTS[2], Some(&work.path().join("state")), &out, true, &[]);
    run.expect_code(1);
    assert!(
        run.stderr()
            .contains("warning: the newest state before 2026-10-26 is from 2026-10-24"),
        "{}",
        run.described
    );
    let plan = fs::read_to_string(out.join("repairs.jsonl")).unwrap();
    let replays: Vec<serde_json::Value> = plan
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["action"] == "replay")
        .collect();
    // A03 and A06 were captured on the skipped night, and look missing; A04, A13 and the 36.00
    // adjustment of A05 really are.
    let keys: Vec<&str> = replays.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["A03", "A04", "A06", "A05", "A13"], "{plan}");
    for r in &replays {
        assert_eq!(r["automation"], "review", "{r}");
        assert!(
            r["note"]
                .as_str()
                .unwrap()
                .contains("the nights between were not run"),
            "{r}"
        );
    }
}

#[test]
fn a_source_that_may_be_empty_may_also_have_no_file() {
    // No bank statement on some day: with allow_empty the night runs; without it, it stops.
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("fx");
    let src = root().join("fixtures/three_nights");
    for sub in ["orders", "payments", "ledger"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
        let name = format!(
            "{sub}/2026-10-24.{}",
            if sub == "orders" { "jsonl" } else { "csv" }
        );
        fs::copy(src.join(&name), dir.join(&name)).unwrap();
    }
    fs::create_dir_all(dir.join("bank")).unwrap();
    fs::copy(src.join("holidays.txt"), dir.join("holidays.txt")).unwrap();
    let config = fs::read_to_string(src.join("recon.toml")).unwrap();
    fs::write(dir.join("recon.toml"), &config).unwrap();
    let args = |out: &str| {
        vec![
            "run".to_string(),
            "-q".into(),
            "-c".into(),
            dir.join("recon.toml").to_str().unwrap().into(),
            "--date".into(),
            NIGHTS[0].into(),
            "-o".into(),
            work.path().join(out).to_str().unwrap().into(),
        ]
    };
    let a = args("o1");
    let run = recon(&root(), &a.iter().map(String::as_str).collect::<Vec<_>>());
    run.expect_code(2);
    assert!(
        run.stderr().contains("matched no file"),
        "{}",
        run.described
    );
    let allowing = config.replace("read_only = true", "read_only = true\nallow_empty = true");
    fs::write(dir.join("recon.toml"), allowing).unwrap();
    let a = args("o2");
    let run = recon(&root(), &a.iter().map(String::as_str).collect::<Vec<_>>());
    run.expect_code(1);
    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(work.path().join("o2/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["sources"][3]["name"], "bank");
    assert_eq!(summary["sources"][3]["rows_read"], 0);
    assert_eq!(summary["incomplete_reasons"], serde_json::json!([]));
}
