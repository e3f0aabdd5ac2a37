//! Plays one scenario on a guest: translates steps into agent requests, gathers the
//! module's walks and the pagemap ground truth, and runs the oracle and the model.

use crate::check::contents::{self, Contents, Seen};
use crate::check::dmesg::{self, VmaLine, VmaState, Walk};
use crate::check::expect::{check_expectations, judge_known_bug};
use crate::check::model::{Frame, Model, Slot, UffdResult, EINVAL};
use crate::check::oracle::{self, Asked, Check, FolioTruth, Problem, Truth};
use crate::check::outcome::{Findpage, Findtask, Fork, Outcome, Status, StepSignal, VmaLabel};
use crate::check::problem::{Errno, ProblemKind, SwapOut};
use crate::check::{swap, triggers, vmas, worker};
use crate::scenario::request::{self, Pages, Request, Wire};
use crate::scenario::{span, Access, Advice, Backing, Expect, KnownBug, Loaded, Mthp, RemoteKind, Step, World};
use crate::vm::agent::Agent;
use crate::vm::guest::{Fault, Info};
use crate::vm::protocol::Reply;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// The outcome of a scenario that could not finish because the guest failed.
pub fn errored(loaded: &Loaded, info: &Info, fault: &Fault) -> Outcome {
    Outcome::not_run(loaded, info, format!("guest fault ({}): {fault}", fault.cause()))
}

/// State of one run: the model, map sizes and pids as they evolve.
struct Run<'a> {
    guest: &'a mut dyn Agent,
    outcome: Outcome,
    model: Model,
    /// The processes and maps the steps made, as far as the agent made them (a step
    /// whose request failed is not applied): a request takes its map's size from here.
    world: World,
    /// The current step's request failed (a step problem).
    failed: bool,
    /// The last pagemap read. Steps that only look (findpage, findtask, check) change no
    /// mapping, so a run of them shares one read; any other step drops it.
    truth: Option<Truth>,
    /// What that read found in every present page (O5).
    seen: Seen,
    /// No step has failed, so O4 and O5 may judge.
    model_valid: bool,
    /// The `folio` reads of large folios since then, by head pfn; dropped with `truth`.
    folios: BTreeMap<u64, FolioTruth>,
    /// Order-0 pages the last `check: all` walked (or found unchanged), with their
    /// mappers then.
    walked: BTreeMap<u64, BTreeSet<Slot>>,
    /// A step since the last `check: all` may have changed VMAs, processes or where
    /// pages are, so every page is walked again.
    restructured: bool,
    /// The kernel refused the current step where that is a result, not a failure
    /// (a madvise this mapping does not take). It may have acted on part of the range
    /// first, so the model stops judging (O4, O5) from here on.
    refused: bool,
    /// A `check: all` comes next: the step's request asks for the pagemap read too.
    prefetch: bool,
    /// `truth` came with a step's request, and stays true only while no other request
    /// has gone since: the guest's request count then.
    fused_at: Option<u64>,
    /// The slots that got an rmap_item of their own at the last `ksm` step (present in a
    /// mergeable VMA when ksmd scanned), with their address then: O1 requires a KSM
    /// walk to reach those, not only fork copies of what it found.
    ksm_items: BTreeMap<Slot, u64>,
    /// A step's worker hung in the kernel: the steps after it mean nothing.
    stopped: bool,
    /// Processes whose worker died (and children their skipped forks would have made).
    dead: BTreeSet<String>,
    /// The last step that may have changed VMAs, and its op: O6 names it.
    changed_by: (usize, String),
    /// Steps not played because they name a dead process.
    skipped: Vec<usize>,
    /// Maps on the block filesystem (`backing: ext4`), by name.
    ext4_maps: BTreeSet<String>,
    /// At the last `drop_caches`: the (map, page) any process mapped then, and every
    /// page read since (the trigger class of a page read back from disk).
    mapped_at_drop: Option<BTreeSet<(String, u64)>>,
}

/// Run `loaded` on `guest`. A guest fault ends the run with `Err`; the caller decides
/// whether to replace the guest.
pub fn run(guest: &mut dyn Agent, loaded: &Loaded) -> Result<Outcome, Fault> {
    run_observed(guest, loaded, &mut |_| Flow::Continue)
}

/// What an observer of [`run_observed`] wants after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Skip the remaining steps; the run still ends with its teardown and checks.
    Stop,
}

/// [`run`], calling `observe` after each step with the session, so a stepper can look
/// at the guest between steps (`rmapcheck replay`).
pub fn run_observed(
    guest: &mut dyn Agent,
    loaded: &Loaded,
    observe: &mut dyn FnMut(&mut Session) -> Flow,
) -> Result<Outcome, Fault> {
    // Counts relative to the PMD (`pages: pmd`) resolve for this kernel's page size.
    let scenario = match loaded.scenario.for_page_size(guest.info().page_size) {
        Ok(s) => s,
        Err(why) => return Ok(Outcome::not_run(loaded, guest.info(), why)),
    };
    let mut session = Session::start(guest, loaded, &scenario.mthp)?;
    for (i, step) in scenario.steps.iter().enumerate() {
        session.run.prefetch = matches!(scenario.steps.get(i + 1), Some(Step::Check(_)));
        session.step(step)?;
        if observe(&mut session) == Flow::Stop || session.run.stopped {
            break;
        }
    }
    session.finish(&scenario.expect, scenario.known_bug.as_ref())
}

/// One scenario in progress on a guest, played a step at a time: `run` plays a file
/// through it, the shell plays lines as they are typed.
pub struct Session<'g> {
    run: Run<'g>,
    started: Instant,
    mark: u64,
    /// Steps played so far.
    pub steps: usize,
}

