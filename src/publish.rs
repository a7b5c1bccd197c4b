//! Publishing outputs: the one place that writes into `--out`, so that a reader only ever sees a
//! complete set of files from one run.
//!
//! All files are written into a staging folder beside `--out`, synced, then swapped with `--out` in
//! one `renameat2(RENAME_EXCHANGE)`: a run killed at any moment leaves the previous complete set or
//! the new complete set, never a mix. A lock file beside `--out` (an advisory `flock`, released by
//! the kernel when the process dies) refuses a second run into the same folder.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The files recon writes; `--out` may hold nothing else, since publishing replaces the folder.
pub const OUTPUT_NAMES: [&str; 6] = [
    "breaks.csv",
    "flows.csv",
    "rejects.csv",
    "repairs.jsonl",
    "resolved.csv",
    "summary.json",
];

/// Exclusive use of one output folder for the life of this value.
pub struct OutputLock {
    out: PathBuf,
    parent: PathBuf,
    name: String,
    _lock: File,
}

impl OutputLock {
    /// Takes the lock for `out`, or explains who holds it. Also clears staging folders left by runs
    /// that were killed (safe: whoever made them no longer holds the lock).
    pub fn acquire(out: &Path) -> Result<OutputLock> {
        let given = out;
        // `out/.` and `out/` name the folder `out`.
        let out: PathBuf = out
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect();
        let out = out.as_path();
        let name = out
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| *n != "." && *n != "..")
            .with_context(|| {
                format!(
                    "--out {}: give a folder of its own (e.g. recon-out), not `.`, `..` or a root: recon replaces the whole folder",
                    given.display()
                )
            })?
            .to_string();
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if fs::metadata(&parent).is_ok_and(|m| !m.is_dir()) {
            bail!(
                "--out {}: {} is a file, not a folder",
                given.display(),
                parent.display()
            );
        }
        fs::create_dir_all(&parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let lock_path = parent.join(format!(".{name}.recon.lock"));
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot create the lock file {}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => bail!(
                "another recon run is writing into {} (it holds {}); wait for it to finish or choose another --out",
                out.display(),
                lock_path.display()
            ),
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", lock_path.display()));
            }
        }
        if let (Ok(o), Ok(p)) = (fs::metadata(out), fs::metadata(&parent)) {
            use std::os::unix::fs::MetadataExt;
            if o.is_dir() && o.dev() != p.dev() {
                bail!(
                    "--out {} is a mount point: recon replaces its output folder in one atomic swap, which a mount point cannot take; give a folder inside it",
                    out.display()
                );
            }
        }
        let me = OutputLock {
            out: out.to_path_buf(),
            parent,
            name,
            _lock: lock,
        };
        for entry in fs::read_dir(&me.parent)?.flatten() {
            let n = entry.file_name();
            // Exactly our staging names (prefix, a process id, maybe `.old`): `--out x` must not
            // take `.x.recon-new-1.recon-new-7.old`, which belongs to `--out x.recon-new-1`.
            let ours = |n: &str| {
                let id = n.strip_prefix(&me.staging_prefix())?;
                let id = id.strip_suffix(".old").unwrap_or(id);
                (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then_some(())
            };
            let Some(n) = n.to_str().filter(|n| ours(n).is_some()) else {
                continue;
            };
            // A run killed between the two renames of `exchange`'s fallback: the previous outputs
            // are aside and `--out` is gone. Put them back.
            if n.ends_with(".old") && fs::symlink_metadata(&me.out).is_err() {
                fs::rename(entry.path(), &me.out).with_context(|| {
                    format!(
                        "cannot restore the previous outputs into {}",
                        me.out.display()
                    )
                })?;
                continue;
            }
            let _ = fs::remove_dir_all(entry.path());
        }
        // Refused now, before any data is read or any state written, rather than at the end.
        me.check_out()?;
        Ok(me)
    }

    /// `--out` must be absent or a folder holding only what recon writes, since it is replaced.
    fn check_out(&self) -> Result<()> {
        let Ok(meta) = fs::symlink_metadata(&self.out) else {
            return Ok(());
        };
        if meta.file_type().is_symlink() {
            // The new outputs take --out's place by a rename, which would replace the link itself.
            bail!(
                "--out {} is a link: give the folder it leads to ({}) instead",
                self.out.display(),
                fs::canonicalize(&self.out)
                    .map_or_else(|e| e.to_string(), |p| p.display().to_string())
            );
        }
        if !meta.is_dir() {
            bail!("--out {} exists and is not a folder", self.out.display());
        }
        let foreign: Vec<String> = fs::read_dir(&self.out)?
            .flatten()
            .filter(|e| {
                let ours = e
                    .file_name()
                    .to_str()
                    .is_some_and(|n| OUTPUT_NAMES.contains(&n));
                !(ours && e.file_type().is_ok_and(|t| t.is_file()))
            })
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if !foreign.is_empty() {
            bail!(
                "--out {} holds files recon did not write ({}); recon replaces the whole folder, so give it one of its own",
                self.out.display(),
                foreign.join(", ")
            );
        }
        Ok(())
    }

    fn staging_prefix(&self) -> String {
        format!(".{}.recon-new-", self.name)
    }

    /// Lets `fill` write the outputs into a staging folder, then swaps it in as `--out`.
    pub fn publish(&self, fill: impl FnOnce(&Stage) -> Result<()>) -> Result<()> {
        // Again: the folder may have changed during the run.
        self.check_out()?;
        let stage = self
            .parent
            .join(format!("{}{}", self.staging_prefix(), std::process::id()));
        let _ = fs::remove_dir_all(&stage);
        fs::create_dir(&stage).with_context(|| format!("cannot create {}", stage.display()))?;
        // The new folder keeps the old one's permission bits (owner, group and ACLs are not copied).
        if let Ok(meta) = fs::metadata(&self.out) {
            fs::set_permissions(&stage, meta.permissions())?;
        }
        let result = fill(&Stage { dir: &stage }).and_then(|()| self.swap_in(&stage));
        // After a swap, `stage` holds the previous outputs; after a failure, the partial new ones.
        let _ = fs::remove_dir_all(&stage);
        result
    }

    fn swap_in(&self, stage: &Path) -> Result<()> {
        File::open(stage)?.sync_all()?;
        if fs::symlink_metadata(&self.out).is_ok() {
            exchange(stage, &self.out)?;
        } else {
            fs::rename(stage, &self.out).with_context(|| {
                format!("cannot move {} to {}", stage.display(), self.out.display())
            })?;
        }
        File::open(&self.parent)?.sync_all()?;
        Ok(())
    }
}

