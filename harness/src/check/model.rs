//! The host-side model of page sharing (oracle O4): from the scenario's steps alone it
//! predicts which (process, mapping, page) slots share one physical page.
//!
//! Architecture invariant: the model is a pure function of the steps; it never looks at
//! what the guest reported.

use crate::scenario::{Advice, Backing, Share, Step};
use std::collections::{BTreeMap, BTreeSet};

/// What a page slot holds, as the model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Frame {
    /// A private anonymous page (or a private COW copy of a file page).
    Anon(u64),
    /// The shared zero page.
    Zero,
    /// Page `1` of shared object `0` (a shmem object, memfd or file).
    Object(u64, u64),
}

/// A read fault on a file, memfd or shmem mapping also maps neighbouring pages that are
/// in the page cache (fault-around, `fault_around_bytes`, 64 KiB by default); write
/// faults and anonymous memory do not.
pub const FAULT_AROUND: &str = "fault-around: a read fault may also map cached neighbours";

/// A slot: `(process, mapping, page index)`.
pub type Slot = (String, String, u64);

#[derive(Debug, Clone)]
struct Map {
    share: Share,
    backing: Backing,
    object: Option<u64>,
    /// Page offset of this mapping into its object (changes on partial remaps).
    pages: Vec<Option<Frame>>,
    /// Whether the VMA has an anon_vma, which decides whether fork copies its PTEs.
    anon_vma: bool,
    dontfork: bool,
    wipeonfork: bool,
}

/// Why the model believes what it believes about a slot.
#[derive(Debug, Clone, Default)]
pub struct Model {
    procs: BTreeMap<String, BTreeMap<String, Map>>,
    next_id: u64,
    why: BTreeMap<Slot, String>,
    /// Slots whose sharing the model cannot predict (KSM, THP), with the reason.
    pub unpredictable: BTreeMap<Slot, String>,
    /// The process whose fault or COW created each private page.
    origins: BTreeMap<u64, String>,
}

impl Model {
    pub fn new() -> Model {
        let mut m = Model::default();
        m.procs.insert(crate::scenario::FIRST_PROC.into(), BTreeMap::new());
        m
    }

