//! Carried-over state (`--state DIR`): what was still open after each night, so that the next night
//! re-checks it. One file per business date, `DIR/YYYY-MM-DD.json`; the run for day D reads the
//! newest file dated before D and writes D's file. Re-running D therefore starts from the same state
//! and writes the same file: two runs of D leave what one leaves.
//!
//! A night's file keeps, per check, every key with an open finding (any kind but `late`, and not
//! `unkeyed`: a record without a key cannot be re-checked) with the date it was first seen, and the
//! records behind it, each with its original file and line, so that a finding still open the next
//! night has the same evidence and so the same repair id. Flows keep the stages each unfinished key
//! has reached.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::classify::{Break, Carried, CheckResult, Side};
use crate::config::{InputFile, RunPlan};
use crate::load::Loaded;
use crate::model::{BreakKind, Key, Minor, Origin, Record, Shared};

/// The `format` of the state files this version reads and writes.
pub const FORMAT: &str = "recon-state/1";

/// One night's state file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateFile {
    pub format: String,
    /// The business date after whose run this was written.
    pub date: String,
    /// Per check and key, the findings still open.
    pub open: Vec<OpenItem>,
    /// The records behind the open findings.
    pub records: Vec<StoredRecord>,
    /// Flow keys that have not reached the last stage.
    pub flows: Vec<FlowItem>,
    /// The checks, flows and each source's mapped fields of the config that wrote the file: a run
    /// under another config says what it cannot carry over.
    pub checks: Vec<String>,
    pub flow_names: Vec<String>,
    pub sources: Vec<SourceFields>,
}

/// A source's name and the optional fields it maps (status, account, extra names), in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceFields {
    pub name: String,
    pub fields: Vec<String>,
}

impl SourceFields {
    pub fn of(s: &crate::config::SourcePlan) -> SourceFields {
        let mut fields = Vec::new();
        if s.status.is_some() {
            fields.push("status".to_string());
        }
        if s.account.is_some() {
            fields.push("account".to_string());
        }
        fields.extend(s.extra.iter().map(|(n, _)| format!("extra.{n}")));
        SourceFields {
            name: s.name.clone(),
            fields,
        }
    }
}

/// An amount as an exact decimal in major units (`"12.50"`): stable if a currency's exponent changes.
pub fn amount_text(currency: crate::normalize::currency::Currency, minor: i64) -> String {
    currency.format(minor as i128)
}

/// Reads [`amount_text`] back in the currency's current minor units.
pub fn read_amount(text: &str, currency: crate::normalize::currency::Currency) -> Option<i64> {
    crate::normalize::money::parse_amount(text, &Default::default(), currency.exponent()).ok()
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenItem {
    pub check: String,
    pub key: String,
    /// The open finding kinds, sorted.
    pub kinds: Vec<String>,
    /// The business date of the run that first reported the key in this check.
    pub first_seen: String,
    pub repair_ids: Vec<String>,
    /// Why its replay was held back (made `investigate`) when it was first planned: held back
    /// on every later night too, so that no night turns it into another, automated instruction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredRecord {
    pub check: String,
    /// `from` or `to`.
    pub side: String,
    pub source: String,
    pub file: String,
    pub line: u64,
    pub key: String,
    /// Exact decimal in major units.
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub at: Option<String>,
    pub date: Option<String>,
    pub status: Option<String>,
    pub account: Option<String>,
    pub extra: Vec<Option<String>>,
}

/// A flow key that stopped before the last stage, with where each stage saw it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowItem {
    pub flow: String,
    pub key: String,
    pub first_seen: String,
    /// Per stage seen: the source and the evidence `file:line`, amount and currency.
    pub stages: Vec<StageSeen>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSeen {
    pub source: String,
    pub evidence: String,
    /// Exact decimal in major units.
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub date: Option<String>,
}

fn file_name(date: NaiveDate) -> String {
    format!("{}.json", date.format("%Y-%m-%d"))
}

fn parse_date(text: &str, what: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| anyhow!("{what}: {text:?} is not a date (YYYY-MM-DD)"))
}

/// A state file and the business date it is the state after.
pub type Dated = (NaiveDate, StateFile);

