//! Classification: for every key of a check, the one or two findings it deserves, or none (matched).
//! Only breaks become structs; a clean key is just counted.

use std::collections::{BTreeMap, HashSet};

use anyhow::Result;
use chrono::NaiveDate;
use rayon::prelude::*;

use crate::config::{CheckPlan, Field};
use crate::load::Loaded;
use crate::matching::Joined;
use crate::model::{BreakKind, Record};
use crate::normalize::calendar::Holidays;
use crate::normalize::currency::Currency;

/// Which side of a check a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    From,
    To,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::From => Side::To,
            Side::To => Side::From,
        }
    }
}

impl CheckPlan {
    /// The source on one side of this check.
    pub fn source(&self, side: Side) -> usize {
        match side {
            Side::From => self.from,
            Side::To => self.to,
        }
    }
}

/// One finding about one key in one check, with the records that prove it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub check: usize,
    pub kind: BreakKind,
    /// `None` for an `unkeyed` record.
    pub key: Option<String>,
    /// The side whose system the repair acts on.
    pub side: Side,
    /// Record indices (into the `from` and `to` sources' records), earliest first.
    pub from: Vec<u32>,
    pub to: Vec<u32>,
    /// The compared fields that differ (mismatches only), in the check's `compare` order.
    pub fields: Vec<String>,
    /// For timing findings (`late`, `pending`): what the dates are and what the window allows.
    pub timing: Option<String>,
}

impl Break {
    /// The record indices on one side, earliest first.
    pub fn indices(&self, side: Side) -> &[u32] {
        match side {
            Side::From => &self.from,
            Side::To => &self.to,
        }
    }
}

/// A key open after the previous night and clean tonight, with its records on each side.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub key: String,
    pub from: Vec<u32>,
    pub to: Vec<u32>,
    /// `matched`, `late`, or `corrected` (later postings under the key net the difference out).
    pub how: &'static str,
}

/// The outcome of one check.
#[derive(Debug, Default)]
pub struct CheckResult {
    /// Distinct keys seen on either side.
    pub keys: u64,
    /// Keys with no finding at all.
    pub matched: u64,
    /// Keys with records of tonight on both sides, whatever their findings (a key carried in from
    /// `--state` and paired then says nothing of tonight's key mapping).
    pub paired: u64,
    /// Amount of the matched keys, by currency (from the `from` side).
    pub matched_amounts: Vec<(crate::normalize::currency::Currency, i128)>,
    /// Moved out into the run's sorted list once all checks are classified.
    pub breaks: Vec<Break>,
    /// Carried-over keys that are clean tonight.
    pub resolved: Vec<Resolved>,
    /// Keys still open after tonight (any finding but `late`): the key and all its records (from,
    /// to), which the state carries to the next run.
    pub open: Vec<(String, Vec<u32>, Vec<u32>)>,
}

impl CheckResult {
    /// Adds the outcome of another part of the same check (another partition's keys).
    pub fn merge(&mut self, other: CheckResult) {
        self.keys += other.keys;
        self.matched += other.matched;
        self.paired += other.paired;
        let mut amounts: BTreeMap<Currency, i128> = self.matched_amounts.drain(..).collect();
        for (c, v) in other.matched_amounts {
            *amounts.entry(c).or_insert(0) += v;
        }
        self.matched_amounts = amounts.into_iter().collect();
        self.breaks.extend(other.breaks);
        self.resolved.extend(other.resolved);
        self.open.extend(other.open);
    }
}

/// The business date a check is run for, and the calendar its windows are counted in.
pub struct Day<'a> {
    pub date: NaiveDate,
    pub holidays: &'a Holidays,
}

/// Records carried over from earlier runs for one check, by key: indices into the `from` and `to`
/// sources' records (appended after the records read tonight).
pub type Carried = BTreeMap<String, [Vec<u32>; 2]>;

/// What the keys of one part of a check came to (merged into the check's result).
#[derive(Default)]
struct Tally {
    out: CheckResult,
    matched_amounts: BTreeMap<Currency, i128>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        let (a, b) = (&mut self.out, other.out);
        a.keys += b.keys;
        a.matched += b.matched;
        a.paired += b.paired;
        a.breaks.extend(b.breaks);
        a.resolved.extend(b.resolved);
        a.open.extend(b.open);
        for (c, v) in other.matched_amounts {
            *self.matched_amounts.entry(c).or_insert(0) += v;
        }
    }
}

