//! Flows: for every key, which stages of an ordered chain of sources (`orders -> payments -> ledger
//! -> bank`) have seen it, the furthest stage reached, and where it stopped. Stages seen on earlier
//! nights come from the state, so a key may pass one stage a night.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use crate::config::{RunPlan, hex};
use crate::load::Loaded;
use crate::state::{FlowItem, StageSeen};

const NONE: u32 = u32::MAX;

/// Where a flow key stands tonight (keys that reached the last stage are not listed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FlowStatus {
    /// Stopped after stage `k`, and the window to reach stage `k + 1` has closed: replay.
    Stopped(usize),
    /// After stage `k`, the next stage's window is still open: wait.
    Pending(usize),
    /// A later stage has the key while an earlier one does not: investigate.
    OutOfOrder,
}

impl FlowStatus {
    pub fn name(self) -> &'static str {
        match self {
            FlowStatus::Stopped(_) => "stopped",
            FlowStatus::Pending(_) => "pending",
            FlowStatus::OutOfOrder => "out_of_order",
        }
    }
}

#[derive(Debug, Clone)]
pub struct FlowFinding {
    pub flow: usize,
    pub key: String,
    pub status: FlowStatus,
    /// Per stage, where it saw the key (tonight or on an earlier night).
    pub seen: Vec<Option<StageSeen>>,
    pub first_seen: NaiveDate,
    /// The repair: `replay` of stage k's record into stage k+1, `wait`, or `investigate`.
    pub action: &'static str,
    pub repair_id: String,
}

impl FlowFinding {
    pub fn furthest(&self) -> Option<usize> {
        self.seen.iter().rposition(Option::is_some)
    }
}

/// Per flow: the keys seen and the keys that reached the last stage, and the unfinished ones.
#[derive(Debug, Default)]
pub struct FlowResults {
    pub keys: Vec<u64>,
    pub completed: Vec<u64>,
    /// Sorted by flow, then key.
    pub findings: Vec<FlowFinding>,
}

impl FlowResults {
    /// Adds the results of another partition's keys, keeping the findings sorted.
    pub fn merge(&mut self, other: FlowResults) {
        if self.keys.is_empty() {
            self.keys = vec![0; other.keys.len()];
            self.completed = vec![0; other.completed.len()];
        }
        self.keys
            .iter_mut()
            .zip(other.keys)
            .for_each(|(a, b)| *a += b);
        let done = self.completed.iter_mut().zip(other.completed);
        done.for_each(|(a, b)| *a += b);
        self.findings.extend(other.findings);
        self.findings
            .sort_by(|a, b| (a.flow, &a.key).cmp(&(b.flow, &b.key)));
    }
}

