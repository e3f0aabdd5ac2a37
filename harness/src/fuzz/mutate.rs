//! Mutation of corpus entries: insert, delete or change steps, splice two entries,
//! change map sizes and backings, and change the process tree. Every mutant is
//! repaired (steps the generator could not have made in the state before them are
//! dropped, which also drops what depended on a removed map or process), given the
//! campaign's `check: all` cadence, and must then pass the scenario validator, or it
//! is discarded.
//!
//! Architecture invariant: mutation is a pure function of its inputs and its random
//! stream; the kernel never influences it.

use super::generate::{GenConfig, Op, Sim};
use crate::scenario::count::pmd_pages;
use crate::scenario::{parse, to_yaml, Backing, CheckWhat, Scenario, Share, Step, MAX_PAGES};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::Path;

/// The mutations, by the name a mutant's `about` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Insert,
    Delete,
    Change,
    Splice,
    Resize,
    Rebacking,
    Reparent,
    Move,
    /// A motif (`generate`'s short sequences to rare situations) inserted.
    Motif,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Insert,
        Kind::Delete,
        Kind::Change,
        Kind::Splice,
        Kind::Resize,
        Kind::Rebacking,
        Kind::Reparent,
        Kind::Move,
        Kind::Motif,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Insert => "insert",
            Kind::Delete => "delete",
            Kind::Change => "change",
            Kind::Splice => "splice",
            Kind::Resize => "resize",
            Kind::Rebacking => "backing",
            Kind::Reparent => "reparent",
            Kind::Move => "move",
            Kind::Motif => "motif",
        }
    }

    /// Relative weight: small edits most.
    fn weight(self) -> u32 {
        match self {
            Kind::Insert => 6,
            Kind::Delete => 3,
            Kind::Change => 4,
            Kind::Splice => 2,
            Kind::Resize => 2,
            Kind::Rebacking => 2,
            Kind::Reparent => 2,
            Kind::Move => 2,
            Kind::Motif => 2,
        }
    }
}

/// The steps of `s` without its checks.
fn body(s: &Scenario) -> Vec<Step> {
    s.steps.iter().filter(|st| !matches!(st, Step::Check(_))).cloned().collect()
}

/// The state after `steps[..at]`, repairing as it goes, for picking a step at `at`.
fn sim_at<'a>(cfg: &'a GenConfig, s: &Scenario, steps: &[Step], at: usize, seed: u64) -> Sim<'a> {
    let mut sim = Sim::new(cfg, seed, &s.mthp);
    for st in &steps[..at.min(steps.len())] {
        sim.apply(st);
    }
    sim
}

/// Rename maps and forked processes of `steps` by `maps` and `procs`.
fn relabel(steps: &mut [Step], maps: &BTreeMap<String, String>, procs: &BTreeMap<String, String>) {
    for st in steps.iter_mut() {
        if let Some(p) = st.proc_mut() {
            if let Some(to) = procs.get(p.as_str()) {
                *p = to.clone();
            }
        }
        if let Some(m) = st.map_mut() {
            if let Some(to) = maps.get(m.as_str()) {
                *m = to.clone();
            }
        }
        if let Step::Fork(f) = st {
            if let Some(c) = procs.get(&f.child) {
                f.child = c.clone();
            }
        }
    }
}

/// Move `step` to process `to`.
fn set_proc(step: &mut Step, to: &str) {
    if let Some(p) = step.proc_mut() {
        *p = to.to_string();
    }
}

