//! A fuzz campaign on one kernel: `jobs` workers, each with a persistent guest, play
//! sequences back to back through the runner, and every new failure is shrunk on the
//! worker's guest and saved. The sequences are seeds first (`--corpus`, and the corpus of
//! `--out` when resuming), then mutants of the corpus and fresh runs (`schedule`). On a
//! kernel with KCOV, a passing run that reached new PCs joins the corpus, and the
//! coverage series records it; without KCOV the campaign runs unguided and says so once.
//!
//! Architecture invariant: the campaign owns no QEMU directly. Workers play runs through
//! the one guest loop ([`Pool`]), which retires a guest that faulted, splatted or gained
//! taint before the next run.

use super::corpus::{self, Corpus};
use super::generate::GenConfig;
use super::schedule::{self, Input, Origin, Shard};
use super::shrink::shrink;
use super::triage::{self, fault_title, titles, Record};
use crate::check::outcome::Outcome;
use crate::coverage::{series, Pcs};
use crate::image::prepare::Prepared;
use crate::report;
use crate::run::pool::{self, Play, Pool};
use crate::scenario::{to_yaml, Loaded, Scenario, Step};
use crate::vm::guest::Fault;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When a campaign ends (besides a stop request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Runs(u64),
    Duration(Duration),
    /// Until a stop is requested (Ctrl-C).
    Unbounded,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    pub limit: Limit,
    pub jobs: usize,
    pub out: PathBuf,
    pub gen: GenConfig,
    /// rmapcheck.ko parameters set on every guest after boot.
    pub module_params: Vec<(String, String)>,
    /// How `rmapcheck run` names this kernel, for replay commands (`--kernel 6.12`).
    pub kernel_args: String,
    /// Candidates the shrinker may re-run per failure.
    pub shrink_budget: usize,
    /// Where guests keep their console logs.
    pub workroot: PathBuf,
    /// `--gdb`: the stub's port, and what to do with the first failing guest.
    pub gdb: Option<(u16, pool::Hold)>,
    /// `--corpus`: folders whose scenarios seed the corpus (besides `out/corpus`).
    pub corpus: Vec<PathBuf>,
    /// `--shard I/N`: the run numbers this campaign owns.
    pub shard: Shard,
    /// Collect each run's KCOV coverage: `Ran::Done`'s outcome carries it.
    pub coverage: bool,
    /// `--unguided`: every run freshly generated, the corpus only recorded (the
    /// baseline a guided campaign is measured against).
    pub unguided: bool,
    /// Known kernel bugs (the scenarios' `known_bug` blocks): a run that fails exactly
    /// as one of them says on this kernel is counted under its name, not shrunk and
    /// not a new failure.
    pub known_bugs: Vec<crate::scenario::KnownBug>,
    /// End the campaign once the first failure is saved (a verdict or a self-test needs
    /// one, not a campaign).
    pub stop_at_first_finding: bool,
}

/// A sequence given in advance (`rmapcheck sweep`): listed campaigns play these in
/// order instead of the schedule's, and report each by its own number.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The sequence's number in its space (what `Event::Finished` reports).
    pub run: u64,
    pub scenario: Scenario,
    /// How reports name it: `sweep sequence 17 (anon/private/thp: fork, munmap page)`.
    pub what: String,
}

/// A unique failure.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Found {
    pub title: String,
    /// The run that found it first.
    pub run: u64,
    /// How many runs hit it.
    pub hits: u64,
    /// The saved folder (`None` while it is being shrunk, or when saving failed).
    pub folder: Option<PathBuf>,
    pub full_steps: usize,
    pub shrunk_steps: usize,
    pub summary: String,
}

/// A point-in-time view of the counters, for progress lines.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Snapshot {
    pub kernel: String,
    pub elapsed: Duration,
    pub runs: u64,
    /// Steps run, each followed by an O1-O5 check of every live page (with the default
    /// `--check-every 1`); injected checks are not counted.
    pub ops: u64,
    pub failures: u64,
    pub boots: u64,
    /// Corpus entries, and the PCs of their union (0 without KCOV).
    pub corpus: u64,
    pub pcs: u64,
}

