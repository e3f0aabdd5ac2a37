//! `rmapcheck replay --step`: plays a scenario through the runner one step at a time
//! and, after each step, takes the truth and walks every page the step touched, so the
//! first step at which an oracle disagrees shows, not only the step that checked.
//!
//! Architecture invariant: replay adds looking, never doing. It plays the runner's own
//! steps (`runner::run_observed`); its extra requests (pagemap, findpage) change no
//! mapping, so the outcome's problems are those `rmapcheck run` finds.

use crate::check::model::Slot;
use crate::check::oracle::{self, Check, Problem, Truth};
use crate::check::problem::ProblemKind;
use crate::report::replay::{MapView, PageView, Replay, StepView};
use crate::run::runner::errored;
use crate::run::runner::{self, Flow, Session};
use crate::scenario::{self, Loaded, Step};
use crate::vm::agent::Agent;
use crate::vm::guest::Fault;

/// At most this many pages are walked after one step (a fork of a big process).
pub const MAX_PAGES_PER_STEP: usize = 16;

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Play on after the first failing step.
    pub keep_going: bool,
}

/// Every mapping in `truth`, PFNs in hex.
pub fn maps(truth: &Truth) -> Vec<MapView> {
    let mut out = Vec::new();
    for p in &truth.procs {
        for m in &p.maps {
            out.push(MapView {
                proc: p.label.clone(),
                name: m.name.clone(),
                pfns: m.pfns.iter().map(|f| f.map(|f| format!("0x{f:x}"))).collect(),
            });
        }
    }
    out
}

/// `proc name` of every mapping that appeared, went, or changed between two views.
pub fn changed(before: &[MapView], after: &[MapView]) -> Vec<String> {
    let key = |m: &MapView| format!("{} {}", m.proc, m.name);
    let mut out: Vec<String> = after
        .iter()
        .filter(|m| !before.iter().any(|b| b.proc == m.proc && b.name == m.name && b.pfns == m.pfns))
        .map(key)
        .collect();
    out.extend(before.iter().filter(|b| !after.iter().any(|m| m.proc == b.proc && m.name == b.name)).map(key));
    out
}

/// The slots a step touched, as far as they exist now: the pages it names, every page
/// of the process it forked, or every page for `check`, `ksm`, `compact` and `reclaim`.
pub fn touched(step: &Step, truth: &Truth) -> Vec<Slot> {
    let present = truth.slots();
    // The pages a step names in its map as the map is now (`Step::pages_in`, as its
    // request names them), cut at the map's end.
    let named = |proc: &str, map: &str| -> Vec<Slot> {
        let size = truth
            .procs
            .iter()
            .find(|p| p.label == proc)
            .and_then(|p| p.maps.iter().find(|m| m.name == map))
            .map_or(0, |m| m.pfns.len() as u64);
        let Some((first, count)) = step.pages_in(size) else { return Vec::new() };
        (first..first.saturating_add(count).min(size)).map(|i| (proc.to_string(), map.to_string(), i)).collect()
    };
    let mut out = match step {
        Step::Findpage(r) | Step::Poke(r) => vec![(r.proc.clone(), r.map.clone(), r.page)],
        Step::Fork(f) => present.iter().filter(|(s, _)| s.0 == f.proc).map(|(s, _)| s.clone()).collect(),
        Step::Check(_) | Step::Ksm(_) | Step::Compact(_) | Step::Reclaim(_) => {
            present.iter().map(|(s, _)| s.clone()).collect()
        }
        // A placed move: the pages where they are now (a range moved back is in the
        // map it came from, which the step does not name).
        Step::Mremap(x) if x.placed() => match x.result_name() {
            Some(name) => {
                present.iter().filter(|(s, _)| s.0 == x.proc && s.1 == name).map(|(s, _)| s.clone()).collect()
            }
            None => Vec::new(),
        },
        _ => match (step.proc(), step.map()) {
            (Some(proc), Some(map)) => named(proc, map),
            _ => Vec::new(),
        },
    };
    // One slot per physical page is enough for the walk; keep absent slots too.
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|s| {
        let pfn = present.iter().find(|(p, _)| p == s).map(|(_, f)| *f);
        pfn.is_none_or(|f| seen.insert(f))
    });
    out.truncate(MAX_PAGES_PER_STEP);
    out
}

/// What the session has already reported, to tell what a step added.
#[derive(Default)]
pub struct Seen {
    problems: usize,
    notes: usize,
    splats: usize,
    maps: Vec<MapView>,
}