impl<'g> Session<'g> {
    /// Reset the guest, apply `mthp`, and start a scenario named by `loaded` (its steps
    /// are not played).
    pub fn start(guest: &'g mut dyn Agent, loaded: &Loaded, mthp: &[Mthp]) -> Result<Session<'g>, Fault> {
        let started = Instant::now();
        guest.mark_taint_baseline()?;
        // Before the reset, so its fresh p0 gets a trace buffer; it also forgets what
        // anything before this run reached.
        guest.start_coverage()?;
        // Guests from the pool are fresh already (every run ends with a teardown); this
        // reset is for guests that a VM check used directly. The log mark comes after it,
        // so nothing a previous user left is blamed on this run.
        if !guest.is_fresh() {
            teardown(guest)?;
        }
        let mark = guest.kmsg_mark();
        let outcome = Outcome::new(loaded, guest.info());
        let page_size = guest.info().page_size;
        let model = Model::for_release(&guest.info().release).with_mthp(mthp).with_page_size(page_size);
        let mut run = Run {
            guest,
            outcome,
            model,
            world: World::for_page_size(page_size),
            failed: false,
            truth: None,
            seen: Seen::new(),
            model_valid: true,
            folios: BTreeMap::new(),
            walked: BTreeMap::new(),
            restructured: true,
            refused: false,
            prefetch: false,
            fused_at: None,
            ksm_items: BTreeMap::new(),
            stopped: false,
            dead: BTreeSet::new(),
            skipped: Vec::new(),
            changed_by: (0, String::new()),
            ext4_maps: BTreeSet::new(),
            mapped_at_drop: None,
        };
        run.set_mthp(mthp)?;
        tracing::debug!(scenario = %loaded.scenario.name, steps = loaded.scenario.steps.len(), "scenario starts");
        Ok(Session { run, started, mark, steps: 0 })
    }

    /// Play one more step.
    pub fn step(&mut self, step: &Step) -> Result<(), Fault> {
        self.steps += 1;
        // One death, not a cascade of no-proc errors after it.
        if step.proc().is_some_and(|p| self.run.dead.contains(p)) {
            if let Step::Fork(f) = step {
                self.run.dead.insert(f.child.clone());
            }
            self.run.skipped.push(self.steps);
            return Ok(());
        }
        tracing::debug!(step = self.steps, op = step.op(), "step");
        let before = self.run.outcome.problems.len();
        self.run.step(self.steps, step)?;
        // The model assumes every step did all it says; after a refused one it would
        // blame the kernel for the step's failure (that is the step's problem).
        if self.run.outcome.problems[before..].iter().any(|p| p.check == Check::Step) {
            self.run.model_valid = false;
        }
        if std::mem::take(&mut self.run.refused) {
            self.run.model_valid = false;
        }
        self.run.restructured |= !only_touches_pages(step);
        self.run.model.apply(step);
        if !self.run.failed {
            // After an earlier failure the World may refuse a step the agent did (on a
            // map that was never made); it then stays as it was.
            let _ = self.run.world.apply(step);
        }
        Ok(())
    }

    /// What the scenario found so far.
    pub fn outcome(&self) -> &Outcome {
        &self.run.outcome
    }

    /// The model after the steps so far.
    pub fn model(&self) -> &Model {
        &self.run.model
    }

    /// Every splat since the session started.
    pub fn splats(&self) -> Vec<dmesg::Splat> {
        self.run.guest.splats_since(self.mark)
    }

    /// The guest, for requests of its own (raw module commands).
    pub fn guest(&mut self) -> &mut dyn Agent {
        self.run.guest
    }

    /// Ground truth now (see `Run::truth`).
    pub fn truth(&mut self) -> Result<Truth, Fault> {
        self.run.truth()
    }

    /// Walk `slot` and judge it (O1, O2, O4) without recording anything in the outcome.
    /// `None` when the agent refused (the slot is not mapped).
    pub fn inspect(&mut self, slot: &Slot) -> Result<Option<Inspected>, Fault> {
        let truth = self.truth()?;
        let Some(w) = self.run.walk(slot)? else { return Ok(None) };
        let mut problems = oracle::check_walk(&w.walk, &truth, slot, w.pfn, w.kpagecount);
        // O4 by the run's own rule, taken back out of the outcome.
        let recorded = self.run.outcome.problems.len();
        self.run.check_model(slot, w.pfn, &truth);
        problems.extend(self.run.outcome.problems.drain(recorded..));
        let findpage = labelled(&w.walk, &truth, &slot.0, &format!("{}[{}]", slot.1, slot.2));
        Ok(Some(Inspected { findpage, pfn: w.pfn, problems }))
    }

    /// Tear down, collect splats and taint, and check `expect`: the finished outcome.
    pub fn finish(self, expect: &[Expect], known_bug: Option<&KnownBug>) -> Result<Outcome, Fault> {
        let Session { mut run, started, mark, .. } = self;
        if !run.skipped.is_empty() {
            let steps: Vec<String> = run.skipped.iter().map(usize::to_string).collect();
            let s = if steps.len() == 1 { "" } else { "s" };
            run.outcome.notes.push(format!("step{s} {} skipped: a process they name died", steps.join(", ")));
        }
        // The teardown is part of the run: a splat while its processes exit (a bad page
        // map, a WARN in unlink_anon_vmas) belongs to it, and the shrinker replays it too.
        teardown(run.guest)?;
        if run.guest.collects_coverage() {
            let cov = run.guest.take_coverage()?;
            if cov.overflow {
                run.outcome.notes.push(format!(
                    "coverage: a KCOV trace buffer filled up during {}; PCs after that point are missing",
                    if cov.overflow_ops.is_empty() { "a step".to_string() } else { cov.overflow_ops.join(", ") }
                ));
            }
            run.outcome.coverage = cov.pcs;
        }
        let splats = run.guest.splats_since(mark);
        for s in &splats {
            run.outcome
                .problems
                .push(Problem::new(ProblemKind::Splat { line: s.line.clone(), title: s.title.clone() }));
        }
        // A WARN or BUG whose lines were lost still taints the kernel.
        let taint = run.guest.new_taint()?;
        if !taint.is_empty() {
            run.outcome.problems.push(Problem::new(ProblemKind::Tainted { flags: taint }));
            run.outcome.tainted = true;
        }
        run.outcome.splats = splats;
        let mut outcome = run.outcome;
        outcome.triggers.sort();
        outcome.triggers.dedup();
        check_expectations(expect, &mut outcome);
        let known = judge_known_bug(known_bug, &mut outcome);
        if !outcome.problems.is_empty() {
            outcome.status = if known { Status::Xfail } else { Status::Fail };
        }
        outcome.duration_ms = started.elapsed().as_millis() as u64;
        Ok(outcome)
    }
}

/// One page walked and judged by [`Session::inspect`].
#[derive(Debug, Clone)]
pub struct Inspected {
    pub findpage: Findpage,
    /// Its pagemap PFN, if present.
    pub pfn: Option<u64>,
    /// What O1, O2 and O4 say about it.
    pub problems: Vec<Problem>,
}

/// A findpage walk as the module and the agent reported it.
struct Walked {
    walk: Walk,
    pfn: Option<u64>,
    kpagecount: Option<i64>,
}

/// Kill and reap every workload process; the reply drains the kernel log up to then.
fn teardown(guest: &mut dyn Agent) -> Result<(), Fault> {
    let reset = guest.request("reset", "")?;
    if !reset.ok {
        return Err(Fault::Protocol(format!("reset failed: {:?}", reset.fields)));
    }
    Ok(())
}

impl Run<'_> {
    fn fail(&mut self, n: usize, step: &Step, reply: &Reply) {
        self.failed = true;
        let log: Vec<String> = reply.kmsg.iter().filter_map(|k| dmesg::parse_record(k)).map(|r| r.text).collect();
        if let Some(kind) = worker::problem(n, step.op(), &reply.fields, &log) {
            if matches!(kind, ProblemKind::WorkerHung { .. }) {
                self.stopped = true;
                self.outcome.notes.push(format!("step {n}: the run stops here, as its worker hung"));
            } else {
                self.dead.extend(step.proc().map(String::from));
                // A fork that killed its parent made no child.
                if let Step::Fork(f) = step {
                    self.dead.insert(f.child.clone());
                }
            }
            self.outcome.problems.push(Problem::new(kind));
            return;
        }
        let errno = Errno(reply.errno().unwrap_or(0));
        let msg = reply.get("msg").unwrap_or("").to_string();
        self.outcome.problems.push(Problem::new(ProblemKind::StepFailed { n, op: step.op().to_string(), errno, msg }));
    }

    /// Send a request; a refusal becomes a step problem and `None`.
    fn send(&mut self, n: usize, step: &Step, wire: Wire) -> Result<Option<Reply>, Fault> {
        let reply = self.send_reply(wire)?;
        if reply.ok {
            Ok(Some(reply))
        } else {
            self.fail(n, step, &reply);
            Ok(None)
        }
    }

