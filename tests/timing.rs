//! Settlement timing end to end: `window` and `lead` in both directions, business-day windows that
//! stretch over weekends and a holiday file, `{date+1}` paths, ageing buckets over many nights,
//! repair ids that stay put while a break stays open, and the default `--date`.

mod common;

use std::fs;
use std::path::Path;

use common::recon;

/// Two date-only CSV sources `a` -> `b`, with the given `[run]` table and check settings.
fn config(run: &str, a_path: &str, b_path: &str, check: &str) -> String {
    let source = |name: &str, path: &str| {
        format!(
            r#"
[[source]]
name = "{name}"
format = "csv"
path = "{path}"
allow_empty = true
key = {{ column = "k" }}
amount = {{ column = "amt" }}
currency = {{ value = "EUR" }}
time = {{ column = "d", format = "%Y-%m-%d" }}
"#
        )
    };
    format!(
        "{run}\n{}{}\n[[check]]\nname = \"ab\"\nfrom = \"a\"\nto = \"b\"\n{check}\n",
        source("a", a_path),
        source("b", b_path)
    )
}

/// breaks.csv as (kind, key, system, timing, age_days, repair_id, repair) per row.
fn breaks(out: &Path) -> Vec<[String; 7]> {
    let mut r = csv::Reader::from_path(out.join("breaks.csv")).unwrap();
    let h = r.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|c| c == name).unwrap();
    let cols = [
        "kind",
        "key",
        "system",
        "timing",
        "age_days",
        "repair_id",
        "repair",
    ]
    .map(col);
    r.records()
        .map(|row| cols.map(|c| row.as_ref().unwrap()[c].to_string()))
        .collect()
}

fn summary(out: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn an_untimed_check_compares_no_dates_even_after_the_night() {
    // Records dated after the night (an export run past midnight): without window or lead they
    // are missing and unexpected, not pending on a window the check does not have.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir_all(d.join("a")).unwrap();
    fs::create_dir_all(d.join("b")).unwrap();
    fs::write(d.join("recon.toml"), config("", "a/x.csv", "b/x.csv", "")).unwrap();
    fs::write(
        d.join("a/x.csv"),
        "k,amt,d\nK1,1.00,2026-12-01\nK2,250.00,2026-12-02\n",
    )
    .unwrap();
    fs::write(
        d.join("b/x.csv"),
        "k,amt,d\nK1,1.00,2026-12-01\nK4,900.00,2026-12-02\n",
    )
    .unwrap();
    recon(
        d,
        &[
            "run",
            "-q",
            "-c",
            "recon.toml",
            "--date",
            "2026-12-01",
            "-o",
            "out",
        ],
    )
    .expect_code(1);
    let kinds: Vec<(String, String, String)> = breaks(&d.join("out"))
        .into_iter()
        .map(|[kind, key, _, timing, _, _, repair]| (kind, key, timing + &repair))
        .collect();
    let row =
        |k: &str, key: &str, repair: &str| (k.to_string(), key.to_string(), repair.to_string());
    assert_eq!(
        kinds,
        [
            row("missing", "K2", "replay"),
            row("unexpected", "K4", "investigate")
        ]
    );
}

#[test]
fn window_and_lead_in_both_directions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir_all(d.join("a")).unwrap();
    fs::create_dir_all(d.join("b")).unwrap();
    let cfg = config("", "a/x.csv", "b/x.csv", "window = \"1d\"\nlead = \"1d\"");
    fs::write(d.join("recon.toml"), cfg).unwrap();
    fs::write(
        d.join("a/x.csv"),
        "k,amt,d\nK1,10.00,2026-11-10\nK2,5.00,2026-11-10\nK4,1.00,2026-11-10\nK5,2.00,2026-11-01\n",
    )
    .unwrap();
    fs::write(
        d.join("b/x.csv"),
        "k,amt,d\nK1,10.00,2026-11-09\nK2,5.00,2026-11-01\nK3,3.00,2026-11-10\nK4,1.00,2026-11-11\nK5,2.00,2026-11-10\n",
    )
    .unwrap();
    // Timing differences are reported, not breaks: exit 0.
    recon(
        d,
        &[
            "run",
            "-q",
            "-c",
            "recon.toml",
            "--date",
            "2026-11-10",
            "-o",
            "o",
        ],
    )
    .expect_code(0);
    let got: Vec<Vec<String>> = breaks(&d.join("o"))
        .into_iter()
        .map(|r| r[..4].to_vec())
        .collect();
    let want = [
        [
            "late",
            "K1",
            "a",
            "to on 2026-11-09, from on 2026-11-10: to 1 day(s) earlier, inside lead 1d",
        ],
        [
            "late",
            "K2",
            "a",
            "to on 2026-11-01, from on 2026-11-10: to 9 day(s) earlier, beyond lead 1d (closed on 2026-11-02)",
        ],
        [
            "pending",
            "K3",
            "a",
            "to on 2026-11-10, lead 1d open until 2026-11-11",
        ],
        [
            "late",
            "K4",
            "b",
            "from on 2026-11-10, to on 2026-11-11: 1 day(s) later, inside window 1d",
        ],
        [
            "late",
            "K5",
            "b",
            "from on 2026-11-01, to on 2026-11-10: 9 day(s) later, beyond window 1d (closed on 2026-11-02)",
        ],
    ];
    let want: Vec<Vec<String>> = want
        .iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect();
    assert_eq!(got, want);
}

