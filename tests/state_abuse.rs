//! `--state` under abuse: folders read again, sources without time, configs that change between
//! nights, state files that cannot be written or were edited by hand.

mod common;

use std::fs;
use std::path::Path;

use common::recon;

const CONFIG: &str = r#"
[[source]]
name = "a"
format = "csv"
path = "a/PATH"
key = { column = "id" }
amount = { column = "amt" }
currency = { value = "EUR" }
TIME

[[source]]
name = "b"
format = "csv"
path = "b/PATH"
key = { column = "id" }
amount = { column = "amt" }
currency = { value = "EUR" }
TIME

[[check]]
name = "ab"
from = "a"
to = "b"
window = "WINDOW"
"#;

fn config(path: &str, time: &str, window: &str) -> String {
    CONFIG
        .replace("PATH", path)
        .replace("TIME", time)
        .replace("WINDOW", window)
}

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

/// Runs night `date` in `dir` with state `dir/st`, output `dir/out-<date>`; returns the run.
fn night(dir: &Path, date: &str) -> common::Run {
    let out = format!("out-{date}");
    recon(
        dir,
        &[
            "run",
            "-q",
            "-c",
            "recon.toml",
            "--date",
            date,
            "--state",
            "st",
            "-o",
            &out,
        ],
    )
}

fn breaks(dir: &Path, date: &str) -> Vec<String> {
    let text = fs::read_to_string(dir.join(format!("out-{date}/breaks.csv"))).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').take(3).collect::<Vec<_>>().join(","))
        .collect()
}

/// A dated folder per source (`a/<date>.csv`, `b/<date>.csv`, columns `id,amt,t`, either may be
/// empty), a check with no window; `nights` gives each night's rows of a and of b.
fn dated_nights(dir: &Path, nights: &[(&str, &str, &str)]) {
    let time = "time = { column = \"t\" }\nallow_empty = true";
    write(dir, "recon.toml", &config("{date}.csv", time, "0d"));
    for (date, a, b) in nights {
        write(dir, &format!("a/{date}.csv"), &format!("id,amt,t\n{a}"));
        write(dir, &format!("b/{date}.csv"), &format!("id,amt,t\n{b}"));
    }
}