/// The check being classified and everything it reads.
struct Ctx<'a> {
    index: usize,
    check: &'a CheckPlan,
    carried: &'a Carried,
    /// Keys open after the previous night as an amount mismatch or a duplicate: later postings
    /// under them are read as corrections.
    correctable: &'a HashSet<String>,
    from: &'a Loaded,
    to: &'a Loaded,
    day: &'a Day<'a>,
}

/// The sum of some records' amounts, when they all have one, in one currency.
fn total(loaded: &Loaded, idx: &[u32]) -> Option<(Currency, i128)> {
    let mut sum = 0i128;
    let mut currency = None;
    for &i in idx {
        let r = &loaded.records[i as usize];
        let c = r.currency?;
        if currency.is_some_and(|x| x != c) {
            return None;
        }
        currency = Some(c);
        sum += r.amount?.0 as i128;
    }
    Some((currency?, sum))
}

impl Ctx<'_> {
    /// Classifies one key, given each side's records (earliest first).
    fn visit(&self, t: &mut Tally, key: &str, f: &[u32], to_idx: &[u32]) {
        let out = &mut t.out;
        out.keys += 1;
        let tonight = |idx: &[u32], l: &Loaded| idx.iter().any(|&i| (i as usize) < l.fresh);
        out.paired += u64::from(tonight(f, self.from) && tonight(to_idx, self.to));
        let corrected = self.correctable.contains(key) && self.nets_out(key, f, to_idx);
        let findings = if corrected {
            Vec::new()
        } else {
            classify_key(self.check, (f, to_idx), (self.from, self.to), self.day)
        };
        let clean = findings
            .iter()
            .all(|x| !x.kind.is_break() && x.kind != BreakKind::Pending);
        let late = findings.iter().any(|x| x.kind == BreakKind::Late);
        for x in findings {
            out.breaks.push(Break {
                check: self.index,
                kind: x.kind,
                key: Some(key.to_string()),
                side: x.side,
                from: x.from,
                to: x.to,
                fields: x.fields,
                timing: x.timing,
            });
        }
        if clean && self.carried.contains_key(key) {
            out.resolved.push(Resolved {
                key: key.to_string(),
                from: f.to_vec(),
                to: to_idx.to_vec(),
                how: if corrected {
                    "corrected"
                } else if late {
                    "late"
                } else {
                    "matched"
                },
            });
        }
        if !clean {
            out.open
                .push((key.to_string(), f.to_vec(), to_idx.to_vec()));
        }
        if clean {
            out.matched += 1;
            // A corrected key's amount is what its postings net to (the original and the
            // adjustment), not its first posting's.
            let amount = match corrected {
                true => total(self.from, f),
                false => f.first().and_then(|&a| total(self.from, &[a])),
            };
            if let Some((c, v)) = amount {
                *t.matched_amounts.entry(c).or_insert(0i128) += v;
            }
        }
    }

    /// Whether a key's postings, with tonight's new ones, net out: every record has an amount in
    /// one currency, tonight brought at least one new posting (not a carried one read again from
    /// its file), one side has several, and the two sides' totals agree within the tolerance (an
    /// adjusting posting for an amount mismatch, a reversal of a duplicate).
    fn nets_out(&self, key: &str, f: &[u32], t: &[u32]) -> bool {
        let carried = self.carried.get(key);
        let new = |idx: &[u32], l: &Loaded, side: usize| {
            idx.iter()
                .any(|&i| (i as usize) < l.fresh && !carried.is_some_and(|c| c[side].contains(&i)))
        };
        let fresh = new(f, self.from, 0) || new(t, self.to, 1);
        if !fresh || (f.len() < 2 && t.len() < 2) || f.is_empty() || t.is_empty() {
            return false;
        }
        match (total(self.from, f), total(self.to, t)) {
            (Some((cf, a)), Some((ct, b))) if cf == ct => {
                (a - b).abs() <= self.check.tolerance.in_minor(cf.exponent())
            }
            _ => false,
        }
    }

    /// Tonight's records of a key plus those carried over for it, once each, earliest first.
    fn with_carried(&self, recs: &[Record], tonight: &[u32], carried: &[u32]) -> Vec<u32> {
        // A record of a file read again tonight is both in tonight's group and carried.
        let mut v = [tonight, carried].concat();
        v.sort_unstable();
        v.dedup();
        v.sort_by_key(|&i| recs[i as usize].earliness());
        v
    }
}