/// Runs nights `first..=last` of December 2026 with one state folder; returns each night's breaks.
fn december(d: &Path, holidays: bool, first: u32, last: u32) -> Vec<Vec<[String; 7]>> {
    let run = if holidays {
        "[run]\nholidays = \"holidays.txt\""
    } else {
        ""
    };
    let cfg = config(run, "a/{date}.csv", "b/{date+1}.csv", "window = \"1bd\"");
    fs::write(d.join("recon.toml"), cfg).unwrap();
    fs::write(d.join("holidays.txt"), "# Christmas\n2026-12-25\n").unwrap();
    fs::create_dir_all(d.join("a")).unwrap();
    fs::create_dir_all(d.join("b")).unwrap();
    for day in first..=last + 1 {
        fs::write(d.join(format!("a/2026-12-{day:02}.csv")), "k,amt,d\n").unwrap();
        fs::write(d.join(format!("b/2026-12-{day:02}.csv")), "k,amt,d\n").unwrap();
    }
    // X1 is never delivered; H1 comes on Christmas Eve, a Thursday.
    fs::write(d.join("a/2026-12-15.csv"), "k,amt,d\nX1,7.00,2026-12-15\n").unwrap();
    fs::write(d.join("a/2026-12-24.csv"), "k,amt,d\nH1,4.00,2026-12-24\n").unwrap();
    (first..=last)
        .map(|day| {
            let date = format!("2026-12-{day:02}");
            let out = format!("o-{date}");
            let args = ["run", "-q", "-c", "recon.toml", "--date", &date, "-o", &out];
            let run = recon(d, &[&args[..], &["--state", "st"]].concat());
            let found = breaks(&d.join(&out));
            // Exit 1 once something is missing; pending alone is not a break.
            run.expect_code(i32::from(found.iter().any(|r| r[0] == "missing")));
            found
        })
        .collect()
}

#[test]
fn business_day_windows_skip_weekends_and_holidays_and_open_items_age() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let nights = december(d, true, 15, 28);
    let row = |night: u32, key: &str| {
        nights[(night - 15) as usize]
            .iter()
            .find(|r| r[1] == key)
            .cloned()
            .unwrap_or_else(|| panic!("{key} not in breaks of 2026-12-{night}"))
    };
    // One business day after Thursday 24 December is Monday 28 (25 is a holiday, then a weekend).
    for night in 24..=27 {
        let h = row(night, "H1");
        assert_eq!(h[0], "pending", "night {night}");
        assert_eq!(h[3], "from on 2026-12-24, window 1bd open until 2026-12-28");
        assert_eq!(h[4], (night - 24).to_string());
        assert_eq!(h[6], "wait");
    }
    let h = row(28, "H1");
    assert_eq!((h[0].as_str(), h[4].as_str()), ("missing", "4"));
    // X1 escalated on the 16th and keeps one repair id, night after night.
    assert_eq!(row(15, "X1")[0], "pending");
    let id = row(16, "X1")[5].clone();
    for night in 16..=28 {
        let x = row(night, "X1");
        assert_eq!(x[0], "missing");
        assert_eq!(x[4], (night - 15).to_string());
        assert_eq!(
            x[5], id,
            "night {night}: a break that stays open keeps its repair id"
        );
    }
    // The ageing table of the 27th: X1 (12 days) over 7, H1 (3 days) in 2-3.
    let s = summary(&d.join("o-2026-12-27"));
    let bucket = |kind: &str, b: &str| {
        let v = &s["ageing"][kind][b];
        (
            v["count"].as_u64().unwrap(),
            v["gross"]["EUR"].as_str().map(str::to_string),
        )
    };
    assert_eq!(bucket("missing", "over_7"), (1, Some("7.00".into())));
    assert_eq!(bucket("missing", "4-7"), (0, None));
    assert_eq!(bucket("pending", "2-3"), (1, Some("4.00".into())));
    assert_eq!(bucket("pending", "0-1"), (0, None));
    let s = summary(&d.join("o-2026-12-28"));
    assert_eq!(s["ageing"]["missing"]["4-7"]["count"], 1);
    assert_eq!(s["ageing"]["missing"]["4-7"]["gross"]["EUR"], "4.00");
    // `{date+1}`: night D reads b's file of D+1.
    assert_eq!(s["sources"][1]["files"][0]["path"], "b/2026-12-29.csv");
}

#[test]
fn without_the_holiday_file_christmas_is_a_business_day() {
    let dir = tempfile::tempdir().unwrap();
    let nights = december(dir.path(), false, 24, 25);
    let h1 = |n: usize| nights[n].iter().find(|r| r[1] == "H1").unwrap()[0].clone();
    assert_eq!(h1(0), "pending");
    assert_eq!(h1(1), "missing");
}

#[test]
fn the_default_date_is_yesterday_in_the_run_zone() {
    use chrono::Utc;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Kiritimati is UTC+14: its yesterday is often the UTC today.
    let cfg = config(
        "[run]\ntimezone = \"Pacific/Kiritimati\"",
        "a.csv",
        "b.csv",
        "",
    );
    fs::write(d.join("recon.toml"), cfg).unwrap();
    fs::write(d.join("a.csv"), "k,amt,d\nK1,1.00,2026-01-01\n").unwrap();
    fs::write(d.join("b.csv"), "k,amt,d\nK1,1.00,2026-01-01\n").unwrap();
    let yesterday = || {
        let zone: chrono_tz::Tz = "Pacific/Kiritimati".parse().unwrap();
        (Utc::now().with_timezone(&zone).date_naive() - chrono::Duration::days(1)).to_string()
    };
    let before = yesterday();
    recon(d, &["run", "-q", "-c", "recon.toml", "-o", "o"]).expect_code(0);
    let after = yesterday();
    let date = summary(&d.join("o"))["business_date"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        date == before || date == after,
        "{date} is not {before} (or {after})"
    );
}
