//! Property test: generated records with injected drops, replays, conflicting replays, amount edits
//! and orphans, reconciled by `recon` and by a naive `HashMap` oracle; every break must agree, with
//! its amount, and every input row must be accounted for.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::fs;

use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Rec {
    key: String,
    /// Minor units.
    amount: i64,
    currency: &'static str,
}

#[derive(Debug, Clone)]
enum Fault {
    None,
    Drop,
    Replay,
    ConflictingReplay,
    EditAmount(i64),
    ReplayInFrom,
}

const CURRENCIES: [(&str, u8); 3] = [("EUR", 2), ("JPY", 0), ("BHD", 3)];

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        6 => Just(Fault::None),
        1 => Just(Fault::Drop),
        1 => Just(Fault::Replay),
        1 => Just(Fault::ConflictingReplay),
        1 => (1i64..1_000_000).prop_map(Fault::EditAmount),
        1 => Just(Fault::ReplayInFrom),
    ]
}

fn amount() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => -1_000_000i64..100_000_000,
        1 => Just(9_876_543_210_987_654i64),
        1 => (i64::MAX / 2 - 1000)..(i64::MAX / 2),
    ]
}

fn case() -> impl Strategy<Value = (Vec<(Rec, Fault)>, Vec<Rec>)> {
    let rec = || (0usize..3, amount()).prop_map(|(c, a)| (CURRENCIES[c].0, a));
    (
        prop::collection::vec((rec(), fault()), 1..60),
        prop::collection::vec(rec(), 0..5),
    )
        .prop_map(|(base, orphans)| {
            let base = base
                .into_iter()
                .enumerate()
                .map(|(i, ((currency, amount), f))| {
                    (
                        Rec {
                            key: format!("K{i:05}"),
                            amount,
                            currency,
                        },
                        f,
                    )
                })
                .collect();
            let orphans = orphans
                .into_iter()
                .enumerate()
                .map(|(i, (currency, amount))| Rec {
                    key: format!("X{i:03}"),
                    amount,
                    currency,
                })
                .collect();
            (base, orphans)
        })
}

fn major(minor: i128, currency: &str) -> String {
    let e = CURRENCIES.iter().find(|c| c.0 == currency).unwrap().1 as usize;
    let sign = if minor < 0 { "-" } else { "" };
    let digits = format!("{:0>width$}", minor.unsigned_abs(), width = e + 1);
    if e == 0 {
        return format!("{sign}{digits}");
    }
    let (i, f) = digits.split_at(digits.len() - e);
    format!("{sign}{i}.{f}")
}

/// The naive reconciliation: (kind, key, system, amount).
fn oracle(from: &[Rec], to: &[Rec]) -> BTreeSet<(String, String, String, String)> {
    let mut f: HashMap<&str, Vec<&Rec>> = HashMap::new();
    let mut t: HashMap<&str, Vec<&Rec>> = HashMap::new();
    for r in from {
        f.entry(&r.key).or_default().push(r);
    }
    for r in to {
        t.entry(&r.key).or_default().push(r);
    }
    let mut keys: BTreeSet<&str> = f.keys().copied().collect();
    keys.extend(t.keys().copied());
    let mut out = BTreeSet::new();
    let same = |a: &Rec, b: &Rec| a.amount == b.amount && a.currency == b.currency;
    for k in keys {
        let mut add = |kind: &str, system: &str, amount: String| {
            out.insert((kind.to_string(), k.to_string(), system.to_string(), amount));
        };
        let mut conflict = false;
        for (recs, system) in [(f.get(k), "from"), (t.get(k), "to")] {
            let Some(recs) = recs else { continue };
            if recs.len() > 1 {
                if recs.iter().all(|r| same(r, recs[0])) {
                    let extra: i128 = recs[1..].iter().map(|r| r.amount as i128).sum();
                    add("duplicate", system, major(extra, recs[0].currency));
                } else {
                    conflict = true;
                    add("conflicting_duplicate", system, String::new());
                }
            }
        }
        match (f.get(k), t.get(k)) {
            (Some(a), None) => add("missing", "to", major(a[0].amount as i128, a[0].currency)),
            (None, Some(b)) => add(
                "unexpected",
                "to",
                major(b[0].amount as i128, b[0].currency),
            ),
            (Some(a), Some(b)) if !conflict => {
                if a[0].currency != b[0].currency {
                    add(
                        "field_mismatch",
                        "to",
                        major(a[0].amount as i128, a[0].currency),
                    );
                } else if a[0].amount != b[0].amount {
                    add(
                        "amount_mismatch",
                        "to",
                        major(a[0].amount as i128 - b[0].amount as i128, a[0].currency),
                    );
                }
            }
            _ => {}
        }
    }
    out
}