/// Apply one mutation of `kind` to `steps` (checks removed). `None` when it does not
/// apply (no mmap to resize, no fork to move).
fn apply(
    kind: Kind,
    cfg: &GenConfig,
    s: &Scenario,
    steps: &mut Vec<Step>,
    donor: Option<&Scenario>,
    rng: &mut ChaCha8Rng,
) -> Option<()> {
    let seed = rng.gen::<u64>();
    match kind {
        Kind::Insert => {
            let at = rng.gen_range(0..=steps.len());
            let mut sim = sim_at(cfg, s, steps, at, seed);
            let n = rng.gen_range(1..=3);
            let new: Vec<Step> = (0..n).filter_map(|_| sim.pick()).collect();
            if new.is_empty() {
                return None;
            }
            steps.splice(at..at, new);
        }
        Kind::Motif => {
            let at = rng.gen_range(0..=steps.len());
            let new = sim_at(cfg, s, steps, at, seed).motif();
            if new.is_empty() {
                return None;
            }
            steps.splice(at..at, new);
        }
        Kind::Delete => {
            if steps.is_empty() {
                return None;
            }
            let at = rng.gen_range(0..steps.len());
            let n = rng.gen_range(1..=3).min(steps.len() - at);
            steps.drain(at..at + n);
        }
        Kind::Change => {
            if steps.is_empty() {
                return None;
            }
            let at = rng.gen_range(0..steps.len());
            let mut sim = sim_at(cfg, s, steps, at, seed);
            steps[at] = sim.pick()?;
        }
        Kind::Splice => {
            let other = donor?;
            let at = rng.gen_range(0..=steps.len());
            let sim = sim_at(cfg, s, steps, steps.len(), seed);
            let (mut next_map, mut next_child) = sim.fresh_labels();
            // The donor's maps and children get labels the target never used; its p0
            // steps run in the target's p0.
            let mut maps = BTreeMap::new();
            let mut procs = BTreeMap::new();
            let mut theirs = body(other);
            for st in &theirs {
                match st {
                    Step::Mmap(m) if !maps.contains_key(&m.name) => {
                        maps.insert(m.name.clone(), format!("m{next_map}"));
                        next_map += 1;
                    }
                    Step::Fork(f) => {
                        procs.insert(f.child.clone(), format!("c{next_child}"));
                        next_child += 1;
                    }
                    _ => {}
                }
            }
            relabel(&mut theirs, &maps, &procs);
            let from = rng.gen_range(0..theirs.len().max(1));
            steps.splice(at..at, theirs.into_iter().skip(from));
        }
        Kind::Resize => {
            let mmaps: Vec<usize> = (0..steps.len()).filter(|&i| matches!(steps[i], Step::Mmap(_))).collect();
            let i = *mmaps.choose(rng)?;
            let pmd = pmd_pages(cfg.page_size);
            let sizes = [1, 2, cfg.max_pages.max(1), pmd / 2, pmd, pmd + 8, 2 * pmd];
            if let Step::Mmap(m) = &mut steps[i] {
                m.pages = (*sizes.choose(rng)?).clamp(1, MAX_PAGES);
            }
        }
        Kind::Rebacking => {
            let mmaps: Vec<usize> = (0..steps.len()).filter(|&i| matches!(steps[i], Step::Mmap(_))).collect();
            let i = *mmaps.choose(rng)?;
            if let Step::Mmap(m) = &mut steps[i] {
                m.backing =
                    *[Backing::Anon, Backing::DevZero, Backing::Memfd, Backing::File, Backing::Ext4].choose(rng)?;
                m.share = if rng.gen_bool(0.5) { Share::Private } else { Share::Shared };
                if m.backing == Backing::DevZero && m.share == Share::Private && m.huge == Some(true) {
                    m.huge = None;
                }
            }
        }
        Kind::Reparent => {
            // A fork from another live process (a deeper or flatter tree), or a new
            // fork or exit somewhere.
            let forks: Vec<usize> = (0..steps.len()).filter(|&i| matches!(steps[i], Step::Fork(_))).collect();
            if forks.is_empty() || rng.gen_bool(0.3) {
                let at = rng.gen_range(0..=steps.len());
                let mut sim = sim_at(cfg, s, steps, at, seed);
                let op = if rng.gen_bool(0.7) { Op::Fork } else { Op::Exit };
                let st = sim.make(op)?;
                steps.insert(at, st);
            } else {
                let i = *forks.choose(rng)?;
                let sim = sim_at(cfg, s, steps, i, seed);
                let parent = sim.live().choose(rng)?.clone();
                if let Step::Fork(f) = &mut steps[i] {
                    f.proc = parent;
                }
            }
        }
        Kind::Move => {
            // A step to another live process that has the same map (or any, for steps
            // without one).
            let movable: Vec<usize> =
                (0..steps.len()).filter(|&i| steps[i].proc().is_some() && !matches!(steps[i], Step::Mmap(_))).collect();
            let i = *movable.choose(rng)?;
            let sim = sim_at(cfg, s, steps, i, seed);
            let map = steps[i].map().map(str::to_string);
            let cur = steps[i].proc().unwrap_or_default().to_string();
            let to: Vec<String> = sim
                .live()
                .into_iter()
                .filter(|p| *p != cur && map.as_ref().is_none_or(|m| sim.has_map(p, m)))
                .collect();
            let to = to.choose(rng)?.clone();
            set_proc(&mut steps[i], &to);
        }
    }
    Some(())
}

/// Drop every step the generator could not have made where it stands, cap the length,
/// and put a `check: all` after every `check_every` steps and at the end.
pub fn repair(cfg: &GenConfig, s: &Scenario, steps: &[Step]) -> Vec<Step> {
    let mut sim = Sim::new(cfg, 0, &s.mthp);
    let kept: Vec<Step> = steps
        .iter()
        .filter(|st| !matches!(st, Step::Check(_)))
        .filter(|st| sim.apply(st))
        .take(cfg.steps.max(1) * 2)
        .cloned()
        .collect();
    let every = cfg.check_every.max(1);
    let mut out = Vec::new();
    for (i, st) in kept.into_iter().enumerate() {
        out.push(st);
        if (i + 1) % every == 0 {
            out.push(Step::Check(CheckWhat::All));
        }
    }
    if !matches!(out.last(), Some(Step::Check(_)) | None) {
        out.push(Step::Check(CheckWhat::All));
    }
    out
}

