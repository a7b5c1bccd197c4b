//! Flows: for every key, which stages of an ordered chain of sources (`orders -> payments -> ledger
//! -> bank`) have seen it, the furthest stage reached, and where it stopped. Stages seen on earlier
//! nights come from the state, so a key may pass one stage a night.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use crate::config::{RunPlan, hex};
use crate::load::Loaded;
use crate::state::{FlowItem, StageSeen};

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
        let mut keys: BTreeMap<String, (Vec<Option<StageSeen>>, NaiveDate)> = BTreeMap::new();
        for item in previous.iter().filter(|p| p.flow == flow.name) {
            let first =
                NaiveDate::parse_from_str(&item.first_seen, "%Y-%m-%d").unwrap_or(plan.date);
            let entry = keys
                .entry(item.key.clone())
                .or_insert_with(|| (vec![None; n], first));
            for st in &item.stages {
                if let Some(k) = flow
                    .stages
                    .iter()
                    .position(|&s| plan.sources[s].name == st.source)
                {
                    entry.0[k] = Some(st.clone());
                }
            }
        }
        for (k, &s) in flow.stages.iter().enumerate() {
            let l = &loaded[s];
            let mut earliest: HashMap<&str, u32> = HashMap::new();
            // Tonight's records only: records carried for a check are open there, and the stages a
            // key reached on earlier nights come from the flow's own state.
            for (i, r) in l.records[..l.fresh].iter().enumerate() {
                let Some(key) = r.key.as_deref() else {
                    continue;
                };
                let e = earliest.entry(key).or_insert(i as u32);
                let cur = &l.records[*e as usize];
                if (r.at, r.origin) < (cur.at, cur.origin) {
                    *e = i as u32;
                }
            }
            for (key, i) in earliest {
                let r = &l.records[i as usize];
                let src = &plan.sources[s];
                let seen = StageSeen {
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
                };
                let entry = keys
                    .entry(key.to_string())
                    .or_insert_with(|| (vec![None; n], plan.date));
                if entry.0[k].is_none() {
                    entry.0[k] = Some(seen);
                }
            }
        }
        let known: std::collections::HashSet<&str> = previous
            .iter()
            .filter(|p| p.flow == flow.name)
            .map(|p| p.key.as_str())
            .collect();
        keys.retain(|k, _| {
            known.contains(k.as_str()) || !carried.iter().any(|c| c.contains_key(k))
        });
        out.keys.push(keys.len() as u64);
        let mut completed = 0;
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
