//! Reporting: the operator's table on stdout and the four output files, each written to a temporary
//! name and renamed into place only once all of them are complete. Everything is sorted, so the same
//! inputs give the same bytes whatever the thread count.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::BuildHasherDefault;

use crate::matching::Prehashed;

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use rayon::prelude::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::classify::{Break, CheckResult, Side};
use crate::config::{CheckPlan, Field, RunPlan, hex};
use crate::flow::{FlowResults, FlowStatus};
use crate::load::Loaded;
use crate::model::{Action, BreakKind, Record};
use crate::normalize::currency::Currency;
use crate::normalize::key::folded_hash;
use crate::publish::OutputLock;
use crate::repair::{Plan, RecordRef, Repair, exposure};
use crate::state::Previous;

/// How a run ended, as the process exit code a cron job or CI acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitStatus {
    /// 0: every key of every check matched.
    Reconciled = 0,
    /// 1: breaks found; the repair plan says what to do.
    Breaks = 1,
    /// 2: the run cannot be trusted: bad config, unreadable input, or more rejected rows than allowed.
    Untrusted = 2,
}

impl ExitStatus {
    pub fn name(self) -> &'static str {
        match self {
            ExitStatus::Reconciled => "reconciled",
            ExitStatus::Breaks => "breaks_found",
            ExitStatus::Untrusted => "incomplete",
        }
    }
}

/// Everything a run found, for the writers.
pub struct Report<'a> {
    pub plan: &'a RunPlan,
    pub loaded: &'a [Loaded],
    pub results: &'a [CheckResult],
    /// All checks' breaks, sorted in output order.
    pub breaks: &'a [Break],
    pub repairs: &'a Plan,
    pub flows: &'a FlowResults,
    /// What the previous night's state brought in (empty without `--state`).
    pub previous: &'a Previous,
    pub state_dir: Option<&'a Path>,
    pub status: ExitStatus,
    /// Why the run is incomplete (sources over their reject limit), empty when it is not.
    pub incomplete: Vec<String>,
    /// What looks wrong without making the run untrusted (see [`warnings`]).
    pub warnings: Vec<String>,
}

impl Report<'_> {
    fn record(&self, (source, i): RecordRef) -> &Record {
        &self.loaded[source].records[i as usize]
    }

    fn location(&self, r: RecordRef) -> (&str, u64) {
        let o = self.record(r).origin;
        (
            &self.plan.sources[r.0].files[o.file as usize].display,
            o.line,
        )
    }

    fn side_refs(&self, b: &Break, side: Side) -> Vec<RecordRef> {
        let src = self.plan.checks[b.check].source(side);
        b.indices(side).iter().map(|&i| (src, i)).collect()
    }

    fn system(&self, b: &Break) -> &str {
        &self.plan.sources[self.plan.checks[b.check].source(b.side)].name
    }

    /// The business date of the run that first reported this key in this check.
    fn first_seen(&self, check: usize, key: Option<&str>) -> chrono::NaiveDate {
        if self.previous.open.is_empty() {
            // Without a state (or one with nothing open), no lookup and no copy of the key.
            return self.plan.date;
        }
        key.and_then(|k| self.previous.open.get(&(check, k.to_string())))
            .map_or(self.plan.date, |(d, _)| *d)
    }

    fn age(&self, check: usize, key: Option<&str>) -> i64 {
        (self.plan.date - self.first_seen(check, key)).num_days()
    }

    /// The business dates of some records, `;`-joined.
    fn dates(&self, refs: &[RecordRef]) -> String {
        refs.iter()
            .map(|&x| self.record(x).date.unwrap_or(self.plan.date).to_string())
            .collect::<Vec<_>>()
            .join(";")
    }
}

/// The ageing bucket of an open finding, by days since it was first seen.
pub fn age_bucket(days: i64) -> &'static str {
    match days {
        ..=1 => "0-1",
        2..=3 => "2-3",
        4..=7 => "4-7",
        _ => "over_7",
    }
}

pub const AGE_BUCKETS: [&str; 4] = ["0-1", "2-3", "4-7", "over_7"];

fn money(c: Currency, v: i128) -> String {
    c.format(v)
}

/// Totals by currency, as `{"EUR": "12.50"}` with exact decimals.
fn totals_json(totals: &BTreeMap<Currency, i128>) -> Value {
    let mut m = serde_json::Map::new();
    for (c, v) in totals {
        m.insert(c.code().to_string(), Value::String(money(*c, *v)));
    }
    Value::Object(m)
}

