//! The symbolic world a scenario's steps make: which processes live and which ever
//! lived, and the named maps of each with their size and holes. [`World::apply`] is the
//! one place that knows each step's effect on names, processes and sizes, and its
//! limits; the validator, the generator and the runner all play steps through it.

use super::*;
use crate::ops;
use std::collections::{BTreeMap, BTreeSet};

/// No mapping may be larger than this many pages (64 MiB on 16k kernels, two THPs);
/// it also keeps one pagemap reply line under the protocol's 64 KiB.
pub const MAX_PAGES: u64 = 4096;
/// No scenario may have more steps than this.
pub const MAX_STEPS: usize = 10_000;
/// The fork cap, the one rule for processes: a scenario makes at most this many
/// processes in all, p0 and the exited ones included (a label is never used twice).
/// So at most this many live at once, which the agent's table holds.
pub const MAX_PROCS: usize = 64;
/// Named maps per process.
pub const MAX_MAPS: usize = 64;
/// A `reclaim` step asks for at most this many pages, and for this many without
/// `pages`: more than any guest has, so reclaim takes all it can (every page the world
/// could map).
pub const MAX_RECLAIM_PAGES: u64 = MAX_PROCS as u64 * MAX_MAPS as u64 * MAX_PAGES;

const _: () = assert!(MAX_PROCS <= ops::AGENT_MAX_PROCS);
const _: () = assert!(MAX_MAPS <= ops::AGENT_MAX_MAPS);
const _: () = assert!(MAX_PAGES <= ops::MAX_MAP_PAGES && MAX_PAGES <= ops::MAX_IO_PAGES);

/// One named map of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Map {
    /// Whether each page is still mapped (munmap can punch holes).
    present: Vec<bool>,
    /// MADV_DONTFORK: a fork leaves it behind.
    dontfork: bool,
}

impl Map {
    /// Its size in pages, holes included.
    pub fn pages(&self) -> u64 {
        self.present.len() as u64
    }

    /// Whether no page of it was unmapped.
    pub fn whole(&self) -> bool {
        self.present.iter().all(|p| *p)
    }
}

/// Why a step cannot be played here: each problem with the key of the step it is about
/// (`proc`, `map`, `page`, ...), so the validator can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepError(pub Vec<(&'static str, String)>);

/// The processes and maps the steps so far made.
#[derive(Debug, Clone)]
pub struct World {
    live: BTreeMap<String, BTreeMap<String, Map>>,
    /// Exited processes, with the number of the step that ended each.
    exited: BTreeMap<String, usize>,
    ever: BTreeSet<String>,
    /// Steps applied so far.
    steps: usize,
}

impl Default for World {
    fn default() -> World {
        World::new()
    }
}

/// Process and mapping labels travel to the agent, which takes 31 characters.
pub(crate) fn valid_label(s: &str) -> bool {
    !s.is_empty() && s.len() < ops::NAME_LEN && valid_label_chars(s)
}