/// Look at the guest after step `n`: the maps, the touched pages, what is new.
pub fn view(session: &mut Session, n: usize, step: &Step, seen: &mut Seen) -> Result<StepView, Fault> {
    let truth = session.truth()?;
    let maps = maps(&truth);
    let mut pages = Vec::new();
    // O4 fails a run like any other check, but replay shows it in a list of its own.
    let (mut model, mut problems): (Vec<Problem>, Vec<Problem>) =
        session.outcome().problems[seen.problems..].iter().cloned().partition(|p| p.check == Check::O4);
    for s in session.splats().iter().skip(seen.splats) {
        problems.push(Problem::new(ProblemKind::Splat { line: s.line.clone(), title: s.title.clone() }));
    }
    for slot in touched(step, &truth) {
        let pfn = truth.pfn_of(&slot);
        let inspected = match pfn {
            Some(_) => session.inspect(&slot)?,
            None => None,
        };
        let m = session.model();
        let (predicted, why) = match m.unpredictable.get(&slot) {
            Some(why) => (None, why.clone()),
            None => (
                Some(m.sharers(&slot.0, &slot.1, slot.2).iter().map(oracle::slot_text).collect()),
                m.why(&slot).to_string(),
            ),
        };
        let own = inspected.as_ref().map(|i| i.problems.clone()).unwrap_or_default();
        for p in &own {
            let list = if p.check == Check::O4 { &mut model } else { &mut problems };
            if !list.contains(p) {
                list.push(p.clone());
            }
        }
        pages.push(PageView {
            slot: oracle::slot_text(&slot),
            pfn: pfn.map(|f| format!("0x{f:x}")),
            holders: pfn.map(|f| truth.holders(f).iter().map(oracle::slot_text).collect()).unwrap_or_default(),
            walk: inspected.map(|i| i.findpage),
            predicted,
            why,
            problems: own,
        });
    }
    let outcome = session.outcome();
    let notes = outcome.notes[seen.notes..].to_vec();
    let view = StepView {
        n,
        step: scenario::step_yaml(step),
        changed: changed(&seen.maps, &maps),
        maps,
        pages,
        problems,
        model,
        notes,
    };
    seen.problems = outcome.problems.len();
    seen.notes = outcome.notes.len();
    seen.splats = session.splats().len();
    seen.maps = view.maps.clone();
    Ok(view)
}

/// Replay `loaded` on `guest` a step at a time; stop after the first failing step
/// unless `opts.keep_going`. The run still ends with its teardown and checks. A guest
/// that dies or hangs fails the step it was playing, and its fault comes back too.
pub fn replay(guest: &mut dyn Agent, loaded: &Loaded, opts: Options) -> (Replay, Option<Fault>) {
    let mut steps: Vec<StepView> = Vec::new();
    let mut fault = None;
    let mut seen = Seen::default();
    let played = runner::run_observed(guest, loaded, &mut |session| {
        let n = session.steps;
        let step = &loaded.scenario.steps[n - 1];
        match view(session, n, step, &mut seen) {
            Ok(v) => {
                let stop = v.fails() && !opts.keep_going;
                steps.push(v);
                if stop {
                    Flow::Stop
                } else {
                    Flow::Continue
                }
            }
            Err(f) => {
                fault = Some(f);
                Flow::Stop
            }
        }
    });
    let outcome = match (played, fault.take()) {
        (Ok(o), None) => o,
        (Ok(_), Some(f)) | (Err(f), _) => {
            let o = errored(loaded, guest.info(), &f);
            // The step being played or looked at; none when the teardown failed.
            let n = steps.len() + 1;
            if let Some(step) = loaded.scenario.steps.get(n - 1) {
                steps.push(fault_step(n, step, &f, seen.maps.clone()));
            }
            fault = Some(f);
            o
        }
    };
    let replay = Replay {
        scenario: outcome.scenario.clone(),
        file: outcome.file.clone(),
        kernel: outcome.kernel.clone(),
        release: outcome.release.clone(),
        total_steps: loaded.scenario.steps.len(),
        played: steps.len(),
        first_disagreement: steps.iter().find(|s| s.disagrees()).map(|s| s.n),
        first_failure: steps.iter().find(|s| s.fails()).map(|s| s.n),
        steps,
        outcome,
    };
    (replay, fault)
}