    /// A placed mmap or mremap (`after:`, `before:`) that met a mapping the kernel put
    /// there (EEXIST): a fresh map's or an mremap's new home, whose place the World
    /// cannot know. That is where the kernel puts maps, not a bug: the run stops with
    /// a note. Returns whether it was that.
    fn placed_taken(&mut self, n: usize, step: &Step, reply: &Reply) -> bool {
        if reply.errno() != Some(EEXIST) {
            return false;
        }
        self.stopped = true;
        self.outcome.notes.push(format!(
            "step {n}: {} to its place: the range is taken by a mapping the kernel placed (EEXIST); the run stops here",
            step.op()
        ));
        true
    }

    /// Send a request, fused with a pagemap read when one is due; the reply as it is.
    fn send_reply(&mut self, wire: Wire) -> Result<Reply, Fault> {
        let fuse = std::mem::take(&mut self.prefetch);
        let wire = if fuse { wire.arg("then", "pagemap") } else { wire };
        let reply = self.guest.request(wire.op.name(), &wire.args())?;
        if reply.ok && fuse && reply.get("then") != Some("0") {
            self.keep_truth(&reply.data)?;
            self.fused_at = Some(self.guest.requests_sent());
        }
        Ok(reply)
    }

    fn step(&mut self, n: usize, step: &Step) -> Result<(), Fault> {
        if !matches!(step, Step::Findpage(_) | Step::Findtask(_) | Step::Check(_)) {
            self.truth = None;
            self.folios.clear();
            self.changed_by = (n, step.op().to_string());
        }
        self.failed = false;
        // Every step but `check` (a pagemap read and walks) is one request.
        let request = Request::from_step(step, &self.world, n);
        let wire = || request.as_ref().expect("a step other than check").wire();
        // The pages the request names (what the step left out resolved).
        let pages = || request.as_ref().and_then(Request::pages).expect("a step over a range").clone();
        match step {
            Step::Mmap(m) => {
                let reply = self.send_reply(wire())?;
                if reply.ok {
                    if m.backing == Backing::Ext4 {
                        self.ext4_maps.insert(m.name.clone());
                    }
                } else if !(m.at.is_some() && self.placed_taken(n, step, &reply)) {
                    self.fail(n, step, &reply);
                }
            }
            Step::Mremap(x) => {
                let reply = self.send_reply(wire())?;
                let placed = x.to.as_ref().is_some_and(|t| t.after.is_some() || t.before.is_some());
                let refused = !reply.ok;
                if refused && !(placed && self.placed_taken(n, step, &reply)) {
                    self.fail(n, step, &reply);
                }
            }
            Step::Munmap(_) | Step::Mprotect(_) => {
                self.send(n, step, wire())?;
            }
            Step::Madvise(x) => {
                let count = pages().count;
                // The swap oracle compares pagemap before and after a pageout.
                let before = if x.advice == Advice::Pageout { Some(self.truth()?) } else { None };
                self.truth = None;
                let wire = wire();
                let reply = self.guest.request(wire.op.name(), &wire.args())?;
                if let (Some(before), true) = (before, reply.ok) {
                    let after = self.truth()?;
                    let slots: Vec<_> = (x.page..x.page + count).map(|p| (x.proc.clone(), x.map.clone(), p)).collect();
                    self.outcome.problems.extend(swap::check_pageout(&before, &after, &slots, SwapOut::Pageout));
                }
                if !reply.ok {
                    // MADV_COLLAPSE says why it did not collapse (ENOMEM: no huge page,
                    // EAGAIN, EBUSY, EINVAL: not collapsible, or no MADV_COLLAPSE): a
                    // result on this kernel and memory, not a failed step.
                    let collapse = x.advice == Advice::Collapse && matches!(reply.errno(), Some(11 | 12 | 16 | 22));
                    if collapse {
                        let errno = reply.errno().unwrap_or(0);
                        self.outcome.notes.push(format!("step {n}: madvise collapse did not collapse (errno {errno})"));
                    } else if reply.errno() == Some(22) {
                        self.refused = true;
                        self.outcome.notes.push(format!(
                            "step {n}: madvise {} refused here (EINVAL: not on this kernel or this mapping)",
                            x.advice.wire()
                        ));
                    } else {
                        self.fail(n, step, &reply);
                    }
                }
            }
            Step::Write(a) | Step::Read(a) => {
                let reply = self.send_reply(wire())?;
                // Past a file's end the worker catches SIGBUS: the step's result.
                let write = matches!(step, Step::Write(_));
                let expected = self.model.access_stop(&a.proc, &a.map, a.page, a.pages, write);
                // A registered map's pages the model cannot follow (THP, KSM, swap): its
                // SIGBUS or none is not predicted, and a surprise voids the model.
                let registered = self.world.uffd_mode(&a.proc, &a.map).is_some();
                let unsure = registered && self.model.uffd_unsure(&a.proc, &a.map, a.page, a.pages);
                let got = (!reply.ok && reply.errno() == Some(14) && reply.get("msg") == Some("sigbus"))
                    .then(|| "sigbus".to_string());
                if !reply.ok && got.is_none() {
                    self.fail(n, step, &reply);
                }
                let reply = reply.ok.then_some(reply);
                if unsure && got.is_some() != expected.is_some() {
                    self.refused = true;
                    self.outcome.notes.push(format!("step {n}: a registered page the model cannot follow faulted"));
                } else if got.is_some() || expected.is_some() {
                    self.access_signal(n, step, a, expected, got);
                }
                if let Some(data) = reply.as_ref().and_then(|r| r.get("data")) {
                    let read = Contents::parse_list(data).map_err(Fault::Protocol)?;
                    for (i, c) in read.into_iter().enumerate() {
                        if matches!(step, Step::Read(_)) {
                            self.reread_trigger(&a.map, a.page + i as u64, c.as_ref());
                        }
                        if let Some(c) = c {
                            self.check_contents(&(a.proc.clone(), a.map.clone(), a.page + i as u64), c);
                        }
                    }
                }
            }
            Step::Truncate(_) | Step::Punch(_) => self.truncate(n, step, wire())?,
            Step::Uffd(_) | Step::UffdCopy(_) | Step::UffdZeropage(_) | Step::UffdMove(_) | Step::UffdWp(_) => {
                self.uffd(n, step, wire())?
            }
            Step::Poke(_)
            | Step::Exit(_)
            | Step::Mlock(_)
            | Step::Munlock(_)
            | Step::Mlockall(_)
            | Step::Munlockall(_) => {
                self.send(n, step, wire())?;
            }
            Step::Msync(_) | Step::Fsync(_) | Step::Sync(_) => self.writeback(n, step, wire())?,
            Step::DropCaches(_) => {
                let before = self.truth()?;
                self.truth = None;
                if self.send(n, step, wire())?.is_some() {
                    let mapped = before.slots().into_iter().map(|((_, map, page), _)| (map, page)).collect();
                    self.mapped_at_drop = Some(mapped);
                }
            }
            Step::Fork(f) => {
                if self.send(n, step, wire())?.is_some() {
                    self.outcome.forks.push(Fork { parent: f.proc.clone(), child: f.child.clone() });
                    // Only a pinned page is copied at fork: look only when one may be.
                    if self.model.holds_pins() && triggers::fork_copied(&self.truth()?, &f.proc, &f.child) {
                        self.outcome.triggers.push(triggers::PIN_FORK_COPY.to_string());
                    }
                }
            }
            // ENOSYS: no io_uring (or io_uring_disabled=2); EOPNOTSUPP: 6.1's io_uring
            // refuses file-backed buffers. The model assumed the pin: it is void after.
            Step::Pin(_) => {
                if self.optional(n, step, wire(), &[38, 95])?.is_none() {
                    self.refused = true;
                }
            }
            Step::Unpin(_) => {
                self.send(n, step, wire())?;
            }
            Step::Remote(x) => {
                let before = if x.kind == RemoteKind::Readv { Some(self.truth()?) } else { None };
                self.truth = None;
                if let (Some(before), Some(_)) = (before, self.send(n, step, wire())?) {
                    let slots: Vec<Slot> =
                        (x.page..x.page + x.pages).map(|p| (x.proc.clone(), x.map.clone(), p)).collect();
                    if triggers::pin_unshared(&before, &self.truth()?, &slots) {
                        self.outcome.triggers.push(triggers::PIN_UNSHARE.to_string());
                    }
                }
            }
            Step::Findpage(r) => {
                let truth = self.truth()?;
                self.findpage(n, step, &(r.proc.clone(), r.map.clone(), r.page), &truth, true)?;
            }
            Step::Findtask(p) => self.findtask(n, step, &p.proc)?,
            Step::Check(_) => self.check_all(n, step)?,
            Step::Ksm(_) => {
                self.send(n, step, wire())?;
                // ksmd scanned every mergeable VMA to the end: each present page there
                // now holds an rmap_item at its address.
                let truth = self.truth()?;
                self.ksm_items = truth
                    .slots()
                    .into_iter()
                    .filter(|(s, _)| self.model.mergeable(&s.0, &s.1, s.2))
                    .filter_map(|(s, _)| truth.address(&s).map(|(_, a)| (s, a)))
                    .collect();
            }
            Step::Split(_) => {
                self.optional(n, step, wire(), &[2])?;
            }
            Step::Migrate(x) => {
                let Pages { page, count, .. } = pages();
                // ENODEV: one node; ENOSYS: no move_pages (CONFIG_MIGRATION off).
                // Read before the move: afterwards the old frames are free.
                let before = self.truth()?;
                let classes = migration_triggers(&before, &x.proc, &x.map, page, count);
                self.truth = None;
                // ENOMEM: no free page to move to, as a 16k guest often lacks for a
                // 32 MiB huge page; the pages stay where they are.
                let results = [(12, "no memory for the new pages; they stay where they are")];
                if let Some(reply) = self.optional_or_result(n, step, wire(), &[19, 38], &results)? {
                    self.outcome.triggers.extend(classes);
                    // One note per errno: a large range can leave hundreds of pages.
                    let mut stayed: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
                    // A page migration gave up on keeps its frame; move_pages() may
                    // still report the target node for it, so compare frames.
                    let pinned: Vec<Slot> = (page..page + count)
                        .filter(|&at| self.model.pinned_at(&x.proc, &x.map, at))
                        .map(|at| (x.proc.clone(), x.map.clone(), at))
                        .collect();
                    if !pinned.is_empty() {
                        let after = self.truth()?;
                        if pinned.iter().any(|s| before.pfn_of(s).is_some() && before.pfn_of(s) == after.pfn_of(s)) {
                            self.outcome.triggers.push(triggers::PIN_MIGRATE_REFUSED.to_string());
                        }
                    }
                    for (i, status) in reply.get("nodes").unwrap_or("").split(',').enumerate() {
                        if let Some(errno) = status.strip_prefix('-') {
                            stayed.entry(errno).or_insert((page + i as u64, 0)).1 += 1;
                        }
                    }
                    for (errno, (first, count)) in stayed {
                        self.outcome.notes.push(format!(
                            "step {n}: migrate: {count} page(s) of {}, the first {}[{first}], did not move (errno {errno})",
                            x.map, x.map
                        ));
                    }
                }
            }
            Step::Compact(_) => {
                self.optional(n, step, wire(), &[2])?;
            }
            // The swap oracle over every slot, as for a pageout: reclaim may take any
            // page, so every page that left memory must have left every mapper.
            Step::Reclaim(_) => {
                let before = self.truth()?;
                self.truth = None;
                // ENODEV: no cgroup2; ENOENT: no memcg, or no memory.reclaim (before 5.19).
                if self.optional(n, step, wire(), &[2, 19])?.is_some() {
                    let after = self.truth()?;
                    let slots: Vec<Slot> = before.slots().into_iter().map(|(s, _)| s).collect();
                    self.outcome.problems.extend(swap::check_pageout(&before, &after, &slots, SwapOut::Reclaim));
                    self.outcome.triggers.extend(triggers::of_reclaim(&before, &after).into_iter().map(String::from));
                }
            }
        }
        Ok(())
    }

