//! Benchmark data with known faults: a port of the team's `../shared/bench/gen_data.py` that is
//! fast enough for 50 million transactions (the Python generator needs about 20 minutes and 10 GB
//! there). Same files, same columns, same fault classes and rates, same ground truth format; the
//! random stream differs, so the bytes differ from the Python generator's for the same N.
//!
//!   cargo run --release --example gen_data -- N DIR [--seed S]
//!
//! Writes DIR/events.jsonl, DIR/ledger.csv (ordered by booking time, so not in the events'
//! order), DIR/truth.csv (`idempotency_key,kind,detail`) and DIR/truth_summary.json.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

const P_MISS_LEDGER: f64 = 0.005;
const P_MISS_EVENTS: f64 = 0.002;
const P_DUP: f64 = 0.003;
const P_AMT: f64 = 0.003;
const P_CUR: f64 = 0.001;
const CURRENCIES: [&str; 20] = [
    "USD", "USD", "USD", "USD", "USD", "USD", "USD", "USD", "USD", "USD", "EUR", "EUR", "EUR",
    "EUR", "EUR", "GBP", "GBP", "JPY", "JPY", "CHF",
];
const ALL_CUR: [&str; 5] = ["USD", "EUR", "GBP", "JPY", "CHF"];
/// Offsets in minutes and as written.
const OFFSETS: [(i64, &str); 5] = [
    (0, "+00:00"),
    (60, "+01:00"),
    (-300, "-05:00"),
    (330, "+05:30"),
    (540, "+09:00"),
];

/// SplitMix64: small, fast, and good enough to draw benchmark data from.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo)
    }
    fn sign(&mut self) -> i64 {
        if self.next() & 1 == 0 { -1 } else { 1 }
    }
    /// Log-normal with the given mu and sigma (Box-Muller).
    fn lognormal(&mut self, mu: f64, sigma: f64) -> f64 {
        let (u1, u2) = (1.0 - self.unit(), self.unit());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        (mu + sigma * z).exp()
    }
}