fn totals_text(totals: &BTreeMap<Currency, i128>) -> String {
    totals
        .iter()
        .map(|(c, v)| format!("{} {}", c, money(*c, *v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why the run cannot be trusted: a source over its reject limit, a source with no rows at all
/// (a failed export looks exactly like that) unless the config says it may be empty, or one whose
/// every row was rejected.
pub fn incomplete_reasons(plan: &RunPlan, loaded: &[Loaded]) -> Vec<String> {
    let mut out = Vec::new();
    for (s, l) in plan.sources.iter().zip(loaded) {
        if !s.max_rejects.allows(l.rejected(), l.rows()) {
            out.push(format!(
                "source {:?} rejected {} of {} rows, more than its max_rejects ({}); see rejects.csv",
                s.name,
                l.rejected(),
                l.rows(),
                s.max_rejects.describe()
            ));
        }
        if l.rows() == 0 && !s.allow_empty {
            out.push(format!(
                "source {:?} has no rows at all: a failed export looks like this (set allow_empty = true if it is normal)",
                s.name
            ));
        }
        // Within max_rejects or not, nothing of the source was compared.
        if l.rows() > 0 && l.rejected() == l.rows() {
            out.push(format!(
                "source {:?} rejected every one of its {} rows: nothing of it was reconciled; see rejects.csv",
                s.name,
                l.rows()
            ));
        }
    }
    out
}

/// Whether a check's sides both hold records of tonight (keyed or not) and share no key: a wrong
/// key column or clean-up (or one left blank). An empty side (a bank that sent nothing on a
/// Sunday) is not, even if it carries records of earlier nights (`--state`): those were read with
/// the same mapping, and are only the few still waiting for their counterpart.
pub fn shares_no_key(loaded: &[Loaded], check: &CheckPlan, res: &CheckResult) -> bool {
    let held = |s: usize| loaded[s].counts.records > 0;
    held(check.from) && held(check.to) && res.paired == 0
}

/// Data-quality signals an operator should see: a check whose two sides share no key at all (a
/// key column or clean-up that is wrong makes every record missing and every replay "safe"), and
/// keys of one source that differ only by case or surrounding spaces.
pub fn warnings(plan: &RunPlan, loaded: &[Loaded], results: &[CheckResult]) -> Vec<String> {
    let mut out = Vec::new();
    for (c, res) in plan.checks.iter().zip(results) {
        if shares_no_key(loaded, c, res) {
            out.push(format!(
                "check {:?}: no key occurs in both {:?} and {:?}; are the key columns and their clean-up (trim, lowercase, strip_prefix) right?",
                c.name, plan.sources[c.from].name, plan.sources[c.to].name
            ));
        }
    }
    for (s, l) in plan.sources.iter().zip(loaded) {
        if let Some(o) = l.header_repeats.first() {
            out.push(format!(
                "source {:?}: the header line appears again inside the data at {}:{}{} (files concatenated?); those lines are skipped",
                s.name,
                s.files[o.file as usize].display,
                o.line,
                match l.header_repeats.len() - 1 {
                    0 => String::new(),
                    n => format!(" and {n} more place(s)"),
                }
            ));
        }
    }
    for (s, l) in plan.sources.iter().zip(loaded) {
        out.extend(key_clashes(&s.name, l));
    }
    out
}

/// How many pairs of keys among `records` differ only by case or surrounding spaces, and the
/// smallest such pair as (smaller, larger) key texts.
///
/// Two keys can only clash if one of them is not already in folded form (upper case, non-ASCII or
/// surrounding spaces). Those are usually none or few: the hashes of their folded forms are
/// collected, and only keys with one of those hashes are folded and grouped. Such keys share a
/// partition (see [`crate::partition`]), so a run's pairs are the sum of its partitions' pairs.
pub fn clash_pairs(records: &[Record]) -> (usize, Option<(String, String)>) {
    let hashes: HashSet<u64, BuildHasherDefault<Prehashed>> = records
        .iter()
        .filter_map(|r| r.key.as_deref())
        .filter(|k| !crate::normalize::key::is_folded(k))
        .map(folded_hash)
        .collect();
    if hashes.is_empty() {
        return (0, None);
    }
    // The distinct spellings of each folded key that has an unfolded one: n spellings make
    // n(n-1)/2 pairs, counted rather than listed (a crafted input can have thousands).
    let mut spellings: HashMap<(u64, String), BTreeSet<&str>> = HashMap::new();
    for k in records.iter().filter_map(|r| r.key.as_deref()) {
        let h = folded_hash(k);
        if hashes.contains(&h) {
            spellings
                .entry((h, crate::normalize::key::folded(k)))
                .or_default()
                .insert(k);
        }
    }
    let mut pairs = 0;
    let mut example: Option<(&str, &str)> = None;
    for s in spellings.values().filter(|s| s.len() > 1) {
        pairs += s.len() * (s.len() - 1) / 2;
        let mut first = s.iter();
        let pair = (*first.next().expect("two"), *first.next().expect("two"));
        if example.is_none_or(|e| pair < e) {
            example = Some(pair);
        }
    }
    (pairs, example.map(|(a, b)| (a.to_string(), b.to_string())))
}

/// The warning about a source's clashing keys, if it has any.
fn key_clashes(source: &str, l: &Loaded) -> Option<String> {
    let (a, b) = l.counts.clash_example.as_ref()?;
    Some(format!(
        "source {source:?}: {} pair(s) of keys differ only by case or surrounding spaces (e.g. {a:?} and {b:?}); they are matched as different keys",
        l.counts.clashes
    ))
}

/// Per break kind of one check: the count, and per currency the net (signed) and gross (absolute)
/// totals of the breaks' amounts. Net alone would let a -30.00 and a +42.00 look like 12.00.
#[derive(Default)]
struct KindTotals {
    count: u64,
    net: BTreeMap<Currency, i128>,
    gross: BTreeMap<Currency, i128>,
}

fn per_kind(r: &Report, check: usize) -> BTreeMap<BreakKind, KindTotals> {
    let mut out: BTreeMap<BreakKind, KindTotals> = BreakKind::CHECK
        .iter()
        .map(|k| (*k, KindTotals::default()))
        .collect();
    for b in r.breaks.iter().filter(|b| b.check == check) {
        let entry = out.get_mut(&b.kind).expect("all kinds present");
        entry.count += 1;
        if let Some((c, v)) = exposure(r.plan, r.loaded, b) {
            *entry.net.entry(c).or_insert(0) += v;
            *entry.gross.entry(c).or_insert(0) += v.abs();
        }
    }
    out
}

pub fn summary_json(r: &Report) -> Value {
    let sources: Vec<Value> = r
        .plan
        .sources
        .iter()
        .zip(r.loaded)
        .map(|(s, l)| {
            let files: Vec<Value> = s
                .files
                .iter()
                .filter(|f| !f.carried)
                .zip(&l.files)
                .map(|(f, st)| json!({"path": f.display, "bytes": f.bytes, "rows_read": st.rows, "rows_rejected": st.rejected}))
                .collect();
            json!({
                "name": s.name,
                "format": match s.format { crate::config::Format::Csv => "csv", crate::config::Format::Jsonl => "jsonl" },
                "files": files,
                "rows_read": l.rows(),
                "rows_rejected": l.rejected(),
                "max_rejects": s.max_rejects.describe(),
                "records": l.counts.records,
                "carried_records": l.counts.carried,
                "unkeyed": l.counts.unkeyed,
            })
        })
        .collect();
    let checks: Vec<Value> = r
        .plan
        .checks
        .iter()
        .zip(r.results)
        .enumerate()
        .map(|(i, (c, res))| {
            let mut kinds = serde_json::Map::new();
            for (k, t) in per_kind(r, i) {
                kinds.insert(
                    k.name().into(),
                    json!({"count": t.count, "net": totals_json(&t.net), "gross": totals_json(&t.gross)}),
                );
            }
            let matched: BTreeMap<Currency, i128> = res.matched_amounts.iter().copied().collect();
            json!({
                "name": c.name,
                "from": r.plan.sources[c.from].name,
                "to": r.plan.sources[c.to].name,
                // An untimed check compares no dates: it has no window, not a window of 0 days.
                "window": c.timed.then(|| c.window.to_string()),
                "lead": c.timed.then(|| c.lead.to_string()),
                "keys": res.keys,
                "matched": {"count": res.matched, "amount": totals_json(&matched)},
                "resolved": res.resolved.len(),
                "breaks": kinds,
            })
        })
        .collect();
    let mut actions = serde_json::Map::new();
    for a in [
        Action::Replay,
        Action::Reverse,
        Action::Adjust,
        Action::Investigate,
        Action::Wait,
    ] {
        actions.insert(
            a.name().into(),
            json!(r.repairs.repairs.iter().filter(|x| x.action == a).count()),
        );
    }
    json!({
        "recon_version": env!("CARGO_PKG_VERSION"),
        "business_date": r.plan.date.to_string(),
        "status": r.status.name(),
        "exit_code": r.status as i32,
        "incomplete_reasons": r.incomplete,
        "warnings": r.warnings,
        "config_sha256": r.plan.config_sha256,
        "state": {
            "read": r.previous.date.map(|d| d.to_string()),
            "carried_keys": r.previous.open.len(),
            "written": r.state_dir.is_some() && r.status != ExitStatus::Untrusted,
        },
        "sources": sources,
        "checks": checks,
        "ageing": ageing_json(r),
        "flows": flows_json(r),
        "repairs": actions,
    })
}

/// Open findings (every kind but `late`) per kind and age bucket: count and gross amount.
fn ageing(r: &Report) -> BTreeMap<BreakKind, BTreeMap<&'static str, KindTotals>> {
    let mut out: BTreeMap<BreakKind, BTreeMap<&'static str, KindTotals>> = BTreeMap::new();
    for b in r.breaks.iter().filter(|b| b.kind != BreakKind::Late) {
        let buckets = out.entry(b.kind).or_insert_with(|| {
            AGE_BUCKETS
                .iter()
                .map(|a| (*a, KindTotals::default()))
                .collect()
        });
        let t = buckets
            .get_mut(age_bucket(r.age(b.check, b.key.as_deref())))
            .expect("all buckets present");
        t.count += 1;
        if let Some((c, v)) = exposure(r.plan, r.loaded, b) {
            *t.net.entry(c).or_insert(0) += v;
            *t.gross.entry(c).or_insert(0) += v.abs();
        }
    }
    out
}

fn ageing_json(r: &Report) -> Value {
    let mut m = serde_json::Map::new();
    for (kind, buckets) in ageing(r) {
        let mut b = serde_json::Map::new();
        for (name, t) in buckets {
            b.insert(
                name.into(),
                json!({"count": t.count, "gross": totals_json(&t.gross)}),
            );
        }
        m.insert(kind.name().into(), Value::Object(b));
    }
    Value::Object(m)
}

/// Per flow and stage: keys stopped there (window closed) and pending there, with gross amounts.
fn flow_stage_totals(r: &Report, flow: usize) -> Vec<(KindTotals, KindTotals)> {
    let n = r.plan.flows[flow].stages.len();
    let mut out: Vec<(KindTotals, KindTotals)> = (0..n).map(|_| Default::default()).collect();
    for f in r.flows.findings.iter().filter(|f| f.flow == flow) {
        let (k, stopped) = match f.status {
            FlowStatus::Stopped(k) => (k, true),
            FlowStatus::Pending(k) => (k, false),
            FlowStatus::OutOfOrder => continue,
        };
        let t = if stopped {
            &mut out[k].0
        } else {
            &mut out[k].1
        };
        t.count += 1;
        if let Some((c, v)) = f.seen[k].as_ref().and_then(|s| stage_amount(r, s)) {
            *t.gross.entry(c).or_insert(0) += (v as i128).abs();
        }
    }
    out
}

/// A flow stage's amount in its currency's minor units, as this run's currencies define them.
fn stage_amount(r: &Report, seen: &crate::state::StageSeen) -> Option<(Currency, i64)> {
    let c = r.plan.sources[0]
        .currencies
        .parse(seen.currency.as_deref()?)?;
    Some((c, crate::state::read_amount(seen.amount.as_deref()?, c)?))
}

fn flows_json(r: &Report) -> Value {
    let flows: Vec<Value> = r
        .plan
        .flows
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let stages: Vec<Value> = flow_stage_totals(r, i)
                .into_iter()
                .zip(&f.stages)
                .map(|((stopped, pending), &s)| {
                    json!({
                        "stage": r.plan.sources[s].name,
                        "stopped": {"count": stopped.count, "gross": totals_json(&stopped.gross)},
                        "pending": {"count": pending.count, "gross": totals_json(&pending.gross)},
                    })
                })
                .collect();
            let out_of_order = r
                .flows
                .findings
                .iter()
                .filter(|x| x.flow == i && x.status == FlowStatus::OutOfOrder)
                .count();
            json!({
                "name": f.name,
                "keys": r.flows.keys[i],
                "completed": r.flows.completed[i],
                "stages": stages,
                "out_of_order": out_of_order,
            })
        })
        .collect();
    Value::Array(flows)
}

fn write_flows(r: &Report, w: impl Write) -> Result<()> {
    let mut csv = csv::Writer::from_writer(w);
    csv.write_record([
        "flow",
        "key",
        "status",
        "furthest_stage",
        "next_stage",
        "stages_seen",
        "amount",
        "currency",
        "evidence",
        "first_seen",
        "age_days",
        "repair_id",
        "repair",
    ])?;
    // Each check's missing and unexpected breaks by key, to find a stopped key's repair.
    let presence_breaks: HashMap<(usize, &str), usize> = if r.flows.findings.is_empty() {
        HashMap::new()
    } else {
        r.breaks
            .iter()
            .enumerate()
            .filter(|(_, b)| matches!(b.kind, BreakKind::Missing | BreakKind::Unexpected))
            .filter_map(|(i, b)| Some(((b.check, b.key.as_deref()?), i)))
            .collect()
    };
    for f in &r.flows.findings {
        let flow = &r.plan.flows[f.flow];
        let name = |k: usize| r.plan.sources[flow.stages[k]].name.as_str();
        let furthest = f.furthest().unwrap_or(0);
        let next = match f.status {
            FlowStatus::Stopped(k) | FlowStatus::Pending(k) => name(k + 1),
            FlowStatus::OutOfOrder => "",
        };
        let seen: Vec<&str> = (0..flow.stages.len())
            .filter(|&k| f.seen[k].is_some())
            .map(name)
            .collect();
        // A key stopped at stage k is a break of the check linking k and k+1, when there is one:
        // that break's repair (with its safety downgrades) is the flow's repair.
        let repair = match f.status {
            FlowStatus::Stopped(k) => flow.links[k]
                .and_then(|c| presence_breaks.get(&(c, f.key.as_str())))
                .and_then(|&i| r.repairs.of_break[i])
                .map(|i| &r.repairs.repairs[i]),
            _ => None,
        };
        let at = f.seen[furthest].as_ref();
        let currency = at.and_then(|s| s.currency.as_deref());
        let amount = at
            .and_then(|s| stage_amount(r, s))
            .map_or(String::new(), |(c, v)| money(c, v as i128));
        write_cells(
            &mut csv,
            &[
                flow.name.as_str(),
                &f.key,
                f.status.name(),
                name(furthest),
                next,
                &seen.join(";"),
                &amount,
                currency.unwrap_or(""),
                &crate::flow::evidence_of(&f.seen),
                &f.first_seen.to_string(),
                &(r.plan.date - f.first_seen).num_days().to_string(),
                repair.map_or(f.repair_id.as_str(), |x| x.id.as_str()),
                &match (f.status, repair) {
                    (FlowStatus::Stopped(k), None) => {
                        format!("replay {} into {}", name(k), name(k + 1))
                    }
                    (FlowStatus::Stopped(k), Some(x)) if x.action == Action::Replay => {
                        format!("replay {} into {}", name(k), name(k + 1))
                    }
                    (_, Some(x)) => x.action.name().to_string(),
                    (_, None) => f.action.to_string(),
                },
            ],
        )?;
    }
    csv.flush()?;
    Ok(())
}

/// Keys open after the previous night that are clean tonight, with the records that settled them.
fn write_resolved(r: &Report, w: impl Write) -> Result<()> {
    let mut csv = csv::Writer::from_writer(w);
    csv.write_record([
        "check",
        "key",
        "was",
        "first_seen",
        "resolved_on",
        "days_open",
        "how",
        "from_evidence",
        "to_evidence",
    ])?;
    let mut rows = Vec::new();
    for (i, res) in r.results.iter().enumerate() {
        let c = &r.plan.checks[i];
        for x in &res.resolved {
            let key = &x.key;
            let (first, was) = r
                .previous
                .open
                .get(&(i, key.clone()))
                .cloned()
                .unwrap_or((r.plan.date, Vec::new()));
            let from: Vec<RecordRef> = x.from.iter().map(|&y| (c.from, y)).collect();
            let to: Vec<RecordRef> = x.to.iter().map(|&y| (c.to, y)).collect();
            rows.push((
                i,
                [
                    c.name.clone(),
                    key.clone(),
                    was.join(";"),
                    first.to_string(),
                    r.plan.date.to_string(),
                    (r.plan.date - first).num_days().to_string(),
                    x.how.to_string(),
                    evidence_text(r, &from),
                    evidence_text(r, &to),
                ],
            ));
        }
    }
    // Config order of checks, then key: the order of breaks.csv.
    rows.sort_by(|a, b| (a.0, &a.1[1]).cmp(&(b.0, &b.1[1])));
    for (_, row) in rows {
        write_cells(&mut csv, &row)?;
    }
    csv.flush()?;
    Ok(())
}

fn evidence_text(r: &Report, refs: &[RecordRef]) -> String {
    refs.iter()
        .map(|&x| {
            let (f, l) = r.location(x);
            format!("{f}:{l}")
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// The amounts and the currencies of some records, each joined by `;` (earliest first).
fn amounts_text(r: &Report, refs: &[RecordRef]) -> (String, String) {
    let (mut amounts, mut currencies) = (Vec::new(), Vec::new());
    for &x in refs {
        let rec = r.record(x);
        if let (Some(c), Some(a)) = (rec.currency, rec.amount) {
            amounts.push(money(c, a.0 as i128));
            currencies.push(c.code().to_string());
        }
    }
    (amounts.join(";"), currencies.join(";"))
}

fn write_breaks(r: &Report, mut w: impl Write) -> Result<()> {
    let mut csv = csv::Writer::from_writer(&mut w);
    csv.write_record([
        "check",
        "kind",
        "key",
        "system",
        "fields",
        "differences",
        "amount",
        "currency",
        "from_amount",
        "from_currency",
        "to_amount",
        "to_currency",
        "from_evidence",
        "to_evidence",
        "from_date",
        "to_date",
        "timing",
        "first_seen",
        "age_days",
        "repair_id",
        "repair",
        "repair_note",
    ])?;
    csv.flush()?;
    drop(csv);
    write_in_pieces(w, r.breaks, |at, piece, buf| {
        let mut csv = csv::Writer::from_writer(buf);
        for (i, b) in (at..).zip(piece) {
            break_row(r, i, b, &mut csv)?;
        }
        csv.flush()?;
        Ok(())
    })
}

/// Writes items in order, formatted in parallel a piece at a time (`piece` gets a piece's first
/// index, its items and a buffer): at 5M records the two large outputs, formatted on one thread
/// each, took a quarter of a second, most of it on one thread.
fn write_in_pieces<T: Sync>(
    mut w: impl Write,
    items: &[T],
    piece: impl Fn(usize, &[T], &mut Vec<u8>) -> Result<()> + Sync,
) -> Result<()> {
    const PIECE: usize = 1 << 11;
    // Pieces formatted at once: a bound on the memory the text takes before it is written.
    const BATCH: usize = PIECE << 6;
    for (b, batch) in items.chunks(BATCH).enumerate() {
        let texts: Vec<Vec<u8>> = batch
            .par_chunks(PIECE)
            .enumerate()
            .map(|(p, items)| {
                let mut buf = Vec::new();
                piece(b * BATCH + p * PIECE, items, &mut buf)?;
                Ok(buf)
            })
            .collect::<Result<_>>()?;
        for t in texts {
            w.write_all(&t)?;
        }
    }
    Ok(())
}

/// One break's row of breaks.csv; `i` is its place in `r.breaks`.
fn break_row(r: &Report, i: usize, b: &Break, csv: &mut csv::Writer<&mut Vec<u8>>) -> Result<()> {
    let (from, to) = (r.side_refs(b, Side::From), r.side_refs(b, Side::To));
    let exp = exposure(r.plan, r.loaded, b);
    let (from_amounts, from_currencies) = amounts_text(r, &from);
    let (to_amounts, to_currencies) = amounts_text(r, &to);
    let repair = r.repairs.of_break[i].map(|x| &r.repairs.repairs[x]);
    let open = b.kind != BreakKind::Late;
    write_cells(
        csv,
        &[
            r.plan.checks[b.check].name.as_str(),
            b.kind.name(),
            b.key.as_deref().unwrap_or(""),
            r.system(b),
            &b.fields.join(";"),
            &differences(r, b),
            &exp.map(|(c, v)| money(c, v)).unwrap_or_default(),
            &exp.map(|(c, _)| c.code().to_string()).unwrap_or_default(),
            &from_amounts,
            &from_currencies,
            &to_amounts,
            &to_currencies,
            &evidence_text(r, &from),
            &evidence_text(r, &to),
            &r.dates(&from),
            &r.dates(&to),
            b.timing.as_deref().unwrap_or(""),
            &if open {
                r.first_seen(b.check, b.key.as_deref()).to_string()
            } else {
                String::new()
            },
            &if open {
                r.age(b.check, b.key.as_deref()).to_string()
            } else {
                String::new()
            },
            repair.map_or("", |x| x.id.as_str()),
            repair.map_or("none", |x| x.action.name()),
            repair.and_then(|x| x.note.as_deref()).unwrap_or(""),
        ],
    )?;
    Ok(())
}

/// For a mismatch, each differing field with both values: `status: paid -> refunded; account: A -> B`.
fn differences(r: &Report, b: &Break) -> String {
    let (Some(&f), Some(&t)) = (b.from.first(), b.to.first()) else {
        return String::new();
    };
    if b.fields.is_empty() {
        return String::new();
    }
    let check = &r.plan.checks[b.check];
    let (x, y) = (r.record((check.from, f)), r.record((check.to, t)));
    let text = |v: &Option<crate::model::Shared>| v.as_deref().unwrap_or("(none)").to_string();
    let amount = |rec: &Record| match (rec.amount, rec.currency) {
        (Some(a), Some(c)) => money(c, a.0 as i128),
        _ => "(none)".into(),
    };
    let currency = |rec: &Record| {
        rec.currency
            .map_or("(none)".to_string(), |c| c.code().to_string())
    };
    check
        .compare
        .iter()
        .filter(|field| b.fields.iter().any(|n| n == field.name()))
        .map(|field| {
            let (a, b) = match field {
                Field::Amount => (amount(x), amount(y)),
                Field::Currency => (currency(x), currency(y)),
                Field::Status => {
                    let mapped = x.status.as_deref().and_then(|v| check.status_map.get(v));
                    let from = match mapped {
                        Some(m) => format!("{} (= {m})", text(&x.status)),
                        None => text(&x.status),
                    };
                    (from, text(&y.status))
                }
                Field::Account => (text(&x.account), text(&y.account)),
                Field::Extra { from, to, .. } => (text(&x.extra[*from]), text(&y.extra[*to])),
            };
            format!("{}: {a} -> {b}", field.name())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn write_repairs(r: &Report, w: impl Write) -> Result<()> {
    write_in_pieces(w, &r.repairs.repairs, |_, piece, buf| {
        for rep in piece {
            repair_line(r, rep, &mut *buf)?;
        }
        Ok(())
    })
}

/// One repair's line of repairs.jsonl.
fn repair_line(r: &Report, rep: &Repair, mut w: impl Write) -> Result<()> {
    let place = |x: RecordRef| {
        let (file, line) = r.location(x);
        let source = r.plan.sources[x.0].name.as_str();
        Place { source, file, line }
    };
    let line = RepairLine {
        id: &rep.id,
        check: &r.plan.checks[rep.check].name,
        action: rep.action.name(),
        kind: rep.kind.name(),
        key: rep.key.as_deref(),
        system: &r.plan.sources[rep.system].name,
        amount: rep.amount.map(|(c, v)| money(c, v)),
        currency: rep.amount.as_ref().map(|(c, _)| c.code()),
        amount_minor: rep.amount.map(|(_, v)| v.to_string()),
        automation: rep.automation,
        fields: &rep.fields,
        evidence: rep.evidence.iter().map(|&x| place(x)).collect(),
        keep: rep.keep.map(place),
        note: rep.note.as_deref(),
        first_seen: r.first_seen(rep.check, rep.key.as_deref()).to_string(),
    };
    serde_json::to_writer(&mut w, &line)?;
    w.write_all(b"\n")?;
    Ok(())
}

/// One line of repairs.jsonl, its keys in the documented order (serialized as declared: no map
/// is built per line).
#[derive(serde::Serialize)]
struct RepairLine<'a> {
    id: &'a str,
    check: &'a str,
    action: &'a str,
    kind: &'a str,
    key: Option<&'a str>,
    system: &'a str,
    amount: Option<String>,
    currency: Option<&'a str>,
    amount_minor: Option<String>,
    automation: &'a str,
    fields: &'a [String],
    evidence: Vec<Place<'a>>,
    keep: Option<Place<'a>>,
    note: Option<&'a str>,
    first_seen: String,
}

/// Where a record of a repair's evidence is.
#[derive(serde::Serialize)]
struct Place<'a> {
    source: &'a str,
    file: &'a str,
    line: u64,
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab or CR first) gets a leading
/// `'`, unless it is a plain number or a `;`-list of them (`-12.50`, `1.00;-2.00`), which is safe.
fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    let plain_number = |t: &str| {
        let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
        let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
        !int.is_empty()
            && !frac.is_empty()
            && (int.bytes().chain(frac.bytes())).all(|b| b.is_ascii_digit())
    };
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && !cell.split(';').all(plain_number) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// Writes one CSV row of text cells, each neutralised for spreadsheets.
fn write_cells<W: Write, S: AsRef<str>>(csv: &mut csv::Writer<W>, cells: &[S]) -> Result<()> {
    csv.write_record(cells.iter().map(|c| neutralise(c.as_ref()).into_owned()))?;
    Ok(())
}

fn write_rejects(r: &Report, w: impl Write) -> Result<()> {
    let mut csv = csv::Writer::from_writer(w);
    csv.write_record(["source", "file", "line", "field", "reason", "raw"])?;
    for (s, l) in r.plan.sources.iter().zip(r.loaded) {
        for x in &l.rejects {
            let file = &s.files[x.origin.file as usize].display;
            let line = x.origin.line.to_string();
            write_cells(
                &mut csv,
                &[&s.name, file, &line, &x.field, &x.reason, &x.raw],
            )?;
        }
    }
    csv.flush()?;
    Ok(())
}

/// Counts and hashes the bytes written through it, for the integrity block of summary.json.
struct Hashing<'w> {
    inner: &'w mut dyn Write,
    hash: Sha256,
    bytes: u64,
}

impl Write for Hashing<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes one output file's bytes.
type OutputWriter<'a> = dyn Fn(&mut dyn Write) -> Result<()> + Sync + 'a;

pub fn write_outputs(r: &Report, lock: &OutputLock) -> Result<()> {
    lock.publish(|stage| {
        let writers: [(&str, &OutputWriter); 5] = [
            ("breaks.csv", &|w| write_breaks(r, w)),
            ("repairs.jsonl", &|w| write_repairs(r, w)),
            ("rejects.csv", &|w| write_rejects(r, w)),
            ("resolved.csv", &|w| write_resolved(r, w)),
            ("flows.csv", &|w| write_flows(r, w)),
        ];
        // The files side by side (each is written, hashed and synced on its own); their digests
        // are listed in this order whichever finishes first. The summary is drawn up meanwhile.
        let (summary, digests) = rayon::join(
            || summary_json(r),
            || {
                writers
                    .par_iter()
                    .map(|&(name, write)| {
                        let mut digest = Value::Null;
                        stage.write(name, |w| {
                            let mut h = Hashing {
                                inner: w,
                                hash: Sha256::new(),
                                bytes: 0,
                            };
                            // Buffered ahead of the hash: serde_json and csv write a line in dozens of
                            // small pieces, and hashing each piece on its own cost more than the hashing.
                            let mut buffered = std::io::BufWriter::with_capacity(1 << 16, &mut h);
                            write(&mut buffered)?;
                            buffered.flush()?;
                            drop(buffered);
                            digest = json!({"bytes": h.bytes, "sha256": hex(&h.hash.finalize())});
                            Ok(())
                        })?;
                        Ok((name, digest))
                    })
                    .collect::<Result<Vec<(&str, Value)>>>()
            },
        );
        let digests: serde_json::Map<String, Value> = digests?
            .into_iter()
            .map(|(name, d)| (name.to_string(), d))
            .collect();
        let mut summary = summary;
        summary["outputs"] = Value::Object(digests);
        let text = serde_json::to_string_pretty(&summary)? + "\n";
        stage.write("summary.json", |w| Ok(w.write_all(text.as_bytes())?))
    })
}

/// The operator's summary: sources, then per check the match rate and every break kind found.
pub fn terminal_table(r: &Report, out_dir: &Path) -> String {
    let mut s = String::new();
    // An incomplete run says so first: nobody should read its figures as the night's truth.
    for why in &r.incomplete {
        s.push_str(&format!("INCOMPLETE: {why}\n"));
    }
    for w in &r.warnings {
        s.push_str(&format!("WARNING: {w}\n"));
    }
    if !r.incomplete.is_empty() || !r.warnings.is_empty() {
        s.push('\n');
    }
    let name_w = r
        .plan
        .sources
        .iter()
        .map(|x| x.name.len())
        .max()
        .unwrap_or(6)
        .max(6);
    s.push_str(&format!("business date {}", r.plan.date));
    if let Some(d) = r.previous.date {
        s.push_str(&format!(
            " (state after {d}: {} open key(s) carried in)",
            r.previous.open.len()
        ));
    }
    s.push_str("\n\nsources\n");
    for (src, l) in r.plan.sources.iter().zip(r.loaded) {
        let files = src.files.iter().filter(|f| !f.carried).count();
        s.push_str(&format!(
            "  {:<name_w$}  {:>2} file{}  {:>9} rows  {:>7} rejected\n",
            src.name,
            files,
            if files == 1 { " " } else { "s" },
            l.rows(),
            l.rejected(),
        ));
    }
    s.push_str(
        "\nper check: each break kind's count and amount at stake (sum of absolute amounts)\n",
    );
    for (i, (c, res)) in r.plan.checks.iter().zip(r.results).enumerate() {
        // A share of no keys would read as a perfect night.
        let matched = match res.keys {
            0 => "nothing to match".to_string(),
            n => format!(
                "{} matched ({:.1}%)",
                res.matched,
                res.matched as f64 * 100.0 / n as f64
            ),
        };
        s.push_str(&format!(
            "\ncheck {} ({} -> {}): {} keys, {matched}",
            c.name, r.plan.sources[c.from].name, r.plan.sources[c.to].name, res.keys
        ));
        if !res.resolved.is_empty() {
            s.push_str(&format!(
                ", {} resolved from earlier nights",
                res.resolved.len()
            ));
        }
        s.push('\n');
        for (k, t) in per_kind(r, i) {
            if t.count > 0 {
                let line = format!(
                    "  {:<22} {:>7}  {}",
                    k.name(),
                    t.count,
                    totals_text(&t.gross)
                );
                s.push_str(line.trim_end());
                s.push('\n');
            }
        }
    }
    let ageing = ageing(r);
    if ageing.keys().any(|k| *k != BreakKind::Unkeyed) && r.state_dir.is_some() {
        s.push_str("\nopen findings by age in days (count, amount at stake)\n");
        s.push_str(&format!(
            "  {:<22} {:>16} {:>16} {:>16} {:>16}\n",
            "kind", "0-1", "2-3", "4-7", "over 7"
        ));
        for (k, buckets) in &ageing {
            let cells: Vec<String> = buckets
                .values()
                .map(|t| {
                    if t.count == 0 {
                        "-".to_string()
                    } else {
                        format!("{} {}", t.count, totals_text(&t.gross))
                    }
                })
                .collect();
            s.push_str(&format!(
                "  {:<22} {:>16} {:>16} {:>16} {:>16}\n",
                k.name(),
                cells[0],
                cells[1],
                cells[2],
                cells[3]
            ));
        }
    }
    for (i, f) in r.plan.flows.iter().enumerate() {
        let names: Vec<&str> = f
            .stages
            .iter()
            .map(|&x| r.plan.sources[x].name.as_str())
            .collect();
        s.push_str(&format!(
            "\nflow {} ({}): {} keys, {} completed\n",
            f.name,
            names.join(" -> "),
            r.flows.keys[i],
            r.flows.completed[i]
        ));
        for ((stopped, pending), name) in flow_stage_totals(r, i).iter().zip(&names) {
            if stopped.count + pending.count > 0 {
                let line = format!(
                    "  stopped at {:<12} {:>5}  {}   pending {:>5}  {}",
                    name,
                    stopped.count,
                    totals_text(&stopped.gross),
                    pending.count,
                    totals_text(&pending.gross)
                );
                s.push_str(line.trim_end());
                s.push('\n');
            }
        }
        let ooo = r
            .flows
            .findings
            .iter()
            .filter(|x| x.flow == i && x.status == FlowStatus::OutOfOrder)
            .count();
        if ooo > 0 {
            s.push_str(&format!("  out_of_order {ooo}\n"));
        }
    }
    let count = |a: Action| r.repairs.repairs.iter().filter(|x| x.action == a).count();
    s.push_str(&format!(
        "\nrepairs: {} replay, {} reverse, {} adjust, {} investigate, {} wait\n",
        count(Action::Replay),
        count(Action::Reverse),
        count(Action::Adjust),
        count(Action::Investigate),
        count(Action::Wait)
    ));
    s.push_str(&format!(
        "result: {} (exit {}); outputs in {}\n",
        r.status.name(),
        r.status as i32,
        out_dir.display()
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::{clash_pairs, neutralise, write_in_pieces};
    use crate::model::Record;

    #[test]
    fn items_written_in_pieces_come_out_in_order_with_their_indices() {
        // Across pieces (2048 items) and batches (64 pieces), and a last short piece.
        let items: Vec<u64> = (0..300_001).map(|i| i * 3).collect();
        let mut out = Vec::new();
        write_in_pieces(&mut out, &items, |at, piece, buf| {
            for (i, x) in (at..).zip(piece) {
                buf.extend_from_slice(format!("{i}:{x}\n").as_bytes());
            }
            Ok(())
        })
        .unwrap();
        let want: String = items
            .iter()
            .enumerate()
            .map(|(i, x)| format!("{i}:{x}\n"))
            .collect();
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn clashing_spellings_are_counted_in_pairs_with_the_smallest_shown() {
        let keys = [
            "ord-1", "ORD-1", " ord-1", "ORD-1", "b-2", "B-2 ", "c-3", "d-4 ", "E-5",
        ];
        let records: Vec<Record> = (keys.iter().enumerate())
            .map(|(i, k)| Record::bare(Some(k), i as u64))
            .collect();
        // Three spellings of ord-1 (the repeated ORD-1 counts once): 3 pairs; b-2: 1 pair.
        let example = Some((" ord-1".to_string(), "ORD-1".to_string()));
        assert_eq!(clash_pairs(&records), (4, example));
        assert_eq!(clash_pairs(&records[6..]), (0, None));
    }

    #[test]
    fn spreadsheet_formulas_are_neutralised() {
        let cases = [
            ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"),
            ("+1+2", "'+1+2"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tcmd", "'\tcmd"),
            ("\rcmd", "'\rcmd"),
            ("-12.50", "-12.50"),
            ("+3", "+3"),
            ("-1.00;-2.00", "-1.00;-2.00"),
            ("-1.00;=2", "'-1.00;=2"),
            ("-", "'-"),
            ("-.5", "'-.5"),
            ("ORD-1", "ORD-1"),
            ("", ""),
        ];
        for (cell, want) in cases {
            assert_eq!(neutralise(cell), want, "{cell:?}");
        }
    }
}