    /// A read or write that the model or the worker says ended in a signal: the
    /// signal is the step's result, and the model must have predicted it (O4).
    fn access_signal(&mut self, n: usize, step: &Step, a: &Access, expected: Option<u64>, got: Option<String>) {
        let page = expected.unwrap_or(a.page);
        if let Some(signal) = &got {
            self.outcome.signals.push(StepSignal {
                step: n,
                op: step.op().to_string(),
                proc: a.proc.clone(),
                map: a.map.clone(),
                page,
                signal: signal.clone(),
            });
            let eof = self.model.sigbus_at(&a.proc, &a.map, a.page, a.pages) == Some(page);
            self.outcome.triggers.push(if eof { triggers::SIGBUS_EOF } else { triggers::UFFD_SIGBUS }.to_string());
        }
        if expected.is_some() != got.is_some() && self.model_valid {
            let at = (a.proc.clone(), a.map.clone(), page);
            let op = step.op().to_string();
            let uffd = self.world.uffd_mode(&a.proc, &a.map).is_some();
            self.outcome.problems.push(Problem::new(ProblemKind::Signal { n, op, at, expected, got, uffd }));
        }
    }

    /// A userfaultfd step. EOPNOTSUPP: the kernel lacks the feature (UFFDIO_MOVE before
    /// 6.8, write-protect on arm64 before 6.10) or userfaultfd; the model is void after.
    /// COPY, ZEROPAGE and MOVE report what they did (`done=`, `errno=`), the step's
    /// result, which the model predicts (O4) where it can follow every page.
    fn uffd(&mut self, n: usize, step: &Step, wire: Wire) -> Result<(), Fault> {
        let predicted = self.model.uffd_result(step);
        let before = if matches!(step, Step::UffdMove(_)) { Some(self.truth()?) } else { None };
        self.truth = None;
        // A move across VMAs, or between unlike ones, is refused whole (EINVAL): the
        // step's result where the model predicts it; where its VMAs are not certain
        // (merges it does not follow), the model is void after.
        let refusal = predicted.is_some_and(|p| p.errno == Some(EINVAL));
        let certain = match step {
            Step::UffdMove(x) => {
                [&x.map, &x.to.map].iter().all(|m| self.model.vmas(&x.proc, m).is_some_and(|v| v.merges_certain))
            }
            _ => true,
        };
        let reply = self.guest.request(wire.op.name(), &wire.args())?;
        let reply = match reply.errno() {
            _ if reply.ok => reply,
            Some(EINVAL) if refusal || !certain => {
                self.outcome.notes.push(format!("step {n}: {} refused whole: EINVAL", step.op()));
                self.refused |= !refusal;
                return Ok(());
            }
            Some(95) => {
                let msg = reply.get("msg").unwrap_or("");
                self.outcome.notes.push(format!("step {n}: {} is unsupported on this kernel ({msg})", wire.op));
                self.refused = true;
                return Ok(());
            }
            _ => {
                self.fail(n, step, &reply);
                return Ok(());
            }
        };
        if let (true, true, Some(expected), Step::UffdMove(x)) = (refusal && certain, self.model_valid, predicted, step)
        {
            let got = UffdResult { done: reply.get("done").and_then(|d| d.parse().ok()).unwrap_or(0), errno: None };
            let (op, at) = (step.op().to_string(), (x.proc.clone(), x.to.map.clone(), x.to.page));
            self.outcome.problems.push(Problem::new(ProblemKind::Uffd { n, op, at, expected, got }));
            self.refused = true;
            return Ok(());
        }
        let Some(predicted) = predicted else { return Ok(()) };
        let done = reply.get("done").and_then(|d| d.parse().ok()).unwrap_or(0);
        let errno = reply.get("errno").and_then(|e| e.parse().ok()).filter(|&e: &i32| e != 0);
        let got = UffdResult { done, errno };
        if let Some(e) = errno {
            self.outcome.notes.push(format!(
                "step {n}: {} stopped after {done} page(s): {}",
                step.op(),
                Errno(e).name()
            ));
        }
        let (unsure, at) = match step {
            Step::UffdMove(x) => (
                self.model.uffd_unsure(&x.proc, &x.map, x.page, x.pages)
                    || self.model.uffd_unsure(&x.proc, &x.to.map, x.to.page, x.pages),
                (x.proc.clone(), x.to.map.clone(), x.to.page),
            ),
            _ => {
                let p = Request::from_step(step, &self.world, n).and_then(|r| r.pages().cloned()).expect("a range");
                (self.model.uffd_unsure(&p.proc, &p.name, p.page, p.count), (p.proc, p.name, p.page))
            }
        };
        if got != predicted {
            if unsure || !self.model_valid {
                self.refused = true;
            } else {
                let op = step.op().to_string();
                self.outcome.problems.push(Problem::new(ProblemKind::Uffd { n, op, at, expected: predicted, got }));
            }
        }
        if let (Some(before), Step::UffdMove(x)) = (before, step) {
            if got.done > 0 && triggers::uffd_moved(&before, &x.proc, &x.map, x.page, got.done) {
                self.outcome.triggers.push(triggers::UFFD_MOVE.to_string());
            }
        }
        Ok(())
    }