    fn fresh(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn holders(&self, frame: Frame) -> usize {
        self.procs
            .values()
            .flat_map(|maps| maps.values())
            .flat_map(|m| m.pages.iter())
            .filter(|f| **f == Some(frame))
            .count()
    }

    fn note(&mut self, proc: &str, map: &str, page: u64, why: &str) {
        self.why.insert((proc.into(), map.into(), page), why.into());
    }

    /// Apply one step.
    pub fn apply(&mut self, step: &Step) {
        match step {
            Step::Mmap(m) => {
                let object = (m.share == Share::Shared || m.backing != Backing::Anon && m.backing != Backing::DevZero)
                    .then(|| self.fresh());
                let map = Map {
                    share: m.share,
                    backing: m.backing,
                    object,
                    pages: vec![None; m.pages as usize],
                    anon_vma: false,
                    dontfork: false,
                    wipeonfork: false,
                };
                if m.huge == Some(true) {
                    for p in 0..m.pages {
                        self.unpredictable
                            .insert((m.proc.clone(), m.name.clone(), p), "THP: a huge page may back this range".into());
                    }
                }
                self.procs.entry(m.proc.clone()).or_default().insert(m.name.clone(), map);
            }
            Step::Write(a) | Step::Read(a) => {
                let write = matches!(step, Step::Write(_));
                for p in a.page..a.page + a.pages {
                    self.touch(&a.proc, &a.map, p, write);
                }
            }
            Step::Fork(f) => self.fork(&f.proc, &f.child),
            Step::Exit(p) => {
                self.procs.remove(&p.proc);
            }
            Step::Munmap(r) => {
                let Some(maps) = self.procs.get_mut(&r.proc) else { return };
                match r.page {
                    None => {
                        maps.remove(&r.map);
                    }
                    Some(page) => {
                        if let Some(m) = maps.get_mut(&r.map) {
                            for p in page..page + r.pages.unwrap_or(1) {
                                if let Some(slot) = m.pages.get_mut(p as usize) {
                                    *slot = None;
                                }
                            }
                        }
                    }
                }
            }
            Step::Madvise(x) => {
                let Some(m) = self.procs.get_mut(&x.proc).and_then(|maps| maps.get_mut(&x.map)) else { return };
                let end = x.pages.map(|n| x.page + n).unwrap_or(m.pages.len() as u64);
                match x.advice {
                    Advice::Dontneed => {
                        for p in x.page..end {
                            if let Some(slot) = m.pages.get_mut(p as usize) {
                                *slot = None;
                            }
                        }
                    }
                    Advice::Dontfork => m.dontfork = true,
                    Advice::Dofork => m.dontfork = false,
                    Advice::Wipeonfork => m.wipeonfork = true,
                    Advice::Keeponfork => m.wipeonfork = false,
                    Advice::Mergeable => {
                        for p in x.page..end {
                            self.unpredictable
                                .insert((x.proc.clone(), x.map.clone(), p), "KSM may merge identical pages".into());
                        }
                    }
                    Advice::Hugepage | Advice::Collapse => {
                        for p in x.page..end {
                            self.unpredictable.insert(
                                (x.proc.clone(), x.map.clone(), p),
                                "THP: a huge page may back this range".into(),
                            );
                        }
                    }
                    Advice::Pageout | Advice::Cold | Advice::Unmergeable | Advice::Nohugepage => {}
                }
            }
            Step::Mremap(x) => {
                let Some(m) = self.procs.get_mut(&x.proc).and_then(|maps| maps.get_mut(&x.map)) else { return };
                m.pages.resize(x.pages as usize, None);
            }
            Step::Mprotect(_) | Step::Findpage(_) | Step::Findtask(_) | Step::Check(_) | Step::Ksm(_) => {}
        }
    }

    fn touch(&mut self, proc: &str, name: &str, page: u64, write: bool) {
        let slot = (proc.to_string(), name.to_string(), page);
        if self.unpredictable.get(&slot).is_some_and(|why| why == FAULT_AROUND) {
            self.unpredictable.remove(&slot);
        }
        let Some(m) = self.procs.get(proc).and_then(|maps| maps.get(name)) else { return };
        if !write && m.object.is_some() {
            // The window is aligned by virtual address, which the model does not know.
            for (i, f) in m.pages.iter().enumerate() {
                if f.is_none() && i as u64 != page {
                    self.unpredictable.entry((proc.into(), name.into(), i as u64)).or_insert(FAULT_AROUND.into());
                }
            }
        }
        let current = m.pages.get(page as usize).copied().flatten();
        let (share, backing, object) = (m.share, m.backing, m.object);
        let (frame, why) = match (share, current, write) {
            (Share::Shared, _, _) => {
                let obj = object.unwrap_or(0);
                (Frame::Object(obj, page), "a shared mapping: every process that touches it maps the same page")
            }
            (Share::Private, Some(Frame::Anon(id)), true) => {
                if self.holders(Frame::Anon(id)) > 1 {
                    (Frame::Anon(self.fresh()), "a write to a page shared since fork copies it (COW)")
                } else {
                    (Frame::Anon(id), "a write by the only mapper reuses the page")
                }
            }
            (Share::Private, Some(f), false) => (f, "a read keeps the page it maps"),
            (Share::Private, _, true) => (Frame::Anon(self.fresh()), "a private write gets a page of its own"),
            (Share::Private, None, false) => match (backing, object) {
                (Backing::Anon | Backing::DevZero, _) => {
                    (Frame::Zero, "a read fault on private anon maps the zero page")
                }
                (_, Some(obj)) => {
                    (Frame::Object(obj, page), "a read of a private file mapping maps the page cache page")
                }
                (_, None) => (Frame::Zero, "a read fault maps the zero page"),
            },
        };
        if let Frame::Anon(id) = frame {
            self.origins.entry(id).or_insert_with(|| proc.to_string());
        }
        let m = self.procs.get_mut(proc).and_then(|maps| maps.get_mut(name)).expect("checked above");
        if matches!(frame, Frame::Anon(_)) {
            m.anon_vma = true;
        }
        m.pages[page as usize] = Some(frame);
        self.note(proc, name, page, why);
    }

    fn fork(&mut self, parent: &str, child: &str) {
        let Some(maps) = self.procs.get(parent).cloned() else { return };
        let mut inherited = BTreeMap::new();
        for (name, m) in maps {
            if m.dontfork {
                continue;
            }
            let mut c = m.clone();
            // fork copies PTEs only of VMAs with an anon_vma; others fault in on touch.
            if m.wipeonfork {
                c.pages = vec![None; m.pages.len()];
                c.anon_vma = false;
                c.wipeonfork = true;
            } else if !m.anon_vma || m.share == Share::Shared {
                c.pages = vec![None; m.pages.len()];
            } else {
                for (i, f) in c.pages.iter().enumerate() {
                    if f.is_some() {
                        self.why.insert(
                            (child.into(), name.clone(), i as u64),
                            format!("fork: {child} shares {parent}'s private pages until a write"),
                        );
                    }
                }
            }
            for p in 0..m.pages.len() as u64 {
                if let Some(r) = self.unpredictable.get(&(parent.to_string(), name.clone(), p)).cloned() {
                    self.unpredictable.insert((child.into(), name.clone(), p), r);
                }
            }
            inherited.insert(name, c);
        }
        self.procs.insert(child.into(), inherited);
    }

    /// The frame of a slot, `None` when nothing is mapped there.
    pub fn frame(&self, proc: &str, map: &str, page: u64) -> Option<Frame> {
        self.procs.get(proc)?.get(map)?.pages.get(page as usize).copied().flatten()
    }

    /// The process whose fault or COW created the private page of a slot: its anon_vma
    /// is that process's, so only it and its descendants can hold the page.
    pub fn origin(&self, proc: &str, map: &str, page: u64) -> Option<&str> {
        match self.frame(proc, map, page)? {
            Frame::Anon(id) => self.origins.get(&id).map(String::as_str),
            _ => None,
        }
    }

    /// Every slot holding the same frame as `(proc, map, page)`.
    pub fn sharers(&self, proc: &str, map: &str, page: u64) -> BTreeSet<Slot> {
        let Some(frame) = self.frame(proc, map, page) else { return BTreeSet::new() };
        self.slots().into_iter().filter(|(_, f)| *f == frame).map(|(s, _)| s).collect()
    }

    /// Every present slot and its frame.
    pub fn slots(&self) -> Vec<(Slot, Frame)> {
        let mut out = Vec::new();
        for (proc, maps) in &self.procs {
            for (name, m) in maps {
                for (i, f) in m.pages.iter().enumerate() {
                    if let Some(f) = f {
                        out.push(((proc.clone(), name.clone(), i as u64), *f));
                    }
                }
            }
        }
        out
    }

    /// Why the model holds its view of a slot.
    pub fn why(&self, slot: &Slot) -> &str {
        self.why.get(slot).map(String::as_str).unwrap_or("the page was never touched")
    }

    /// Live process labels.
    pub fn procs(&self) -> impl Iterator<Item = &String> {
        self.procs.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse;
    use std::path::Path;

    fn run(yaml: &str) -> Model {
        let s = parse(Path::new("t.yaml"), yaml).unwrap();
        let mut m = Model::new();
        for step in &s.steps {
            m.apply(step);
        }
        m
    }

    fn slot(p: &str, m: &str, i: u64) -> Slot {
        (p.into(), m.into(), i)
    }

    const SEED: &str = "name: t\nabout: t\nsteps:\n - mmap: {name: shm, pages: 4, backing: dev-zero, share: shared}\n - mmap: {name: stack, pages: 3, backing: anon, share: private}\n - write: {map: shm, page: 0}\n - write: {map: stack, page: 2}\n - fork: {child: c1}\n";

    #[test]
    fn fork_shares_private_pages_until_a_write() {
        let m = run(SEED);
        assert_eq!(m.sharers("p0", "stack", 2), [slot("c1", "stack", 2), slot("p0", "stack", 2)].into());
        // A shared mapping is not copied at fork: the child has no PTE until it touches.
        assert_eq!(m.sharers("p0", "shm", 0), [slot("p0", "shm", 0)].into());
        let m = run(&format!(
            "{SEED} - write: {{proc: c1, map: stack, page: 2}}\n - write: {{proc: c1, map: shm, page: 0}}\n"
        ));
        assert_eq!(m.sharers("p0", "stack", 2), [slot("p0", "stack", 2)].into());
        assert_eq!(m.sharers("p0", "shm", 0), [slot("c1", "shm", 0), slot("p0", "shm", 0)].into());
        assert!(m.why(&slot("c1", "stack", 2)).contains("COW"));
    }

    #[test]
    fn dontfork_and_wipeonfork() {
        let m = run("name: t\nabout: t\nsteps:\n - mmap: {name: a, pages: 1, backing: anon, share: private}\n - mmap: {name: b, pages: 1, backing: anon, share: private}\n - write: {map: a, page: 0}\n - write: {map: b, page: 0}\n - madvise: {map: a, advice: dontfork}\n - madvise: {map: b, advice: wipeonfork}\n - fork: {child: c1}\n");
        assert!(m.frame("c1", "a", 0).is_none());
        assert!(m.frame("c1", "b", 0).is_none());
        assert_eq!(m.sharers("p0", "b", 0).len(), 1);
    }

    #[test]
    fn reuse_after_the_sharer_exits() {
        let forked = run(SEED).frame("p0", "stack", 2);
        assert!(matches!(forked, Some(Frame::Anon(_))));
        // With c1 gone, p0 is the only mapper: its write keeps the very page.
        let m = run(&format!("{SEED} - exit: {{proc: c1}}\n - write: {{map: stack, page: 2}}\n"));
        assert_eq!(m.frame("p0", "stack", 2), forked);
        assert_eq!(m.sharers("p0", "stack", 2), [slot("p0", "stack", 2)].into());
        assert!(m.why(&slot("p0", "stack", 2)).contains("reuses"));
        // With c1 alive, the same write copies: p0 gets a new page, c1 keeps the old.
        let m = run(&format!("{SEED} - write: {{map: stack, page: 2}}\n"));
        assert_ne!(m.frame("p0", "stack", 2), forked);
        assert_eq!(m.frame("c1", "stack", 2), forked);
        assert_eq!(m.sharers("c1", "stack", 2), [slot("c1", "stack", 2)].into());
    }

    #[test]
    fn a_read_fault_on_a_file_mapping_may_map_its_neighbours() {
        let m = run("name: t\nabout: t\nsteps:\n - mmap: {name: a, pages: 3, backing: memfd, share: shared}\n - write: {map: a, page: 1}\n - fork: {child: c1}\n - read: {proc: c1, map: a, page: 0}\n");
        assert_eq!(m.unpredictable.get(&slot("c1", "a", 1)).map(String::as_str), Some(FAULT_AROUND));
        assert!(!m.unpredictable.contains_key(&slot("c1", "a", 0)));
        let m = run("name: t\nabout: t\nsteps:\n - mmap: {name: a, pages: 3, backing: memfd, share: shared}\n - read: {map: a, page: 0}\n - write: {map: a, page: 1}\n");
        assert!(!m.unpredictable.contains_key(&slot("p0", "a", 1)), "a touched page is predictable again");
        let m = run("name: t\nabout: t\nsteps:\n - mmap: {name: a, pages: 3, backing: anon, share: private}\n - read: {map: a, page: 0}\n");
        assert!(m.unpredictable.is_empty(), "anonymous memory has no fault-around");
    }

    #[test]
    fn read_fault_maps_the_zero_page() {
        let m = run("name: t\nabout: t\nsteps:\n - mmap: {name: a, pages: 2, backing: anon, share: private}\n - read: {map: a, page: 1}\n");
        assert_eq!(m.frame("p0", "a", 1), Some(Frame::Zero));
        assert_eq!(m.frame("p0", "a", 0), None);
    }
}