impl Snapshot {
    pub fn per_sec(&self, n: u64) -> f64 {
        n as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// What a campaign reports while it runs.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Tick(Snapshot),
    /// The guest loop's own events: boots, restores, retired guests.
    Guest(pool::Event),
    /// A new failure; shrinking starts.
    Found {
        title: String,
        run: u64,
    },
    Saved(Found),
    /// A failure's folder could not be written; the campaign goes on.
    NotSaved {
        title: String,
        why: String,
    },
    /// Something worth one line: the kernel has no KCOV, a seed was skipped.
    Note(String),
    /// Run `run` of a listed campaign was played and judged (and, if it failed anew,
    /// shrunk and saved): the sweep records it as done.
    Finished {
        run: u64,
    },
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub kernel: String,
    pub release: String,
    pub seed: u64,
    pub jobs: usize,
    pub last: Snapshot,
    pub found: Vec<Found>,
    /// Runs that failed as a known kernel bug, by its name (docs/FINDINGS.md).
    pub known: BTreeMap<String, u64>,
    /// Trigger classes (`check::triggers`) with the number of runs that reached each.
    pub triggers: BTreeMap<String, u64>,
    pub stopped: bool,
    pub shard: Shard,
    /// Whether runs brought coverage (`None`: no run finished).
    pub guided: Option<bool>,
    /// `--unguided`: coverage recorded, every run fresh.
    pub unguided: bool,
    /// Corpus entries at the end, how many joined in this campaign, and where.
    pub corpus: usize,
    pub corpus_new: usize,
    pub corpus_dir: PathBuf,
}

#[derive(Default)]
struct Counters {
    runs: AtomicU64,
    ops: AtomicU64,
}

struct Shared<'a> {
    prepared: &'a Prepared,
    pool: &'a dyn Play,
    opts: &'a Options,
    /// Set when the campaign must end early: the first finding (when asked), or a
    /// broken worker. A signal (`crate::signal`) ends it too.
    end: AtomicBool,
    /// A stop the caller asks for, besides a signal (tests stop a campaign this way).
    halt: &'a AtomicBool,
    events: &'a (dyn Fn(Event) + Sync),
    started: Instant,
    next_run: AtomicU64,
    counters: Counters,
    found: Mutex<BTreeMap<String, Found>>,
    known: Mutex<BTreeMap<String, u64>>,
    triggers: Mutex<BTreeMap<String, u64>>,
    corpus: Mutex<Corpus>,
    /// Seeds that run before anything else, in order.
    candidates: Vec<crate::scenario::Scenario>,
    /// A listed campaign's sequences (then the only ones it plays, maybe none).
    listed: Option<&'a [Listed]>,
    /// 0: no run finished yet; 1: runs bring coverage; 2: they do not (said once).
    guided: std::sync::atomic::AtomicU8,
    corpus_new: AtomicU64,
    series: Mutex<Option<series::Writer>>,
}