    /// `truncate` and `punch`: the trigger classes come from pagemap before and after.
    fn truncate(&mut self, n: usize, step: &Step, wire: Wire) -> Result<(), Fault> {
        let before = self.truth()?;
        self.truth = None;
        if self.send(n, step, wire)?.is_some() {
            let after = self.truth()?;
            let punched: Vec<Slot> = match step {
                Step::Punch(r) => {
                    let (first, count) = span(r.page, r.pages, self.world.size(&r.proc, &r.map));
                    (first..first + count).map(|p| (r.proc.clone(), r.map.clone(), p)).collect()
                }
                _ => Vec::new(),
            };
            self.outcome
                .triggers
                .extend(triggers::of_truncate(&before, &after, &punched).into_iter().map(String::from));
        }
        Ok(())
    }

    /// A writeback step, and its trigger class: a page 2+ processes map, dirty before
    /// it (kpageflags), clean after it.
    fn writeback(&mut self, n: usize, step: &Step, wire: Wire) -> Result<(), Fault> {
        let before = self.truth()?;
        self.truth = None;
        let mut flags = BTreeMap::new();
        for (_, pfn) in before.slots() {
            if !flags.contains_key(&pfn) && before.holders(pfn).iter().map(|s| &s.0).collect::<BTreeSet<_>>().len() >= 2
            {
                flags.insert(pfn, self.kpageflags(pfn)?);
            }
        }
        let candidates = triggers::writeback_candidates(&before, |pfn| flags.get(&pfn).copied().flatten());
        if self.send(n, step, wire)?.is_some() {
            let mut after = BTreeMap::new();
            for &pfn in &candidates {
                after.insert(pfn, self.kpageflags(pfn)?);
            }
            let classes = triggers::of_writeback(&candidates, |pfn| after.get(&pfn).copied().flatten());
            self.outcome.triggers.extend(classes.into_iter().map(String::from));
        }
        Ok(())
    }

    /// /proc/kpageflags of `pfn`, `None` when the agent cannot read it.
    fn kpageflags(&mut self, pfn: u64) -> Result<Option<u64>, Fault> {
        let reply = self.guest.request("kpage", &format!("pfn=0x{pfn:x}"))?;
        let flags = reply.get("kpageflags").and_then(|f| u64::from_str_radix(f.trim_start_matches("0x"), 16).ok());
        Ok(flags.filter(|_| reply.ok))
    }

    /// A `read` of `(map, page)` after drop_caches: its trigger class, once per page.
    fn reread_trigger(&mut self, map: &str, page: u64, read: Option<&Contents>) {
        let Some(mapped) = self.mapped_at_drop.as_mut() else { return };
        let unmapped = mapped.insert((map.to_string(), page));
        let written =
            matches!(read, Some(Contents::Uniform(b)) if *b != 0) || matches!(read, Some(Contents::Mixed { .. }));
        let classes = triggers::of_reread(self.ext4_maps.contains(map), unmapped, written);
        self.outcome.triggers.extend(classes.into_iter().map(String::from));
    }

    /// A request the kernel may not support: an errno in `unsupported` becomes a note
    /// (this kernel lacks it), any other refusal a step problem.
    fn optional(&mut self, n: usize, step: &Step, wire: Wire, unsupported: &[i32]) -> Result<Option<Reply>, Fault> {
        self.optional_or_result(n, step, wire, unsupported, &[])
    }

    /// `optional`, where an errno of `results` is what the kernel could do here (a
    /// note with its reason), not a failed step.
    fn optional_or_result(
        &mut self,
        n: usize,
        step: &Step,
        wire: Wire,
        unsupported: &[i32],
        results: &[(i32, &str)],
    ) -> Result<Option<Reply>, Fault> {
        let op = wire.op;
        let reply = self.guest.request(op.name(), &wire.args())?;
        if reply.ok {
            return Ok(Some(reply));
        }
        match reply.errno() {
            Some(e) if unsupported.contains(&e) => {
                let msg = reply.get("msg").unwrap_or("");
                self.outcome.notes.push(format!("step {n}: {op} is unsupported on this kernel ({msg})"));
            }
            Some(e) if results.iter().any(|(r, _)| *r == e) => {
                let why = results.iter().find(|(r, _)| *r == e).map_or("", |(_, why)| why);
                self.outcome.notes.push(format!("step {n}: {op}: errno {e}: {why}"));
            }
            _ => self.fail(n, step, &reply),
        }
        Ok(None)
    }