/// The state a run for `date` starts from: the newest state file dated before it, if any, with
/// its date, and the dates of files after `date` (a re-run of an earlier night makes them stale).
pub fn read_previous(dir: &Path, date: NaiveDate) -> Result<(Option<Dated>, Vec<NaiveDate>)> {
    let mut dates = BTreeSet::new();
    match fs::read_dir(dir) {
        Ok(entries) => {
            for e in entries {
                let e = e.with_context(|| format!("cannot list {}", dir.display()))?;
                let name = e.file_name();
                let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                    continue;
                };
                if let Ok(d) = NaiveDate::parse_from_str(stem, "%Y-%m-%d") {
                    dates.insert(d);
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(anyhow!("cannot read state folder {}: {e}", dir.display())),
    }
    let later: Vec<NaiveDate> = dates
        .range(date.succ_opt().unwrap_or(date)..)
        .copied()
        .collect();
    let Some(&prev) = dates.range(..date).next_back() else {
        return Ok((None, later));
    };
    let path = dir.join(file_name(prev));
    let text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let state: StateFile = serde_json::from_str(&text)
        .map_err(|e| anyhow!("{}: not a recon state file: {e}", path.display()))?;
    if state.format != FORMAT {
        bail!(
            "{}: state format {:?}, this recon reads {FORMAT:?}",
            path.display(),
            state.format
        );
    }
    if parse_date(&state.date, &path.display().to_string())? != prev {
        bail!(
            "{}: the file says it is the state after {}, its name says {prev}",
            path.display(),
            state.date
        );
    }
    Ok((Some((prev, state)), later))
}

/// Writes the state after `date` to a temporary file in the folder, synced; it takes its name
/// only when [`Staged::commit`] renames it (atomically).
pub fn stage(dir: &Path, date: NaiveDate, state: &StateFile) -> Result<Staged> {
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create state folder {}", dir.display()))?;
    remove_stale_temporaries(dir);
    let staged = Staged {
        path: dir.join(file_name(date)),
        tmp: dir.join(format!(".{}.tmp-{}", file_name(date), std::process::id())),
        dir: dir.to_path_buf(),
    };
    let text = serde_json::to_string_pretty(state)? + "\n";
    let written = (|| -> Result<()> {
        let mut f = fs::File::create(&staged.tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        Ok(())
    })();
    written.with_context(|| format!("cannot write state {}", staged.path.display()))?;
    // What would make the rename fail later, after the outputs are published, is refused now.
    if fs::symlink_metadata(&staged.path).is_ok_and(|m| m.is_dir()) {
        bail!(
            "cannot write state {}: a folder has that name",
            staged.path.display()
        );
    }
    Ok(staged)
}

/// Removes the temporary state files of runs that were killed before renaming theirs (named
/// `.D.json.tmp-PID`, for a process that no longer exists): nothing else would.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.starts_with('.'))
            .and_then(|n| n.rsplit_once(".json.tmp-"))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = Path::new("/proc").join(pid.to_string()).exists();
        if pid != std::process::id() && !alive {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// A night's state, written and synced beside its final name: [`Staged::commit`] moves it into
/// place once the outputs are published; dropped uncommitted (the run failed), it is removed.
pub struct Staged {
    path: PathBuf,
    tmp: PathBuf,
    dir: PathBuf,
}

impl Staged {
    pub fn commit(self) -> Result<PathBuf> {
        fs::rename(&self.tmp, &self.path).with_context(|| {
            format!(
                "the outputs are published, but the state could not be moved into {}; run the night again",
                self.path.display()
            )
        })?;
        if let Ok(d) = fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(self.path.clone())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // After a commit the temporary name is gone and this does nothing.
        let _ = fs::remove_file(&self.tmp);
    }
}

/// The kinds of an open key that later postings can correct, when they make both sides' totals
/// agree: a mismatch, a replayed posting, and postings that conflict (an adjustment that did not
/// net out yet, which a further one may).
const CORRECTABLE: [&str; 3] = ["amount_mismatch", "duplicate", "conflicting_duplicate"];

/// What the previous state brings into tonight's run.
#[derive(Debug, Default)]
pub struct Previous {
    /// The date of the state file read, if any.
    pub date: Option<NaiveDate>,
    /// Per (check, key): when it was first seen, and the kinds open after the previous night.
    pub open: HashMap<(usize, String), (NaiveDate, Vec<String>)>,
    /// Per check, the keys open as an amount mismatch or a duplicate: later postings under them
    /// are read as corrections (see `classify`).
    pub correctable: Vec<HashSet<String>>,
    /// Per (check, key): why its replay was held back on an earlier night (see [`OpenItem::held`]).
    pub held: HashMap<(usize, String), String>,
    pub flows: Vec<FlowItem>,
    /// What could not be carried (a check or source no longer in the config).
    pub warnings: Vec<String>,
}

/// One record carried over from the previous night for one side of one check, ready to be placed
/// among tonight's records of its key's partition (see [`place`]).
#[derive(Debug, Clone)]
pub struct CarriedRecord {
    pub check: usize,
    pub side: Side,
    /// The source's index in the plan.
    pub source: usize,
    pub file: String,
    pub line: u64,
    pub key: String,
    pub record: Record,
}

/// Reads the previous night's state into what tonight needs: the open keys with their first-seen
/// dates, the keys that later postings may correct, the flows' unfinished keys, and the carried
/// records (each file they come from that tonight does not read is added to its source's files).
pub fn carry_in(
    plan: &mut RunPlan,
    previous: Option<Dated>,
) -> Result<(Previous, Vec<CarriedRecord>)> {
    let mut out = Previous {
        correctable: vec![HashSet::new(); plan.checks.len()],
        ..Previous::default()
    };
    let mut carried = Vec::new();
    let Some((date, state)) = previous else {
        return Ok((out, carried));
    };
    out.date = Some(date);
    check_config(plan, &state, date)?;
    let unknown = unknown_to_state(plan, &state);
    if !unknown.is_empty() {
        out.warnings.push(format!(
            "state {} was written by a config without {}: nothing was carried over for {} (another config sharing the --state folder?)",
            file_name(date),
            unknown.join(", "),
            if unknown.len() == 1 { "it" } else { "them" }
        ));
    }
    let check_index: HashMap<&str, usize> = plan
        .checks
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    let mut dropped: BTreeMap<String, usize> = BTreeMap::new();
    for item in &state.open {
        match check_index.get(item.check.as_str()) {
            Some(&c) => {
                let first = parse_date(&item.first_seen, "state first_seen")?;
                if first > date || item.key.is_empty() {
                    bail!(
                        "state {}: open item {:?} of check {:?} is not valid (first_seen {} after the state's date, or an empty key)",
                        file_name(date),
                        item.key,
                        item.check,
                        item.first_seen
                    );
                }
                if item.kinds.iter().any(|k| CORRECTABLE.contains(&k.as_str())) {
                    out.correctable[c].insert(item.key.clone());
                }
                out.open
                    .insert((c, item.key.clone()), (first, item.kinds.clone()));
                if let Some(why) = &item.held {
                    out.held.insert((c, item.key.clone()), why.clone());
                }
            }
            None => *dropped.entry(item.check.clone()).or_default() += 1,
        }
    }
    for r in &state.records {
        let Some(&c) = check_index.get(r.check.as_str()) else {
            continue;
        };
        let side = match r.side.as_str() {
            "from" => Side::From,
            "to" => Side::To,
            other => bail!("state record side {other:?}: expected from or to"),
        };
        let s = plan.checks[c].source(side);
        let source = &mut plan.sources[s];
        if source.name != r.source {
            *dropped.entry(r.check.clone()).or_default() += 1;
            continue;
        }
        if r.key.is_empty() || r.line == 0 {
            bail!(
                "state {}: record {}:{} of check {:?} is not valid (empty key or line 0)",
                file_name(date),
                r.file,
                r.line,
                r.check
            );
        }
        carried.push(CarriedRecord {
            check: c,
            side,
            source: s,
            file: r.file.clone(),
            line: r.line,
            key: r.key.clone(),
            record: to_record(r, source).with_context(|| format!("state {}", file_name(date)))?,
        });
    }
    for (check, n) in dropped {
        out.warnings.push(format!(
            "state {}: {n} open item(s) of check {check:?}, which the config no longer has (or whose sources changed), were not carried over",
            file_name(date)
        ));
    }
    let flows: BTreeSet<&str> = plan.flows.iter().map(|f| f.name.as_str()).collect();
    let (kept, lost): (Vec<FlowItem>, Vec<FlowItem>) = state
        .flows
        .into_iter()
        .partition(|f| flows.contains(f.flow.as_str()));
    if !lost.is_empty() {
        out.warnings.push(format!(
            "state {}: {} unfinished key(s) of flow(s) the config no longer has were not carried over",
            file_name(date),
            lost.len()
        ));
    }
    for f in &kept {
        parse_date(&f.first_seen, "state flow first_seen")?;
    }
    out.flows = kept;
    Ok((out, carried))
}

/// Places carried records among one partition's records (`loaded`, tonight's records of the keys
/// the carried ones belong to) and indexes them per check. A record of a file read again tonight is
/// taken from tonight's read where that file still holds the same posting: the same key, payload
/// and time, on its old line or (rows added above it in a file that grows) another one. Any other
/// is appended after tonight's records, once however many checks carry it: a posting that a file
/// rewritten in place no longer holds is still counted.
pub fn place(plan: &RunPlan, loaded: &mut [Loaded], carried: &[&CarriedRecord]) -> Vec<Carried> {
    let mut out = vec![Carried::new(); plan.checks.len()];
    // Per carried record of a file read again tonight: tonight's records of its file and key.
    let mut candidates: Vec<Vec<u32>> = vec![Vec::new(); carried.len()];
    {
        let mut wanted: Vec<HashMap<(&str, &str), Vec<usize>>> =
            vec![HashMap::new(); plan.sources.len()];
        for (j, r) in carried.iter().enumerate() {
            let files = &plan.sources[r.source].files;
            if files.iter().any(|x| !x.carried && x.display == r.file) {
                let at = (r.file.as_str(), r.key.as_str());
                wanted[r.source].entry(at).or_default().push(j);
            }
        }
        for (s, l) in loaded.iter().enumerate() {
            if wanted[s].is_empty() {
                continue;
            }
            let files = &plan.sources[s].files;
            for (i, r) in l.records[..l.fresh].iter().enumerate() {
                let file = files[r.origin.file as usize].display.as_str();
                let Some(key) = r.key.as_deref() else {
                    continue;
                };
                for &j in wanted[s].get(&(file, key)).into_iter().flatten() {
                    candidates[j].push(i as u32);
                }
            }
        }
    }
    // Per source: where each carried record (by its file and line) was placed, and tonight's
    // records taken for one.
    let mut placed: Vec<HashMap<(&str, u64), u32>> = vec![HashMap::new(); plan.sources.len()];
    let mut taken: Vec<HashSet<u32>> = vec![HashSet::new(); plan.sources.len()];
    for (r, candidates) in carried.iter().zip(&candidates) {
        let s = r.source;
        let idx = match placed[s].get(&(r.file.as_str(), r.line)) {
            Some(&i) => i,
            None => {
                let records = &loaded[s].records;
                let same = |i: &&u32| {
                    let t = &records[**i as usize];
                    !taken[s].contains(*i) && t.same_payload(&r.record) && t.at == r.record.at
                };
                // Its old line first, if that still holds it.
                let line = |i: &&u32| records[**i as usize].origin.line == r.line;
                let found = candidates
                    .iter()
                    .filter(line)
                    .find(same)
                    .or_else(|| candidates.iter().find(same))
                    .copied();
                let i = match found {
                    Some(i) => {
                        // Read again: the posting of the night that first read it, whose date a
                        // source without time takes (tonight's read would date it tonight, and
                        // its window would never close).
                        let t = &mut loaded[s].records[i as usize];
                        if t.at.is_none() {
                            t.date = r.record.date;
                        }
                        i
                    }
                    None => {
                        loaded[s].records.push(r.record.clone());
                        (loaded[s].records.len() - 1) as u32
                    }
                };
                taken[s].insert(i);
                placed[s].insert((r.file.as_str(), r.line), i);
                i
            }
        };
        let entry = out[r.check].entry(r.key.clone()).or_default();
        let list = &mut entry[if r.side == Side::From { 0 } else { 1 }];
        if !list.contains(&idx) {
            list.push(idx);
        }
    }
    out
}

/// Refuses a state whose sources mapped other fields (carried records could not be compared on a
/// field they lack), and warns about checks and flows it knows nothing of.
fn check_config(plan: &RunPlan, state: &StateFile, date: NaiveDate) -> Result<()> {
    for s in &plan.sources {
        let now = SourceFields::of(s);
        if let Some(then) = state.sources.iter().find(|x| x.name == s.name)
            && then.fields != now.fields
        {
            bail!(
                "state {}: source {:?} mapped [{}] when it was written and maps [{}] now; its carried records cannot be compared on fields they lack. Finish the open nights with the old config, or start a new --state folder",
                file_name(date),
                s.name,
                then.fields.join(", "),
                now.fields.join(", ")
            );
        }
    }
    Ok(())
}

/// Checks and flows of this config that the state's config did not have: nothing of them was carried.
pub fn unknown_to_state(plan: &RunPlan, state: &StateFile) -> Vec<String> {
    let mut out: Vec<String> = plan
        .checks
        .iter()
        .filter(|c| !state.checks.contains(&c.name))
        .map(|c| format!("check {:?}", c.name))
        .collect();
    out.extend(
        plan.flows
            .iter()
            .filter(|f| !state.flow_names.contains(&f.name))
            .map(|f| format!("flow {:?}", f.name)),
    );
    out
}

/// A stored record back as a record of `source`, its file added to the source's files as carried.
fn to_record(r: &StoredRecord, source: &mut crate::config::SourcePlan) -> Result<Record> {
    let file = match source.files.iter().position(|f| f.display == r.file) {
        Some(i) => i,
        None => {
            source.files.push(InputFile {
                display: r.file.clone(),
                path: PathBuf::new(),
                bytes: 0,
                carried: true,
            });
            source.files.len() - 1
        }
    };
    let bad = |what: &str| anyhow!("state record {}:{}: bad {what}", r.file, r.line);
    let currency = match &r.currency {
        None => None,
        Some(c) => Some(source.currencies.parse(c).ok_or_else(|| bad("currency"))?),
    };
    let amount = match (&r.amount, currency) {
        (None, _) => None,
        (Some(a), Some(c)) => Some(Minor(read_amount(a, c).ok_or_else(|| {
            anyhow!(
                "state record {}:{}: amount {a} does not fit {} as this config defines it (was [currencies] changed?)",
                r.file,
                r.line,
                c.code()
            )
        })?)),
        (Some(_), None) => return Err(bad("amount without currency")),
    };
    let at = match &r.at {
        None => None,
        Some(t) => Some(
            DateTime::parse_from_rfc3339(t)
                .map_err(|_| bad(&format!("time {t:?}")))?
                .with_timezone(&Utc),
        ),
    };
    let date = match &r.date {
        None => None,
        Some(d) => Some(parse_date(d, "state record date")?),
    };
    Ok(Record {
        key: Some(Key::from(r.key.as_str())),
        amount,
        currency,
        at,
        date,
        status: r.status.as_deref().map(Shared::from),
        account: r.account.as_deref().map(Shared::from),
        extra: r
            .extra
            .iter()
            .map(|v| v.as_deref().map(Shared::from))
            .collect(),
        origin: Origin {
            file: file as u32,
            line: r.line,
        },
    })
}

/// A record as stored for `check`'s `side`.
pub fn store_record(
    plan: &RunPlan,
    loaded: &[Loaded],
    check: usize,
    side: Side,
    i: u32,
) -> StoredRecord {
    let c = &plan.checks[check];
    let s = c.source(side);
    let r = &loaded[s].records[i as usize];
    StoredRecord {
        check: c.name.clone(),
        side: if side == Side::From { "from" } else { "to" }.into(),
        source: plan.sources[s].name.clone(),
        file: plan.sources[s].files[r.origin.file as usize]
            .display
            .clone(),
        line: r.origin.line,
        key: r.key.as_deref().unwrap_or_default().to_string(),
        amount: r.amount.zip(r.currency).map(|(a, c)| amount_text(c, a.0)),
        currency: r.currency.map(|c| c.code().to_string()),
        at: r
            .at
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        // A source without time: the record belongs to the night that read it.
        date: Some(r.date.unwrap_or(plan.date).to_string()),
        status: r.status.as_deref().map(String::from),
        account: r.account.as_deref().map(String::from),
        extra: r
            .extra
            .iter()
            .map(|v| v.as_deref().map(String::from))
            .collect(),
    }
}

/// Tonight's open items: every keyed finding but `late`, grouped by check and key, with the date
/// each key was first seen (carried from the previous state), its repairs' ids, and all the key's
/// records in the check (so that the next run sees the key exactly as tonight did).
pub fn open_items(
    plan: &RunPlan,
    loaded: &[Loaded],
    results: &[CheckResult],
    breaks: &[Break],
    repairs: &crate::repair::Plan,
    previous: &Previous,
) -> (Vec<OpenItem>, Vec<StoredRecord>) {
    let mut items: BTreeMap<(usize, String), OpenItem> = BTreeMap::new();
    for (b, repair) in breaks.iter().zip(&repairs.of_break) {
        let repair = repair.map(|i| &repairs.repairs[i]);
        let Some(key) = &b.key else { continue };
        if b.kind == BreakKind::Late {
            continue;
        }
        let first = previous
            .open
            .get(&(b.check, key.clone()))
            .map_or(plan.date, |(d, _)| *d);
        let item = items
            .entry((b.check, key.clone()))
            .or_insert_with(|| OpenItem {
                check: plan.checks[b.check].name.clone(),
                key: key.clone(),
                kinds: Vec::new(),
                first_seen: first.to_string(),
                repair_ids: Vec::new(),
                held: previous.held.get(&(b.check, key.clone())).cloned(),
            });
        item.kinds.push(b.kind.name().to_string());
        if let Some(r) = repair {
            item.repair_ids.push(r.id.clone());
            if item.held.is_none() && crate::repair::held_back(b, r) {
                item.held = r.note.clone();
            }
        }
    }
    let mut records = BTreeSet::new();
    for (c, res) in results.iter().enumerate() {
        for (_, f, t) in &res.open {
            for (side, idx) in [(Side::From, f), (Side::To, t)] {
                for &i in idx {
                    records.insert(store_record(plan, loaded, c, side, i));
                }
            }
        }
    }
    let open = items
        .into_values()
        .map(|mut x| {
            x.kinds.sort();
            x.kinds.dedup();
            x.repair_ids.sort();
            x.repair_ids.dedup();
            x
        })
        .collect();
    (open, records.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_staged_state_takes_its_name_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let date = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let state = StateFile {
            format: FORMAT.to_string(),
            date: date.to_string(),
            ..Default::default()
        };
        let listing = || {
            let mut names: Vec<String> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        // A killed run's temporary file (its process is gone: Linux pids stay below 4194304) is
        // cleared by the next staging; one of a live process (pid 1) and other files are not.
        fs::write(dir.path().join(".2026-03-01.json.tmp-4194304"), "{").unwrap();
        fs::write(dir.path().join(".2026-03-01.json.tmp-1"), "{").unwrap();
        fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let others = [".2026-03-01.json.tmp-1", "notes.txt"];
        // A run that fails to publish drops its staged state: nothing of it is left.
        let staged = stage(dir.path(), date, &state).unwrap();
        assert!(!dir.path().join("2026-03-02.json").exists());
        drop(staged);
        assert_eq!(listing(), others);
        // Committed, it is the night's file, with nothing beside it.
        let path = stage(dir.path(), date, &state).unwrap().commit().unwrap();
        assert_eq!(path, dir.path().join("2026-03-02.json"));
        assert_eq!(listing(), [others[0], "2026-03-02.json", others[1]]);
        let back: StateFile = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back, state);
    }
}