/// Follows every key through every flow. `previous` holds the stages unfinished keys reached on
/// earlier nights; `first_seen` of a key carries over from there. A key that is open in a check
/// (`carried`) and unknown to the flow's state already passed through the flow on an earlier night:
/// tonight's records of it are corrections or repeats that its checks judge, not a new journey.
pub fn follow(
    plan: &RunPlan,
    loaded: &[Loaded],
    previous: &[FlowItem],
    carried: &[crate::classify::Carried],
) -> FlowResults {
    let mut out = FlowResults::default();
    for (fi, flow) in plan.flows.iter().enumerate() {
        let n = flow.stages.len();
        let stage_of = |source: &str| {
            flow.stages
                .iter()
                .position(|&s| plan.sources[s].name == source)
        };
        // Per key: the earliest record tonight at each stage (flat, `n` slots a key), and the
        // previous state's item. Stage evidence is only built for the keys left unfinished.
        let mut slot: HashMap<&str, usize> = HashMap::new();
        let mut tonight: Vec<u32> = Vec::new();
        let mut before: HashMap<&str, &FlowItem> = HashMap::new();
        for item in previous.iter().filter(|p| p.flow == flow.name) {
            before.insert(item.key.as_str(), item);
            slot.entry(item.key.as_str()).or_insert_with(|| {
                tonight.extend(std::iter::repeat_n(NONE, n));
                tonight.len() / n - 1
            });
        }
        for (k, &s) in flow.stages.iter().enumerate() {
            let l = &loaded[s];
            // Tonight's records only: records carried for a check are open there, and the stages a
            // key reached on earlier nights come from the flow's own state.
            for (i, r) in l.records[..l.fresh].iter().enumerate() {
                let Some(key) = r.key.as_deref() else {
                    continue;
                };
                let at = *slot.entry(key).or_insert_with(|| {
                    tonight.extend(std::iter::repeat_n(NONE, n));
                    tonight.len() / n - 1
                });
                let cell = &mut tonight[at * n + k];
                let earlier = |j: u32| {
                    let cur = &l.records[j as usize];
                    r.earliness() < cur.earliness()
                };
                if *cell == NONE || earlier(*cell) {
                    *cell = i as u32;
                }
            }
        }
        let mut keys: BTreeMap<String, (Vec<Option<StageSeen>>, NaiveDate)> = BTreeMap::new();
        let mut total = 0u64;
        let mut completed_tonight = 0u64;
        for (key, at) in slot {
            let prev = before.get(key);
            // A key open in a check and unknown to the flow finished the flow on an earlier night.
            if prev.is_none() && carried.iter().any(|c| c.contains_key(key)) {
                continue;
            }
            total += 1;
            let row = &tonight[at * n..at * n + n];
            let mut present = vec![false; n];
            for (k, &i) in row.iter().enumerate() {
                present[k] = i != NONE;
            }
            if let Some(item) = prev {
                for st in &item.stages {
                    if let Some(k) = stage_of(&st.source) {
                        present[k] = true;
                    }
                }
            }
            if present.iter().all(|&p| p) {
                completed_tonight += 1;
                continue;
            }
            let mut seen: Vec<Option<StageSeen>> = vec![None; n];
            if let Some(item) = prev {
                for st in &item.stages {
                    if let Some(k) = stage_of(&st.source) {
                        seen[k] = Some(st.clone());
                    }
                }
            }
            for (k, &i) in row.iter().enumerate() {
                if i != NONE && seen[k].is_none() {
                    let s = flow.stages[k];
                    let r = &loaded[s].records[i as usize];
                    let src = &plan.sources[s];
                    seen[k] = Some(StageSeen {
                        source: src.name.clone(),
                        evidence: format!(
                            "{}:{}",
                            src.files[r.origin.file as usize].display, r.origin.line
                        ),
                        amount: r
                            .amount
                            .zip(r.currency)
                            .map(|(a, c)| crate::state::amount_text(c, a.0)),
                        currency: r.currency.map(|c| c.code().to_string()),
                        date: Some(r.date.unwrap_or(plan.date).to_string()),
                    });
                }
            }
            let first = prev
                .and_then(|p| NaiveDate::parse_from_str(&p.first_seen, "%Y-%m-%d").ok())
                .unwrap_or(plan.date);
            keys.insert(key.to_string(), (seen, first));
        }
        out.keys.push(total);
        let mut completed = completed_tonight;
        for (key, (seen, first_seen)) in keys {
            let Some(furthest) = seen.iter().rposition(Option::is_some) else {
                continue;
            };
            let gap = seen[..furthest].iter().any(Option::is_none);
            let status = if gap {
                FlowStatus::OutOfOrder
            } else if furthest == n - 1 {
                completed += 1;
                continue;
            } else {
                let opened = seen[furthest]
                    .as_ref()
                    .and_then(|s| s.date.as_deref())
                    .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                    .unwrap_or(plan.date);
                let window = match flow.links[furthest] {
                    Some(c) if plan.checks[c].from == flow.stages[furthest] => {
                        plan.checks[c].window
                    }
                    Some(c) => plan.checks[c].lead,
                    None => Default::default(),
                };
                if plan.date < plan.holidays.window_end(opened, window) {
                    FlowStatus::Pending(furthest)
                } else {
                    FlowStatus::Stopped(furthest)
                }
            };
            let (action, target, evidence) = match status {
                FlowStatus::Stopped(k) => (
                    "replay",
                    plan.sources[flow.stages[k + 1]].name.as_str(),
                    seen[k]
                        .as_ref()
                        .map(|s| s.evidence.clone())
                        .unwrap_or_default(),
                ),
                FlowStatus::Pending(_) => ("wait", "", String::new()),
                FlowStatus::OutOfOrder => ("investigate", "", evidence_of(&seen)),
            };
            let mut h = Sha256::new();
            for part in [flow.name.as_str(), action, &key, target, &evidence] {
                h.update(part.as_bytes());
                h.update([0]);
            }
            out.findings.push(FlowFinding {
                flow: fi,
                key,
                status,
                seen,
                first_seen,
                action,
                repair_id: hex(&h.finalize()[..8]),
            });
        }
        out.completed.push(completed);
    }
    out
}

/// Every stage's evidence, `;`-joined, in stage order.
pub fn evidence_of(seen: &[Option<StageSeen>]) -> String {
    seen.iter()
        .flatten()
        .map(|s| s.evidence.as_str())
        .collect::<Vec<_>>()
        .join(";")
}

/// The flow state to carry: every unfinished key with the stages it reached.
pub fn items(plan: &RunPlan, results: &FlowResults) -> Vec<FlowItem> {
    results
        .findings
        .iter()
        .map(|f| FlowItem {
            flow: plan.flows[f.flow].name.clone(),
            key: f.key.clone(),
            first_seen: f.first_seen.to_string(),
            stages: f.seen.iter().flatten().cloned().collect(),
        })
        .collect()
}