    /// Apply the scenario's per-size THP settings. Sizes the kernel does not offer (all
    /// of them before 6.8; shmem before 6.11) are skipped with a note.
    fn set_mthp(&mut self, mthp: &[Mthp]) -> Result<(), Fault> {
        if mthp.is_empty() {
            return Ok(());
        }
        let info = self.guest.request("sysinfo", "")?;
        let offered: Vec<u64> = info.get("mthp").unwrap_or("-").split(',').filter_map(|k| k.parse().ok()).collect();
        let shmem = info.get("shmem_mthp") == Some("1");
        if offered.is_empty() {
            self.outcome.notes.push("mthp: this kernel has no per-size THP controls (6.8+); settings skipped".into());
            return Ok(());
        }
        let page_kb = self.guest.info().page_size / 1024;
        for m in mthp {
            let sizes: Vec<u64> = match m.pages {
                Some(p) => vec![p * page_kb],
                None => offered.clone(),
            };
            for kb in sizes {
                if !offered.contains(&kb) {
                    self.outcome.notes.push(format!("mthp: this kernel offers no {kb} kB size; setting skipped"));
                    continue;
                }
                let mut args = format!("size_kb={kb}");
                if let Some(a) = m.anon {
                    args.push_str(&format!(" anon={}", a.wire()));
                }
                match m.shmem {
                    Some(s) if shmem => args.push_str(&format!(" shmem={}", s.wire())),
                    Some(_) => self.outcome.notes.push(format!(
                        "mthp: this kernel has no per-size shmem_enabled (6.11+); {kb} kB shmem setting skipped"
                    )),
                    None => {}
                }
                if args.contains('=') && args != format!("size_kb={kb}") {
                    let reply = self.guest.request("mthp", &args)?;
                    if !reply.ok {
                        let errno = Errno(reply.errno().unwrap_or(0));
                        self.outcome.problems.push(Problem::new(ProblemKind::MthpFailed { args, errno }));
                    }
                }
            }
        }
        Ok(())
    }

    /// A findpage of `slot` outside any step; `None` when the agent refused.
    fn walk(&mut self, slot: &Slot) -> Result<Option<Walked>, Fault> {
        let findpage = findpage_request(slot);
        let reply = self.guest.request(findpage.op.name(), &findpage.args())?;
        Ok(reply.ok.then(|| walked(&reply)))
    }

    /// Ground truth: pagemap of every named mapping of every live process.
    fn truth(&mut self) -> Result<Truth, Fault> {
        let sent = self.guest.requests_sent();
        if self.fused_at.is_some_and(|at| at != sent) {
            self.truth = None;
        }
        if let Some(t) = &self.truth {
            return Ok(t.clone());
        }
        let reply = self.guest.request("pagemap", "data=1")?;
        if !reply.ok {
            return Err(Fault::Protocol(format!("pagemap failed: {:?}", reply.fields)));
        }
        self.keep_truth(&reply.data)?;
        Ok(self.truth.clone().expect("just kept"))
    }

    /// Keep a pagemap read (its `D` lines) as the truth, and what its pages hold.
    fn keep_truth(&mut self, data: &[crate::wire::Fields]) -> Result<(), Fault> {
        let t = Truth::from_data(data, self.guest.info().page_size).map_err(Fault::Protocol)?;
        self.seen = contents::from_data(data).map_err(Fault::Protocol)?;
        self.truth = Some(t);
        self.fused_at = None;
        Ok(())
    }

    /// The `folio` read of a large folio: every live process's whole address space.
    fn folio(&mut self, head: u64, nr: u64) -> Result<FolioTruth, Fault> {
        if let Some(f) = self.folios.get(&head).filter(|f| f.nr == nr) {
            return Ok(f.clone());
        }
        let page_size = self.guest.info().page_size;
        // smaps tells PMD from PTE mappings, which only a PMD-sized folio can have.
        let pmd = (nr == oracle::folio::pmd_pages(page_size)) as u8;
        let reply = self.guest.request("folio", &format!("pfn=0x{head:x} nr={nr} pmd={pmd}"))?;
        if !reply.ok {
            return Err(Fault::Protocol(format!("folio failed: {:?}", reply.fields)));
        }
        let f = FolioTruth::from_reply(&reply.fields, &reply.data, head, nr, page_size).map_err(Fault::Protocol)?;
        self.folios.insert(head, f.clone());
        Ok(f)
    }

    /// The processes whose VMAs can hold the anon page of `slot`: the one that created
    /// it and its descendants. fork's anon_vma_clone() may give a child the anon_vma of
    /// any ancestor that no VMA uses any more, so the highest ancestor that exited or
    /// unmapped the map widens it.
    fn lineage(&self, slot: &Slot, truth: &Truth) -> Option<BTreeSet<String>> {
        // After a refused step the model's origins are guesses (a pin 6.1 refused was
        // modelled as a fork copy): no lineage is owed then.
        if !self.model_valid {
            return None;
        }
        let origin = self.model.origin(&slot.0, &slot.1, slot.2)?.to_string();
        let has_map = |p: &str| truth.procs.iter().any(|t| t.label == p && t.maps.iter().any(|m| m.name == slot.1));
        // A page swapped in from an entry more than one process held gets the root
        // anon_vma (__folio_set_anon() when not exclusive): the whole tree may visit.
        let swapped = self.model.paged_out.contains(slot);
        let (mut root, mut up) = (origin.clone(), origin);
        // Bounded: a label that exited can be forked again, so the tree may loop.
        for _ in 0..self.outcome.forks.len() {
            let Some(f) = self.outcome.forks.iter().rev().find(|f| f.child == up) else { break };
            up = f.parent.clone();
            if swapped || !has_map(&up) {
                root = up.clone();
            }
        }
        let mut family = BTreeSet::from([root]);
        for f in &self.outcome.forks {
            if family.contains(&f.parent) {
                family.insert(f.child.clone());
            }
        }
        Some(family)
    }

    /// Walk one slot, check O1/O2 (and O4 against the model when `model` is set), and
    /// record the labelled result. Returns the folio's pfn range when it is large.
    fn findpage(
        &mut self,
        n: usize,
        step: &Step,
        slot: &Slot,
        truth: &Truth,
        record: bool,
    ) -> Result<Option<std::ops::Range<u64>>, Fault> {
        let Some(reply) = self.send(n, step, findpage_request(slot))? else {
            return Ok(None);
        };
        self.judge_walk(n, step, slot, truth, reply, record)
    }

    /// O1/O2 (and O4) on the walk in `reply`, a findpage of `slot`; the rest of
    /// `findpage`.
    fn judge_walk(
        &mut self,
        n: usize,
        step: &Step,
        slot: &Slot,
        truth: &Truth,
        mut reply: Reply,
        record: bool,
    ) -> Result<Option<std::ops::Range<u64>>, Fault> {
        let (proc, map, page) = slot;
        // Background compaction (kcompactd) or khugepaged may move the page between the
        // pagemap read and the walk: then read pagemap again and walk again.
        let mut fresh: Option<Truth> = None;
        for _ in 0..2 {
            let now = fresh.as_ref().unwrap_or(truth).pfn_of(slot);
            if reply_pfn(&reply) == now {
                break;
            }
            tracing::debug!(?slot, "the page moved since the pagemap read; reading it again");
            self.truth = None;
            fresh = Some(self.truth()?);
            let Some(again) = self.send(n, step, findpage_request(slot))? else { return Ok(None) };
            reply = again;
        }
        let truth = fresh.as_ref().unwrap_or(truth);
        let Walked { walk, pfn, kpagecount } = walked(&reply);
        let flags = reply.get("kpageflags").and_then(|f| u64::from_str_radix(f.trim_start_matches("0x"), 16).ok());
        // A PMD maps a page table's worth of pages: 8-byte entries in one page.
        let pmd_order = (self.guest.info().page_size / 8).trailing_zeros();
        self.outcome.triggers.extend(triggers::of_walk(&walk, flags, pmd_order).into_iter().map(String::from));
        let forks: Vec<(String, String)> =
            self.outcome.forks.iter().map(|f| (f.parent.clone(), f.child.clone())).collect();
        if triggers::anon_vma_reused(&walk, truth, &forks) {
            self.outcome.triggers.push(triggers::ANON_VMA_REUSED.to_string());
        }
        let at = format!("{map}[{page}]");
        let large = walk.page.as_ref().and_then(|p| match (p.head, p.nr_pages, p.kind.as_str()) {
            (Some(h), Some(nr), "anon" | "file" | "shmem") if nr > 1 && Some(p.pfn) == pfn => Some(h..h + nr),
            _ => None,
        });
        let folio = match &large {
            Some(r) => Some(self.folio(r.start, r.end - r.start)?),
            None => None,
        };
        let lineage = self.lineage(slot, truth);
        let asked = Asked {
            slot,
            pfn,
            kpagecount,
            folio: folio.as_ref(),
            lineage: lineage.as_ref(),
            forks: &forks,
            ksm_items: &self.ksm_items,
        };
        let problems = oracle::check_asked(&walk, truth, &asked);
        self.outcome.problems.extend(problems);
        self.check_model(slot, pfn, truth);
        if record {
            let fp = labelled(&walk, truth, proc, &at);
            self.outcome.findpages.push(fp);
        }
        Ok(large)
    }

