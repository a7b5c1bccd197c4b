//! The repair plan: one instruction per break that needs action, with an id that only depends on
//! what the instruction is about, so a re-run yields the same ids and a plan applied twice is harmless.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::classify::{Break, Side};
use crate::config::{RunPlan, hex};
use crate::load::Loaded;
use crate::model::{Action, BreakKind, Origin};
use crate::normalize::currency::Currency;
use crate::normalize::key::folded;

/// A record named as evidence: (source index, record index in that source).
pub type RecordRef = (usize, u32);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    pub id: String,
    /// The first check (config order) whose break asked for this repair.
    pub check: usize,
    pub action: Action,
    pub kind: BreakKind,
    pub key: Option<String>,
    /// The source whose system must act.
    pub system: usize,
    /// replay: the amount to deliver; reverse: the total of the postings to reverse; adjust: the signed
    /// difference to post in `system`; investigate: the amount at stake, where there is one.
    pub amount: Option<(Currency, i128)>,
    /// The records the instruction acts on or rests on.
    pub evidence: Vec<RecordRef>,
    /// For `reverse`: the posting to keep.
    pub keep: Option<RecordRef>,
    /// For mismatches: the fields that differ.
    pub fields: Vec<String>,
    /// How safe it is to apply without a person: `safe`, `review` or `manual`.
    pub automation: &'static str,
    /// Why the action or its automation is not the kind's usual one (see [`adjusted_action`]).
    pub note: Option<String>,
}

/// The plan, and for each finding (same order as given) the index of its repair (`late` has none).
pub struct Plan {
    pub repairs: Vec<Repair>,
    pub of_break: Vec<Option<usize>>,
}

/// The amount a break puts at stake, in its currency; `None` where there is no single figure
/// (conflicting duplicates) or the sources carry no amount.
pub fn exposure(plan: &RunPlan, loaded: &[Loaded], b: &Break) -> Option<(Currency, i128)> {
    let check = &plan.checks[b.check];
    let rec = |side: Side, i: u32| &loaded[check.source(side)].records[i as usize];
    let amount = |side: Side, idx: &[u32]| -> Option<(Currency, i128)> {
        let mut total = 0i128;
        let mut currency = None;
        for &i in idx {
            let r = rec(side, i);
            total += r.amount?.0 as i128;
            currency = r.currency;
        }
        Some((currency?, total))
    };
    match b.kind {
        BreakKind::Missing => amount(Side::From, &b.from[..1]),
        BreakKind::Unexpected => amount(Side::To, &b.to[..1]),
        BreakKind::Duplicate => amount(b.side, &b.indices(b.side)[1..]),
        BreakKind::ConflictingDuplicate => None,
        BreakKind::AmountMismatch => {
            let (c, x) = amount(Side::From, &b.from)?;
            let (_, y) = amount(Side::To, &b.to)?;
            Some((c, x - y))
        }
        BreakKind::FieldMismatch => amount(Side::From, &b.from),
        BreakKind::Unkeyed => amount(b.side, b.indices(b.side)),
        BreakKind::Pending => amount(b.side.other(), &b.indices(b.side.other())[..1]),
        BreakKind::Late => amount(Side::From, &b.from[..1]),
        BreakKind::OutOfOrder => None,
    }
}

/// Builds the plan from breaks sorted in output order. Breaks of different checks that ask for the
/// very same instruction (a duplicate posting seen from two checks) share one repair, owned by the
/// first check, so applying the plan never reverses a posting twice.
pub fn plan(
    run: &RunPlan,
    loaded: &[Loaded],
    breaks: &[Break],
    paired: &[bool],
    held: &HashMap<(usize, String), String>,
) -> Plan {
    let hazards = Hazards::new(run, loaded, breaks, paired, held);
    let mut repairs: Vec<Repair> = Vec::new();
    let mut of_break = Vec::with_capacity(breaks.len());
    // foldhash rather than std's SipHash: hashing the identities was a third of this serial loop.
    let mut seen: HashMap<Identity, usize, foldhash::fast::FixedState> = HashMap::default();
    // Each break's repair is drafted on its own, in parallel (its id is a digest), a batch at a
    // time (a 50M run's 700,000 drafts at once would hold some 180 MB); the drafts are then taken
    // in output order, the first of each identity kept.
    for batch in breaks.chunks(DRAFTS_AT_ONCE) {
        let drafts: Vec<Option<Repair>> = batch
            .par_iter()
            .map(|b| draft(run, loaded, &hazards, b))
            .collect();
        for d in drafts {
            let Some(repair) = d else {
                of_break.push(None);
                continue;
            };
            let identity = (
                repair.action,
                repair.system,
                repair.key.clone(),
                repair.evidence.clone(),
            );
            if let Some(&i) = seen.get(&identity) {
                of_break.push(Some(i));
                continue;
            }
            seen.insert(identity, repairs.len());
            of_break.push(Some(repairs.len()));
            repairs.push(repair);
        }
    }
    Plan { repairs, of_break }
}