fn run_case(base: &[(Rec, Fault)], orphans: &[Rec]) -> Result<(), TestCaseError> {
    let mut from: Vec<Rec> = Vec::new();
    let mut to: Vec<Rec> = Vec::new();
    for (r, f) in base {
        from.push(r.clone());
        match f {
            Fault::None => to.push(r.clone()),
            Fault::Drop => {}
            Fault::Replay => {
                to.push(r.clone());
                to.push(r.clone());
            }
            Fault::ConflictingReplay => {
                to.push(r.clone());
                to.push(Rec {
                    amount: r.amount.wrapping_add(1),
                    ..r.clone()
                });
            }
            Fault::EditAmount(d) => to.push(Rec {
                amount: r.amount - d,
                ..r.clone()
            }),
            Fault::ReplayInFrom => {
                from.push(r.clone());
                to.push(r.clone());
            }
        }
    }
    to.extend(orphans.iter().cloned());
    // Receivers rarely keep the sender's order.
    to.reverse();

    let dir = tempfile::tempdir().unwrap();
    let mut jsonl = String::new();
    for (i, r) in from.iter().enumerate() {
        // Alternate a JSON number and a string literal for the amount: both must be exact.
        let amount = major(r.amount as i128, r.currency);
        let amount = if i % 2 == 0 {
            amount
        } else {
            format!("\"{amount}\"")
        };
        jsonl.push_str(&format!(
            "{{\"k\":\"{}\",\"m\":{{\"a\":{amount},\"c\":\"{}\"}}}}\n",
            r.key, r.currency
        ));
    }
    let mut csv = String::from("ref;amount;cur\n");
    for r in &to {
        csv.push_str(&format!(
            "{};{};{}\n",
            r.key,
            r.amount,
            r.currency.to_lowercase()
        ));
    }
    fs::write(dir.path().join("from.jsonl"), jsonl).unwrap();
    fs::write(dir.path().join("to.csv"), csv).unwrap();
    fs::write(
        dir.path().join("recon.toml"),
        r#"
[[source]]
name = "from"
format = "jsonl"
path = "from.jsonl"
key = { column = "k" }
amount = { column = "m.a" }
currency = { column = "m.c" }

[[source]]
name = "to"
format = "csv"
path = "to.csv"
delimiter = ";"
key = { column = "ref" }
amount = { column = "amount", unit = "minor" }
currency = { column = "cur" }

[[check]]
name = "c"
from = "from"
to = "to"
"#,
    )
    .unwrap();
    let run = common::recon(dir.path(), &["run", "-c", "recon.toml", "-o", "out", "-q"]);
    let want = oracle(&from, &to);
    prop_assert_eq!(
        run.code(),
        if want.is_empty() { 0 } else { 1 },
        "{}",
        run.described
    );

    let mut got = BTreeSet::new();
    let mut reader = csv::Reader::from_path(dir.path().join("out/breaks.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let columns = [col("kind"), col("key"), col("system"), col("amount")];
    for row in reader.records() {
        let row = row.unwrap();
        let [kind, key, system, amount] = columns.map(|i| row[i].to_string());
        got.insert((kind, key, system, amount));
    }
    prop_assert_eq!(got, want);

    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.path().join("out/summary.json")).unwrap())
            .unwrap();
    prop_assert_eq!(
        &summary["sources"][0]["rows_read"],
        &serde_json::json!(from.len())
    );
    prop_assert_eq!(
        &summary["sources"][1]["rows_read"],
        &serde_json::json!(to.len())
    );
    prop_assert_eq!(
        &summary["sources"][0]["records"],
        &serde_json::json!(from.len())
    );
    prop_assert_eq!(
        &summary["sources"][1]["records"],
        &serde_json::json!(to.len())
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn recon_agrees_with_a_hashmap_oracle((base, orphans) in case()) {
        run_case(&base, &orphans)?;
    }
}
