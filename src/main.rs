//! The `recon` binary: parse arguments, run, turn the outcome into an exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use recon::cli::{Cli, Command};
use recon::model::{Action, BreakKind};
use recon::report::ExitStatus;

/// `eprintln!` that ignores a closed stderr (it would panic, and exit 101 instead of 2).
macro_rules! say_err {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A run is short and its memory peaks once: keep freed pages for reuse instead of returning
    // them to the OS, which costs a page fault and a re-zeroing each when they are used again.
    // `mi_option_purge_delay` is 15 in mimalloc 2 and 3 (mimalloc.h); the -sys crate does not
    // export it as a constant.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets a plain integer option of the allocator; no allocation is in flight.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
            if let Some(n) = args.threads {
                // rayon's global pool must be sized before its first use.
                if let Err(e) = rayon::ThreadPoolBuilder::new()
                    .num_threads(n as usize)
                    .build_global()
                {
                    say_err!("error: cannot start {n} worker threads: {e}");
                    return ExitCode::from(ExitStatus::Untrusted as u8);
                }
            }
            match recon::run(&args) {
                Ok(status) => ExitCode::from(status as u8),
                Err(e) => {
                    say_err!("error: {e:#}");
                    ExitCode::from(ExitStatus::Untrusted as u8)
                }
            }
        }
        Command::Explain { kind } => {
            let kinds: Vec<BreakKind> = match kind.as_deref() {
                None => BreakKind::ALL.to_vec(),
                Some(name) => match BreakKind::from_name(name) {
                    Some(k) => vec![k],
                    None => {
                        let all: Vec<&str> = BreakKind::ALL.iter().map(|k| k.name()).collect();
                        say_err!("error: no break kind {name:?}; kinds: {}", all.join(", "));
                        return ExitCode::from(2);
                    }
                },
            };
            let text: Vec<String> = kinds
                .iter()
                .map(|k| {
                    // A finding that needs no repair (`late`) has nothing to automate.
                    let repair = match k.action() {
                        Action::None => "none".to_string(),
                        a => format!("{}, {}", a.name(), a.automation()),
                    };
                    format!("{} (repair: {repair})\n{}\n", k.name(), k.explanation())
                })
                .collect();
            match recon::write_stdout(&text.join("\n")) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    say_err!("error: cannot write to stdout: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