/// Classifies every key of one check: the keys of tonight's records, part by part in parallel
/// (`joined`), each with the records carried over for it, then the keys only carried records have.
pub fn classify(
    check_index: usize,
    check: &CheckPlan,
    joined: &Joined,
    (carried, correctable): (&Carried, &HashSet<String>),
    (from, to): (&Loaded, &Loaded),
    day: &Day,
) -> Result<CheckResult> {
    let ctx = Ctx {
        index: check_index,
        check,
        carried,
        correctable,
        from,
        to,
        day,
    };
    let parts: Vec<(Tally, Vec<&str>)> = joined
        .parts
        .par_iter()
        .map(|part| {
            let mut tally = Tally::default();
            let mut seen_carried = Vec::new();
            joined.for_each(part, |key, f, t| match carried.get_key_value(key) {
                None => ctx.visit(&mut tally, key, f, t),
                Some((k, [cf, ct])) => {
                    seen_carried.push(k.as_str());
                    let f = ctx.with_carried(&from.records, f, cf);
                    let t = ctx.with_carried(&to.records, t, ct);
                    ctx.visit(&mut tally, key, &f, &t);
                }
            });
            (tally, seen_carried)
        })
        .collect();
    let mut tally = Tally::default();
    let mut seen_carried = std::collections::HashSet::new();
    for (t, seen) in parts {
        tally.merge(t);
        seen_carried.extend(seen);
    }
    for (key, [f, t]) in carried {
        if !seen_carried.contains(key.as_str()) {
            let f = ctx.with_carried(&from.records, &[], f);
            let t = ctx.with_carried(&to.records, &[], t);
            ctx.visit(&mut tally, key, &f, &t);
        }
    }
    let mut out = tally.out;
    out.matched_amounts = tally.matched_amounts.into_iter().collect();
    for (side, loaded) in [(Side::From, from), (Side::To, to)] {
        for (i, r) in loaded.records[..loaded.fresh].iter().enumerate() {
            if r.key.is_none() {
                let idx = vec![i as u32];
                let (f, t) = if side == Side::From {
                    (idx, Vec::new())
                } else {
                    (Vec::new(), idx)
                };
                out.breaks.push(Break {
                    check: check_index,
                    kind: BreakKind::Unkeyed,
                    key: None,
                    side,
                    from: f,
                    to: t,
                    fields: Vec::new(),
                    timing: None,
                });
            }
        }
    }
    Ok(out)
}

/// One finding about a key, before it is tied to its check and key.
struct Finding {
    kind: BreakKind,
    side: Side,
    from: Vec<u32>,
    to: Vec<u32>,
    fields: Vec<String>,
    timing: Option<String>,
}

impl Finding {
    fn new(kind: BreakKind, side: Side, from: &[u32], to: &[u32]) -> Finding {
        Finding {
            kind,
            side,
            from: from.to_vec(),
            to: to.to_vec(),
            fields: Vec::new(),
            timing: None,
        }
    }
}

