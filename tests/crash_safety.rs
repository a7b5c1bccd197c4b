//! A run killed at any point leaves the previous complete outputs or the new complete ones, never a
//! mix; a second run into the same folder is refused while one holds it.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use sha2::Digest as _;

const CONFIG: &str = r#"
[[source]]
name = "from"
format = "csv"
path = "from.csv"
key = { column = "k" }
amount = { column = "amt" }
currency = { value = "EUR" }

[[source]]
name = "to"
format = "csv"
path = "to.csv"
key = { column = "k" }
amount = { column = "amt" }
currency = { value = "EUR" }

[[check]]
name = "c"
from = "from"
to = "to"
"#;

/// Writes a case whose outputs are large (every other key missing, a third mismatched); `variant`
/// shifts the amounts so the two variants' outputs differ in every file but rejects.csv.
fn write_case(dir: &Path, rows: usize, variant: i64) {
    let (mut from, mut to) = (String::from("k,amt\n"), String::from("k,amt\n"));
    for i in 0..rows {
        let cents = 1000 + i as i64 + variant;
        writeln!(from, "K{i:07},{}.{:02}", cents / 100, cents % 100).unwrap();
        if i % 2 == 0 {
            let cents = if i % 3 == 0 { cents + 1 } else { cents };
            writeln!(to, "K{i:07},{}.{:02}", cents / 100, cents % 100).unwrap();
        }
    }
    fs::write(dir.join("from.csv"), from).unwrap();
    fs::write(dir.join("to.csv"), to).unwrap();
    fs::write(dir.join("recon.toml"), CONFIG).unwrap();
}

fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    common::files(dir)
        .into_iter()
        .map(|n| (n.clone(), fs::read(dir.join(&n)).unwrap()))
        .collect()
}

