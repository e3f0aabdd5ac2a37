//! The one guest loop: warm guests per kernel, used by `run`, `cargo test`, `fuzz` and
//! `bench`. It boots (or restores) a guest on demand, plays one scenario on it, and
//! applies one rule to what is left: a guest that faulted, splatted or gained taint is
//! retired, so no scenario ever sees another's damage.
//!
//! The pool grows by restoring a saved guest (see `vmstate`), which is several times
//! faster than a boot; the first growth saves one (or finds it cached). When restoring
//! fails the pool says why (an [`Event::FellBack`]) and boots cold instead. Each boot
//! gets its own workdir, so a console log is never overwritten by the next guest.
//!
//! Architecture invariant: a guest that faulted, splatted or gained taint is never given
//! out again.

use crate::check::outcome::Outcome;
use crate::check::problem::ProblemKind;
use crate::coverage::stack::Decoder;
use crate::image::prepare::Prepared;
use crate::image::symbols::{self, Symbols};
use crate::run::runner;
use crate::run::runner::errored;
use crate::scenario::Loaded;
use crate::vm::agent::Agent;
use crate::vm::guest::{Fault, Guest, Info};
use crate::vm::qemu;
use crate::vm::transcript;
use crate::vm::vmstate::{self, Saved};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Whether pools grow by restore: `RMAPCHECK_RESTORE=0` makes every guest boot cold.
pub fn restore_enabled() -> bool {
    std::env::var("RMAPCHECK_RESTORE").map(|v| v != "0").unwrap_or(true)
}

/// What the pool reports while it works; the CLI's progress and the fuzzer consume it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A guest is starting for `key`.
    Booting { key: String, release: String },
    /// A guest answered; `console` is its log.
    Booted { key: String, secs: f64, restored: bool, console: PathBuf },
    /// Restoring failed or was impossible; the pool boots cold.
    FellBack { key: String, why: String },
    /// A guest was retired after the scenario it ran; its workdir stays on disk.
    Retired { key: String, why: String, workdir: PathBuf },
}

/// What `--gdb` does with a guest that just failed, before it is retired or reused:
/// the CLI pauses it and waits for Enter. Called once per pool.
pub type Hold = fn(&Guest, &str);

/// Where pool events go.
pub type Sink<'e> = Box<dyn Fn(Event) + Send + Sync + 'e>;

/// One scenario played on a pooled guest.
#[derive(Debug)]
pub struct Played {
    pub outcome: Outcome,
    /// Why the guest stopped answering, when it did.
    pub fault: Option<Fault>,
    /// The console log of the guest that played it (kept after the guest is gone).
    pub console: PathBuf,
}

pub struct Pool<'e> {
    pub prepared: Prepared,
    idle: Mutex<Vec<Guest>>,
    workroot: PathBuf,
    seq: AtomicUsize,
    /// Seconds each boot or restore took, for reports and benchmarks.
    pub boots: Mutex<Vec<f64>>,
    /// Grow by restoring a saved guest rather than booting.
    pub restore: bool,
    /// The saved guest, or why there is none (made once, on first growth).
    saved: OnceLock<Result<Saved, NotSaved>>,
    /// rmapcheck.ko parameters set on every new guest (e.g. `misreport=1`).
    module_params: Vec<(String, String)>,
    /// The first boot failure: a kernel that cannot boot is not booted again, so its
    /// remaining scenarios turn into errors at once instead of one deadline each.
    boot_failure: Mutex<Option<(String, PathBuf)>>,
    events: Sink<'e>,
    /// `--gdb`: every guest boots cold with a stub on this port, and the first failure
    /// is held.
    gdb: Option<(u16, Hold)>,
    held: std::sync::atomic::AtomicBool,
    /// Every run collects KCOV coverage into `Outcome::coverage` (where the kernel has
    /// KCOV); off, runs pay nothing for it.
    coverage: bool,
    /// The kernel's symbols for splat stacks, or why there are none (opened at the first
    /// splat).
    /// (addr2line's loader is not Sync: one decode at a time.)
    decoder: Mutex<Option<Result<Decoder, String>>>,
}

