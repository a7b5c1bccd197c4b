//! Classification: for every key of a check, the one or two findings it deserves, or none (matched).
//! Only breaks become structs; a clean key is just counted.

use anyhow::Result;

use crate::config::{CheckPlan, Field};
use crate::load::Loaded;
use crate::matching::Joined;
use crate::model::{BreakKind, Record};

/// Which side of a check a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    From,
    To,
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

/// The outcome of one check.
#[derive(Debug, Default)]
pub struct CheckResult {
    /// Distinct keys seen on either side.
    pub keys: u64,
    /// Keys with no finding at all.
    pub matched: u64,
    /// Keys present on both sides, whatever their findings.
    pub paired: u64,
    /// Amount of the matched keys, by currency (from the `from` side).
    pub matched_amounts: Vec<(crate::normalize::currency::Currency, i128)>,
    /// Moved out into the run's sorted list once all checks are classified.
    pub breaks: Vec<Break>,
}

/// Classifies every key of one check.
pub fn classify(
    check_index: usize,
    check: &CheckPlan,
    joined: &Joined,
    from: &Loaded,
    to: &Loaded,
) -> Result<CheckResult> {
    let mut out = CheckResult::default();
    let mut matched_amounts = std::collections::BTreeMap::new();
    joined.for_each(|key, f, t| {
        out.keys += 1;
        out.paired += u64::from(!f.is_empty() && !t.is_empty());
        let before = out.breaks.len();
        let mut add = |kind, side, from: &[u32], to: &[u32], fields: Vec<String>| {
            out.breaks.push(Break {
                check: check_index,
                kind,
                key: Some(key.to_string()),
                side,
                from: from.to_vec(),
                to: to.to_vec(),
                fields,
            });
        };
        let f_conflict = side_findings(f, &from.records, Side::From, &mut add);
        let t_conflict = side_findings(t, &to.records, Side::To, &mut add);
        match (f.first(), t.first()) {
            (Some(_), None) => add(BreakKind::Missing, Side::To, f, &[], Vec::new()),
            (None, Some(_)) => add(BreakKind::Unexpected, Side::To, &[], t, Vec::new()),
            (Some(&a), Some(&b)) if !f_conflict && !t_conflict => {
                let (ra, rb) = (&from.records[a as usize], &to.records[b as usize]);
                let fields = differing_fields(check, ra, rb);
                if fields.is_empty() {
                } else if fields == ["amount"] {
                    add(BreakKind::AmountMismatch, Side::To, &[a], &[b], fields);
                } else {
                    add(BreakKind::FieldMismatch, Side::To, &[a], &[b], fields);
                }
            }
            _ => {}
        }
        if out.breaks.len() == before {
            out.matched += 1;
            if let Some(&a) = f.first() {
                let r = &from.records[a as usize];
                if let (Some(c), Some(m)) = (r.currency, r.amount) {
                    *matched_amounts.entry(c).or_insert(0i128) += m.0 as i128;
                }
            }
        }
    })?;
    for (side, loaded) in [(Side::From, from), (Side::To, to)] {
        for (i, r) in loaded.records.iter().enumerate() {
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
                });
            }
        }
    }
    out.matched_amounts = matched_amounts.into_iter().collect();
    Ok(out)
}

/// Adds the duplicate finding of one side, if its key occurs more than once; returns whether the
/// duplicates conflict (then the key's records are not compared across sides).
fn side_findings(
    idx: &[u32],
    records: &[Record],
    side: Side,
    add: &mut impl FnMut(BreakKind, Side, &[u32], &[u32], Vec<String>),
) -> bool {
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
    match side {
        Side::From => add(kind, side, idx, &[], Vec::new()),
        Side::To => add(kind, side, &[], idx, Vec::new()),
    }
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