fn repairs(dir: &Path, date: &str) -> Vec<serde_json::Value> {
    let text = fs::read_to_string(dir.join(format!("out-{date}/repairs.jsonl"))).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn summary(dir: &Path, date: &str) -> serde_json::Value {
    let text = fs::read_to_string(dir.join(format!("out-{date}/summary.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn a_folder_read_again_does_not_count_a_carried_record_twice() {
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    write(
        d,
        "recon.toml",
        &config("*.csv", r#"time = { column = "t" }"#, "2d"),
    );
    write(
        d,
        "a/2026-03-02.csv",
        "id,amt,t\nK1,10.00,2026-03-02T10:00:00Z\nK2,20.00,2026-03-02T10:00:00Z\nK3,5.00,2026-03-02T10:00:00Z\n",
    );
    write(
        d,
        "b/2026-03-02.csv",
        "id,amt,t\nK1,10.00,2026-03-02T11:00:00Z\nK3,6.00,2026-03-02T10:00:00Z\n",
    );
    night(d, "2026-03-02").expect_code(1);
    let first = breaks(d, "2026-03-02");
    assert_eq!(first, ["ab,pending,K2", "ab,amount_mismatch,K3"]);
    // The next night's folder still holds yesterday's files, plus one new pair.
    write(
        d,
        "a/2026-03-03.csv",
        "id,amt,t\nK4,1.00,2026-03-03T10:00:00Z\n",
    );
    write(
        d,
        "b/2026-03-03.csv",
        "id,amt,t\nK4,1.00,2026-03-03T10:00:00Z\n",
    );
    night(d, "2026-03-03").expect_code(1);
    assert_eq!(breaks(d, "2026-03-03"), first);
}

#[test]
fn a_quiet_night_with_only_carried_records_on_one_side_is_no_wrong_key_column() {
    // Night 2: a sends nothing, b one new record. a's only record is K2, carried since night 1:
    // the sides share no key, but that is a quiet night, not a key mapping gone wrong, and K2's
    // replay stands as it was (a wrong mapping would have shown on night 1).
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let at = |date: &str| format!("{date}T10:00:00Z");
    let (n1, n2) = (at("2026-03-02"), at("2026-03-03"));
    dated_nights(
        d,
        &[
            (
                "2026-03-02",
                &format!("K1,1.00,{n1}\nK2,2.00,{n1}\n"),
                &format!("K1,1.00,{n1}\n"),
            ),
            ("2026-03-03", "", &format!("X3,3.00,{n2}\n")),
        ],
    );
    night(d, "2026-03-02").expect_code(1);
    let first = repairs(d, "2026-03-02");
    assert_eq!((first.len(), &first[0]["action"]), (1, &"replay".into()));
    let second = night(d, "2026-03-03");
    second.expect_code(1);
    assert_eq!(
        breaks(d, "2026-03-03"),
        ["ab,missing,K2", "ab,unexpected,X3"]
    );
    let replay = repairs(d, "2026-03-03")
        .into_iter()
        .find(|r| r["key"] == "K2")
        .unwrap();
    assert_eq!(replay["action"], "replay");
    assert_eq!(replay["id"], first[0]["id"]);
    assert_eq!(
        summary(d, "2026-03-03")["warnings"],
        serde_json::json!([]),
        "{}",
        second.stderr()
    );
}

#[test]
fn a_key_carried_in_does_not_hide_that_tonight_s_keys_share_none() {
    // Night 2: the key format broke on b (PSP-N1 for N1), while M1, open since night 1, is
    // carried on both sides. Tonight's records share no key: the replays are held back, as they
    // are without --state, and the warning is given.
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let (n1, n2) = ("2026-03-02T10:00:00Z", "2026-03-03T10:00:00Z");
    dated_nights(
        d,
        &[
            (
                "2026-03-02",
                &format!("M1,10.00,{n1}\n"),
                &format!("M1,8.00,{n1}\n"),
            ),
            (
                "2026-03-03",
                &format!("N1,1.00,{n2}\nN2,2.00,{n2}\n"),
                &format!("PSP-N1,1.00,{n2}\nPSP-N2,2.00,{n2}\n"),
            ),
        ],
    );
    night(d, "2026-03-02").expect_code(1);
    night(d, "2026-03-03").expect_code(1);
    let replays: Vec<serde_json::Value> = repairs(d, "2026-03-03")
        .into_iter()
        .filter(|r| r["kind"] == "missing")
        .collect();
    assert_eq!(replays.len(), 2, "{replays:?}");
    for r in &replays {
        assert_eq!(r["action"], "investigate", "{r}");
    }
    let warnings = &summary(d, "2026-03-03")["warnings"];
    assert_eq!(warnings.as_array().map(Vec::len), Some(1), "{warnings}");
}

#[test]
fn postings_read_again_from_their_file_correct_nothing() {
    // The folder keeps night 1's files. Night 2 brings nothing new for S1 (a duplicate and an
    // amount mismatch): its postings read again are the same ones, not a correction.
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    write(
        d,
        "recon.toml",
        &config(
            "*.csv",
            "time = { column = \"t\" }\nallow_empty = true",
            "0d",
        ),
    );
    let t = "2026-03-02T10:00:00Z";
    write(
        d,
        "a/2026-03-02.csv",
        &format!("id,amt,t\nS1,10.00,{t}\nM1,10.00,{t}\n"),
    );
    write(
        d,
        "b/2026-03-02.csv",
        &format!("id,amt,t\nS1,5.00,{t}\nS1,5.00,{t}\nM1,8.00,{t}\n"),
    );
    night(d, "2026-03-02").expect_code(1);
    let first = breaks(d, "2026-03-02");
    assert_eq!(
        first,
        [
            "ab,amount_mismatch,M1",
            "ab,duplicate,S1",
            "ab,amount_mismatch,S1"
        ]
    );
    // M1 gets its adjusting posting: that one is corrected.
    write(
        d,
        "b/2026-03-03.csv",
        "id,amt,t\nM1,2.00,2026-03-03T10:00:00Z\n",
    );
    night(d, "2026-03-03").expect_code(1);
    assert_eq!(breaks(d, "2026-03-03"), first[1..]);
    let resolved = fs::read_to_string(d.join("out-2026-03-03/resolved.csv")).unwrap();
    assert_eq!(resolved.lines().count(), 2, "{resolved}");
    assert!(resolved.contains("M1,amount_mismatch,"), "{resolved}");
    assert_eq!(summary(d, "2026-03-03")["checks"][0]["matched"]["count"], 1);
}

#[test]
fn a_correction_in_two_steps_resolves_on_the_second() {
    // 7.00 against 8.00; a -2.00 does not net out (a conflicting duplicate); a further 1.00 does.
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let at = |date: &str| format!("{date}T10:00:00Z");
    let (n1, n2, n3) = (at("2026-03-02"), at("2026-03-03"), at("2026-03-04"));
    dated_nights(
        d,
        &[
            (
                "2026-03-02",
                &format!("M1,7.00,{n1}\n"),
                &format!("M1,8.00,{n1}\n"),
            ),
            ("2026-03-03", "", &format!("M1,-2.00,{n2}\n")),
            ("2026-03-04", "", &format!("M1,1.00,{n3}\n")),
        ],
    );
    night(d, "2026-03-02").expect_code(1);
    night(d, "2026-03-03").expect_code(1);
    assert_eq!(breaks(d, "2026-03-03"), ["ab,conflicting_duplicate,M1"]);
    night(d, "2026-03-04").expect_code(0);
    assert!(breaks(d, "2026-03-04").is_empty());
    let resolved = fs::read_to_string(d.join("out-2026-03-04/resolved.csv")).unwrap();
    assert!(resolved.contains(",corrected,"), "{resolved}");
}

#[test]
fn a_corrected_key_counts_as_matched_for_what_its_postings_net_to() {
    // Night 1: a posts 100.00 where b has 110.00. Night 2: a posts the 10.00 difference, and the
    // key is corrected: matched for 110.00, not for its first posting's 100.00.
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    dated_nights(
        d,
        &[
            (
                "2026-03-02",
                "K1,100.00,2026-03-02T10:00:00Z\n",
                "K1,110.00,2026-03-02T10:00:00Z\n",
            ),
            ("2026-03-03", "K1,10.00,2026-03-03T10:00:00Z\n", ""),
        ],
    );
    night(d, "2026-03-02").expect_code(1);
    assert_eq!(breaks(d, "2026-03-02"), ["ab,amount_mismatch,K1"]);
    night(d, "2026-03-03").expect_code(0);
    let resolved = fs::read_to_string(d.join("out-2026-03-03/resolved.csv")).unwrap();
    assert!(resolved.contains(",corrected,"), "{resolved}");
    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(d.join("out-2026-03-03/summary.json")).unwrap())
            .unwrap();
    let matched = &summary["checks"][0]["matched"];
    assert_eq!(matched["count"], 1, "{summary}");
    assert_eq!(matched["amount"], serde_json::json!({"EUR": "110.00"}));
}

#[test]
fn a_line_that_now_holds_another_key_does_not_stand_in_for_the_carried_record() {
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    write(
        d,
        "recon.toml",
        &config("x.csv", r#"time = { column = "t" }"#, "2d"),
    );
    write(
        d,
        "a/x.csv",
        "id,amt,t\nK1,10.00,2026-03-02T10:00:00Z\nK2,20.00,2026-03-02T10:00:00Z\n",
    );
    write(d, "b/x.csv", "id,amt,t\nK1,10.00,2026-03-02T11:00:00Z\n");
    night(d, "2026-03-02").expect_code(0);
    write(
        d,
        "a/x.csv",
        "id,amt,t\nK1,10.00,2026-03-02T10:00:00Z\nK9,99.00,2026-03-03T10:00:00Z\n",
    );
    night(d, "2026-03-03").expect_code(0);
    let text = fs::read_to_string(d.join("out-2026-03-03/breaks.csv")).unwrap();
    let k2 = text
        .lines()
        .find(|l| l.contains(",K2,"))
        .expect("K2 still pending");
    assert!(k2.starts_with("ab,pending,K2,b,,,20.00,EUR,"), "{text}");
}

#[test]
fn an_epoch_in_the_wrong_unit_is_rejected_not_dated_in_the_far_future() {
    // Milliseconds in a seconds column would be the year 58886: pending for ever, and a time
    // the state file could not be read back with.
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let time = "time = { column = \"t\", format = \"epoch_s\" }\nmax_rejects = 1";
    write(d, "recon.toml", &config("x.csv", time, "1d"));
    write(
        d,
        "a/x.csv",
        "id,amt,t\nK1,1.00,1796112000\nK2,2.00,1796112000000\n",
    );
    write(d, "b/x.csv", "id,amt,t\nK1,1.00,1796112000\n");
    night(d, "2026-12-01").expect_code(0);
    let rejects = fs::read_to_string(d.join("out-2026-12-01/rejects.csv")).unwrap();
    assert!(
        rejects.contains(
            "a,a/x.csv,3,t,time out of range: not within the years 0000 to 9999 (an epoch in the wrong unit?),1796112000000"
        ),
        "{rejects}"
    );
    // The next night reads the state back.
    write(d, "a/x.csv", "id,amt,t\nK3,3.00,1796198400\n");
    write(d, "b/x.csv", "id,amt,t\nK3,3.00,1796198400\n");
    night(d, "2026-12-02").expect_code(0);
}

#[test]
fn a_carried_posting_is_found_again_on_another_line_and_not_lost_to_a_rewritten_one() {
    let time = r#"time = { column = "d", format = "%Y-%m-%d" }"#;
    // A file that grows with rows added on top: K1 moved from line 2 to line 3.
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    write(d, "recon.toml", &config("x.csv", time, "2d"));
    write(
        d,
        "a/x.csv",
        "id,amt,d\nK1,1.00,2026-12-01\nK2,2.00,2026-12-01\n",
    );
    write(d, "b/x.csv", "id,amt,d\nK2,2.00,2026-12-01\n");
    night(d, "2026-12-01").expect_code(0);
    assert_eq!(breaks(d, "2026-12-01"), ["ab,pending,K1"]);
    write(
        d,
        "a/x.csv",
        "id,amt,d\nK0,5.00,2026-12-02\nK1,1.00,2026-12-01\nK2,2.00,2026-12-01\n",
    );
    write(
        d,
        "b/x.csv",
        "id,amt,d\nK2,2.00,2026-12-01\nK0,5.00,2026-12-02\n",
    );
    night(d, "2026-12-02").expect_code(0);
    assert_eq!(breaks(d, "2026-12-02"), ["ab,pending,K1"]);
    // A file rewritten in place: its line 2 now holds another posting of K1, which does not
    // stand in for the one carried.
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    write(d, "recon.toml", &config("x.csv", time, "2d"));
    write(
        d,
        "a/x.csv",
        "id,amt,d\nK1,1.00,2026-12-01\nK5,5.00,2026-12-01\n",
    );
    write(d, "b/x.csv", "id,amt,d\nK5,5.00,2026-12-01\n");
    night(d, "2026-12-01").expect_code(0);
    write(
        d,
        "a/x.csv",
        "id,amt,d\nK1,7.00,2026-12-02\nK6,6.00,2026-12-02\n",
    );
    write(d, "b/x.csv", "id,amt,d\nK6,6.00,2026-12-02\n");
    night(d, "2026-12-02").expect_code(1);
    let found = breaks(d, "2026-12-02");
    assert!(
        found.contains(&"ab,conflicting_duplicate,K1".to_string()),
        "{found:?}"
    );
}

#[test]
fn without_times_the_posting_of_an_earlier_night_is_the_one_kept() {
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    write(
        d,
        "recon.toml",
        &config("{date}.csv", "allow_empty = true", "2d"),
    );
    write(d, "a/2026-12-01.csv", "id,amt\nK3,10.00\n");
    write(d, "b/2026-12-01.csv", "id,amt\nK3,10.00\nK3,10.00\n");
    write(d, "a/2026-12-02.csv", "id,amt\n");
    write(d, "b/2026-12-02.csv", "id,amt\nK3,10.00\n");
    night(d, "2026-12-01").expect_code(1);
    night(d, "2026-12-02").expect_code(1);
    let plan = fs::read_to_string(d.join("out-2026-12-02/repairs.jsonl")).unwrap();
    let reverse: serde_json::Value = serde_json::from_str(plan.lines().next().unwrap()).unwrap();
    assert_eq!(reverse["action"], "reverse", "{plan}");
    assert_eq!(reverse["keep"]["file"], "b/2026-12-01.csv", "{plan}");
    assert_eq!(reverse["keep"]["line"], 2, "{plan}");
    let reversed: Vec<String> = reverse["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{}:{}", e["file"].as_str().unwrap(), e["line"]))
        .collect();
    assert_eq!(reversed, ["b/2026-12-01.csv:3", "b/2026-12-02.csv:2"]);
}

#[test]
fn a_replay_held_back_stays_held_back_under_its_id_on_later_nights() {
    // Night 1: b rejects its row of R1, so R1's replay is held back (it would post R1 twice once
    // that row is fixed). Night 2 does not read that row again: the replay stays held back.
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let time = "time = { column = \"t\" }\nmax_rejects = 5\nallow_empty = true";
    write(d, "recon.toml", &config("{date}.csv", time, "0d"));
    write(
        d,
        "a/2026-12-01.csv",
        "id,amt,t\nR1,10.00,2026-12-01T10:00:00Z\nOK1,1.00,2026-12-01T10:00:00Z\n",
    );
    write(
        d,
        "b/2026-12-01.csv",
        "id,amt,t\nR1,10.0x,2026-12-01T10:00:00Z\nOK1,1.00,2026-12-01T10:00:00Z\n",
    );
    for side in ["a", "b"] {
        write(
            d,
            &format!("{side}/2026-12-02.csv"),
            "id,amt,t\nOK2,1.00,2026-12-02T10:00:00Z\n",
        );
    }
    let repair = |date: &str| -> serde_json::Value {
        night(d, date).expect_code(1);
        let plan = fs::read_to_string(d.join(format!("out-{date}/repairs.jsonl"))).unwrap();
        assert_eq!(plan.lines().count(), 1, "{plan}");
        serde_json::from_str(&plan).unwrap()
    };
    let first = repair("2026-12-01");
    assert_eq!(first["action"], "investigate");
    let why = "b has a rejected row with this key (b/2026-12-01.csv:2, see rejects.csv): fix that row instead of replaying";
    assert_eq!(first["note"], why);
    let second = repair("2026-12-02");
    assert_eq!(second["action"], "investigate");
    assert_eq!(second["automation"], "manual");
    assert_eq!(second["id"], first["id"]);
    assert_eq!(
        second["note"],
        format!("held back since it was first seen: {why}")
    );
}

#[test]
fn a_source_without_time_takes_the_night_it_was_read_and_escalates() {
    // Also where the folder keeps night 1's file and P1 is read again on night 2: it keeps the
    // night that first read it, and its window closes.
    for path in ["{date}.csv", "*.csv"] {
        let work = tempfile::tempdir().unwrap();
        let d = work.path();
        write(d, "recon.toml", &config(path, "", "1d"));
        for day in ["02", "03"] {
            let extra = if day == "02" { "P1,5.00\n" } else { "" };
            write(
                d,
                &format!("a/2026-03-{day}.csv"),
                &format!("id,amt\nX{day},1.00\n{extra}"),
            );
            write(
                d,
                &format!("b/2026-03-{day}.csv"),
                &format!("id,amt\nX{day},1.00\n"),
            );
        }
        night(d, "2026-03-02").expect_code(0);
        assert_eq!(breaks(d, "2026-03-02"), ["ab,pending,P1"], "{path}");
        night(d, "2026-03-03").expect_code(1);
        assert_eq!(breaks(d, "2026-03-03"), ["ab,missing,P1"], "{path}");
    }
}

#[test]
fn a_mapping_changed_between_nights_stops_the_run_with_the_reason() {
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    write(d, "recon.toml", &config("{date}.csv", "", "1d"));
    write(
        d,
        "a/2026-03-02.csv",
        "id,amt,ch\nK1,1.00,web\nK2,1.00,web\n",
    );
    write(d, "b/2026-03-02.csv", "id,amt,ch\nK2,1.00,web\n");
    write(d, "a/2026-03-03.csv", "id,amt,ch\nK3,1.00,web\n");
    write(d, "b/2026-03-03.csv", "id,amt,ch\nK3,1.00,web\n");
    night(d, "2026-03-02").expect_code(0);
    let changed = config("{date}.csv", r#"extra = { channel = "ch" }"#, "1d").replace(
        "window = \"1d\"",
        "window = \"1d\"\ncompare = [\"amount\", \"channel\"]",
    );
    write(d, "recon.toml", &changed);
    let run = night(d, "2026-03-03");
    run.expect_code(2);
    assert!(
        run.stderr()
            .contains("source \"a\" mapped [] when it was written and maps [extra.channel] now"),
        "{}",
        run.described
    );
    assert!(!d.join("st/2026-03-03.json").exists());
}

#[test]
fn a_state_that_cannot_be_written_publishes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    write(d, "recon.toml", &config("{date}.csv", "", "1d"));
    write(d, "a/2026-03-02.csv", "id,amt\nK1,1.00\n");
    write(d, "b/2026-03-02.csv", "id,amt\nK1,1.00\n");
    fs::create_dir_all(d.join("st/2026-03-02.json/x")).unwrap();
    let run = night(d, "2026-03-02");
    run.expect_code(2);
    assert!(
        run.stderr().contains("cannot write state"),
        "{}",
        run.described
    );
    assert!(!d.join("out-2026-03-02").exists(), "{}", run.described);
}

#[test]
fn a_hand_edited_state_with_impossible_values_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    write(d, "recon.toml", &config("{date}.csv", "", "1d"));
    for day in ["02", "03"] {
        write(
            d,
            &format!("a/2026-03-{day}.csv"),
            "id,amt\nK1,1.00\nK2,1.00\n",
        );
        write(d, &format!("b/2026-03-{day}.csv"), "id,amt\nK2,1.00\n");
    }
    night(d, "2026-03-02").expect_code(0);
    let path = d.join("st/2026-03-02.json");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(
        &path,
        text.replace(
            "\"first_seen\": \"2026-03-02\"",
            "\"first_seen\": \"2026-04-02\"",
        ),
    )
    .unwrap();
    let run = night(d, "2026-03-03");
    run.expect_code(2);
    assert!(run.stderr().contains("first_seen"), "{}", run.described);
}
