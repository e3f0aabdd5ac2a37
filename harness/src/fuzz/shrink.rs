//! The shrinker: delta debugging over a failing scenario. It cuts whole processes (with
//! their fork subtrees) and whole mappings, folds children into their parents, then cuts
//! chunks of steps and simplifies what is left. A cut stays only when the result is still
//! a valid scenario and the caller's predicate (a re-run on a guest, in practice) says it
//! still fails the same way.
//!
//! Architecture invariant: the shrinker is pure; the predicate is its only contact with
//! the world, and it never sees an invalid scenario.

use crate::scenario::{parse, to_yaml, Scenario, Step};
use std::collections::{BTreeSet, HashSet};
use std::path::Path;

/// The result of a shrink.
#[derive(Debug, Clone)]
pub struct Shrunk {
    pub scenario: Scenario,
    /// How many candidates the predicate judged.
    pub tries: usize,
}

fn valid(s: &Scenario) -> bool {
    parse(Path::new("shrink.yaml"), &to_yaml(s, "")).is_ok()
}

struct Shrinker<'a> {
    still_fails: &'a mut dyn FnMut(&Scenario) -> bool,
    seen: HashSet<String>,
    tries: usize,
    budget: usize,
}

impl Shrinker<'_> {
    /// Whether `c` is valid, new, and still fails.
    fn holds(&mut self, c: &Scenario) -> bool {
        if self.tries >= self.budget || c.steps.is_empty() || !self.seen.insert(to_yaml(c, "")) || !valid(c) {
            return false;
        }
        self.tries += 1;
        (self.still_fails)(c)
    }

    fn without(cur: &Scenario, drop: impl Fn(usize, &Step) -> bool) -> Scenario {
        let mut c = cur.clone();
        c.steps = cur.steps.iter().enumerate().filter(|(i, s)| !drop(*i, s)).map(|(_, s)| s.clone()).collect();
        c
    }

    /// Cut each forked process with everything it and its descendants do.
    fn cut_procs(&mut self, cur: &mut Scenario) {
        let children: Vec<String> =
            cur.steps.iter().filter_map(|s| if let Step::Fork(f) = s { Some(f.child.clone()) } else { None }).collect();
        for label in children {
            let mut tree = BTreeSet::from([label.clone()]);
            for s in &cur.steps {
                if let Step::Fork(f) = s {
                    if tree.contains(&f.proc) {
                        tree.insert(f.child.clone());
                    }
                }
            }
            let c = Self::without(cur, |_, s| {
                s.proc().is_some_and(|p| tree.contains(p)) || matches!(s, Step::Fork(f) if tree.contains(&f.child))
            });
            if c.steps.len() < cur.steps.len() && self.holds(&c) {
                *cur = c;
            }
        }
    }

    /// Fold each forked process into its parent: drop the fork and let the parent do
    /// what the child did. This shortens fork chains that cutting cannot.
    fn fold_procs(&mut self, cur: &mut Scenario) {
        let forks: Vec<(String, String)> = cur
            .steps
            .iter()
            .filter_map(|s| if let Step::Fork(f) = s { Some((f.proc.clone(), f.child.clone())) } else { None })
            .collect();
        for (parent, child) in forks {
            let mut c = Self::without(cur, |_, s| matches!(s, Step::Fork(f) if f.child == child));
            for st in &mut c.steps {
                if let Some(p) = st.proc_mut().filter(|p| **p == child) {
                    *p = parent.clone();
                }
            }
            if self.holds(&c) {
                *cur = c;
            }
        }
    }

    /// Cut each mapping with every step that names it.
    fn cut_maps(&mut self, cur: &mut Scenario) {
        let names: Vec<String> =
            cur.steps.iter().filter_map(|s| if let Step::Mmap(m) = s { Some(m.name.clone()) } else { None }).collect();
        for name in names {
            let c = Self::without(cur, |_, s| s.map() == Some(name.as_str()));
            if c.steps.len() < cur.steps.len() && self.holds(&c) {
                *cur = c;
            }
        }
    }

    /// ddmin, complements only: cut chunks of steps, halving the chunk size down to 1.
    fn cut_chunks(&mut self, cur: &mut Scenario) {
        let mut chunk = cur.steps.len().div_ceil(2).max(1);
        loop {
            let mut start = 0;
            while start < cur.steps.len() {
                let c = Self::without(cur, |i, _| i >= start && i < start + chunk);
                if self.holds(&c) {
                    *cur = c;
                } else {
                    start += chunk;
                }
            }
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
    }

    /// Make single steps smaller: one page per access, smaller maps.
    fn simplify(&mut self, cur: &mut Scenario) {
        for i in 0..cur.steps.len() {
            let mut variants = Vec::new();
            match &cur.steps[i] {
                Step::Write(a) | Step::Read(a) if a.pages > 1 || a.value.is_some() => {
                    let mut s = cur.steps[i].clone();
                    if let Step::Write(b) | Step::Read(b) = &mut s {
                        b.pages = 1;
                        b.value = None;
                    }
                    variants.push(s);
                }
                Step::Mmap(m) if m.pages > 1 || m.huge.is_some() => {
                    for pages in [1, m.pages / 2] {
                        let mut s = m.clone();
                        s.pages = pages.max(1);
                        s.huge = None;
                        variants.push(Step::Mmap(s));
                    }
                }
                _ => {}
            }
            for v in variants {
                let mut c = cur.clone();
                c.steps[i] = v;
                if self.holds(&c) {
                    *cur = c;
                    break;
                }
            }
        }
    }
}