impl Shared<'_> {
    /// The known kernel bug a run failed as, if it failed as one and only as it.
    fn known_bug(&self, ran: &Ran) -> Option<&crate::scenario::KnownBug> {
        let Ran::Done(o) = ran else { return None };
        self.opts.known_bugs.iter().find(|kb| crate::check::expect::known_bug_shown(kb, o))
    }

    fn snapshot(&self) -> Snapshot {
        let found = self.found.lock().unwrap_or_else(|e| e.into_inner()).len() as u64;
        let corpus = self.corpus.lock().unwrap_or_else(|e| e.into_inner());
        Snapshot {
            kernel: self.prepared.kernel.key.clone(),
            elapsed: self.started.elapsed(),
            runs: self.counters.runs.load(Ordering::Relaxed),
            ops: self.counters.ops.load(Ordering::Relaxed),
            failures: found,
            boots: self.pool.boots(),
            corpus: corpus.entries.len() as u64,
            pcs: corpus.union.len() as u64,
        }
    }

    /// The input of claim `k`: the seeds first, then the schedule's choice for this
    /// shard's run numbers. Also a phrase for reports: `seed 3 run 17`.
    fn input(&self, k: u64) -> (u64, Input, String) {
        if let Some(l) = self.listed.and_then(|l| l.get(k as usize)) {
            return (l.run, Input { scenario: l.scenario.clone(), origin: Origin::Seed }, l.what.clone());
        }
        let seed = self.opts.seed;
        if let Some(s) = self.candidates.get(k as usize) {
            let input = Input { scenario: s.clone(), origin: Origin::Seed };
            return (k, input, format!("seed input {} (campaign seed {seed})", s.name));
        }
        let run = self.opts.shard.run(k - self.candidates.len() as u64);
        let corpus = self.corpus.lock().unwrap_or_else(|e| e.into_inner());
        let entries = if self.opts.unguided { &[][..] } else { &corpus.entries[..] };
        let input = schedule::next(&self.opts.gen, seed, run, entries);
        let what = match &input.origin {
            Origin::Mutant { parent, kinds } => {
                format!("seed {seed} run {run} (mutant of {parent}: {})", kinds.join(", "))
            }
            _ => format!("seed {seed} run {run}"),
        };
        (run, input, what)
    }

    /// A run finished without failure: its coverage may add it to the corpus.
    fn feedback(&self, scenario: &crate::scenario::Scenario, what: &str, o: &Outcome) {
        if o.coverage.is_empty() {
            if self.guided.compare_exchange(0, 2, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                (self.events)(Event::Note(format!(
                    "{}: runs bring no coverage (a kernel without KCOV): the campaign runs unguided, and the corpus does not grow",
                    self.prepared.kernel.key
                )));
            }
            return;
        }
        self.guided.store(1, Ordering::SeqCst);
        let mut corpus = self.corpus.lock().unwrap_or_else(|e| e.into_inner());
        let Some((entry, new)) = corpus.offer(scenario, Pcs::new(o.coverage.clone())) else { return };
        let entry = entry.clone();
        let kernel = &self.prepared.kernel;
        if !entry.saved {
            let dir = self.opts.out.join("corpus");
            let comment = format!(
                "rmapcheck fuzz corpus entry: {} new PCs ({} reached) on {} ({}), {what}\nreplay: rmapcheck run {} {}",
                new.len(),
                entry.pcs.len(),
                kernel.key,
                kernel.release,
                self.opts.kernel_args,
                dir.join(format!("{}.yaml", entry.key)).display()
            );
            match corpus::save(&dir, &entry, &kernel.release, &comment) {
                Ok(_) => corpus.mark_saved(&entry.key),
                Err(e) => (self.events)(Event::Note(format!("cannot save a corpus entry: {e:#}"))),
            }
            self.corpus_new.fetch_add(1, Ordering::Relaxed);
        }
        let point = series::Point {
            runs: self.counters.runs.load(Ordering::Relaxed),
            secs: self.started.elapsed().as_secs_f64(),
            pcs: corpus.union.len() as u64,
            corpus: corpus.entries.len() as u64,
            new: new.as_slice().to_vec(),
        };
        drop(corpus);
        self.series_point(point);
    }

    fn series_point(&self, point: series::Point) {
        let mut w = self.series.lock().unwrap_or_else(|e| e.into_inner());
        if w.is_none() {
            let kernel = &self.prepared.kernel;
            let header = series::Header {
                kernel: kernel.key.clone(),
                release: kernel.release.clone(),
                seed: self.opts.seed,
                shard: self.opts.shard.to_string(),
            };
            let path = self.opts.out.join(series::file_name((self.opts.shard.index, self.opts.shard.count)));
            match series::Writer::open(&path, &header) {
                Ok(opened) => *w = Some(opened),
                Err(e) => (self.events)(Event::Note(format!("cannot write the coverage series: {e:#}"))),
            }
        }
        if let Some(w) = w.as_mut() {
            if let Err(e) = w.point(point) {
                (self.events)(Event::Note(format!("{e:#}")));
            }
        }
    }

    /// Whether the campaign is winding down: ended early, or stopped by a signal.
    fn stopping(&self) -> bool {
        self.end.load(Ordering::SeqCst) || self.halt.load(Ordering::SeqCst) || crate::signal::requested().is_some()
    }

    /// The next run number, or `None` when the campaign is over.
    fn claim(&self) -> Option<u64> {
        if self.stopping() {
            return None;
        }
        if let Limit::Duration(d) = self.opts.limit {
            if self.started.elapsed() >= d {
                return None;
            }
        }
        let n = self.next_run.fetch_add(1, Ordering::SeqCst);
        if self.listed.is_some_and(|l| n >= l.len() as u64) {
            return None;
        }
        match self.opts.limit {
            Limit::Runs(max) if n >= max => None,
            _ => Some(n),
        }
    }
}