pub(crate) fn valid_label_chars(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl Step {
    /// The pages `(first, count)` a step names in its map of `len` pages (`mremap`: the
    /// whole map it moves); `None` for steps that name no pages of a map.
    pub fn pages_in(&self, len: u64) -> Option<(u64, u64)> {
        Some(match self {
            Step::Munmap(r) | Step::Split(r) | Step::Munlock(r) => span(r.page, r.pages, len),
            Step::Migrate(x) => span(x.page, x.pages, len),
            Step::Mlock(x) => span(x.page, x.pages, len),
            Step::Mprotect(x) => (x.page, x.pages.unwrap_or(len.saturating_sub(x.page))),
            Step::Madvise(x) => (x.page, x.pages.unwrap_or(len.saturating_sub(x.page))),
            Step::Write(a) | Step::Read(a) => (a.page, a.pages),
            Step::Findpage(r) | Step::Poke(r) => (r.page, 1),
            Step::Mremap(_) => (0, len),
            _ => return None,
        })
    }
}

impl World {
    /// The world at the start of a scenario: `p0` alone, without maps.
    pub fn new() -> World {
        World {
            live: BTreeMap::from([(FIRST_PROC.to_string(), BTreeMap::new())]),
            exited: BTreeMap::new(),
            ever: BTreeSet::from([FIRST_PROC.to_string()]),
            steps: 0,
        }
    }

    /// The live processes, by label.
    pub fn live(&self) -> impl Iterator<Item = &str> {
        self.live.keys().map(String::as_str)
    }

    /// Whether a process of this label ever lived.
    pub fn ever(&self, proc: &str) -> bool {
        self.ever.contains(proc)
    }

    /// How many processes the steps made, p0 and exited ones included.
    pub fn made(&self) -> usize {
        self.ever.len()
    }

    /// A live process's map.
    pub fn map(&self, proc: &str, map: &str) -> Option<&Map> {
        self.live.get(proc)?.get(map)
    }

    /// The size of a live process's map in pages, 0 when there is none.
    pub fn size(&self, proc: &str, map: &str) -> u64 {
        self.map(proc, map).map_or(0, Map::pages)
    }

    /// Play one step. An error names every problem; the world then holds what the step
    /// would still have made (a map with a bad name is made, so later steps that use
    /// it are judged on their own).
    pub fn apply(&mut self, step: &Step) -> Result<(), StepError> {
        self.steps += 1;
        let mut out = Vec::new();
        self.play(step, &mut out);
        if out.is_empty() {
            Ok(())
        } else {
            Err(StepError(out))
        }
    }

    fn proc_mut(&mut self, name: &str, out: &mut Vec<(&'static str, String)>) -> Option<&mut BTreeMap<String, Map>> {
        if let Some(step) = self.exited.get(name) {
            out.push(("proc", format!("process '{name}' has exited (at step {step})")));
            return None;
        }
        if !self.live.contains_key(name) {
            out.push(("proc", format!("unknown process '{name}'")));
            return None;
        }
        self.live.get_mut(name)
    }

    fn map_mut(&mut self, proc: &str, map: &str, out: &mut Vec<(&'static str, String)>) -> Option<&mut Map> {
        let maps = self.proc_mut(proc, out)?;
        let found = maps.get_mut(map);
        if found.is_none() {
            out.push(("map", format!("unknown mapping '{map}' in process '{proc}'")));
        }
        found
    }

    /// The map a step names with the range it names checked: in the map and mapped.
    fn range_mut(&mut self, step: &Step, out: &mut Vec<(&'static str, String)>) -> Option<&mut Map> {
        let (proc, name) = (step.proc()?, step.map()?);
        let m = self.map_mut(proc, name, out)?;
        let (page, count) = step.pages_in(m.pages())?;
        let len = m.pages();
        if count == 0 {
            out.push(("pages", "a range of 0 pages".into()));
            return None;
        }
        if page >= len || page.saturating_add(count) > len {
            let end = page.saturating_add(count);
            out.push(("page", format!("pages {page}..{end} are out of range: '{name}' has {len} pages")));
            return None;
        }
        if let Some(hole) = (page..page + count).find(|&p| !m.present[p as usize]) {
            out.push(("page", format!("page {hole} of '{name}' was unmapped")));
            return None;
        }
        Some(m)
    }

    fn play(&mut self, step: &Step, out: &mut Vec<(&'static str, String)>) {
        match step {
            Step::Mmap(m) => {
                if !valid_label(&m.name) {
                    out.push(("name", format!("bad mapping name '{}'", m.name)));
                }
                if m.pages == 0 || m.pages > MAX_PAGES {
                    out.push(("pages", format!("{} pages is out of range 1..={MAX_PAGES}", m.pages)));
                    return;
                }
                if m.backing == Backing::DevZero && m.share == Share::Private && m.huge == Some(true) {
                    out.push(("huge", "a private /dev/zero mapping is plain anon; use backing: anon".into()));
                }
                let Some(maps) = self.proc_mut(&m.proc, out) else { return };
                if maps.contains_key(&m.name) {
                    out.push(("name", format!("duplicate mapping '{}' in process '{}'", m.name, m.proc)));
                    return;
                }
                if maps.len() >= MAX_MAPS {
                    out.push(("name", format!("more than {MAX_MAPS} mappings")));
                    return;
                }
                maps.insert(m.name.clone(), Map { present: vec![true; m.pages as usize], dontfork: false });
            }
            Step::Munmap(r) => {
                let Some(m) = self.range_mut(step, out) else { return };
                let (page, count) = step.pages_in(m.pages()).expect("munmap names pages");
                for p in page..page + count {
                    m.present[p as usize] = false;
                }
                if m.present.iter().all(|p| !p) {
                    self.live.get_mut(&r.proc).map(|maps| maps.remove(&r.map));
                }
            }
            Step::Madvise(x) => {
                let Some(m) = self.range_mut(step, out) else { return };
                match x.advice {
                    Advice::Dontfork => m.dontfork = true,
                    Advice::Dofork => m.dontfork = false,
                    _ => {}
                }
            }
            Step::Mremap(x) => {
                if x.pages == 0 || x.pages > MAX_PAGES {
                    out.push(("pages", format!("{} pages is out of range 1..={MAX_PAGES}", x.pages)));
                    return;
                }
                let Some(m) = self.map_mut(&x.proc, &x.map, out) else { return };
                if !m.whole() {
                    out.push(("map", format!("'{}' has unmapped holes; mremap needs one whole VMA", x.map)));
                    return;
                }
                if x.dontunmap && x.pages != m.pages() {
                    out.push(("pages", "MREMAP_DONTUNMAP cannot change the size".into()));
                    return;
                }
                m.present = vec![true; x.pages as usize];
            }
            Step::Mprotect(_)
            | Step::Write(_)
            | Step::Read(_)
            | Step::Findpage(_)
            | Step::Poke(_)
            | Step::Split(_)
            | Step::Munlock(_)
            | Step::Mlock(_) => {
                self.range_mut(step, out);
            }
            Step::Migrate(x) => {
                self.range_mut(step, out);
                if x.node.is_some_and(|n| n > 63) {
                    out.push(("node", "node must be 0..=63".into()));
                }
            }
            Step::Fork(f) => {
                if !valid_label(&f.child) {
                    out.push(("child", format!("bad process label '{}'", f.child)));
                    return;
                }
                if self.ever.contains(&f.child) {
                    out.push(("child", format!("duplicate process '{}'", f.child)));
                    return;
                }
                if self.ever.len() >= MAX_PROCS {
                    out.push(("child", format!("more than {MAX_PROCS} processes")));
                    return;
                }
                let Some(maps) = self.proc_mut(&f.proc, out) else { return };
                let inherited = maps.iter().filter(|(_, m)| !m.dontfork).map(|(k, v)| (k.clone(), v.clone())).collect();
                self.live.insert(f.child.clone(), inherited);
                self.ever.insert(f.child.clone());
            }
            Step::Exit(p) => {
                if self.proc_mut(&p.proc, out).is_some() {
                    self.live.remove(&p.proc);
                    self.exited.insert(p.proc.clone(), self.steps);
                }
            }
            Step::Findtask(p) | Step::Munlockall(p) => {
                self.proc_mut(&p.proc, out);
            }
            Step::Mlockall(Mlockall { proc, current, future, .. }) => {
                self.proc_mut(proc, out);
                if !current && !future {
                    out.push(("current", "mlockall needs current or future".into()));
                }
            }
            Step::Ksm(k) => {
                if k.timeout_ms.is_some_and(|t| t == 0 || t > 60_000) {
                    out.push(("timeout_ms", "timeout_ms must be 1..=60000".into()));
                }
            }
            Step::Reclaim(r) => {
                if r.pages.is_some_and(|p| p == 0 || p > MAX_RECLAIM_PAGES) {
                    out.push(("pages", format!("pages must be 1..={MAX_RECLAIM_PAGES}")));
                }
            }
            Step::Check(_) | Step::Compact(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(yaml: &str) -> Vec<Step> {
        serde_yaml::with::singleton_map_recursive::deserialize(serde_yaml::Deserializer::from_str(yaml)).unwrap()
    }

    #[test]
    fn a_fork_inherits_sizes_but_not_dontfork_maps() {
        let mut w = World::new();
        for s in steps(
            "- mmap: {name: a, pages: 4, backing: anon, share: private}\n\
             - mmap: {name: b, pages: 2, backing: anon, share: private}\n\
             - madvise: {map: b, advice: dontfork}\n\
             - mremap: {map: a, pages: 6}\n\
             - fork: {child: c1}\n",
        ) {
            w.apply(&s).unwrap();
        }
        assert_eq!(w.size("c1", "a"), 6);
        assert_eq!(w.map("c1", "b"), None);
        assert_eq!(w.size("p0", "b"), 2);
    }

    #[test]
    fn the_fork_cap_counts_exited_processes() {
        let mut w = World::new();
        for i in 1..MAX_PROCS {
            w.apply(&steps(&format!("- fork: {{child: c{i}}}"))[0]).unwrap();
            w.apply(&steps(&format!("- exit: {{proc: c{i}}}"))[0]).unwrap();
        }
        assert_eq!(w.made(), MAX_PROCS);
        assert_eq!(w.live().count(), 1);
        let err = w.apply(&steps("- fork: {child: late}")[0]).unwrap_err();
        assert_eq!(err, StepError(vec![("child", format!("more than {MAX_PROCS} processes"))]));
    }

    #[test]
    fn a_whole_munmap_frees_the_name_and_a_step_after_exit_says_when() {
        let mut w = World::new();
        for s in steps(
            "- mmap: {name: a, pages: 2, backing: anon, share: private}\n\
             - munmap: {map: a, page: 0}\n\
             - fork: {child: c1}\n\
             - exit: {proc: c1}\n",
        ) {
            w.apply(&s).unwrap();
        }
        assert_eq!(w.size("p0", "a"), 2);
        let err = w.apply(&steps("- read: {map: a, page: 0}")[0]).unwrap_err();
        assert_eq!(err, StepError(vec![("page", "page 0 of 'a' was unmapped".into())]));
        w.apply(&steps("- munmap: {map: a, page: 1}")[0]).unwrap();
        assert_eq!(w.map("p0", "a"), None);
        let err = w.apply(&steps("- findtask: {proc: c1}")[0]).unwrap_err();
        assert_eq!(err, StepError(vec![("proc", "process 'c1' has exited (at step 4)".into())]));
    }

    #[test]
    fn reclaim_asks_for_everything_by_default_and_refuses_zero() {
        let mut w = World::new();
        let reclaim = &steps("- reclaim: {}")[0];
        let wire = request::Request::from_step(reclaim, &w, 1).unwrap().wire();
        assert_eq!((wire.op.name(), wire.args()), ("reclaim", format!("pages={MAX_RECLAIM_PAGES}")));
        w.apply(reclaim).unwrap();
        let err = w.apply(&steps("- reclaim: {pages: 0}")[0]).unwrap_err();
        assert_eq!(err, StepError(vec![("pages", format!("pages must be 1..={MAX_RECLAIM_PAGES}"))]));
        assert!(w.apply(&steps("- reclaim: {pages: pmd}")[0]).is_ok());
    }
}