impl<'e> Pool<'e> {
    pub fn new(prepared: Prepared, workroot: PathBuf) -> Pool<'e> {
        Pool {
            prepared,
            idle: Mutex::new(Vec::new()),
            workroot,
            seq: AtomicUsize::new(0),
            boots: Mutex::new(Vec::new()),
            restore: restore_enabled(),
            saved: OnceLock::new(),
            module_params: Vec::new(),
            boot_failure: Mutex::new(None),
            events: Box::new(|_| {}),
            gdb: None,
            held: std::sync::atomic::AtomicBool::new(false),
            coverage: false,
            decoder: Mutex::new(None),
        }
    }

    pub fn with_module_params(mut self, params: &[(String, String)]) -> Pool<'e> {
        self.module_params = params.to_vec();
        self
    }

    /// Boot every guest cold with a gdb stub on `port` (one guest at a time), and hand
    /// the first failure to `hold` before the guest goes on or is retired.
    pub fn with_gdb(mut self, port: u16, hold: Hold) -> Pool<'e> {
        self.gdb = Some((port, hold));
        self.restore = false;
        self
    }

    /// Hold `g` for the debugger after a failure, once per pool (`--gdb`).
    pub fn hold(&self, g: &Guest, why: &str) {
        if let Some((_, hold)) = self.gdb {
            if !self.held.swap(true, Ordering::SeqCst) {
                hold(g, why);
            }
        }
    }

    /// Collect each run's KCOV coverage (`Outcome::coverage`). On a kernel without
    /// KCOV the first run finds out and the runs go on without.
    pub fn with_coverage(mut self, on: bool) -> Pool<'e> {
        self.coverage = on;
        self
    }

    pub fn with_events(mut self, sink: Sink<'e>) -> Pool<'e> {
        self.events = sink;
        self
    }

    fn key(&self) -> &str {
        &self.prepared.kernel.key
    }

    /// What a guest of this kernel says at READY, as far as the host knows it before
    /// any boot: for the results of scenarios that never got a guest.
    pub fn info(&self) -> Info {
        let k = &self.prepared.kernel;
        Info {
            key: k.key.clone(),
            release: k.release.clone(),
            page_size: k.page_size,
            module_loaded: false,
            compiler: k.compiler(),
        }
    }

    /// An idle guest, or a new one.
    pub fn take(&self) -> Result<Guest, Fault> {
        if let Some(g) = lock(&self.idle).pop() {
            return Ok(g);
        }
        if let Some((why, _)) = lock(&self.boot_failure).clone() {
            return Err(Fault::Boot {
                why: format!("an earlier boot of {} failed: {why}", self.key()),
                console: String::new(),
            });
        }
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let dir = self.workroot.join(format!("{}-g{n}", self.key()));
        (self.events)(Event::Booting { key: self.key().to_string(), release: self.prepared.kernel.release.clone() });
        let grown = self.grow(&dir).and_then(|(mut g, restored)| {
            g.info.compiler = self.prepared.kernel.compiler();
            g.coverage = self.coverage;
            g.set_module_params(&self.module_params)?;
            Ok((g, restored))
        });
        match grown {
            Ok((g, restored)) => {
                tracing::info!(key = self.key(), secs = g.boot_secs, restored, workdir = %g.workdir.display(), "guest ready");
                lock(&self.boots).push(g.boot_secs);
                (self.events)(Event::Booted {
                    key: self.key().to_string(),
                    secs: g.boot_secs,
                    restored,
                    console: g.console_log(),
                });
                Ok(g)
            }
            Err(f) => {
                // The cold boot's log when there was one, else the failed restore's.
                let cold = cold_dir(&dir).join("console.log");
                let console = if cold.exists() { cold } else { dir.join("console.log") };
                lock(&self.boot_failure).get_or_insert_with(|| (f.to_string(), console));
                Err(f)
            }
        }
    }

    /// A new guest in `dir`, and whether it was restored (else booted cold).
    fn grow(&self, dir: &Path) -> Result<(Guest, bool), Fault> {
        let template = qemu::Config::new(&self.prepared.kernel.image, &self.prepared.initrd, dir);
        if self.restore {
            let saved = self.saved.get_or_init(|| {
                vmstate::ensure(self.key(), &template).map_err(|e| {
                    // A guest that cannot boot to be saved cannot boot cold either.
                    let boot = matches!(e.downcast_ref::<Fault>(), Some(Fault::Boot { .. }));
                    let why = format!("cannot save a guest: {e:#}");
                    if !boot {
                        self.fell_back(&why);
                    }
                    NotSaved { why, boot }
                })
            });
            match saved {
                Ok(saved) => match vmstate::restore(saved, &template, dir) {
                    Ok(g) => return Ok((g, true)),
                    Err(f) => self.fell_back(&format!("restoring {} failed: {f}", saved.state().display())),
                },
                Err(NotSaved { why, boot: true }) => {
                    return Err(Fault::Boot { why: why.clone(), console: String::new() });
                }
                Err(_) => {}
            }
        }
        if let Some((port, _)) = self.gdb {
            let mut config = qemu::Config::new(&self.prepared.kernel.image, &self.prepared.initrd, dir);
            config.gdb_port = Some(port);
            return Guest::start(self.key(), &config).map(|g| (g, false));
        }
        Guest::boot(&self.prepared.kernel, &self.prepared.initrd, &cold_dir(dir)).map(|g| (g, false))
    }

    fn fell_back(&self, why: &str) {
        tracing::warn!(key = self.key(), "restore fell back to a cold boot: {why}");
        (self.events)(Event::FellBack { key: self.key().to_string(), why: why.to_string() });
    }

    /// Return a healthy guest for reuse.
    pub fn give(&self, g: Guest) {
        lock(&self.idle).push(g);
    }

    /// Retire a guest for `why`: it is killed, and its workdir stays.
    pub fn retire(&self, g: Guest, why: &str) {
        tracing::info!(key = self.key(), workdir = %g.workdir.display(), "guest retired: {why}");
        (self.events)(Event::Retired { key: self.key().to_string(), why: why.to_string(), workdir: g.workdir.clone() });
        drop(g);
    }

    /// Play one scenario on a pooled guest, then keep or retire the guest by the one
    /// rule. A guest that cannot be had (a boot failure) gives an errored outcome.
    pub fn play(&self, loaded: &Loaded) -> Played {
        let mut g = match self.take() {
            Ok(g) => g,
            Err(fault) => {
                let console = lock(&self.boot_failure).as_ref().map(|(_, c)| c.clone()).unwrap_or_default();
                let outcome = errored(loaded, &self.info(), &fault);
                return Played { outcome, fault: Some(fault), console };
            }
        };
        let console = g.console_log();
        if let Some(dir) = transcript::record_dir() {
            let path = dir.join(format!("{}@{}.jsonl", loaded.scenario.name, self.key()));
            if let Err(e) = transcript::record(&mut g, &path) {
                tracing::warn!(path = %path.display(), "cannot record the run: {e}");
            }
        }
        let (ran, retire) = play_on(&mut g, loaded);
        transcript::stop(&mut g);
        let played = match ran {
            Ok(mut outcome) => {
                self.decode_stacks(&mut outcome);
                if outcome.status != crate::check::outcome::Status::Pass {
                    self.hold(&g, &format!("{} failed", loaded.scenario.name));
                }
                Played { outcome, fault: None, console }
            }
            Err(fault) => {
                self.hold(&g, &format!("guest fault ({})", fault.cause()));
                // The splat that killed the guest goes into the results with its stack
                // decoded, as a finished run's splats do.
                let mut outcome = errored(loaded, &g.info, &fault);
                outcome.splats.extend(fault.splat().cloned());
                self.decode_stacks(&mut outcome);
                Played { outcome, fault: Some(fault), console }
            }
        };
        match retire {
            None => self.give(g),
            Some(why) => self.retire(g, &why),
        }
        played
    }

    /// Each splat's stack to file:line (decode_stacktrace.sh's form), from the kernel's
    /// vmlinux and System.map; where the kernel has no debug info, one note says so.
    fn decode_stacks(&self, outcome: &mut Outcome) {
        if outcome.splats.iter().all(|s| s.trace.is_empty()) {
            return;
        }
        let mut slot = lock(&self.decoder);
        let decoder = slot.get_or_insert_with(|| {
            let kernel = &self.prepared.kernel;
            match symbols::find(kernel, None) {
                Symbols::Vmlinux(vmlinux) => Decoder::open(&vmlinux, &kernel.build_dir.join("System.map"))
                    .map_err(|e| format!("{}: {e:#}", kernel.key)),
                Symbols::Missing(_) => Err(format!(
                    "{} has no vmlinux with debug info here (Debian ships it in {})",
                    kernel.key,
                    symbols::dbg_package(&kernel.release)
                )),
            }
        });
        match &*decoder {
            Ok(d) => {
                for s in &mut outcome.splats {
                    s.trace = d.decode_all(&s.trace);
                }
            }
            Err(why) => outcome.notes.push(format!("{}: {why}", crate::report::UNDECODED_NOTE)),
        }
    }

    /// Power off every idle guest.
    pub fn shutdown(&self) {
        let guests: Vec<Guest> = std::mem::take(&mut *lock(&self.idle));
        for g in guests {
            g.shutdown();
        }
    }
}

