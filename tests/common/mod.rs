//! Shared helpers for integration tests: run the real binary, show everything when it fails, and
//! compare output folders file by file.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (where `fixtures/` lives).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The result of one `recon` invocation, with a description used in assertion messages.
pub struct Run {
    pub output: Output,
    pub described: String,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    /// Asserts the exit code, printing the whole invocation when it differs.
    pub fn expect_code(&self, want: i32) -> &Self {
        assert_eq!(
            self.code(),
            want,
            "unexpected exit code\n{}",
            self.described
        );
        self
    }
}

/// Runs the built `recon` binary with `args` in `cwd`.
pub fn recon(cwd: &Path, args: &[&str]) -> Run {
    let bin = env!("CARGO_BIN_EXE_recon");
    let output = Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("recon binary runs");
    let described = format!(
        "command: {bin} {}\ncwd: {}\nstatus: {}\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        cwd.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Run { output, described }
}

/// The regular files of a folder, by name, skipping hidden files.
pub fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

/// Asserts two folders hold the same files with the same bytes; shows the first differing line.
pub fn assert_same_dir(actual: &Path, expected: &Path) {
    assert_eq!(
        files(actual),
        files(expected),
        "file lists differ: {} vs {}",
        actual.display(),
        expected.display()
    );
    for name in files(expected) {
        assert_same_file(&actual.join(&name), &expected.join(&name));
    }
}

pub fn assert_same_file(actual: &Path, expected: &Path) {
    let a = fs::read_to_string(actual).unwrap_or_else(|e| panic!("{}: {e}", actual.display()));
    let e = fs::read_to_string(expected).unwrap_or_else(|e| panic!("{}: {e}", expected.display()));
    if a != e {
        let line = a
            .lines()
            .zip(e.lines())
            .position(|(x, y)| x != y)
            .unwrap_or(a.lines().count().min(e.lines().count()));
        panic!(
            "{} differs from {} at line {}:\n  actual:   {:?}\n  expected: {:?}\n(set RECON_UPDATE_EXPECTED=1 to rewrite expected files, then check the diff by hand)",
            actual.display(),
            expected.display(),
            line + 1,
            a.lines().nth(line),
            e.lines().nth(line)
        );
    }
}

/// Copies `actual` over `expected` when RECON_UPDATE_EXPECTED is set; returns whether it did.
pub fn update_expected(actual: &Path, expected: &Path) -> bool {
    if std::env::var_os("RECON_UPDATE_EXPECTED").is_none() {
        return false;
    }
    fs::create_dir_all(expected).unwrap();
    for name in files(actual) {
        fs::copy(actual.join(&name), expected.join(&name)).unwrap();
    }
    true
}