    /// O4 for one slot: the model's sharers against pagemap's.
    fn check_model(&mut self, slot: &Slot, pfn: Option<u64>, truth: &Truth) {
        if !self.model_valid || self.model.unpredictable.contains_key(slot) {
            return;
        }
        let predicted = self.model.frame(&slot.0, &slot.1, slot.2);
        // Slots the model cannot predict say nothing either way about their sharers.
        let predictable = |s: &Slot| !self.model.unpredictable.contains_key(s);
        let observed: BTreeSet<Slot> =
            pfn.map(|p| truth.holders(p)).unwrap_or_default().into_iter().filter(predictable).collect();
        let expected: BTreeSet<Slot> =
            self.model.sharers(&slot.0, &slot.1, slot.2).into_iter().filter(predictable).collect();
        let mismatch = match predicted {
            None => pfn.is_some(),
            Some(Frame::Zero) => false,
            Some(_) => pfn.is_none() || observed != expected,
        };
        if mismatch {
            let p = Problem::new(ProblemKind::Sharing {
                at: slot.clone(),
                expected: expected.into_iter().collect(),
                why: self.model.why(slot),
                observed: observed.into_iter().collect(),
            });
            if !self.outcome.problems.contains(&p) {
                self.outcome.problems.push(p);
            }
        }
    }

    /// O5 for one slot: what the guest read there against the model.
    fn check_contents(&mut self, slot: &Slot, seen: Contents) {
        if !self.model_valid {
            return;
        }
        if let Some(m) = contents::check(&self.model, slot, seen, self.guest.info().page_size) {
            let p = Problem::new(ProblemKind::Contents(m));
            if !self.outcome.problems.contains(&p) {
                self.outcome.problems.push(p);
            }
        }
    }

    fn findtask(&mut self, n: usize, step: &Step, proc: &str) -> Result<(), Fault> {
        let truth = self.truth()?;
        let findtask = Request::Findtask { proc: proc.to_string() }.wire();
        let Some(reply) = self.send(n, step, findtask)? else { return Ok(()) };
        let walk = dmesg::walk_in_records(&reply.kmsg, reply.id);
        if walk.end.is_none() {
            self.outcome.problems.push(Problem::new(ProblemKind::FindtaskIncomplete { proc: proc.to_string() }));
        }
        let vmas = walk.vmas.iter().filter_map(|v| task_vma_line(v, &truth)).collect();
        self.outcome.findtasks.push(Findtask { proc: proc.to_string(), vmas });
        Ok(())
    }

    /// `check: all`: O1/O2 on one slot of every distinct present page, O4 and O5 on all
    /// slots. One walk covers a whole large folio: O1 there spans every page of it, and
    /// the `folio` read checks every page's kpagecount.
    fn check_all(&mut self, n: usize, step: &Step) -> Result<(), Fault> {
        let truth = self.truth()?;
        self.outcome.triggers.extend(triggers::of_truth(&truth).into_iter().map(String::from));
        if triggers::moved_back(&truth, self.world.moved_back()) {
            self.outcome.triggers.push(triggers::MOVED_BACK.to_string());
        }
        let release = self.guest.info().release.clone();
        let mut exclusive = oracle::check_exclusive_on(&truth, &release);
        if !exclusive.is_empty() {
            // Background compaction may have moved a page between two processes' reads.
            self.truth = None;
            exclusive = oracle::check_exclusive_on(&self.truth()?, &release);
        }
        self.outcome.problems.extend(exclusive);
        for (slot, c) in self.seen.clone() {
            self.check_contents(&slot, c);
        }
        if self.model_valid {
            let (by, op) = &self.changed_by;
            let layout = vmas::check(&self.model, &truth, *by, op);
            self.outcome.problems.extend(layout.into_iter().map(|m| Problem::new(ProblemKind::Layout(m))));
        }
        let mut seen = BTreeSet::new();
        let mut folios: Vec<std::ops::Range<u64>> = Vec::new();
        let slots = truth.slots();
        // After steps that only touched pages, an order-0 page whose mappers are the
        // ones its last walk found has the same rmap: no walk needed again.
        let unchanged = !std::mem::replace(&mut self.restructured, false);
        let before = std::mem::take(&mut self.walked);
        let mut todo: Vec<(Slot, u64)> = Vec::new();
        let present: BTreeSet<u64> = slots.iter().map(|(_, pfn)| *pfn).collect();
        for (slot, pfn) in &slots {
            self.check_model(slot, Some(*pfn), &truth);
            if seen.insert(*pfn) && truth.needs_walk(*pfn, &present) {
                let holders = truth.holders(*pfn);
                if unchanged && before.get(pfn) == Some(&holders) {
                    self.walked.insert(*pfn, holders);
                } else {
                    todo.push((slot.clone(), *pfn));
                }
            }
        }
        // One walk covers a large folio: a folio's other pages are not in `todo`,
        // except where a part of it is mapped nowhere.
        let batched = self.findpages(&todo)?;
        for ((slot, pfn), walk) in todo.iter().zip(batched) {
            if folios.iter().any(|f| f.contains(pfn)) {
                continue;
            }
            let large = match walk {
                Ok(reply) => self.judge_walk(n, step, slot, &truth, reply, false)?,
                Err(refused) => {
                    self.fail(n, step, &refused);
                    None
                }
            };
            match large {
                Some(folio) => folios.push(folio),
                None => {
                    self.walked.insert(*pfn, truth.holders(*pfn));
                }
            }
        }
        let mut line = format!("check all (step {n}): {} pages in {} slots", seen.len(), slots.len());
        if !truth.swapped.is_empty() {
            let entries: BTreeSet<u64> = truth.swapped.values().copied().collect();
            line.push_str(&format!(", {} swap entries in {} slots", entries.len(), truth.swapped.len()));
        }
        self.outcome.checks.push(line);
        Ok(())
    }
}