/// Play `loaded` on `agent` by the one rule: the run, and why the guest may not run
/// another scenario, if it may not.
pub fn play_on(agent: &mut dyn Agent, loaded: &Loaded) -> (Result<Outcome, Fault>, Option<String>) {
    let ran = runner::run(agent, loaded);
    let retire = match &ran {
        Ok(outcome) => retire_reason(outcome),
        Err(fault) => Some(format!("guest fault ({})", fault.cause())),
    };
    (ran, retire)
}

/// What plays a scenario for the fuzzer: the pool, or a test's fake guests.
pub trait Play: Sync {
    fn play(&self, loaded: &Loaded) -> Played;
    /// Guests started so far.
    fn boots(&self) -> u64;
}

impl Play for Pool<'_> {
    fn play(&self, loaded: &Loaded) -> Played {
        Pool::play(self, loaded)
    }
    fn boots(&self) -> u64 {
        lock(&self.boots).len() as u64
    }
}

/// Why a guest that finished a scenario may not run another: it splatted or gained
/// taint (a WARN whose lines were lost still taints), or a worker of it hung.
fn retire_reason(o: &Outcome) -> Option<String> {
    // Its task may never go (D state), and its lock or page may block others.
    if o.problems.iter().any(|p| matches!(p.kind, ProblemKind::WorkerHung { .. })) {
        return Some("a worker hung in the kernel".to_string());
    }
    if let Some(s) = o.splats.first() {
        return Some(format!("kernel splat: {}", s.title));
    }
    o.tainted.then(|| "the kernel gained taint".to_string())
}