/// Step `n` as far as a guest that failed during it lets us know it: the maps from
/// before, and the fault titled by its first splat.
fn fault_step(n: usize, step: &Step, f: &Fault, maps: Vec<MapView>) -> StepView {
    let what = match f.splat() {
        Some(s) => s.title.clone(),
        None => f.to_string().lines().next().unwrap_or_default().to_string(),
    };
    StepView {
        n,
        step: scenario::step_yaml(step),
        maps,
        changed: Vec::new(),
        pages: Vec::new(),
        problems: vec![Problem::new(ProblemKind::GuestFault {
            cause: f.cause().to_string(),
            what,
            by_splat: f.splat().is_some(),
        })],
        model: Vec::new(),
        notes: vec!["the guest failed during this step; the maps are from before it".into()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::oracle::{MapPages, ProcPages};

    fn truth() -> Truth {
        let map = |name: &str, pfns: &[Option<u64>]| MapPages { name: name.into(), addr: 0x1000, pfns: pfns.to_vec() };
        Truth {
            procs: vec![
                ProcPages { label: "p0".into(), pid: 10, maps: vec![map("a", &[Some(5), Some(6), None])] },
                ProcPages { label: "c1".into(), pid: 11, maps: vec![map("a", &[Some(5), Some(7), None])] },
            ],
            page_size: 4096,
            swapped: Default::default(),
            exclusive: Default::default(),
            tails: Default::default(),
            large: Default::default(),
            vmas: Default::default(),
        }
    }

    fn step(yaml: &str) -> Step {
        let text = format!("name: t\nabout: t\nsteps:\n  - mmap: {{ name: a, pages: 3, backing: anon, share: private }}\n  - fork: {{ child: c1 }}\n  - {yaml}\n");
        scenario::parse(std::path::Path::new("t.yaml"), &text).unwrap().steps.pop().unwrap()
    }

    fn slots(v: Vec<Slot>) -> Vec<String> {
        v.iter().map(oracle::slot_text).collect()
    }

    #[test]
    fn a_step_touches_its_pages_one_per_frame() {
        let t = truth();
        assert_eq!(slots(touched(&step("write: { map: a, page: 1, pages: 2 }"), &t)), ["p0 a[1]", "p0 a[2]"]);
        assert_eq!(slots(touched(&step("fork: { proc: c1, child: c2 }"), &t)), ["c1 a[0]", "c1 a[1]"]);
        // p0 a[0] and c1 a[0] are one frame: walked once.
        assert_eq!(slots(touched(&step("check: all"), &t)), ["p0 a[0]", "p0 a[1]", "c1 a[1]"]);
        assert_eq!(slots(touched(&step("munmap: { map: a }"), &t)), ["p0 a[0]", "p0 a[1]", "p0 a[2]"]);
        assert!(touched(&step("exit: { proc: c1 }"), &t).is_empty());
        // A split of one page names that page alone, as its request does.
        assert_eq!(slots(touched(&step("split: { map: a, page: 1 }"), &t)), ["p0 a[1]"]);
    }

    #[test]
    fn changes_are_new_different_and_gone_mappings() {
        let before = maps(&truth());
        let mut after = before.clone();
        after[0].pfns[2] = Some("0x9".into());
        after.remove(1);
        after.push(MapView { proc: "p0".into(), name: "b".into(), pfns: vec![None] });
        assert_eq!(changed(&before, &after), ["p0 a", "p0 b", "c1 a"]);
        assert!(changed(&before, &before).is_empty());
    }

    #[test]
    fn replay_stops_at_the_first_failing_step_and_still_tears_down() {
        use crate::vm::fake::{err, ok, FakeAgent};
        use crate::vm::guest::Info;
        let text = "name: t\nabout: t\nsteps:\n  - mmap: { name: a, pages: 1, backing: anon, share: private }\n  - write: { map: a, page: 0 }\n  - fork: { child: c1 }\n";
        let loaded =
            Loaded { path: "t.yaml".into(), scenario: scenario::parse(std::path::Path::new("t.yaml"), text).unwrap() };
        let info =
            Info { key: "6.12".into(), release: "6.12.117+deb12-arm64".into(), page_size: 4096, ..Info::default() };
        // A kernel with no pages to show (empty pagemap reads) that refuses every write.
        let mut fake = FakeAgent::answering(info, |op, _| match op {
            "write" => err(14, "bad_address"),
            "tainted" => ok("value=0", &[]),
            _ => ok("", &[]),
        });
        let (replay, fault) = replay(&mut fake, &loaded, Options { keep_going: false });
        assert!(fault.is_none());
        assert_eq!((replay.played, replay.first_failure), (2, Some(2)));
        assert!(!fake.ops().contains(&"fork"), "{:?}", fake.ops());
        assert_eq!(fake.ops().last(), Some(&"tainted"));
        assert!(fake.ops().contains(&"reset"), "{:?}", fake.ops());
    }
}
