//! A pool of warm guests for one kernel: boot once, run many scenarios, and replace any
//! guest that faulted or splatted so no scenario sees another's damage.

use crate::guest::{Fault, Guest};
use crate::prepare::Prepared;
use crate::runner::{self, Outcome};
use crate::scenario::Loaded;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

pub struct Pool {
    pub prepared: Prepared,
    idle: Mutex<Vec<Guest>>,
    workroot: PathBuf,
    seq: AtomicUsize,
    /// Seconds each boot took, for reports and benchmarks.
    pub boots: Mutex<Vec<f64>>,
}

impl Pool {
    pub fn new(prepared: Prepared, workroot: PathBuf) -> Pool {
        Pool {
            prepared,
            idle: Mutex::new(Vec::new()),
            workroot,
            seq: AtomicUsize::new(0),
            boots: Mutex::new(Vec::new()),
        }
    }

    /// An idle guest, or a freshly booted one.
    pub fn take(&self) -> Result<Guest, Fault> {
        if let Some(g) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(g);
        }
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let dir = self.workroot.join(format!("{}-g{n}", self.prepared.kernel.key));
        let g = Guest::boot(&self.prepared.kernel, &self.prepared.initrd, &dir)?;
        self.boots.lock().unwrap_or_else(|e| e.into_inner()).push(g.boot_secs);
        Ok(g)
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