/// What one run ended with.
enum Ran {
    Done(Box<Outcome>),
    /// The fault, and the errored run with the fatal splat's decoded stack.
    Fault(Fault, Box<Outcome>),
}

impl Ran {
    fn titles(&self) -> Vec<String> {
        match self {
            Ran::Done(o) => titles(o),
            Ran::Fault(f, _) => vec![fault_title(f)],
        }
    }
}

struct Worker<'a, 'b> {
    shared: &'b Shared<'a>,
    /// The console log of the guest that ran the last scenario.
    console: PathBuf,
}

impl Worker<'_, '_> {
    /// Play one scenario through the guest loop. A guest that cannot even boot ends
    /// the campaign: nothing after it could run either.
    fn play(&mut self, scenario: &Scenario) -> Result<Ran, Fault> {
        let loaded = Loaded { path: PathBuf::from(format!("{}.yaml", scenario.name)), scenario: scenario.clone() };
        let played = self.shared.pool.play(&loaded);
        self.console = played.console;
        match played.fault {
            Some(f @ Fault::Boot { .. }) => Err(f),
            Some(f) => Ok(Ran::Fault(f, Box::new(played.outcome))),
            None => Ok(Ran::Done(Box::new(played.outcome))),
        }
    }

    fn work(&mut self) -> Result<()> {
        let sh = self.shared;
        while let Some(k) = sh.claim() {
            let (run, input, what) = sh.input(k);
            let scenario = input.scenario;
            let ran = self.play(&scenario)?;
            if sh.stopping() {
                // A run cut short by Ctrl-C (the terminal signals QEMU too) proves nothing.
                break;
            }
            sh.counters.runs.fetch_add(1, Ordering::Relaxed);
            let ops = scenario.steps.iter().filter(|s| !matches!(s, Step::Check(_))).count() as u64;
            sh.counters.ops.fetch_add(ops, Ordering::Relaxed);
            if let Ran::Done(o) = &ran {
                let mut triggers = sh.triggers.lock().unwrap_or_else(|e| e.into_inner());
                for t in &o.triggers {
                    *triggers.entry(t.clone()).or_default() += 1;
                }
            }
            self.judge(run, &what, &scenario, &ran);
            // Only a listed campaign resumes by run numbers (fuzz's events stay as they were).
            if sh.listed.is_some() {
                (sh.events)(Event::Finished { run });
            }
        }
        Ok(())
    }

