//! recon: T+1 reconciliation of several systems' exports by idempotency key.
//!
//! The pipeline, one module per stage: [`config`] (TOML to a validated plan) -> [`load`] (files to
//! canonical records, with [`normalize`] doing money, time and keys) -> [`matching`] (group-by and join
//! on key) -> [`classify`] (break kinds) -> [`repair`] (the plan) -> [`report`] (outputs, exit code).

pub mod classify;
pub mod cli;
pub mod config;
pub mod flow;
pub mod load;
pub mod matching;
pub mod model;
pub mod normalize;
pub mod partition;
pub mod progress;
pub mod publish;
pub mod repair;
pub mod report;
pub mod state;

use std::io::Write;

use anyhow::Result;
use rayon::prelude::*;

use crate::classify::Break;

/// The config of the crate's property tests: `cases` cases, failures found kept in
/// `tests/NAME.proptest-regressions` (the top level of the repository holds only what the layout
/// names, where proptest would put them by default).
#[cfg(test)]
pub(crate) fn proptest_config(
    cases: u32,
    regressions: &'static str,
) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(regressions),
        )),
        ..Default::default()
    }
}
use crate::report::{ExitStatus, Report};

/// Writes `text` to stdout, flushed. A closed pipe (`recon explain | head -1`) is not an error: the
/// reader took what it wanted. Anything else (a full disk) is.
pub fn write_stdout(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Runs a reconciliation end to end: plan, load, match, classify, plan repairs, write outputs.
/// Returns the exit status; `Err` means the run could not be carried out (exit 2).
pub fn run(args: &cli::RunArgs) -> Result<ExitStatus> {
    let progress = progress::Progress::new(args.quiet);
    let mut plan = config::load_plan(&args.config, args.date)?;
    let lock = publish::OutputLock::acquire(&args.out)?;
    let (stored, later) = match &args.state {
        Some(dir) => state::read_previous(dir, plan.date)?,
        None => (None, Vec::new()),
    };
    progress.say(format!(
        "loading {} source(s) for {}",
        plan.sources.len(),
        plan.date
    ));
    let input = load::content_bytes(&plan.sources);
    let bits = partition::bits_for(args.partitions.map(|n| n as usize), input);
    // The spill file is made up front, its folder named in a failure (not blamed on the first
    // input file); an explicit --spill is tried even when this run spills nothing, so that a
    // cron line's bad --spill fails today, not on the night its input grows.
    let spill_dir = args.spill.clone().unwrap_or_else(std::env::temp_dir);
    let spill_spec = || {
        partition::spill::SpillSpec::new(bits, Some(&spill_dir)).map_err(|e| {
            let which = match &args.spill {
                Some(_) => "--spill",
                None => "the temporary folder (TMPDIR; choose another with --spill)",
            };
            let dir = spill_dir.display();
            anyhow::anyhow!("{which} {dir}: cannot create a temporary file there: {e}")
        })
    };
    if bits == 0 && args.spill.is_some() {
        spill_spec()?;
    }
    let loaded = match bits {
        0 => load::load_all(&plan.sources),
        _ => {
            let spec = spill_spec()?;
            let written = spec.written();
            let _ticking = progress.every_tick(move || {
                let n = written.load(std::sync::atomic::Ordering::Relaxed);
                format!("  {n} records read so far")
            });
            load::load_all_partitioned(&plan.sources, &spec)
        }
    };
    // A JSON path that no object has is a config mistake, named as the others are.
    let mut loaded = loaded.map_err(|e| match e.downcast::<load::MissingPath>() {
        Ok(m) => anyhow::anyhow!("{}", m.in_plan(&plan)),
        Err(e) => e,
    })?;
    for (s, l) in plan.sources.iter().zip(&loaded) {
        progress.say(format!(
            "  {}: {} rows read, {} rejected",
            s.name,
            l.rows(),
            l.rejected()
        ));
    }
    let (previous, carried) = state::carry_in(&mut plan, stored)?;
    let store = partition::Store::new(&mut loaded, bits);
    let day = classify::Day {
        date: plan.date,
        holidays: &plan.holidays,
    };
    progress.say(format!(
        "matching and classifying {} check(s) in {} partition(s)",
        plan.checks.len(),
        store.len()
    ));
    let (taken, parts) = (store.taken(), store.len());
    let ticking = progress.every_tick(move || {
        let n = taken.load(std::sync::atomic::Ordering::Relaxed);
        format!("  partition {n} of {parts}")
    });
    let (mut results, flows) =
        partition::match_all(&plan, &mut loaded, &store, (&previous, &carried), &day)?;
    // The partitions are done with: their temporary files (half a gigabyte at 5M records, which
    // the kernel takes a while to free) are closed while the repairs are planned and written.
    std::thread::spawn(move || drop(store));
    drop(ticking);
    let mut breaks: Vec<Break> = results
        .iter_mut()
        .flat_map(|r| std::mem::take(&mut r.breaks))
        .collect();
    // Output order: check, key (unkeyed last), kind, side, then where the records are (file, line).
    let origins = |b: &Break| -> Vec<model::Origin> {
        let c = &plan.checks[b.check];
        let at = |src: usize, i: &u32| loaded[src].records[*i as usize].origin;
        let from = b.from.iter().map(|i| at(c.from, i));
        from.chain(b.to.iter().map(|i| at(c.to, i))).collect()
    };
    breaks.par_sort_by(|a, b| {
        (a.check, a.key.is_none(), &a.key, a.kind, a.side)
            .cmp(&(b.check, b.key.is_none(), &b.key, b.kind, b.side))
            .then_with(|| origins(a).cmp(&origins(b)))
    });
    progress.say(format!("planning repairs for {} finding(s)", breaks.len()));
    let paired: Vec<bool> = (plan.checks.iter().zip(&results))
        .map(|(c, r)| !report::shares_no_key(&loaded, c, r))
        .collect();
    let mut repairs = repair::plan(&plan, &loaded, &breaks, &paired, &previous.held);
    // A night skipped between the state read and this one: records its files hold were never read,
    // so a `missing` here may have been delivered on that night. Nothing is replayed blindly.
    let skipped = previous
        .date
        .filter(|d| plan.date.signed_duration_since(*d).num_days() > 1);
    if let Some(prev) = skipped {
        for r in repairs
            .repairs
            .iter_mut()
            .filter(|r| r.action == model::Action::Replay && r.automation == "safe")
        {
            r.automation = "review";
            r.note = Some(format!(
                "the state read is from {prev}, not from the night before {}: the nights between were not run, and this record may have arrived then; run them in order",
                plan.date
            ));
        }
    }

    progress.say("checking data quality");
    let incomplete = report::incomplete_reasons(&plan, &loaded);
    let mut warnings = report::warnings(&plan, &loaded, &results);
    warnings.extend(previous.warnings.iter().cloned());
    if let (Some(dir), Some(first)) = (&args.state, later.first()) {
        warnings.push(format!(
            "the --state folder {} holds state for {first}{}, after {}: those nights were run before this one and did not see its result; re-run them in order",
            dir.display(),
            if later.len() > 1 { " and later" } else { "" },
            plan.date
        ));
    }
    if let Some(prev) = skipped {
        warnings.push(format!(
            "the newest state before {} is from {prev}: the nights between were not run, so their records were never read; run them in order (replays are marked for review)",
            plan.date
        ));
    }
    let any_break = breaks.iter().any(|b| b.kind.is_break())
        || flows
            .findings
            .iter()
            .any(|f| !matches!(f.status, flow::FlowStatus::Pending(_)));
    let status = if !incomplete.is_empty() {
        ExitStatus::Untrusted
    } else if any_break {
        ExitStatus::Breaks
    } else {
        ExitStatus::Reconciled
    };
    let report = Report {
        plan: &plan,
        loaded: &loaded,
        results: &results,
        breaks: &breaks,
        repairs: &repairs,
        flows: &flows,
        previous: &previous,
        state_dir: args.state.as_deref(),
        status,
        incomplete,
        warnings,
    };
    // The state moves on only after a trusted run. It is written before the outputs are
    // published, so that they never claim a state that could not be written, and takes its name
    // only after them, so that a run that fails to publish (exit 2) leaves none. A run killed
    // in between is simply run again: it starts from the state before D and writes the same D.json.
    let mut staged = None;
    if let Some(dir) = &args.state
        && status != ExitStatus::Untrusted
    {
        let (open, records) =
            state::open_items(&plan, &loaded, &results, &breaks, &repairs, &previous);
        let next = state::StateFile {
            format: state::FORMAT.to_string(),
            date: plan.date.to_string(),
            open,
            records,
            flows: flow::items(&plan, &flows),
            checks: plan.checks.iter().map(|c| c.name.clone()).collect(),
            flow_names: plan.flows.iter().map(|f| f.name.clone()).collect(),
            sources: plan.sources.iter().map(state::SourceFields::of).collect(),
        };
        staged = Some(state::stage(dir, plan.date, &next)?);
    }
    progress.say(format!("writing outputs to {}", args.out.display()));
    report::write_outputs(&report, &lock)?;
    if let Some(s) = staged {
        s.commit()?;
    }
    progress.say("done");
    // Whatever stdout shows (or not, with --quiet), why a run is untrusted goes to stderr.
    // A closed stderr must not turn the exit code into a panic's 101.
    let mut stderr = std::io::stderr().lock();
    for why in &report.incomplete {
        let _ = writeln!(stderr, "incomplete: {why}");
    }
    for w in &report.warnings {
        let _ = writeln!(stderr, "warning: {w}");
    }
    if !args.quiet {
        let text = report::terminal_table(&report, &args.out);
        // The outputs are already written: a table that cannot be shown does not change what the
        // run found, but is said.
        if let Err(e) = write_stdout(&text) {
            let _ = writeln!(stderr, "warning: cannot write the table to stdout: {e}");
        }
    }
    // The records are not freed one by one: the process ends here, and at 10 million records
    // dropping them took half a second (and the findings a tenth of one at 5M).
    std::mem::forget(loaded);
    std::mem::forget(breaks);
    std::mem::forget(repairs);
    Ok(status)
}
