//! Progress on stderr for long runs: each phase as it starts, with the time since the run began,
//! and the rows read per source. Shown when stderr is a terminal (never with `--quiet`), or when
//! `RECON_PROGRESS=1` asks for it (benchmarks, logs); a cron job's stderr stays quiet.

use std::io::{IsTerminal, Write};
use std::time::Instant;

pub struct Progress {
    on: bool,
    started: Instant,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        let forced = std::env::var_os("RECON_PROGRESS").is_some_and(|v| v == "1");
        Progress {
            on: forced || (!quiet && std::io::stderr().is_terminal()),
            started: Instant::now(),
        }
    }

    /// One line: `[  12.3s] what`.
    pub fn say(&self, what: impl std::fmt::Display) {
        if self.on {
            let secs = self.started.elapsed().as_secs_f64();
            let _ = writeln!(std::io::stderr(), "[{secs:7.2}s] {what}");
        }
    }
}