    /// Count a played run as a known bug, a pass (which may join the corpus) or a
    /// failure, shrinking and saving it when its title is new.
    fn judge(&mut self, run: u64, what: &str, scenario: &Scenario, ran: &Ran) {
        let sh = self.shared;
        if let Some(kb) = sh.known_bug(ran) {
            *sh.known.lock().unwrap_or_else(|e| e.into_inner()).entry(kb.finding.clone()).or_default() += 1;
            return;
        }
        // A run is known by its most severe title; the others are usually the same
        // bug seen by another check (a missed VMA is also a wrong mapcount).
        let Some(title) = ran.titles().into_iter().next() else {
            if let Ran::Done(o) = ran {
                sh.feedback(scenario, what, o);
            }
            return;
        };
        let new = {
            let mut found = sh.found.lock().unwrap_or_else(|e| e.into_inner());
            match found.get_mut(&title) {
                Some(f) => {
                    f.hits += 1;
                    None
                }
                None => {
                    found.insert(title.clone(), placeholder(&title, run, scenario));
                    Some(title)
                }
            }
        };
        if let Some(title) = new {
            (sh.events)(Event::Found { title: title.clone(), run });
            let found = self.shrink_and_save(&title, run, what, scenario, ran);
            sh.found.lock().unwrap_or_else(|e| e.into_inner()).insert(title, found.clone());
            (sh.events)(Event::Saved(found));
            if sh.opts.stop_at_first_finding {
                sh.end.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Whether `candidate` still fails with `title`. Stops saying yes once a stop is
    /// requested, so the shrinker winds down with what it has.
    fn reproduces(&mut self, candidate: &Scenario, title: &str) -> bool {
        if self.shared.stopping() {
            return false;
        }
        match self.play(candidate) {
            Ok(ran) => !self.shared.stopping() && ran.titles().iter().any(|t| t == title),
            Err(_) => false,
        }
    }

    fn shrink_and_save(&mut self, title: &str, run: u64, what: &str, full: &Scenario, ran: &Ran) -> Found {
        let sh = self.shared;
        // Keep the evidence of the original run before re-runs replace the guest.
        let console = keep_console(&self.console, &sh.opts.workroot, run);
        let (failure, full_report) = match ran {
            Ran::Done(o) => (report::failure_text(o, &full.steps), report::text(std::slice::from_ref(o))),
            Ran::Fault(f, o) => (
                format!("guest fault: {f}\n{}", report::stack_text(&o.splats)),
                format!("{} on {}: guest fault\n", full.name, sh.prepared.kernel.key),
            ),
        };
        let confirmed = self.reproduces(full, title);
        let (shrunk, tries) = if confirmed {
            let mut pred = |c: &Scenario| self.reproduces(c, title);
            let out = shrink(full, sh.opts.shrink_budget, &mut pred);
            (out.scenario, out.tries)
        } else {
            (full.clone(), 0)
        };
        let params: String =
            sh.opts.module_params.iter().map(|(k, v)| format!(" --module-param {k}={v}")).collect::<Vec<_>>().concat();
        let replay = format!("rmapcheck run {}{params} shrunk.yaml", sh.opts.kernel_args);
        let note = if confirmed {
            format!("shrunk {} -> {} steps in {tries} re-runs", full.steps.len(), shrunk.steps.len())
        } else {
            "did not reproduce on a re-run; not shrunk".to_string()
        };
        let summary = format!(
            "{title} | kernel {} ({}) | {what} | {note} | replay: {replay}",
            sh.prepared.kernel.key, sh.prepared.kernel.release
        );
        let step = format!("rmapcheck replay --step {}{params} shrunk.yaml", sh.opts.kernel_args);
        let kernel = &sh.prepared.kernel;
        let header = |what: &str| format!("{title}\n{what}\nreplay: {replay}\nstep by step: {step}");
        let mut small = shrunk.clone();
        small.name = format!("{}-shrunk", full.name);
        small.about = format!("shrunk from {}: {title}", full.name);
        let full_yaml = to_yaml(full, &header(&format!("{what} on {}", sh.prepared.kernel.key)));
        let shrunk_yaml = to_yaml(&small, &header(&note));
        let found_on =
            format!("{} ({}, {}, {}k pages)", kernel.key, kernel.release, kernel.compiler(), kernel.page_size / 1024);
        let about = report::repro::About {
            title: Some(title.to_string()),
            problems: failure.lines().filter(|l| l.starts_with("problem ")).take(10).map(str::to_string).collect(),
            found_on: Some(found_on.clone()),
            page_size: kernel.page_size,
            o1: title.starts_with("O1"),
        };
        // A planted bug (module parameters) lives in the module, which the C program
        // does not load: it reproduces kernel bugs only.
        let repro_c = match report::repro::c_source(&small, &about) {
            Ok(c) if sh.opts.module_params.is_empty() => c,
            _ => String::new(),
        };
        let how = if repro_c.is_empty() {
            step.clone()
        } else {
            format!(
                "{step}\nC reproducer, repro.c (libc only; it prints PASS or FAIL: <what>, exits 0 or 1):\n  \
                 gcc -static -O2 -o repro repro.c && sudo ./repro   (aarch64-linux-gnu-gcc for arm64)\n  \
                 rmapcheck repro run repro.c --kernel {}   (in a guest)",
                kernel.key
            )
        };
        let report = triage::upstream_report(&triage::ReportParts {
            title,
            kernel: found_on,
            module_params: sh.opts.module_params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "),
            failure,
            shrunk_yaml: &shrunk_yaml,
            shrinking: &note,
            replay: &replay,
            step: &how,
            config: kernel.config().map(|c| triage::mm_config(&c)).unwrap_or_default(),
            full_report,
        });
        let record = Record {
            title,
            summary: &summary,
            full_yaml: &full_yaml,
            shrunk_yaml: &shrunk_yaml,
            report: &report,
            console_log: &console,
            repro_c: &repro_c,
        };
        let folder = match triage::save(&sh.opts.out, &record) {
            Ok(dir) => Some(dir),
            Err(e) => {
                (sh.events)(Event::NotSaved { title: title.to_string(), why: format!("{e:#}") });
                None
            }
        };
        Found {
            title: title.to_string(),
            run,
            hits: 1,
            folder,
            full_steps: full.steps.len(),
            shrunk_steps: small.steps.len(),
            summary,
        }
    }
}

fn placeholder(title: &str, run: u64, s: &Scenario) -> Found {
    Found {
        title: title.to_string(),
        run,
        hits: 1,
        folder: None,
        full_steps: s.steps.len(),
        shrunk_steps: s.steps.len(),
        summary: String::new(),
    }
}

/// Copy a console log aside (the guest may be rebooted into the same directory name).
fn keep_console(console: &Path, workroot: &Path, run: u64) -> PathBuf {
    let kept = workroot.join(format!("console-run{run}.log"));
    match std::fs::copy(console, &kept) {
        Ok(_) => kept,
        Err(_) => console.to_path_buf(),
    }
}

/// Run a campaign on `prepared` until the limit, or until a signal stops it
/// (`Summary::stopped`; what it found is saved either way).
pub fn run(prepared: &Prepared, opts: &Options, events: &(dyn Fn(Event) + Sync)) -> Result<Summary> {
    let pool = guests(prepared, opts, events)?;
    run_on(prepared, opts, &AtomicBool::new(false), events, &pool)
}

/// A listed campaign: [`run`], playing exactly `listed`, in order (no seeds, no
/// schedule), until the list or the limit ends.
pub fn run_listed(
    prepared: &Prepared,
    opts: &Options,
    listed: &[Listed],
    events: &(dyn Fn(Event) + Sync),
) -> Result<Summary> {
    let pool = guests(prepared, opts, events)?;
    play(prepared, opts, &AtomicBool::new(false), events, &pool, Some(listed))
}

/// The campaign's folders, and its guest loop reporting through `events`.
fn guests<'e>(prepared: &Prepared, opts: &Options, events: &'e (dyn Fn(Event) + Sync)) -> Result<Pool<'e>> {
    std::fs::create_dir_all(&opts.workroot)?;
    // Made even when nothing is found, so shards always have a folder to merge.
    std::fs::create_dir_all(&opts.out).with_context(|| format!("creating {}", opts.out.display()))?;
    let mut pool = Pool::new(prepared.clone(), opts.workroot.clone())
        .with_module_params(&opts.module_params)
        .with_coverage(opts.coverage)
        .with_events(Box::new(move |e| events(Event::Guest(e))));
    if let Some((port, hold)) = opts.gdb {
        pool = pool.with_gdb(port, hold);
    }
    Ok(pool)
}

/// [`run`], playing every scenario with `pool`; `halt` stops it as a signal would.
fn run_on(
    prepared: &Prepared,
    opts: &Options,
    halt: &AtomicBool,
    events: &(dyn Fn(Event) + Sync),
    pool: &dyn Play,
) -> Result<Summary> {
    play(prepared, opts, halt, events, pool, None)
}

/// The campaign over `pool`: exactly `listed` when given, else the seeds and the
/// schedule's runs.
pub(super) fn play(
    prepared: &Prepared,
    opts: &Options,
    halt: &AtomicBool,
    events: &(dyn Fn(Event) + Sync),
    pool: &dyn Play,
    listed: Option<&[Listed]>,
) -> Result<Summary> {
    // Runs are generated for the kernel's page size (a huge page's pages, PMD counts),
    // whatever the caller's config said.
    let page_size = prepared.kernel.page_size;
    let opts = &Options { gen: GenConfig { page_size, ..opts.gen.clone() }, ..opts.clone() };
    // Seeds: this campaign's own corpus (a resume) first, then each --corpus folder.
    let mut corpus = Corpus::default();
    let mut candidates = Vec::new();
    let own = opts.out.join("corpus");
    let mut dirs: Vec<(PathBuf, bool)> = Vec::new();
    // A listed campaign plays its list and nothing else.
    if listed.is_none() {
        if own.is_dir() {
            dirs.push((own.clone(), true));
        }
        dirs.extend(opts.corpus.iter().map(|d| (d.clone(), false)));
    }
    let (mut seeded, mut trusted) = (0, 0);
    for (dir, saved) in &dirs {
        let (seeds, notes) =
            crate::scenario::count::with_page_size(page_size, || corpus::load_seeds(dir, &opts.gen)).0?;
        for n in notes {
            events(Event::Note(n));
        }
        for seed in &seeds {
            let before = corpus.entries.len();
            if corpus.seed(seed, &prepared.kernel.release, *saved) {
                candidates.push(corpus.entries[before].scenario.clone());
            } else if corpus.entries.len() > before {
                trusted += 1;
            }
        }
        seeded += seeds.len();
    }
    // Seeds from elsewhere that keep their coverage join this campaign's corpus folder,
    // so it holds the whole corpus (to resume from, and to merge).
    let keys: Vec<String> =
        corpus.entries.iter().filter(|e| !e.saved && !e.pcs.is_empty()).map(|e| e.key.clone()).collect();
    for key in keys {
        let Some(e) = corpus.entries.iter().find(|e| e.key == key).cloned() else { continue };
        let comment = format!(
            "rmapcheck fuzz corpus entry (a seed): {} PCs on {} ({})\nreplay: rmapcheck run {} {}",
            e.pcs.len(),
            prepared.kernel.key,
            prepared.kernel.release,
            opts.kernel_args,
            own.join(format!("{key}.yaml")).display()
        );
        corpus::save(&own, &e, &prepared.kernel.release, &comment)?;
        corpus.mark_saved(&key);
    }
    if seeded > 0 {
        events(Event::Note(format!(
            "corpus: {seeded} seeds from {}; {trusted} keep their coverage, {} run first",
            dirs.iter().map(|(d, _)| d.display().to_string()).collect::<Vec<_>>().join(", "),
            candidates.len()
        )));
    }
    let shared = Shared {
        prepared,
        pool,
        opts,
        end: AtomicBool::new(false),
        halt,
        events,
        started: Instant::now(),
        next_run: AtomicU64::new(0),
        counters: Counters::default(),
        found: Mutex::new(BTreeMap::new()),
        known: Mutex::new(BTreeMap::new()),
        triggers: Mutex::new(BTreeMap::new()),
        corpus: Mutex::new(corpus),
        candidates,
        listed,
        guided: std::sync::atomic::AtomicU8::new(0),
        corpus_new: AtomicU64::new(0),
        series: Mutex::new(None),
    };
    let done = AtomicBool::new(false);
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let shared = &shared;
        let done = &done;
        scope.spawn(move || {
            let mut last = Instant::now();
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
                if last.elapsed() >= Duration::from_secs(1) {
                    last = Instant::now();
                    (shared.events)(Event::Tick(shared.snapshot()));
                }
            }
        });
        let handles: Vec<_> = (0..opts.jobs.max(1))
            .map(|_| {
                scope.spawn(move || {
                    let mut w = Worker { shared, console: PathBuf::new() };
                    // Shrinking and mutating re-read scenarios: counts in the kernel's pages.
                    let (r, _) = crate::scenario::count::with_page_size(page_size, || w.work());
                    if r.is_err() {
                        // One broken worker ends the campaign; the others finish their run.
                        shared.end.store(true, Ordering::SeqCst);
                    }
                    r
                })
            })
            .collect();
        let results =
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("worker panicked")))).collect();
        done.store(true, Ordering::SeqCst);
        results
    });
    let last = shared.snapshot();
    let corpus_len = last.corpus as usize;
    if shared.series.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
        shared.series_point(series::Point {
            runs: last.runs,
            secs: last.elapsed.as_secs_f64(),
            pcs: last.pcs,
            corpus: last.corpus,
            new: Vec::new(),
        });
    }
    for r in results {
        r?;
    }
    let mut found: Vec<Found> = shared.found.into_inner().unwrap_or_else(|e| e.into_inner()).into_values().collect();
    found.sort_by_key(|f| f.run);
    Ok(Summary {
        kernel: prepared.kernel.key.clone(),
        release: prepared.kernel.release.clone(),
        seed: opts.seed,
        jobs: opts.jobs.max(1),
        last,
        found,
        known: shared.known.into_inner().unwrap_or_else(|e| e.into_inner()),
        triggers: shared.triggers.into_inner().unwrap_or_else(|e| e.into_inner()),
        stopped: halt.load(Ordering::SeqCst) || crate::signal::requested().is_some(),
        shard: opts.shard,
        guided: match shared.guided.load(Ordering::SeqCst) {
            0 => None,
            g => Some(g == 1),
        },
        unguided: opts.unguided,
        corpus: corpus_len,
        corpus_new: shared.corpus_new.load(Ordering::Relaxed) as usize,
        corpus_dir: own,
    })
}

#[cfg(test)]
pub(crate) mod tests;