/// Breaks whose repairs are drafted in parallel before they are taken in order.
const DRAFTS_AT_ONCE: usize = 1 << 16;

/// What makes two breaks' repairs the same instruction: action, system, key and evidence (taken
/// from the repair).
type Identity = (Action, usize, Option<String>, Vec<RecordRef>);

/// The repair one break asks for; `None` for a break that needs none (`late`).
fn draft(run: &RunPlan, loaded: &[Loaded], hazards: &Hazards, b: &Break) -> Option<Repair> {
    if b.kind == BreakKind::Late {
        return None;
    }
    let check = &run.checks[b.check];
    let refs = |side: Side, idx: &[u32]| {
        idx.iter()
            .map(|&i| (check.source(side), i))
            .collect::<Vec<_>>()
    };
    let system = check.source(b.side);
    let (action, automation, note) = adjusted_action(run, hazards, b, check.to, system);
    let side_idx = b.indices(b.side);
    let (evidence, keep) = match b.kind {
        BreakKind::Missing => (refs(Side::From, &b.from[..1]), None),
        BreakKind::Pending => (refs(b.side.other(), &b.indices(b.side.other())[..1]), None),
        BreakKind::Duplicate => (refs(b.side, &side_idx[1..]), Some((system, side_idx[0]))),
        _ => {
            let mut e = refs(Side::From, &b.from);
            e.extend(refs(Side::To, &b.to));
            (e, None)
        }
    };
    let id = repair_id(
        run,
        loaded,
        &check.name,
        action,
        b.kind,
        b.key.as_deref(),
        system,
        &evidence,
    );
    Some(Repair {
        id,
        check: b.check,
        action,
        kind: b.kind,
        key: b.key.clone(),
        system,
        amount: exposure(run, loaded, b),
        evidence,
        keep,
        fields: b.fields.clone(),
        automation,
        note,
    })
}

/// What a run knows that can make a repair unsafe, gathered once before planning.
struct Hazards<'a> {
    /// Per source, the first rejected row of each key that could be read.
    rejected: Vec<HashMap<&'a str, Origin>>,
    /// Per source, how many rejected rows had no readable key.
    keyless_rejects: Vec<usize>,
    /// Per check, whether it is not [`crate::report::shares_no_key`]: its sides share a key, or one holds no record.
    paired: Vec<bool>,
    /// Per check, the `unexpected` keys by their folded form (trimmed, lowercased).
    unexpected: Vec<HashMap<String, &'a str>>,
    /// Per check, the keys `from` holds with conflicting payloads.
    conflicting: Vec<HashSet<&'a str>>,
    /// Per source, whether it has no record tonight (a source allowed to be empty).
    empty: Vec<bool>,
    /// Per (check, key): why its replay was held back on an earlier night.
    held: &'a HashMap<(usize, String), String>,
}

/// Whether `r`, the repair of `b`, was held back: made `investigate` where its kind asks for an
/// automated action.
pub fn held_back(b: &Break, r: &Repair) -> bool {
    r.action == Action::Investigate && b.kind.action() != Action::Investigate
}

impl<'a> Hazards<'a> {
    fn new(
        run: &RunPlan,
        loaded: &'a [Loaded],
        breaks: &'a [Break],
        paired: &[bool],
        held: &'a HashMap<(usize, String), String>,
    ) -> Self {
        let rejected = loaded
            .iter()
            .map(|l| {
                let mut m = HashMap::new();
                for r in &l.rejects {
                    if let Some(k) = &r.key {
                        m.entry(k.as_str()).or_insert(r.origin);
                    }
                }
                m
            })
            .collect();
        let keyless_rejects = loaded
            .iter()
            .map(|l| {
                let mut rows: Vec<Origin> = l
                    .rejects
                    .iter()
                    .filter(|r| r.key.is_none())
                    .map(|r| r.origin)
                    .collect();
                rows.dedup();
                rows.len()
            })
            .collect();
        let mut unexpected = vec![HashMap::new(); run.checks.len()];
        let mut conflicting = vec![HashSet::new(); run.checks.len()];
        for b in breaks {
            match (b.kind, b.side, b.key.as_deref()) {
                (BreakKind::Unexpected, _, Some(k)) => {
                    unexpected[b.check].insert(folded(k), k);
                }
                (BreakKind::ConflictingDuplicate, Side::From, Some(k)) => {
                    conflicting[b.check].insert(k);
                }
                _ => {}
            }
        }
        Hazards {
            rejected,
            keyless_rejects,
            paired: paired.to_vec(),
            unexpected,
            conflicting,
            held,
            empty: loaded.iter().map(|l| l.counts.records == 0).collect(),
        }
    }
}