#[test]
fn a_killed_run_never_leaves_a_mix() {
    let work = tempfile::tempdir().unwrap();
    let (a, b) = (work.path().join("a"), work.path().join("b"));
    fs::create_dir_all(&a).unwrap();
    fs::create_dir_all(&b).unwrap();
    write_case(&a, 12_000, 0);
    write_case(&b, 12_000, 7);
    let out = work.path().join("out");
    let out_arg = out.to_str().unwrap().to_string();
    let run = |case: &Path| {
        Command::new(env!("CARGO_BIN_EXE_recon"))
            .args([
                "run",
                "-q",
                "-c",
                case.join("recon.toml").to_str().unwrap(),
                "-o",
                &out_arg,
            ])
            .spawn()
            .unwrap()
    };
    // The two complete sets, and how long a whole run takes.
    let started = Instant::now();
    assert_eq!(run(&b).wait().unwrap().code(), Some(1));
    let full = started.elapsed();
    let set_b = snapshot(&out);
    assert_eq!(run(&a).wait().unwrap().code(), Some(1));
    let set_a = snapshot(&out);
    assert_ne!(set_a["breaks.csv"], set_b["breaks.csv"]);
    assert_eq!(set_a.len(), 6);

    // 50 kill points spread over the whole run, alternating which case is being written.
    let points = 50;
    let (mut seen_new, mut cut_short) = (0, 0);
    for i in 0..points {
        let (case, new_set) = if i % 2 == 0 {
            (&b, &set_b)
        } else {
            (&a, &set_a)
        };
        let before = snapshot(&out);
        let mut child = run(case);
        // Up to 1.5 times a whole run, so that a slower run under load is still covered to its end.
        std::thread::sleep(full.mul_f64(1.5 * i as f64 / points as f64));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let after = snapshot(&out);
        assert!(
            after == before || after == *new_set,
            "kill point {i}/{points}: output folder holds neither the previous nor the new complete set: {:?}",
            after.keys().collect::<Vec<_>>()
        );
        seen_new += usize::from(after == *new_set && before != *new_set);
        cut_short += usize::from(after == before && before != *new_set);
    }
    // The points did not all fall before writing began, nor all after it ended.
    assert!(
        seen_new > 0,
        "no kill point came after a publication (full run {full:?})"
    );
    assert!(
        cut_short > 0,
        "no kill point came before a publication (full run {full:?})"
    );
    // A later run clears what killed runs left beside --out, and succeeds.
    assert_eq!(run(&a).wait().unwrap().code(), Some(1));
    assert_eq!(snapshot(&out), set_a);
    let leftovers: Vec<String> = fs::read_dir(work.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("recon-new"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "staging folders left behind: {leftovers:?}"
    );
}

#[test]
fn a_second_run_into_the_same_folder_is_refused() {
    let work = tempfile::tempdir().unwrap();
    write_case(work.path(), 10, 0);
    // Hold the lock as a running recon would.
    let lock = fs::File::create(work.path().join(".out.recon.lock")).unwrap();
    lock.try_lock().unwrap();
    let refused = common::recon(work.path(), &["run", "-c", "recon.toml", "-o", "out"]);
    refused.expect_code(2);
    assert!(
        refused
            .stderr()
            .contains("another recon run is writing into out (it holds ./.out.recon.lock)"),
        "{}",
        refused.described
    );
    assert!(!work.path().join("out").exists());
    drop(lock);
    common::recon(work.path(), &["run", "-q", "-c", "recon.toml", "-o", "out"]).expect_code(1);
    // A lock left behind by a killed run is free again: the kernel released it with the process.
    common::recon(work.path(), &["run", "-q", "-c", "recon.toml", "-o", "out"]).expect_code(1);
}

#[test]
fn a_folder_with_other_files_is_not_replaced() {
    let work = tempfile::tempdir().unwrap();
    write_case(work.path(), 10, 0);
    fs::create_dir(work.path().join("out")).unwrap();
    fs::write(work.path().join("out/notes.txt"), "mine").unwrap();
    let args = ["run", "-c", "recon.toml", "-o", "out", "--state", "state"];
    let run = common::recon(work.path(), &args);
    run.expect_code(2);
    assert!(
        run.stderr()
            .contains("--out out holds files recon did not write (notes.txt)"),
        "{}",
        run.described
    );
    assert_eq!(
        fs::read_to_string(work.path().join("out/notes.txt")).unwrap(),
        "mine"
    );
    // Refused before the night's state moved on: its outputs were never published.
    let state = work.path().join("state");
    assert!(!state.exists() || common::files(&state).is_empty());
}

#[test]
fn outputs_moved_aside_by_a_killed_swap_are_put_back() {
    // Where the file system cannot swap two folders, the old outputs are moved aside before the
    // new ones move in; a run killed between the two leaves no --out and the old ones aside.
    let work = tempfile::tempdir().unwrap();
    write_case(work.path(), 10, 0);
    common::recon(work.path(), &["run", "-q", "-c", "recon.toml", "-o", "out"]).expect_code(1);
    let before = snapshot(&work.path().join("out"));
    fs::rename(
        work.path().join("out"),
        work.path().join(".out.recon-new-77.old"),
    )
    .unwrap();
    // Staging folders of `--out out.recon-new-1` (another folder) are not ours to take.
    let theirs = work.path().join(".out.recon-new-1.recon-new-78.old");
    fs::create_dir(&theirs).unwrap();
    // A run that fails after taking the lock publishes nothing: the old outputs are back.
    let args = [
        "run",
        "-q",
        "-c",
        "recon.toml",
        "-o",
        "out",
        "--partitions",
        "2",
    ];
    let run = common::recon(work.path(), &[&args[..], &["--spill", "nowhere"]].concat());
    run.expect_code(2);
    assert_eq!(snapshot(&work.path().join("out")), before);
    assert!(!work.path().join(".out.recon-new-77.old").exists());
    assert!(theirs.exists());
}

#[test]
fn the_summary_names_the_bytes_of_the_other_outputs() {
    let work = tempfile::tempdir().unwrap();
    write_case(work.path(), 100, 0);
    common::recon(work.path(), &["run", "-q", "-c", "recon.toml", "-o", "out"]).expect_code(1);
    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(work.path().join("out/summary.json")).unwrap())
            .unwrap();
    for name in ["breaks.csv", "repairs.jsonl", "rejects.csv"] {
        let bytes = fs::read(work.path().join("out").join(name)).unwrap();
        let digest: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(summary["outputs"][name]["bytes"], bytes.len(), "{name}");
        assert_eq!(summary["outputs"][name]["sha256"], digest, "{name}");
    }
}

#[test]
fn out_dot_names_the_folder_and_a_folder_named_like_an_output_is_foreign() {
    let work = tempfile::tempdir().unwrap();
    write_case(work.path(), 10, 0);
    common::recon(
        work.path(),
        &["run", "-q", "-c", "recon.toml", "-o", "out/."],
    )
    .expect_code(1);
    common::recon(
        work.path(),
        &["run", "-q", "-c", "recon.toml", "-o", "./out/"],
    )
    .expect_code(1);
    assert_eq!(common::files(&work.path().join("out")).len(), 6);
    fs::remove_file(work.path().join("out/breaks.csv")).unwrap();
    fs::create_dir(work.path().join("out/breaks.csv")).unwrap();
    fs::write(work.path().join("out/breaks.csv/mine.txt"), "keep me").unwrap();
    let run = common::recon(work.path(), &["run", "-c", "recon.toml", "-o", "out"]);
    run.expect_code(2);
    assert!(
        run.stderr()
            .contains("holds files recon did not write (breaks.csv)"),
        "{}",
        run.described
    );
    assert!(work.path().join("out/breaks.csv/mine.txt").exists());
}