/// Whether the validator accepts `s`, as `rmapcheck run` would load it.
pub fn valid(s: &Scenario) -> bool {
    !s.steps.is_empty() && parse(Path::new("mutant.yaml"), &to_yaml(s, "")).is_ok()
}

/// A mutant of `parent` (with `donor` for splices): 1-3 mutations, repaired and
/// validated. `None` when no try gave a valid mutant that differs from the parent.
pub fn mutate(
    cfg: &GenConfig,
    parent: &Scenario,
    donor: Option<&Scenario>,
    rng: &mut ChaCha8Rng,
) -> Option<(Scenario, Vec<&'static str>)> {
    let before = to_yaml(parent, "");
    for _ in 0..8 {
        let mut steps = body(parent);
        let mut kinds = Vec::new();
        let n = 1 + usize::from(rng.gen_bool(0.4)) + usize::from(rng.gen_bool(0.2));
        for _ in 0..n {
            let kind = Kind::ALL.choose_weighted(rng, |k| k.weight()).ok().copied()?;
            if apply(kind, cfg, parent, &mut steps, donor, rng).is_some() {
                kinds.push(kind.name());
            }
        }
        if kinds.is_empty() {
            continue;
        }
        let mut m = parent.clone();
        m.expect.clear();
        m.steps = repair(cfg, parent, &steps);
        if valid(&m) && to_yaml(&m, "") != before {
            return Some((m, kinds));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::generate::generate;
    use rand::SeedableRng;

    #[test]
    fn generated_steps_are_steps_the_sim_accepts() {
        let cfg = GenConfig { steps: 60, ..GenConfig::default() };
        for run in 0..200 {
            let s = generate(&cfg, 4, run);
            let mut sim = Sim::new(&cfg, 0, &s.mthp);
            for (i, st) in s.steps.iter().enumerate() {
                assert!(sim.apply(st), "run {run} step {i} refused:\n{}", to_yaml(&s, ""));
            }
            assert_eq!(repair(&cfg, &s, &s.steps).len(), s.steps.len(), "repair keeps a generated run whole");
        }
    }

    #[test]
    fn mutants_are_valid_varied_and_deterministic() {
        let cfg = GenConfig::default();
        let mut kinds = std::collections::BTreeSet::new();
        let mut made = 0;
        for run in 0..150 {
            let a = generate(&cfg, 8, run);
            let b = generate(&cfg, 8, run + 1000);
            let mut rng = ChaCha8Rng::seed_from_u64(run);
            let Some((m, k)) = mutate(&cfg, &a, Some(&b), &mut rng) else { continue };
            made += 1;
            assert!(valid(&m), "{}", to_yaml(&m, ""));
            // Every step of a mutant is one the generator could have made there.
            let mut sim = Sim::new(&cfg, 0, &m.mthp);
            assert!(m.steps.iter().all(|st| sim.apply(st)), "{}", to_yaml(&m, ""));
            assert!(matches!(m.steps.last(), Some(Step::Check(_))));
            kinds.extend(k);
            let again = mutate(&cfg, &a, Some(&b), &mut ChaCha8Rng::seed_from_u64(run)).unwrap();
            assert_eq!(to_yaml(&again.0, ""), to_yaml(&m, ""), "same stream, same mutant");
        }
        assert!(made >= 140, "only {made} of 150 parents gave a mutant");
        for k in Kind::ALL {
            assert!(kinds.contains(k.name()), "{} never applied: {kinds:?}", k.name());
        }
    }

    #[test]
    fn repair_drops_what_cannot_run_and_what_depended_on_it() {
        let text = "name: t\nabout: t\nsteps:\n  - mmap: { name: a, pages: 2, backing: anon, share: private }\n  - mprotect: { map: a, page: 0, pages: 2, prot: r }\n  - write: { map: a, page: 0 }\n  - fork: { child: c1 }\n  - read: { proc: c1, map: a, page: 1 }\n  - exit: { proc: c1 }\n  - read: { proc: c1, map: a, page: 0 }\n";
        // Not valid as it stands (the validator refuses the last read), so read it raw.
        let s: Scenario = serde_yaml::from_str(text).unwrap();
        let cfg = GenConfig { check_every: 2, ..GenConfig::default() };
        let out = repair(&cfg, &s, &s.steps);
        let ops: Vec<&str> = out.iter().map(|st| st.op()).collect();
        // The write to a read-only page and the read by an exited process go; checks
        // come every two steps and at the end.
        assert_eq!(ops, ["mmap", "mprotect", "check", "fork", "read", "check", "exit", "check"]);
    }
}