/// Shrink `failing` while `still_fails` holds, trying at most `budget` candidates.
pub fn shrink(failing: &Scenario, budget: usize, still_fails: &mut dyn FnMut(&Scenario) -> bool) -> Shrunk {
    let mut s = Shrinker { still_fails, seen: HashSet::new(), tries: 0, budget };
    let mut cur = failing.clone();
    s.seen.insert(to_yaml(&cur, ""));
    loop {
        let before = to_yaml(&cur, "");
        s.cut_procs(&mut cur);
        s.cut_maps(&mut cur);
        s.fold_procs(&mut cur);
        s.cut_chunks(&mut cur);
        s.simplify(&mut cur);
        if to_yaml(&cur, "") == before || s.tries >= s.budget {
            break;
        }
    }
    Shrunk { scenario: cur, tries: s.tries }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::model::{Frame, Model};
    use crate::fuzz::generate::{generate, GenConfig};
    use std::collections::BTreeMap;

    /// A stand-in bug: the model has one page shared by three or more slots (what the
    /// module's `misreport` parameter trips on).
    fn three_sharers(s: &Scenario) -> bool {
        let mut m = Model::new();
        for st in &s.steps {
            m.apply(st);
        }
        let mut count: BTreeMap<Frame, usize> = BTreeMap::new();
        for (_, f) in m.slots() {
            if f != Frame::Zero {
                *count.entry(f).or_default() += 1;
            }
        }
        count.values().any(|n| *n >= 3)
    }

    #[test]
    fn shrinks_generated_failures_to_the_core() {
        let cfg = GenConfig { steps: 60, ..GenConfig::default() };
        let mut shrunk = 0;
        for run in 0..60 {
            let s = generate(&cfg, 11, run);
            if !three_sharers(&s) {
                continue;
            }
            let mut pred = |c: &Scenario| {
                assert!(valid(c), "the predicate saw an invalid scenario");
                three_sharers(c)
            };
            let out = shrink(&s, 2000, &mut pred);
            assert!(three_sharers(&out.scenario));
            // mmap, write, fork, fork; or, for a shared map (fork copies no PTE of it),
            // mmap, two forks and a touch in each of three processes; one more when a
            // placed move is how a process reaches the page (deleting steps cannot
            // rewrite the touch through the moved map into one through the original).
            assert!(out.scenario.steps.len() <= 7, "run {run}:\n{}", to_yaml(&out.scenario, ""));
            shrunk += 1;
        }
        assert!(shrunk >= 5, "only {shrunk} generated sequences had three sharers");
    }

    #[test]
    fn a_shrunk_finding_keeps_the_placement_that_made_it_fail() {
        let text = "name: t\nabout: t\nsteps:\n  - mmap: { name: t, pages: 4, backing: anon, share: private, align: pmd-8 }\n  - mmap: { name: a, pages: 8, backing: anon, share: private }\n  - write: { map: a, page: 0, pages: 8 }\n  - mmap: { name: b, pages: 8, backing: anon, share: private, at: { after: t, gap: 2 } }\n  - write: { map: b, page: 0, pages: 8 }\n  - fork: { child: c1 }\n  - check: all\n";
        let s = parse(Path::new("t.yaml"), text).unwrap();
        // A stand-in for a bug that needs b placed after the aligned map t.
        let placed = |c: &Scenario| {
            c.steps
                .iter()
                .any(|st| matches!(st, Step::Mmap(m) if m.at.as_ref().is_some_and(|p| p.after.as_deref() == Some("t"))))
                && c.steps.iter().any(|st| matches!(st, Step::Mmap(m) if m.align.is_some()))
        };
        let out = shrink(&s, 1000, &mut |c| valid(c) && placed(c));
        let yaml = to_yaml(&out.scenario, "");
        assert_eq!(out.scenario.steps.len(), 2, "{yaml}");
        assert!(yaml.contains("align: pmd-8") && yaml.contains("after: \"t\"") && yaml.contains("gap: 2"), "{yaml}");
    }

    #[test]
    fn keeps_what_the_failure_needs_and_respects_the_budget() {
        let text = "name: t\nabout: t\nsteps:\n  - mmap: { name: a, pages: 4, backing: anon, share: private }\n  - mmap: { name: b, pages: 2, backing: memfd, share: shared }\n  - write: { map: a, page: 0, pages: 4 }\n  - fork: { child: c1 }\n  - write: { proc: c1, map: b, page: 1 }\n  - fork: { proc: c1, child: c2 }\n  - exit: { proc: c2 }\n  - fork: { child: c3 }\n  - check: all\n";
        let s = parse(Path::new("t.yaml"), text).unwrap();
        assert!(three_sharers(&s));
        let out = shrink(&s, 1000, &mut three_sharers);
        let yaml = to_yaml(&out.scenario, "");
        assert_eq!(out.scenario.steps.len(), 4, "{yaml}");
        assert!(yaml.contains("pages: 1"), "accesses and maps are simplified:\n{yaml}");
        let mut calls = 0;
        let out = shrink(&s, 3, &mut |c| {
            calls += 1;
            three_sharers(c)
        });
        assert_eq!((calls, out.tries), (3, 3));
    }
}