/// The kind's usual action and how safe it is to automate, unless acting could do harm. Each case
/// carries a note saying why:
/// - `to` is `read_only` (a bank statement cannot be posted to): investigate;
/// - a `missing` key whose row in `to` was rejected: investigate (a replay would post it twice once
///   the row is fixed);
/// - a `missing` key when the check's sides share no key at all: investigate (the key mapping is
///   wrong, and every record would be replayed);
/// - a `missing` key that `to` holds spelled with another case or spaces: investigate;
/// - a `missing` key that `from` holds with conflicting payloads: investigate (which one, if
///   any, to replay is for a person to decide);
/// - a `missing` key while `to` has rejected rows whose key could not be read: replay, but review.
fn adjusted_action(
    run: &RunPlan,
    hazards: &Hazards,
    b: &Break,
    to: usize,
    system: usize,
) -> (Action, &'static str, Option<String>) {
    let action = b.kind.action();
    let investigate = |note: String| {
        (
            Action::Investigate,
            Action::Investigate.automation(),
            Some(note),
        )
    };
    let to_name = &run.sources[to].name;
    if run.sources[system].read_only && !matches!(action, Action::Investigate | Action::Wait) {
        return investigate(format!(
            "{} is read_only: recon will not {} there; correct the other side or book it by hand",
            run.sources[system].name,
            action.name()
        ));
    }
    if b.kind == BreakKind::Missing {
        let key = b.key.as_deref().unwrap_or("");
        // Held back on an earlier night: tonight's data may no longer show why (a rejected row
        // is not read again), and the instruction already issued must keep its id.
        if let Some(why) = hazards.held.get(&(b.check, key.to_string())) {
            return investigate(format!("held back since it was first seen: {why}"));
        }
        if let Some(o) = hazards.rejected[to].get(key) {
            let file = run.sources[to]
                .files
                .get(o.file as usize)
                .map_or("", |f| f.display.as_str());
            return investigate(format!(
                "{to_name} has a rejected row with this key ({file}:{}, see rejects.csv): fix that row instead of replaying",
                o.line
            ));
        }
        if !hazards.paired[b.check] {
            return investigate(format!(
                "no key occurs in both sides of check {:?}: check the key columns and clean-up before replaying anything",
                run.checks[b.check].name
            ));
        }
        if let Some(other) = hazards.unexpected[b.check].get(&folded(key)) {
            return investigate(format!(
                "{to_name} holds {other:?}, which differs from this key only by case or spaces: a clean-up (trim, lowercase) may be missing"
            ));
        }
        if hazards.conflicting[b.check].contains(key) {
            let from_name = &run.sources[run.checks[b.check].from].name;
            return investigate(format!(
                "{from_name} holds this key more than once with different payloads (conflicting_duplicate): decide which, if any, {to_name} should have"
            ));
        }
        let keyless = hazards.keyless_rejects[to];
        if keyless > 0 {
            return (
                action,
                "review",
                Some(format!(
                    "{to_name} has {keyless} rejected row(s) whose key could not be read: one may be this key (see rejects.csv)"
                )),
            );
        }
        if hazards.empty[to] {
            return (
                action,
                "review",
                Some(format!(
                    "{to_name} has no records tonight: make sure its export was complete before replaying"
                )),
            );
        }
    }
    (action, action.automation(), None)
}

/// A hash of what the instruction is about: check, action, kind, key, system and the evidence's
/// source, file and line. Stable across runs, machines and thread counts; 16 hex digits.
#[expect(
    clippy::too_many_arguments,
    reason = "each argument is one part of the identity"
)]
fn repair_id(
    run: &RunPlan,
    loaded: &[Loaded],
    check: &str,
    action: Action,
    kind: BreakKind,
    key: Option<&str>,
    system: usize,
    evidence: &[RecordRef],
) -> String {
    let mut h = Sha256::new();
    for part in [
        check,
        action.name(),
        kind.name(),
        key.unwrap_or(""),
        &run.sources[system].name,
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for &(s, i) in evidence {
        let o = loaded[s].records[i as usize].origin;
        let file = &run.sources[s].files[o.file as usize].display;
        h.update(format!("{}\t{}\t{}\n", run.sources[s].name, file, o.line).as_bytes());
    }
    hex(&h.finalize()[..8])
}