/// Why the pool has no saved guest to restore.
struct NotSaved {
    why: String,
    /// The guest made for saving did not boot.
    boot: bool,
}

/// Where a cold boot goes when restoring into `dir` failed: a sibling dir keeps the
/// failed restore's console log. (Not with_extension: the kernel key has a dot.)
fn cold_dir(dir: &Path) -> PathBuf {
    PathBuf::from(format!("{}-cold", dir.display()))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse;
    use crate::vm::fake::{ok, FakeAgent};

    fn loaded() -> Loaded {
        let text = "name: t\nabout: t\nsteps:\n  - mmap: { name: a, pages: 1, backing: anon, share: private }\n";
        Loaded { path: "t.yaml".into(), scenario: parse(Path::new("t.yaml"), text).unwrap() }
    }

    /// A fresh guest whose kernel's taint flags read `before` at the baseline and
    /// `after` at the end of the run.
    fn guest(before: &str, after: &str) -> FakeAgent {
        let info =
            Info { key: "6.12".into(), release: "6.12.117+deb12-arm64".into(), page_size: 4096, ..Info::default() };
        let start = crate::vm::transcript::Start {
            info,
            next_id: 1,
            books: crate::vm::guest::Books { fresh: true, taint_baseline: None, collecting: false },
            coverage: false,
        };
        FakeAgent::starting(start)
            .expect("tainted", "", ok(before, &[]))
            .expect("mmap", "proc=p0 name=a pages=1 backing=anon share=private", ok("addr=0x1000", &[]))
            .expect("reset", "", ok("", &[]))
            .expect("tainted", "", ok(after, &[]))
    }

    #[test]
    fn a_guest_that_gained_taint_is_retired_and_one_that_did_not_is_kept() {
        // O and E (12288) are the module's own: the baseline. W (512) came with the run,
        // though no splat line reached the host.
        let (ran, retire) = play_on(&mut guest("value=12288", "value=12800"), &loaded());
        assert!(ran.unwrap().tainted);
        assert_eq!(retire.as_deref(), Some("the kernel gained taint"));
        let (ran, retire) = play_on(&mut guest("value=12288", "value=12288"), &loaded());
        assert_eq!(ran.unwrap().status, crate::check::outcome::Status::Pass);
        assert_eq!(retire, None);
    }

    #[test]
    fn a_guest_whose_worker_hung_is_retired() {
        let info =
            Info { key: "6.12".into(), release: "6.12.117+deb12-arm64".into(), page_size: 4096, ..Info::default() };
        let hung = "errno=110 msg=worker-hung pid=61 wchan=handle_userfault";
        let mut fake = FakeAgent::new(info)
            .expect(
                "mmap",
                "proc=p0 name=a pages=1 backing=anon share=private",
                crate::vm::fake::Answer::Reply(crate::vm::fake::reply(false, hung, &[], &[])),
            )
            .expect("reset", "", ok("", &[]))
            .expect("tainted", "", ok("value=0", &[]));
        let (ran, retire) = play_on(&mut fake, &loaded());
        assert_eq!(ran.unwrap().problems[0].title(), "Step: mmap hung in handle_userfault");
        assert_eq!(retire.as_deref(), Some("a worker hung in the kernel"));
    }
}
