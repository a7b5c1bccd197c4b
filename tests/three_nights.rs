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
    let out = work.join(format!("out-{date}"));
    let state = work.join("state");
    let run = recon(
        &root(),
        &[
            "run",
            "--config",
            "fixtures/three_nights/recon.toml",
            "--date",
            date,
            "--state",
            state.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
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
fn re_running_a_night_changes_nothing() {
    let work = tempfile::tempdir().unwrap();
    run_night(work.path(), NIGHTS[0]);
    run_night(work.path(), NIGHTS[1]);
    let first = work.path().join("first");
    fs::rename(work.path().join(format!("seen-{}", NIGHTS[1])), &first).unwrap();
    // The same night again: it starts from the first night's state, not from its own.
    run_night(work.path(), NIGHTS[1]);
    assert_same_dir(&work.path().join(format!("seen-{}", NIGHTS[1])), &first);
    // And the night after still sees exactly what it would have.
    run_night(work.path(), NIGHTS[2]);
    assert_same_dir(
        &work.path().join(format!("seen-{}", NIGHTS[2])),
        &expected(NIGHTS[2]),
    );
}

#[test]
fn a_night_without_state_reports_only_what_it_sees() {
    // Night two alone: nothing carried in, so A03's payment and A02's bank credit are orphans
    // inside no window (unexpected), and nothing is resolved.
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("o");
    let run = recon(
        &root(),
        &[
            "run",
            "-q",
            "-c",
            "fixtures/three_nights/recon.toml",
            "--date",
            NIGHTS[1],
            "-o",
            out.to_str().unwrap(),
        ],
    );
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
