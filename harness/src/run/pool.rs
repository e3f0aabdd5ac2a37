//! A pool of warm guests for one kernel: boot once, run many scenarios, and replace any
//! guest that faulted or splatted so no scenario sees another's damage.
//!
//! The pool grows by restoring a saved guest (see `vmstate`), which is several times
//! faster than a boot; the first growth saves one (or finds it cached). When
//! restoring fails the pool says why on stderr and boots cold instead.

use crate::check::outcome::Outcome;
use crate::image::prepare::Prepared;
use crate::run::runner;
use crate::scenario::Loaded;
use crate::vm::guest::{Fault, Guest};
use crate::vm::qemu;
use crate::vm::vmstate::{self, Saved};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Whether pools grow by restore: `RMAPCHECK_RESTORE=0` makes every guest boot cold.
pub fn restore_enabled() -> bool {
    std::env::var("RMAPCHECK_RESTORE").map(|v| v != "0").unwrap_or(true)
}

pub struct Pool {
    pub prepared: Prepared,
    idle: Mutex<Vec<Guest>>,
    workroot: PathBuf,
    seq: AtomicUsize,
    /// Seconds each boot or restore took, for reports and benchmarks.
    pub boots: Mutex<Vec<f64>>,
    /// Grow by restoring a saved guest rather than booting.
    pub restore: bool,
    /// The saved guest, or why there is none (made once, on first growth).
    saved: OnceLock<Result<Saved, String>>,
    /// Why restores fell back to cold boots.
    pub fallbacks: Mutex<Vec<String>>,
}

impl Pool {
    pub fn new(prepared: Prepared, workroot: PathBuf) -> Pool {
        Pool {
            prepared,
            idle: Mutex::new(Vec::new()),
            workroot,
            seq: AtomicUsize::new(0),
            boots: Mutex::new(Vec::new()),
            restore: restore_enabled(),
            saved: OnceLock::new(),
            fallbacks: Mutex::new(Vec::new()),
        }
    }

    /// An idle guest, or a freshly booted one.
    pub fn take(&self) -> Result<Guest, Fault> {
        if let Some(g) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(g);
        }
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let dir = self.workroot.join(format!("{}-g{n}", self.prepared.kernel.key));
        let g = self.grow(&dir)?;
        self.boots.lock().unwrap_or_else(|e| e.into_inner()).push(g.boot_secs);
        Ok(g)
    }

    /// A new guest in `dir`: restored when it can be, else booted cold.
    fn grow(&self, dir: &Path) -> Result<Guest, Fault> {
        let key = &self.prepared.kernel.key;
        let template = qemu::Config::new(&self.prepared.kernel.image, &self.prepared.initrd, dir);
        if self.restore {
            let saved = self.saved.get_or_init(|| {
                vmstate::ensure(key, &template).map_err(|e| {
                    let why = format!("cannot save a guest: {e:#}");
                    self.fell_back(&why);
                    why
                })
            });
            if let Ok(saved) = saved {
                match vmstate::restore(saved, &template, dir) {
                    Ok(g) => return Ok(g),
                    Err(f) => self.fell_back(&format!("restoring {} failed: {f}", saved.state().display())),
                }
            }
        }
        // A sibling dir keeps a failed restore's console log. (Not with_extension: the
        // kernel key has a dot, so every guest would share one dir.)
        let cold = PathBuf::from(format!("{}-cold", dir.display()));
        Guest::boot(&self.prepared.kernel, &self.prepared.initrd, &cold)
    }

    fn fell_back(&self, why: &str) {
        eprintln!("rmapcheck: {}: {why}; booting cold", self.prepared.kernel.key);
        self.fallbacks.lock().unwrap_or_else(|e| e.into_inner()).push(why.to_string());
    }

    /// Return a healthy guest for reuse.
    pub fn give(&self, g: Guest) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(g);
    }

    /// Run one scenario on a pooled guest. A guest that faulted or splatted is dropped
    /// (killed) rather than reused; its console log stays on disk.
    pub fn run(&self, loaded: &Loaded) -> Result<Outcome, Fault> {
        let mut g = self.take()?;
        match runner::run(&mut g, loaded) {
            Ok(outcome) => {
                if outcome.splats.is_empty() && !outcome.tainted {
                    self.give(g);
                }
                Ok(outcome)
            }
            Err(fault) => Ok(Outcome::errored(loaded, &g.info, &fault)),
        }
    }

    /// Power off every idle guest.
    pub fn shutdown(&self) {
        let guests: Vec<Guest> = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        for g in guests {
            g.shutdown();
        }
    }
}
