//! Progress on stderr for long runs: each phase as it starts, with the time since the run began,
//! and the rows read per source. Shown when stderr is a terminal (never with `--quiet`), or when
//! `RECON_PROGRESS=1` asks for it (benchmarks, logs); a cron job's stderr stays quiet.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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
            line(self.started, what);
        }
    }

    /// Says `what()` every 2 seconds until the returned guard is dropped: for a phase that runs
    /// long with nothing else to show.
    pub fn every_tick(&self, what: impl Fn() -> String + Send + 'static) -> Ticking {
        if !self.on {
            return Ticking(None);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let started = self.started;
        let thread = std::thread::spawn(move || {
            let mut next = Instant::now() + TICK;
            loop {
                // Woken early by the guard's drop (or spuriously: the flag and clock decide).
                std::thread::park_timeout(next.saturating_duration_since(Instant::now()));
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                if Instant::now() >= next {
                    line(started, what());
                    next += TICK;
                }
            }
        });
        Ticking(Some((stop, thread)))
    }
}

/// How often a long phase says how far it is.
const TICK: Duration = Duration::from_secs(2);

fn line(started: Instant, what: impl std::fmt::Display) {
    let secs = started.elapsed().as_secs_f64();
    let _ = writeln!(std::io::stderr(), "[{secs:7.2}s] {what}");
}

/// Stops [`Progress::every_tick`]'s lines when dropped.
pub struct Ticking(Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>);

impl Drop for Ticking {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.0.take() {
            stop.store(true, Ordering::Relaxed);
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