/// Trigger classes of migrating a range, read before it moves: how many processes
/// map each page, and whether it is part of a large folio.
fn migration_triggers(before: &Truth, proc: &str, map: &str, page: u64, count: u64) -> Vec<String> {
    let mut classes = Vec::new();
    let held: BTreeMap<Slot, u64> = before.slots().into_iter().collect();
    let mut seen = BTreeSet::new();
    for p in page..page + count {
        let Some(&pfn) = held.get(&(proc.to_string(), map.to_string(), p)) else { continue };
        if !seen.insert(pfn) {
            continue;
        }
        let mappers: BTreeSet<String> = before.holders(pfn).into_iter().map(|s| s.0).collect();
        classes.push(triggers::of_migration(mappers.len(), before.large.contains(&pfn)).to_string());
    }
    classes
}

/// Slots per `findpages` request: keeps the request line well under the agent's limit.
const FINDPAGES_BATCH: usize = 256;

/// errno of MAP_FIXED_NOREPLACE over a taken range.
const EEXIST: i32 = 17;

impl Run<'_> {
    /// `findpage` of every slot, a batch of them per request (one round trip to the
    /// guest costs about as much as a walk): per slot the reply a `findpage` would have
    /// given, or the refusal (errno and msg) it would have got.
    fn findpages(&mut self, slots: &[(Slot, u64)]) -> Result<Vec<Result<Reply, Reply>>, Fault> {
        let mut out = Vec::with_capacity(slots.len());
        for chunk in slots.chunks(FINDPAGES_BATCH) {
            let base = self.guest.reserve_ids(chunk.len() as u64);
            let wire = request::findpages(base, chunk.iter().map(|(slot, _)| slot));
            let reply = self.guest.request(wire.op.name(), &wire.args())?;
            if !reply.ok || reply.data.len() != chunk.len() {
                return Err(Fault::Protocol(format!("findpages failed: {:?}", reply.fields)));
            }
            let mut records = dmesg::records_by_req(&reply.kmsg);
            for (k, mut fields) in reply.data.into_iter().enumerate() {
                let id = base + k as u64;
                if fields.remove("k").and_then(|v| v.parse::<usize>().ok()) != Some(k) {
                    return Err(Fault::Protocol(format!("findpages: slot {k} answered out of order")));
                }
                let kmsg = records.remove(&id).unwrap_or_default();
                out.push(if let Some(errno) = fields.remove("err") {
                    let mut f = BTreeMap::from([("errno".to_string(), errno)]);
                    f.extend(fields.remove("msg").map(|m| ("msg".to_string(), m)));
                    Err(Reply { id, ok: false, fields: f, data: vec![], kmsg })
                } else {
                    Ok(Reply { id, ok: true, fields, data: vec![], kmsg })
                });
            }
        }
        Ok(out)
    }
}

/// Steps that change no VMA, process or page placement beyond the pages they touch
/// (which pagemap then shows changed).
fn only_touches_pages(step: &Step) -> bool {
    matches!(
        step,
        Step::Write(_) | Step::Read(_) | Step::Findpage(_) | Step::Findtask(_) | Step::Check(_) | Step::Poke(_)
    )
}

fn findpage_request((proc, map, page): &Slot) -> Wire {
    Request::Findpage { proc: proc.clone(), name: map.clone(), page: *page }.wire()
}

fn walked(reply: &Reply) -> Walked {
    let walk = dmesg::walk_in_records(&reply.kmsg, reply.id);
    let kpagecount = reply.get("kpagecount").and_then(|k| k.parse().ok());
    Walked { walk, pfn: reply_pfn(reply), kpagecount }
}

/// The pfn a findpage reply names, if the page is present.
fn reply_pfn(reply: &Reply) -> Option<u64> {
    reply.get("pfn").and_then(|p| u64::from_str_radix(p.trim_start_matches("0x"), 16).ok()).filter(|p| *p != 0)
}

fn flags_text(v: &VmaLine) -> String {
    if v.anon_vma {
        format!("{} anon_vma", v.prot)
    } else {
        v.prot.clone()
    }
}

/// Label a findpage walk: processes and slots, never pids or addresses.
pub fn labelled(walk: &Walk, truth: &Truth, proc: &str, at: &str) -> Findpage {
    let page = walk.page.clone();
    let mut mapped = BTreeSet::new();
    let mut visited = BTreeSet::new();
    let mut vmas = Vec::new();
    for v in &walk.vmas {
        let who = truth.label(v.pid).map(str::to_string).unwrap_or_else(|| "?".into());
        // A VMA visited without an address for the page (a large folio straddling a
        // split) is named by the mappings it covers.
        let what = match v.addr {
            Some(a) => truth.locate(v.pid, a).map(|(_, m, i)| format!("{m}[{i}]")),
            None => covered_names(v, truth),
        }
        .unwrap_or_else(|| "?".into());
        match v.state {
            VmaState::Mapped => {
                mapped.insert(who.clone());
            }
            VmaState::Visited => {
                visited.insert(who.clone());
            }
            VmaState::Listed => {}
        }
        vmas.push(VmaLabel { proc: who, at: what, flags: flags_text(v), state: v.state });
    }
    // Sorted as the lines they print as, so snapshots keep their order.
    vmas.sort_by_cached_key(VmaLabel::to_string);
    Findpage {
        at: at.to_string(),
        proc: proc.to_string(),
        kind: page.as_ref().map(|p| p.kind.clone()).unwrap_or_else(|| "none".into()),
        order: page.as_ref().map(|p| p.order).unwrap_or(0),
        mapcount: page.as_ref().map(|p| p.mapcount).unwrap_or(0),
        mapped_by: mapped.into_iter().collect(),
        visited_not_mapped: visited.into_iter().collect(),
        vmas,
        mcsem: page.map(|p| p.mcsem).unwrap_or_default(),
    }
}

/// The named mappings (and page ranges) a VMA covers, e.g. `a[0..2]+b[0]`.
fn covered_names(v: &VmaLine, truth: &Truth) -> Option<String> {
    let proc = truth.procs.iter().find(|p| p.pid == v.pid);
    let mut names = Vec::new();
    if let Some(p) = proc {
        for m in &p.maps {
            let size = m.pfns.len() as u64 * truth.page_size;
            let (lo, hi) = (m.addr.max(v.start), (m.addr + size).min(v.end));
            if lo < hi {
                let first = (lo - m.addr) / truth.page_size;
                let last = (hi - m.addr) / truth.page_size - 1;
                names.push(if first == last {
                    format!("{}[{first}]", m.name)
                } else {
                    format!("{}[{first}..{last}]", m.name)
                });
            }
        }
    }
    (!names.is_empty()).then(|| names.join("+"))
}

/// A findtask VMA line with labels: the named mappings it covers, else what backs it.
fn task_vma_line(v: &VmaLine, truth: &Truth) -> Option<String> {
    let what = if let Some(names) = covered_names(v, truth) {
        names
    } else if let Some(f) = &v.file {
        // Name the agent's own binary by role, not by path.
        let base = f.rsplit('/').next().unwrap_or(f);
        if base == "init" {
            "[agent]".to_string()
        } else {
            base.to_string()
        }
    } else {
        match v.ops.as_deref() {
            Some(ops) if ops.contains("special_mapping") || ops.contains("vdso") => "[special]".to_string(),
            _ if v.flags & 0x100 != 0 => "[stack]".to_string(),
            _ => "[anon]".to_string(),
        }
    };
    Some(format!("{what} {}", flags_text(v)))
}

#[cfg(test)]
mod tests;