/// The findings of one key of a check, given each side's records (earliest first).
fn classify_key(
    check: &CheckPlan,
    (f, t): (&[u32], &[u32]),
    (from, to): (&Loaded, &Loaded),
    day: &Day,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let f_conflict = side_finding(f, &from.records, Side::From, &mut out);
    let t_conflict = side_finding(t, &to.records, Side::To, &mut out);
    let date = |r: &Record| r.date.unwrap_or(day.date);
    match (f.first(), t.first()) {
        (Some(&a), None) => {
            let opened = date(&from.records[a as usize]);
            let closes = day.holidays.window_end(opened, check.window);
            // An untimed check compares no dates: a record dated after the night is missing too.
            if check.timed && day.date < closes {
                let mut x = Finding::new(BreakKind::Pending, Side::To, f, &[]);
                x.timing = Some(format!(
                    "from on {opened}, window {} open until {closes}",
                    check.window
                ));
                out.push(x);
            } else {
                out.push(Finding::new(BreakKind::Missing, Side::To, f, &[]));
            }
        }
        (None, Some(&b)) => {
            let opened = date(&to.records[b as usize]);
            let closes = day.holidays.window_end(opened, check.lead);
            if check.timed && day.date < closes {
                let mut x = Finding::new(BreakKind::Pending, Side::From, &[], t);
                x.timing = Some(format!(
                    "to on {opened}, lead {} open until {closes}",
                    check.lead
                ));
                out.push(x);
            } else {
                out.push(Finding::new(BreakKind::Unexpected, Side::To, &[], t));
            }
        }
        (Some(&a), Some(&b)) if !f_conflict && !t_conflict => {
            let (ra, rb) = (&from.records[a as usize], &to.records[b as usize]);
            let fields = differing_fields(check, ra, rb);
            let kind = if fields.is_empty() {
                None
            } else if fields == ["amount"] {
                Some(BreakKind::AmountMismatch)
            } else {
                Some(BreakKind::FieldMismatch)
            };
            match kind {
                Some(kind) => {
                    let mut x = Finding::new(kind, Side::To, &[a], &[b]);
                    x.fields = fields;
                    out.push(x);
                }
                None if check.timed && date(rb) > date(ra) => {
                    let (df, dt) = (date(ra), date(rb));
                    let closes = day.holidays.window_end(df, check.window);
                    let days = (dt - df).num_days();
                    let mut x = Finding::new(BreakKind::Late, Side::To, &[a], &[b]);
                    x.timing = Some(if dt <= closes {
                        format!(
                            "from on {df}, to on {dt}: {days} day(s) later, inside window {}",
                            check.window
                        )
                    } else {
                        format!(
                            "from on {df}, to on {dt}: {days} day(s) later, beyond window {} (closed on {closes})",
                            check.window
                        )
                    });
                    out.push(x);
                }
                // `to` ahead of `from`: reported like a late arrival of `from`, so that a `to`
                // leading by more than the check's `lead` is seen, never matched silently.
                None if check.timed && date(rb) < date(ra) => {
                    let (df, dt) = (date(ra), date(rb));
                    let closes = day.holidays.window_end(dt, check.lead);
                    let days = (df - dt).num_days();
                    let mut x = Finding::new(BreakKind::Late, Side::From, &[a], &[b]);
                    x.timing = Some(if df <= closes {
                        format!(
                            "to on {dt}, from on {df}: to {days} day(s) earlier, inside lead {}",
                            check.lead
                        )
                    } else {
                        format!(
                            "to on {dt}, from on {df}: to {days} day(s) earlier, beyond lead {} (closed on {closes})",
                            check.lead
                        )
                    });
                    out.push(x);
                }
                None => {}
            }
        }
        _ => {}
    }
    out
}

/// Adds the duplicate finding of one side, if its key occurs more than once; returns whether the
/// duplicates conflict (then the key's records are not compared across sides).
fn side_finding(idx: &[u32], records: &[Record], side: Side, out: &mut Vec<Finding>) -> bool {
    if idx.len() < 2 {
        return false;
    }
    let first = &records[idx[0] as usize];
    let conflict = idx[1..]
        .iter()
        .any(|&i| !records[i as usize].same_payload(first));
    let kind = if conflict {
        BreakKind::ConflictingDuplicate
    } else {
        BreakKind::Duplicate
    };
    out.push(match side {
        Side::From => Finding::new(kind, side, idx, &[]),
        Side::To => Finding::new(kind, side, &[], idx),
    });
    conflict
}

/// The compared fields on which `a` (from) and `b` (to) disagree.
fn differing_fields(check: &CheckPlan, a: &Record, b: &Record) -> Vec<String> {
    let mut out = Vec::new();
    for f in &check.compare {
        let differs = match f {
            Field::Amount => match (a.amount, b.amount, a.currency) {
                (Some(x), Some(y), Some(c)) => {
                    let diff = (x.0 as i128 - y.0 as i128).abs();
                    diff > check.tolerance.in_minor(c.exponent())
                }
                (x, y, _) => x != y,
            },
            Field::Currency => a.currency != b.currency,
            Field::Status => {
                let mapped = a
                    .status
                    .as_deref()
                    .map(|s| check.status_map.get(s).map_or(s, String::as_str));
                mapped != b.status.as_deref()
            }
            Field::Account => a.account != b.account,
            Field::Extra { from, to, .. } => a.extra[*from] != b.extra[*to],
        };
        if differs {
            out.push(f.name().to_string());
        }
    }
    out
}
