//! recon: T+1 reconciliation of several systems' exports by idempotency key.
//!
//! The pipeline, one module per stage: [`config`] (TOML to a validated plan) -> [`load`] (files to
//! canonical records, with [`normalize`] doing money, time and keys) -> [`matching`] (group-by and join
//! on key) -> [`classify`] (break kinds) -> [`repair`] (the plan) -> [`report`] (outputs, exit code).

pub mod classify;
pub mod cli;
pub mod config;
pub mod load;
pub mod matching;
pub mod model;
pub mod normalize;
pub mod publish;
pub mod repair;
pub mod report;

use std::io::Write;

use anyhow::Result;
use rayon::prelude::*;

use crate::classify::{Break, CheckResult};
use crate::report::{ExitStatus, Report};

/// Runs a reconciliation end to end: plan, load, match, classify, plan repairs, write outputs.
/// Returns the exit status; `Err` means the run could not be carried out (exit 2).
pub fn run(args: &cli::RunArgs) -> Result<ExitStatus> {
    let plan = config::load_plan(&args.config)?;
    let lock = publish::OutputLock::acquire(&args.out)?;
    let loaded = load::load_all(&plan.sources)?;
    let grouped = loaded
        .par_iter()
        .map(|l| matching::group(&l.records))
        .collect::<Result<Vec<_>>>()?;
    let mut results: Vec<CheckResult> = plan
        .checks
        .par_iter()
        .enumerate()
        .map(|(i, c)| {
            let joined = matching::join(&grouped[c.from], &grouped[c.to])?;
            classify::classify(i, c, &joined, &loaded[c.from], &loaded[c.to])
        })
        .collect::<Result<_>>()?;
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
    let paired: Vec<bool> = results.iter().map(|r| r.paired > 0).collect();
    let repairs = repair::plan(&plan, &loaded, &breaks, &paired);

    let incomplete = report::incomplete_reasons(&plan, &loaded);
    let warnings = report::warnings(&plan, &loaded, &results);
    let status = if !incomplete.is_empty() {
        ExitStatus::Untrusted
    } else if breaks.is_empty() {
        ExitStatus::Reconciled
    } else {
        ExitStatus::Breaks
    };
    let report = Report {
        plan: &plan,
        loaded: &loaded,
        results: &results,
        breaks: &breaks,
        repairs: &repairs,
        status,
        incomplete,
        warnings,
    };
    report::write_outputs(&report, &lock)?;
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
        // A closed pipe (`recon run ... | head`) is not an error: the outputs are already written.
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
    }
    Ok(status)
}