/// The staging folder of one publication.
pub struct Stage<'a> {
    dir: &'a Path,
}

impl Stage<'_> {
    /// Creates `name` in the staging folder, lets `write` fill it (buffered), and syncs it to disk.
    pub fn write(
        &self,
        name: &str,
        write: impl FnOnce(&mut dyn Write) -> Result<()>,
    ) -> Result<()> {
        let path = self.dir.join(name);
        let file =
            File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        write(&mut w).with_context(|| format!("writing {name}"))?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(())
    }
}

/// Swaps two paths atomically. Where the file system cannot (RENAME_EXCHANGE is refused), moves the
/// old folder aside first: `--out` is then briefly absent, but still never a mix of two runs.
fn exchange(new: &Path, out: &Path) -> Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, new, CWD, out, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
            // Named like a staging folder, so that the next run restores or clears it.
            let mut aside = new.as_os_str().to_owned();
            aside.push(".old");
            let aside = PathBuf::from(aside);
            fs::rename(out, &aside)
                .with_context(|| format!("cannot move {} aside", out.display()))?;
            fs::rename(new, out)
                .with_context(|| format!("cannot move {} to {}", new.display(), out.display()))?;
            let _ = fs::remove_dir_all(&aside);
            Ok(())
        }
        Err(e) => {
            Err(e).with_context(|| format!("cannot swap {} into {}", new.display(), out.display()))
        }
    }
}