fn cents(c: i64) -> String {
    let sign = if c < 0 { "-" } else { "" };
    let c = c.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's civil_from_days).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// An instant in milliseconds as local time at `off` minutes, ISO 8601 with milliseconds.
fn iso_ms(ms: i64, off: (i64, &str)) -> String {
    let local = ms + off.0 * 60_000;
    let (days, rest) = (local.div_euclid(86_400_000), local.rem_euclid(86_400_000));
    let (y, m, d) = civil(days);
    let (h, mi, s, f) = (
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{f:03}{}", off.1)
}

/// An instant in seconds, UTC, `...Z`.
fn iso_utc(secs: i64) -> String {
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil(days);
    let (h, mi, s) = (rest / 3600, rest / 60 % 60, rest % 60);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: gen_data N DIR [--seed S]";
    let n: u64 = args.first().and_then(|a| a.parse().ok()).expect(usage);
    let dir = Path::new(args.get(1).expect(usage));
    let seed = match args.get(2).map(String::as_str) {
        Some("--seed") => args.get(3).and_then(|s| s.parse().ok()).expect(usage),
        _ => 20_240_601,
    };
    std::fs::create_dir_all(dir)?;
    let mut rng = Rng(seed);
    let start_ms: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z
    let span_ms = 90.0 * 86_400_000.0;
    let step = span_ms / n as f64;
    let n_accounts = (n / 200).max(1000);
    let mut events = BufWriter::with_capacity(1 << 20, File::create(dir.join("events.jsonl"))?);
    let mut truth = BufWriter::new(File::create(dir.join("truth.csv"))?);
    writeln!(truth, "idempotency_key,kind,detail")?;
    // Ledger rows, sorted by booking time before they are written: (booked ms, line).
    let mut ledger: Vec<(i64, String)> = Vec::with_capacity(n as usize + n as usize / 100);
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut entry = 0u64;
    for i in 0..n {
        let key = format!("idem_{:08x}{:016x}", rng.next() as u32, rng.next());
        let evt = format!("evt_{:016x}", rng.next());
        let acct_no = rng.below(n_accounts);
        let acct = format!("acct_{acct_no:07}");
        let off = OFFSETS[(acct_no % 5) as usize];
        let r = rng.below(20);
        let typ = match r {
            0..=16 => "payment.captured",
            17 | 18 => "refund.succeeded",
            _ => "payout.paid",
        };
        let cur = CURRENCIES[rng.below(20) as usize];
        let mut amount = rng.lognormal(8.0, 1.6) as i64 + 1;
        if cur == "JPY" {
            amount *= 100;
        }
        if rng.unit() < 0.0001 {
            amount = rng.range(10u64.pow(16), 10u64.pow(18)) as i64;
        }
        if typ == "refund.succeeded" {
            amount = -amount;
        }
        let t = start_ms as f64 + i as f64 * step + rng.unit() * step;
        let occurred = iso_ms(t as i64, off);
        let booked = t + rng.unit() * 3.0 * 86_400_000.0;
        let u = rng.unit();
        let kind = [
            (P_MISS_LEDGER, "missing_in_ledger"),
            (P_MISS_EVENTS, "missing_in_events"),
            (P_DUP, "duplicate_in_ledger"),
            (P_AMT, "amount_mismatch"),
            (P_CUR, "currency_mismatch"),
        ]
        .iter()
        .scan(0.0, |acc, (p, k)| {
            *acc += p;
            Some((*acc, *k))
        })
        .find(|(upto, _)| u < *upto)
        .map(|(_, k)| k);
        let mut detail = "";
        let (mut l_amount, mut l_cur) = (amount, cur);
        match kind {
            Some("amount_mismatch") => {
                if rng.unit() < 0.05 {
                    detail = "large";
                    let big = rng.range(10u64.pow(16), 10u64.pow(18)) as i64;
                    amount = if amount > 0 { big } else { -big };
                    l_amount = amount + rng.sign();
                } else {
                    let delta = match rng.below(4) {
                        0 => 1,
                        1 => 10,
                        2 => 100,
                        _ => rng.range(1, 100_000) as i64,
                    };
                    l_amount = amount + rng.sign() * delta;
                }
            }
            Some("currency_mismatch") => {
                let others: Vec<&str> = ALL_CUR.iter().copied().filter(|c| *c != cur).collect();
                l_cur = others[rng.below(others.len() as u64) as usize];
            }
            _ => {}
        }
        if kind != Some("missing_in_events") {
            writeln!(
                events,
                r#"{{"event_id":"{evt}","idempotency_key":"{key}","type":"{typ}","amount":"{}","currency":"{cur}","occurred_at":"{occurred}","account":"{acct}"}}"#,
                cents(amount)
            )?;
        }
        if kind != Some("missing_in_ledger") {
            let status = if rng.unit() < 0.97 {
                "posted"
            } else {
                "pending"
            };
            let booked_s = (booked / 1000.0) as i64;
            entry += 1;
            let line = |e: u64, a: i64, at: i64| {
                format!(
                    "le_{e:010},{key},{},{l_cur},{},{acct},{status}\n",
                    cents(a),
                    iso_utc(at)
                )
            };
            ledger.push((booked as i64, line(entry, l_amount, booked_s)));
            if kind == Some("duplicate_in_ledger") {
                if rng.unit() < 0.5 {
                    detail = "identical";
                    let again = booked as i64 + (rng.unit() * 3_600_000.0) as i64;
                    ledger.push((again, line(entry, l_amount, booked_s)));
                } else {
                    detail = "conflicting";
                    entry += 1;
                    let other = l_amount + rng.sign() * rng.range(1, 10_000) as i64;
                    ledger.push((booked as i64 + 60_000, line(entry, other, booked_s + 60)));
                }
            }
        }
        if let Some(k) = kind {
            writeln!(truth, "{key},{k},{detail}")?;
            *counts.entry(k.to_string()).or_default() += 1;
            if !detail.is_empty() {
                *counts.entry(format!("{k}:{detail}")).or_default() += 1;
            }
        }
    }
    events.flush()?;
    truth.flush()?;
    ledger.sort_by_key(|(at, _)| *at);
    let mut out = BufWriter::with_capacity(1 << 20, File::create(dir.join("ledger.csv"))?);
    writeln!(
        out,
        "entry_id,idempotency_key,amount,currency,booked_at,account,status"
    )?;
    for (_, line) in &ledger {
        out.write_all(line.as_bytes())?;
    }
    out.flush()?;
    let missing_events = counts.get("missing_in_events").copied().unwrap_or(0);
    counts.insert("n_transactions".into(), n);
    counts.insert("event_rows".into(), n - missing_events);
    counts.insert("ledger_rows".into(), ledger.len() as u64);
    let body: Vec<String> = counts
        .iter()
        .map(|(k, v)| format!("  \"{k}\": {v}"))
        .collect();
    let summary = format!("{{\n{}\n}}\n", body.join(",\n"));
    std::fs::write(dir.join("truth_summary.json"), &summary)?;
    print!("{summary}");
    Ok(())
}
