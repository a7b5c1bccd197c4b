//! Command-line arguments: what `recon --help` teaches.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// T+1 reconciliation: match several systems' exports by idempotency key, classify every break and
/// write a repair plan.
#[derive(Debug, Parser)]
#[command(name = "recon", version, propagate_version = true)]
#[command(after_help = "Examples:\n  \
    recon run --config fixtures/shop/recon.toml --out /tmp/shop-out\n  \
    recon run -c fixtures/three_nights/recon.toml --date 2026-10-24 --state /tmp/st -o /tmp/d1\n  \
    recon explain duplicate\n\n\
    Exit codes: 0 reconciled, 1 breaks found, 2 the run cannot be trusted (config error, unreadable\n\
    input, more rejected rows than a source allows).")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Reconcile the sources a config describes and write the outputs.
    #[command(
        after_help = "Outputs (in --out): summary.json, breaks.csv, repairs.jsonl, rejects.csv, \
        resolved.csv, flows.csv; \
        the README documents every field.\n\nExample:\n  recon run --config fixtures/shop/recon.toml --out /tmp/shop-out\n  \
        echo $?   # 1: breaks found"
    )]
    Run(RunArgs),
    /// Explain a break kind: what it means, why it matters, an example and its repair.
    Explain {
        /// A finding kind (missing, unexpected, duplicate, conflicting_duplicate, amount_mismatch,
        /// field_mismatch, unkeyed, pending, late, out_of_order); all of them when omitted.
        kind: Option<String>,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The TOML config: sources and checks. Paths in it are relative to the config file.
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,
    /// The business date to reconcile, YYYY-MM-DD (default: yesterday in the config's
    /// `[run] timezone`). Fills `{date}` in source paths and decides what is late, pending or missing.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub date: Option<chrono::NaiveDate>,
    /// Folder of carried-over state: open breaks and pending items are read from the newest file
    /// before --date and written to DATE.json, so that the next night re-checks and ages them.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Folder for the output files; created if missing.
    #[arg(long, short, value_name = "DIR", default_value = "recon-out")]
    pub out: PathBuf,
    /// Worker threads for loading and matching (default: one per core). Outputs do not depend on it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Split the run into N partitions by a hash of the key (rounded up to a power of two): records
    /// wait on disk, encoded, and partitions are matched one at a time, keeping only the records
    /// behind findings, so memory stays small whatever the input size. Outputs do not depend on
    /// it. `--partitions 1` keeps every record in memory (the most memory, and not faster beyond a
    /// few hundred MB). Default: one partition per 64 MiB of input, gzip files counted decompressed
    /// (so small runs stay in memory).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub partitions: Option<u32>,
    /// Where partitions wait to be matched, when there are several: temporary files, unlinked as
    /// soon as they are made, so nothing is left behind even by a killed run. Default: $TMPDIR,
    /// or /tmp.
    #[arg(long, value_name = "DIR")]
    pub spill: Option<PathBuf>,
    /// Print nothing on stdout; the exit code and the output files say everything.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_date(text: &str) -> Result<chrono::NaiveDate, String> {
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shaped {
        return Err(format!("{text:?} is not a date in the form YYYY-MM-DD"));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("{text:?} is not a day of the calendar"))
}
