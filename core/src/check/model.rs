//! The host-side model of page sharing and contents: from the scenario's steps alone it
//! predicts which (process, mapping, page) slots share one physical page (oracle O4),
//! and what every page holds (oracle O5).
//!
//! Architecture invariant: the model is a pure function of the steps; it never looks at
//! what the guest reported.

mod hugetlb;
mod layout;
mod uffd;

use crate::scenario::{
    span, Advice, Anchor, Backing, Mremap, Mthp, PinKind, Place, Prot, Remote, RemoteKind, Share, Step,
};
pub use layout::{Attrs, Semantics};
use layout::{Layout, ACCOUNT, ADDR_PGOFF, DONTFORK, HUGEPAGE, LOCKED, MERGEABLE, NOHUGEPAGE, WIPEONFORK};
use std::collections::{BTreeMap, BTreeSet};
pub use uffd::{UffdResult, EINVAL};

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

/// A slot as messages and snapshots show it: `c1 m3[2]`.
pub fn slot_text(s: &Slot) -> String {
    format!("{} {}[{}]", s.0, s.1, s.2)
}

/// The byte a write step fills its pages with (the request carries the same).
pub use crate::scenario::request::write_value;

/// What the model predicts a page holds. Writes fill whole pages, so one byte says it,
/// and a write without a `value` puts the page's index in its map over the first 8
/// bytes (the agent's `tag=1`), so a page that moves to another index shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bytes {
    /// Every byte of the page (after the tag, if any).
    pub value: u8,
    /// The page index in the first 8 bytes, little-endian.
    pub tag: Option<u64>,
    /// MADV_FREE: the kernel may have dropped the page, which then reads as zeros.
    pub may_be_zero: bool,
    /// A ptrace poke of a lazy-free page: the kernel may have dropped it before the
    /// poke faulted in a fresh zero page, so after the tag it may read as zeros.
    pub rest_may_be_zero: bool,
    /// The process and step of the write that stored `value`.
    pub by: Option<(String, usize)>,
}

impl Bytes {
    const ZERO: Bytes = Bytes { value: 0, tag: None, may_be_zero: false, rest_may_be_zero: false, by: None };
}

#[derive(Debug, Clone)]
struct Map {
    share: Share,
    backing: Backing,
    object: Option<u64>,
    /// What each page maps; page `i` is page `i` of the object.
    pages: Vec<Option<Frame>>,
    /// The VMAs under the pages, with their flags and anon_vmas.
    layout: Layout,
    /// Some of it is VM_LOCKED: growing it with mremap populates the new pages.
    locked: bool,
    /// The object page of its page 0 (a range moved out of a file map keeps its pages).
    pgoff: u64,
    /// Placed right next to another map (`at:`, `to:`): the kernel may merge their
    /// VMAs, so which of its pages fork copies may follow the neighbour's anon_vma.
    adjacent: bool,
    /// A range moved out with `as:`: the map and page it came from.
    origin: Option<(String, u64)>,
    /// Some of it was VM_LOCKED: with or without VM_LOCKONFAULT, which the model does
    /// not keep apart (and in the order munlockall's mlock_fixup() meets the VMAs), so
    /// where its VMAs split and merge again is not certain.
    lock_touched: bool,
}

/// Why the model holds its view of a slot: the rule of the last step that set it. O4
/// titles a mismatch by it (`Reason::title`), without the processes it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    NeverTouched,
    Shared,
    Cow,
    Reuse,
    Read,
    PrivateWrite,
    ZeroPage,
    PageCache,
    ReadZero,
    /// A fork's child shares its parent's private pages (`Why::fork` names them).
    Fork,
    /// fork copies a pinned exclusive anon page for the child at once.
    PinnedCopy,
    /// A read-only FOLL_PIN of a shared anon page unshares it first.
    PinUnshare,
    /// ftruncate unmapped the page: it lies past the file's new end.
    Truncated,
    /// A hole punch (fallocate, MADV_REMOVE) unmapped the file's page.
    Punched,
    HugetlbFault,
    UffdCopy,
    UffdZeropage,
    UffdMove,
}

impl Reason {
    fn text(self) -> &'static str {
        match self {
            Reason::NeverTouched => "the page was never touched",
            Reason::Shared => "a shared mapping: every process that touches it maps the same page",
            Reason::Cow => "a write to a page shared since fork copies it (COW)",
            Reason::Reuse => "a write by the only mapper reuses the page",
            Reason::Read => "a read keeps the page it maps",
            Reason::PrivateWrite => "a private write gets a page of its own",
            Reason::ZeroPage => "a read fault on private anon maps the zero page",
            Reason::PageCache => "a read of a private file mapping maps the page cache page",
            Reason::ReadZero => "a read fault maps the zero page",
            Reason::Fork => "fork: a child shares its parent's private pages until a write",
            Reason::PinnedCopy => "fork copies a pinned exclusive anon page for the child (copy_present_page)",
            Reason::PinUnshare => "a read-only pin of a shared anon page unshares it (FAULT_FLAG_UNSHARE)",
            Reason::Truncated => {
                "truncation unmaps every page past the file's end from every mapper, private COW copies too"
            }
            Reason::Punched => "a hole punch unmaps the file's pages from every mapper but keeps private COW copies",
            Reason::HugetlbFault => "a fault on private hugetlb memory gets a zeroed huge page of its own",
            Reason::UffdCopy => "UFFDIO_COPY maps a new exclusive anon page with the bytes",
            Reason::UffdZeropage => "UFFDIO_ZEROPAGE maps the zero page",
            Reason::UffdMove => "UFFDIO_MOVE moves the source's page here and empties the source",
        }
    }
}

/// The model's reason for one slot, with the processes a fork names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Why {
    pub reason: Reason,
    /// `(child, parent)` for `Reason::Fork`.
    pub fork: Option<(String, String)>,
}

impl Why {
    fn rule(reason: Reason) -> Why {
        Why { reason, fork: None }
    }

    /// The reason without the processes it names: what identifies an O4 failure.
    pub fn title(&self) -> &'static str {
        self.reason.text()
    }
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.fork {
            Some((child, parent)) => write!(f, "fork: {child} shares {parent}'s private pages until a write"),
            None => f.write_str(self.reason.text()),
        }
    }
}

/// What the model knows of one slot besides its frame: why it cannot predict it, why
/// it holds its view, and whether it may have been paged out.
type SlotFacts = (Option<String>, Option<Why>, bool);

/// Why the model believes what it believes about a slot.
#[derive(Debug, Clone, Default)]
pub struct Model {
    procs: BTreeMap<String, BTreeMap<String, Map>>,
    next_id: u64,
    why: BTreeMap<Slot, Why>,
    /// Slots whose sharing the model cannot predict (KSM, THP), with the reason.
    pub unpredictable: BTreeMap<Slot, String>,
    /// Slots MADV_PAGEOUT or reclaim may have swapped out (and a fork's child's copies): a page
    /// swapped in where the swap entry was shared gets the root anon_vma.
    pub paged_out: BTreeSet<Slot>,
    /// The scenario's mTHP settings let faults map large folios: anon, shmem.
    large: (bool, bool),
    /// Processes under mlockall(MCL_FUTURE): their new maps are populated at mmap.
    locked_future: BTreeSet<String>,
    /// Processes under mlockall(MCL_FUTURE), MCL_ONFAULT too: their new VMAs are
    /// VM_LOCKED.
    locked_vmas_future: BTreeSet<String>,
    /// What each frame holds; a frame absent here holds zeros.
    contents: BTreeMap<Frame, Bytes>,
    /// Each shared object's size in pages (i_size): a fault past it gets SIGBUS.
    sizes: BTreeMap<u64, u64>,
    /// Steps applied so far: the number of the step being applied.
    step: usize,
    /// How the kernel under test merges VMAs.
    sem: Semantics,
    /// The process whose fault or COW created each private page.
    origins: BTreeMap<u64, String>,
    /// The frames each process's pins of each kind hold, until `unpin` or its exit.
    pins: BTreeMap<(String, PinKind), Vec<Frame>>,
    /// Pages of one huge page (the PMD's) on the kernel's page size: what a hugetlb
    /// fault or COW takes.
    huge_pages: u64,
    /// Processes holding a range a whole-map MREMAP_DONTUNMAP left mapped, empty and
    /// nameless, wherever the map was (over another map's pages, too); forks inherit it.
    leftovers: BTreeSet<String>,
    /// Maps registered with their process's userfaultfd.
    uffd: BTreeMap<(String, String), crate::scenario::UffdMode>,
    /// Slots whose PTE has the uffd-wp bit.
    uffd_wp: BTreeSet<Slot>,
    /// Anon frames fork shared that no write has made exclusive again (not
    /// PageAnonExclusive): UFFDIO_MOVE refuses them.
    not_exclusive: BTreeSet<u64>,
}

const DONTUNMAP: &str = "MREMAP_DONTUNMAP: whether the emptied range keeps its anon_vma differs by kernel";
const MERGED: &str = "VMA merge: whether fork copies this PTE follows a placed neighbour's anon_vma";
const MTHP: &str = "mTHP: a fault may map a large folio over neighbouring pages";
const KSM_MAY_MERGE: &str = "KSM may merge identical pages";
const MLOCK: &str = "mlock populates the range (whether that breaks COW differs by kernel)";
const SWAP: &str = "swap: MADV_PAGEOUT may swap the page out, and swap-in may map it anew";
const RECLAIM: &str = "reclaim: memory.reclaim may swap or drop the page, and a fault may map it anew";
const LAZYFREE: &str = "MADV_FREE: the kernel may drop a clean lazy-free page";

impl Model {
    /// A model of the oldest semantics (6.1).
    pub fn new() -> Model {
        let mut m = Model {
            huge_pages: crate::scenario::count::pmd_pages(crate::scenario::count::page_size()),
            ..Model::default()
        };
        m.procs.insert(crate::scenario::FIRST_PROC.into(), BTreeMap::new());
        m
    }

    /// A model of a kernel with `page_size` pages: a hugetlb fault takes one PMD's pages.
    pub fn with_page_size(mut self, page_size: u64) -> Model {
        self.huge_pages = crate::scenario::count::pmd_pages(page_size);
        self
    }

    /// A model for a scenario with these mTHP settings: where a size is on without
    /// MADV_HUGEPAGE, faults may map large folios, which the model does not predict.
    pub fn with_mthp(mut self, mthp: &[Mthp]) -> Model {
        let on = |m: Option<crate::scenario::MthpMode>| m.is_some_and(|m| m.without_advice());
        self.large = (mthp.iter().any(|m| on(m.anon)), mthp.iter().any(|m| on(m.shmem)));
        self
    }

    /// Every page of every map of shared object `obj`, in every process.
    fn mark_object(&mut self, obj: u64, why: &str) {
        let maps: Vec<(String, String, u64)> = self
            .procs
            .iter()
            .flat_map(|(p, maps)| maps.iter().map(move |(n, m)| (p.clone(), n.clone(), m)))
            .filter(|(_, _, m)| m.object == Some(obj))
            .map(|(p, n, m)| (p, n, m.pages.len() as u64))
            .collect();
        for (proc, map, len) in maps {
            for p in 0..len {
                self.unpredictable.entry((proc.clone(), map.clone(), p)).or_insert_with(|| why.into());
            }
        }
    }

    fn mark(&mut self, proc: &str, map: &str, pages: std::ops::Range<u64>, why: &str) {
        for p in pages {
            self.unpredictable.insert((proc.into(), map.into(), p), why.into());
        }
    }

    /// Pages an mremap grew a map by lie in its last VMA, mergeable if that one is.
    fn mark_grown(&mut self, proc: &str, map: &str, pages: std::ops::Range<u64>) {
        if !pages.is_empty() && self.mergeable(proc, map, pages.start) {
            self.mark(proc, map, pages, KSM_MAY_MERGE);
        }
    }

    /// mlock's populate of `pages`: which pages it faults in is not predicted, but on a
    /// private writable VMA it write-faults them, so the VMA gets an anon_vma (and fork
    /// then copies its page tables).
    fn populate(&mut self, proc: &str, map: &str, pages: std::ops::Range<u64>) {
        self.mark(proc, map, pages.clone(), MLOCK);
        let mut fresh = self.ids();
        if let Some(m) = self.procs.get_mut(proc).and_then(|maps| maps.get_mut(map)) {
            if m.share == Share::Private {
                for i in pages {
                    let writable = m.layout.at(i as usize).is_some_and(|a| matches!(a.prot, Prot::Rw | Prot::Rwx));
                    if writable {
                        m.layout.prepare_anon(i as usize, &mut fresh);
                    }
                }
            }
        }
        self.next_id = fresh();
    }

    /// Set or clear VM_LOCKED on `pages` of a map: the VMAs split and merge as for
    /// any flag.
    fn lock_vmas(&mut self, proc: &str, map: &str, pages: std::ops::Range<u64>, on: bool) {
        let mut fresh = self.ids();
        let sem = self.sem;
        if let Some(m) = self.procs.get_mut(proc).and_then(|maps| maps.get_mut(map)) {
            m.lock_touched |= on;
            let range = pages.start as usize..pages.end as usize;
            m.layout.change(
                range,
                |a| a.flags = if on { a.flags | LOCKED } else { a.flags & !LOCKED },
                &mut fresh,
                sem,
            );
        }
        self.next_id = fresh();
    }

    /// Every map of a process with its length in pages.
    fn map_lens(&self, proc: &str) -> Vec<(String, u64)> {
        self.procs
            .get(proc)
            .map(|maps| maps.iter().map(|(n, m)| (n.clone(), m.pages.len() as u64)).collect())
            .unwrap_or_default()
    }

    fn map_len(&self, proc: &str, map: &str) -> u64 {
        self.procs.get(proc).and_then(|maps| maps.get(map)).map(|m| m.pages.len() as u64).unwrap_or(0)
    }

    /// A model of the kernel whose `uname -r` is `release`.
    pub fn for_release(release: &str) -> Model {
        let mut m = Model::new();
        m.sem.merge_faulted_into_unfaulted = crate::check::release_version(release) >= (6, 16);
        m.sem.old_vma_merge = crate::check::release_version(release) < (6, 12);
        m
    }

    fn fresh(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A source of fresh ids that does not borrow the model; store its next value back
    /// in `next_id` when done.
    fn ids(&self) -> impl FnMut() -> u64 {
        let mut n = self.next_id;
        move || {
            n += 1;
            n
        }
    }

    fn holders(&self, frame: Frame) -> usize {
        self.procs
            .values()
            .flat_map(|maps| maps.values())
            .flat_map(|m| m.pages.iter())
            .filter(|f| **f == Some(frame))
            .count()
    }

    fn note(&mut self, proc: &str, map: &str, page: u64, why: Reason) {
        self.why.insert((proc.into(), map.into(), page), Why::rule(why));
    }

    /// Apply one step.
    pub fn apply(&mut self, step: &Step) {
        self.step += 1;
        match step {
            Step::Mmap(m) => {
                let object = (m.share == Share::Shared || m.backing != Backing::Anon && m.backing != Backing::DevZero)
                    .then(|| self.fresh());
                if let Some(obj) = object {
                    self.sizes.insert(obj, m.pages);
                }
                let flags = match m.huge {
                    Some(true) => HUGEPAGE,
                    Some(false) => NOHUGEPAGE,
                    None => 0,
                };
                // mlock never sets VM_LOCKED on a hugetlb VMA (mmap_region() clears it),
                // but do_mmap() populates it whenever VM_LOCKED was asked for, onfault
                // or not.
                let hugetlb = m.backing.hugetlb();
                let lock_asked = m.locked || self.locked_vmas_future.contains(&m.proc);
                let locked = lock_asked && !hugetlb;
                let flags = if locked { flags | LOCKED } else { flags };
                let private_anon = m.share == Share::Private && matches!(m.backing, Backing::Anon | Backing::DevZero);
                let flags = if private_anon { flags | ACCOUNT } else { flags };
                let map = Map {
                    share: m.share,
                    backing: m.backing,
                    object,
                    pages: vec![None; m.pages as usize],
                    layout: Layout::new(m.pages as usize, self.fresh(), flags),
                    locked: !hugetlb && (m.locked || self.locked_future.contains(&m.proc)),
                    pgoff: 0,
                    adjacent: false,
                    origin: None,
                    lock_touched: locked,
                };
                let adjacent =
                    matches!(m.at.as_ref().map(Place::anchor), Some(Ok(Anchor::After(_, 0) | Anchor::Before(_, 0))));
                if m.huge == Some(true) {
                    for p in 0..m.pages {
                        self.unpredictable
                            .insert((m.proc.clone(), m.name.clone(), p), "THP: a huge page may back this range".into());
                    }
                }
                let anon = m.share == Share::Private && matches!(m.backing, Backing::Anon | Backing::DevZero);
                if (anon && self.large.0) || (!anon && self.large.1) {
                    self.mark(&m.proc, &m.name, 0..m.pages, MTHP);
                }
                let populated = m.locked || self.locked_future.contains(&m.proc) || hugetlb && lock_asked;
                self.procs.entry(m.proc.clone()).or_default().insert(m.name.clone(), map);
                if let (true, Some(Ok(Anchor::After(n, _) | Anchor::Before(n, _)))) =
                    (adjacent, m.at.as_ref().map(Place::anchor))
                {
                    self.adjoin(&m.proc, &[&m.name, n]);
                }
                if populated {
                    self.populate(&m.proc, &m.name, 0..m.pages);
                }
            }
            Step::Write(a) | Step::Read(a) => {
                let write = matches!(step, Step::Write(_)).then(|| write_value(a, self.step));
                // The access stops at the first page past the object's end (SIGBUS).
                let end =
                    self.access_stop(&a.proc, &a.map, a.page, a.pages, write.is_some()).unwrap_or(a.page + a.pages);
                for p in a.page..end {
                    let bytes = write.map(|value| Bytes {
                        value,
                        tag: a.value.is_none().then_some(p),
                        may_be_zero: false,
                        rest_may_be_zero: false,
                        by: Some((a.proc.clone(), self.step)),
                    });
                    self.touch(&a.proc, &a.map, p, bytes);
                }
            }
            Step::Fork(f) => {
                self.fork(&f.proc, &f.child);
                self.forked_shares(&f.child);
            }
            Step::Exit(p) => {
                self.procs.remove(&p.proc);
                self.pins.retain(|(proc, _), _| *proc != p.proc);
                self.locked_future.remove(&p.proc);
                self.locked_vmas_future.remove(&p.proc);
            }
            Step::Munmap(r) => {
                let mut fresh = self.ids();
                let Some(maps) = self.procs.get_mut(&r.proc) else { return };
                match r.page {
                    None => {
                        maps.remove(&r.map);
                    }
                    Some(page) => {
                        if let Some(m) = maps.get_mut(&r.map) {
                            let range = page as usize..(page + r.pages.unwrap_or(1)) as usize;
                            for slot in m.pages.iter_mut().take(range.end).skip(range.start) {
                                *slot = None;
                            }
                            m.layout.unmap(range, &mut fresh);
                            if m.layout.0.iter().all(Option::is_none) {
                                maps.remove(&r.map);
                            }
                        }
                    }
                }
                self.next_id = fresh();
            }
            Step::Mprotect(x) => {
                let mut fresh = self.ids();
                let Some(m) = self.procs.get_mut(&x.proc).and_then(|maps| maps.get_mut(&x.map)) else { return };
                let end = x.pages.map(|n| x.page + n).unwrap_or(m.pages.len() as u64);
                let prot = x.prot;
                let private_anon = m.share == Share::Private && matches!(m.backing, Backing::Anon | Backing::DevZero);
                let writable = matches!(prot, Prot::Rw | Prot::Rwx);
                let set = |a: &mut Attrs| {
                    a.prot = prot;
                    // mprotect_fixup(): VM_ACCOUNT follows writability while unfaulted.
                    if private_anon && writable {
                        a.flags |= ACCOUNT;
                    } else if private_anon && a.anon.is_none() {
                        a.flags &= !ACCOUNT;
                    }
                };
                m.layout.change(x.page as usize..end as usize, set, &mut fresh, self.sem);
                self.next_id = fresh();
            }
            Step::Madvise(x) => {
                let mut fresh = self.ids();
                let Some(m) = self.procs.get_mut(&x.proc).and_then(|maps| maps.get_mut(&x.map)) else { return };
                let end = x.pages.map(|n| x.page + n).unwrap_or(m.pages.len() as u64);
                let range = x.page as usize..end as usize;
                let private = m.share == Share::Private;
                let (set, clear) = match x.advice {
                    Advice::Dontfork => (DONTFORK, 0),
                    Advice::Dofork => (0, DONTFORK),
                    // The kernel refuses it (EINVAL) for any VMA with a file, and a
                    // private /dev/zero VMA keeps its file.
                    Advice::Wipeonfork if private && m.backing == Backing::Anon => (WIPEONFORK, 0),
                    Advice::Keeponfork => (0, WIPEONFORK),
                    Advice::Hugepage => (HUGEPAGE, NOHUGEPAGE),
                    Advice::Nohugepage => (NOHUGEPAGE, HUGEPAGE),
                    // KSM leaves shared VMAs alone.
                    Advice::Mergeable if private => (MERGEABLE, 0),
                    Advice::Unmergeable => (0, MERGEABLE),
                    _ => (0, 0),
                };
                m.layout.change(range, |a| a.flags = (a.flags | set) & !clear, &mut fresh, self.sem);
                self.next_id = fresh();
                match x.advice {
                    Advice::Dontneed => {
                        for p in x.page..end {
                            if let Some(slot) = m.pages.get_mut(p as usize) {
                                *slot = None;
                            }
                        }
                    }
                    Advice::Mergeable => self.mark(&x.proc, &x.map, x.page..end, KSM_MAY_MERGE),
                    Advice::Hugepage | Advice::Collapse => {
                        for p in x.page..end {
                            self.unpredictable.insert(
                                (x.proc.clone(), x.map.clone(), p),
                                "THP: a huge page may back this range".into(),
                            );
                        }
                        // A file or shmem THP is the object's: a fault here may put its
                        // other pages in it too, wherever they are mapped, and a split of
                        // it (by pageout, say) unmaps them all, since only anon folios
                        // are mapped again after a split (6.1, tmpfs huge=advise).
                        if let Some(obj) = m.object {
                            self.mark_object(obj, "THP: the object's huge page may back this page");
                        }
                    }
                    Advice::Pageout => {
                        // shrink_folio_list() keeps a pinned anon folio mapped.
                        let frames = m.pages.clone();
                        let swappable: Vec<u64> = (x.page..end)
                            .filter(|&p| !frames.get(p as usize).copied().flatten().is_some_and(|f| self.pinned(f)))
                            .collect();
                        for p in swappable {
                            self.unpredictable.insert((x.proc.clone(), x.map.clone(), p), SWAP.into());
                            self.paged_out.insert((x.proc.clone(), x.map.clone(), p));
                        }
                    }
                    Advice::Free if m.share == Share::Private && m.object.is_none() => {
                        // Lazily freed: the page keeps its bytes until reclaim drops it,
                        // and then it is gone (a PAGEOUT is such a reclaim).
                        let frames: Vec<Frame> =
                            (x.page..end).filter_map(|p| m.pages.get(p as usize).copied().flatten()).collect();
                        for f in frames.into_iter().filter(|f| matches!(f, Frame::Anon(_))) {
                            if let Some(b) = self.contents.get_mut(&f) {
                                b.may_be_zero = true;
                            }
                        }
                        self.mark(&x.proc, &x.map, x.page..end, LAZYFREE);
                    }
                    _ => {}
                }
            }
            Step::Mremap(x) if x.placed() => self.remap(x),
            Step::Mremap(x) => {
                if x.dontunmap {
                    self.leftovers.insert(x.proc.clone());
                }
                let Some(m) = self.procs.get_mut(&x.proc).and_then(|maps| maps.get_mut(&x.map)) else { return };
                let old = m.pages.len() as u64;
                m.pages.resize(x.pages as usize, None);
                m.layout.resize(x.pages as usize);
                let anon = m.share == Share::Private && matches!(m.backing, Backing::Anon | Backing::DevZero);
                self.mark_grown(&x.proc, &x.map, old..x.pages);
                let Some(m) = self.procs.get_mut(&x.proc).and_then(|maps| maps.get_mut(&x.map)) else { return };
                if m.locked && x.pages > old {
                    self.populate(&x.proc, &x.map, old..x.pages);
                }
                // Grown pages fault like the map's first ones: under mTHP in folios.
                if anon && self.large.0 && x.pages > old {
                    self.mark(&x.proc, &x.map, old..x.pages, MTHP);
                }
            }
            Step::Mlock(x) => {
                if let Some(m) = self.procs.get_mut(&x.proc).and_then(|maps| maps.get_mut(&x.map)) {
                    m.locked = true;
                }
                let (first, n) = span(x.page, x.pages, self.map_len(&x.proc, &x.map));
                self.lock_vmas(&x.proc, &x.map, first..first + n, true);
                if !x.onfault {
                    self.populate(&x.proc, &x.map, first..first + n);
                }
            }
            Step::Munlock(r) => {
                let (first, n) = span(r.page, r.pages, self.map_len(&r.proc, &r.map));
                self.lock_vmas(&r.proc, &r.map, first..first + n, false);
            }
            Step::Mlockall(x) => {
                // mlock_fixup() skips hugetlb VMAs, so they get no VM_LOCKONFAULT either,
                // and the mm_populate() after MCL_CURRENT populates them, onfault or not.
                let hugetlb = |m: &Map| m.backing.hugetlb();
                if x.current {
                    for m in self.procs.get_mut(&x.proc).into_iter().flat_map(|maps| maps.values_mut()) {
                        m.locked = !hugetlb(m);
                    }
                    for (name, len) in self.map_lens(&x.proc) {
                        if self.procs[&x.proc].get(&name).is_some_and(hugetlb) {
                            self.populate(&x.proc, &name, 0..len);
                        } else {
                            self.lock_vmas(&x.proc, &name, 0..len, true);
                        }
                    }
                }
                if x.future {
                    self.locked_vmas_future.insert(x.proc.clone());
                }
                if x.current && !x.onfault {
                    for (name, len) in self.map_lens(&x.proc) {
                        self.populate(&x.proc, &name, 0..len);
                    }
                }
                if x.future && !x.onfault {
                    self.locked_future.insert(x.proc.clone());
                }
            }
            Step::Munlockall(p) => {
                self.locked_future.remove(&p.proc);
                self.locked_vmas_future.remove(&p.proc);
                for (name, len) in self.map_lens(&p.proc) {
                    self.lock_vmas(&p.proc, &name, 0..len, false);
                }
            }
            // Reclaim may take any present page from every process that maps it, shared
            // ones too (unlike MADV_PAGEOUT): each is then as a pageout leaves it.
            Step::Reclaim(_) => {
                let present: Vec<Slot> = self
                    .procs
                    .iter()
                    .flat_map(|(proc, maps)| maps.iter().map(move |(name, m)| (proc, name, m)))
                    .flat_map(|(proc, name, m)| {
                        // A pinned anon folio stays (shrink_folio_list: keep_locked).
                        let pages = m.pages.iter().enumerate().filter(|(_, f)| f.is_some_and(|f| !self.pinned(f)));
                        pages.map(move |(p, _)| (proc.clone(), name.clone(), p as u64))
                    })
                    .collect();
                for slot in present {
                    self.unpredictable.insert(slot.clone(), RECLAIM.into());
                    self.paged_out.insert(slot);
                }
            }
            // Migration, compaction and splitting move or remap pages but keep who
            // shares what.
            Step::Split(_)
            | Step::Migrate(_)
            | Step::Compact(_)
            | Step::Findpage(_)
            | Step::Findtask(_)
            | Step::Check(_)
            | Step::Ksm(_) => {}
            // A poke changes bytes behind the model's back: that is its point.
            Step::Poke(_) => {}
            Step::Pin(x) => {
                for p in x.page..x.page + x.pages {
                    let frame = match x.kind {
                        // FOLL_WRITE: a write fault that stores nothing, so it breaks COW
                        // (or faults a fresh page in) and leaves the page exclusive.
                        PinKind::Uring => {
                            let bytes = self.contents(&x.proc, &x.map, p).cloned().unwrap_or(Bytes::ZERO);
                            self.touch(&x.proc, &x.map, p, Some(bytes));
                            self.frame(&x.proc, &x.map, p)
                        }
                        // FOLL_GET without FOLL_WRITE: a read fault where nothing is mapped.
                        PinKind::Vmsplice => {
                            self.touch(&x.proc, &x.map, p, None);
                            self.frame(&x.proc, &x.map, p)
                        }
                    };
                    self.pins.entry((x.proc.clone(), x.kind)).or_default().extend(frame);
                }
            }
            Step::Unpin(x) => {
                self.pins.remove(&(x.proc.clone(), x.kind));
            }
            Step::Remote(x) => self.remote(x),
            Step::Truncate(x) => {
                let Some(obj) = self.procs.get(&x.proc).and_then(|maps| maps.get(&x.map)).and_then(|m| m.object) else {
                    return;
                };
                self.truncate(obj, x.pages);
            }
            Step::Punch(r) => {
                let Some(m) = self.procs.get(&r.proc).and_then(|maps| maps.get(&r.map)) else { return };
                let (first, count) = span(r.page, r.pages, m.pages.len() as u64);
                if let Some(obj) = m.object {
                    self.punch(obj, m.pgoff + first..m.pgoff + first + count);
                }
            }
            // Writeback (msync MS_SYNC, fsync, sync) cleans a dirty page cache folio:
            // folio_clear_dirty_for_io() calls folio_mkclean(), which walks the rmap and
            // clears the dirty and write bits of each PTE and PMD that maps it
            // (page_vma_mkclean_one), in every process. It unmaps nothing and changes no
            // byte, so who shares what and what each page holds stay; the next write
            // faults and dirties the folio again (page_mkwrite). MS_ASYNC starts no
            // writeback at all. drop_caches frees only folios that are clean, not under
            // writeback and mapped by no one (mapping_evict_folio), so no slot a process
            // maps changes; a page it dropped is read back from the disk with the bytes
            // written back, which O5 judges at the next fault.
            Step::Msync(_) | Step::Fsync(_) | Step::Sync(_) | Step::DropCaches(_) => {}
            Step::Uffd(_) | Step::UffdCopy(_) | Step::UffdZeropage(_) | Step::UffdMove(_) | Step::UffdWp(_) => {
                self.apply_uffd(step)
            }
        }
        self.uffd_forget();
        if let Step::Madvise(x) = step {
            if x.advice == Advice::Remove {
                // MADV_REMOVE is a hole punch of the file pages under the range
                // (madvise_remove(): vfs_fallocate(PUNCH_HOLE | KEEP_SIZE)).
                let Some(m) = self.procs.get(&x.proc).and_then(|maps| maps.get(&x.map)) else { return };
                let end = x.pages.map(|n| x.page + n).unwrap_or(m.pages.len() as u64);
                if let (Share::Shared, Some(obj)) = (m.share, m.object) {
                    self.punch(obj, m.pgoff + x.page..m.pgoff + end);
                }
            }
        }
    }

    /// Whether a FOLL_PIN pin holds a private anon frame (io_uring's; vmsplice takes a
    /// plain reference, which fork and reclaim do not look for).
    fn pinned(&self, frame: Frame) -> bool {
        matches!(frame, Frame::Anon(_))
            && self.pins.iter().any(|((_, kind), frames)| *kind == PinKind::Uring && frames.contains(&frame))
    }

    /// A one-shot GUP of `x.proc`'s pages from another process.
    fn remote(&mut self, x: &Remote) {
        for p in x.page..x.page + x.pages {
            match x.kind {
                RemoteKind::Readv => match self.frame(&x.proc, &x.map, p) {
                    // gup_must_unshare(): a FOLL_PIN without FOLL_WRITE on an anon page
                    // that is not exclusive faults with FAULT_FLAG_UNSHARE; a page
                    // mapped more than once is copied (wp_page_copy), keeping its bytes.
                    Some(f @ Frame::Anon(_)) if self.holders(f) > 1 => {
                        let id = self.fresh();
                        let copy = Frame::Anon(id);
                        self.origins.insert(id, x.proc.clone());
                        if let Some(bytes) = self.contents.get(&f).cloned() {
                            self.contents.insert(copy, bytes);
                        }
                        if let Some(m) = self.procs.get_mut(&x.proc).and_then(|maps| maps.get_mut(&x.map)) {
                            m.pages[p as usize] = Some(copy);
                        }
                        self.note(&x.proc, &x.map, p, Reason::PinUnshare);
                    }
                    _ => self.touch(&x.proc, &x.map, p, None),
                },
                RemoteKind::Writev => {
                    let bytes = Bytes {
                        value: crate::scenario::request::step_value(x.value, self.step),
                        tag: x.value.is_none().then_some(p),
                        may_be_zero: false,
                        rest_may_be_zero: false,
                        by: Some((x.proc.clone(), self.step)),
                    };
                    self.touch(&x.proc, &x.map, p, Some(bytes));
                }
                // One word over the page's first 8 bytes, the rest as it was.
                RemoteKind::Ptrace => {
                    let old = self.contents(&x.proc, &x.map, p).cloned().unwrap_or(Bytes::ZERO);
                    // The poke dirties the page: it can no longer be dropped.
                    let bytes = Bytes {
                        tag: Some(Remote::poke_word(p, self.step)),
                        by: Some((x.proc.clone(), self.step)),
                        may_be_zero: false,
                        rest_may_be_zero: old.may_be_zero || old.rest_may_be_zero,
                        ..old
                    };
                    self.touch(&x.proc, &x.map, p, Some(bytes));
                }
            }
        }
    }

    /// The first page of `count` from `page` of a map that lies past its object's end,
    /// where an access gets SIGBUS (the fault handler refuses an index at or past
    /// i_size: shmem_get_folio_gfp() -EINVAL, filemap_fault() VM_FAULT_SIGBUS); `None`
    /// when every page is inside, or the map has no object (private anon memory).
    pub fn sigbus_at(&self, proc: &str, map: &str, page: u64, count: u64) -> Option<u64> {
        let m = self.procs.get(proc)?.get(map)?;
        let size = *self.sizes.get(&m.object?)?;
        (page..page + count).find(|p| m.pgoff + p >= size)
    }

    /// The first page of an access that gets SIGBUS: past its object's end
    /// (`sigbus_at`), or where userfaultfd would have to answer the fault.
    pub fn access_stop(&self, proc: &str, map: &str, page: u64, count: u64, write: bool) -> Option<u64> {
        let uffd = (page..page + count).find(|&p| self.uffd_faults(&(proc.into(), map.into(), p), write));
        match (self.sigbus_at(proc, map, page, count), uffd) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Object `obj`'s file pages in `pages` leave every map of it: the ones `pred` picks
    /// become unmapped for `why`.
    fn unmap_object(&mut self, obj: u64, pages: std::ops::Range<u64>, why: Reason, pred: impl Fn(Frame) -> bool) {
        let mut gone = Vec::new();
        for (proc, maps) in self.procs.iter_mut() {
            for (name, m) in maps.iter_mut().filter(|(_, m)| m.object == Some(obj)) {
                for (i, slot) in m.pages.iter_mut().enumerate() {
                    let at = m.pgoff + i as u64;
                    if pages.contains(&at) && slot.is_some_and(&pred) {
                        *slot = None;
                        gone.push((proc.clone(), name.clone(), i as u64));
                    }
                }
            }
        }
        for slot in gone {
            self.why.insert(slot, Why::rule(why));
        }
        // The file's pages there are gone: a later fault finds zeros.
        self.contents.retain(|f, _| !matches!(f, Frame::Object(o, p) if *o == obj && pages.contains(p)));
    }

    /// ftruncate of object `obj` to `pages` pages. Shrinking, truncate_pagecache() calls
    /// unmap_mapping_range(..., even_cows=1): every mapper loses what lies past the new
    /// end, private COW copies included, and the page cache there is freed. A large folio
    /// across the new end keeps the pages before it mapped (the zap splits a PMD there:
    /// zap_pmd_range() -> __split_huge_pmd(); truncate_inode_partial_folio() zeroes and
    /// splits the rest). Growing adds zero pages.
    fn truncate(&mut self, obj: u64, pages: u64) {
        self.unmap_object(obj, pages..u64::MAX, Reason::Truncated, |_| true);
        self.sizes.insert(obj, pages);
    }

    /// A hole punched in object `obj` over its pages `pages` (fallocate PUNCH_HOLE, or
    /// MADV_REMOVE): shmem_fallocate() calls unmap_mapping_range(..., even_cows=0), so
    /// the page cache's pages leave every mapper, shared and private, but private COW
    /// copies (anon folios: should_zap_folio()) stay. The hole reads as zeros.
    fn punch(&mut self, obj: u64, pages: std::ops::Range<u64>) {
        self.unmap_object(obj, pages, Reason::Punched, |f| matches!(f, Frame::Object(..)));
    }

    /// These maps of `proc` were placed next to each other.
    fn adjoin(&mut self, proc: &str, names: &[&str]) {
        for name in names {
            if let Some(m) = self.procs.get_mut(proc).and_then(|maps| maps.get_mut(*name)) {
                m.adjacent = true;
            }
        }
    }

    /// What the model knows of `count` slots from `(proc, map, first)`, taken out.
    fn take_slots(&mut self, proc: &str, map: &str, first: u64, count: u64) -> Vec<SlotFacts> {
        (first..first + count)
            .map(|p| {
                let at = (proc.to_string(), map.to_string(), p);
                (self.unpredictable.remove(&at), self.why.remove(&at), self.paged_out.remove(&at))
            })
            .collect()
    }

    /// Put slot facts back from `(proc, map, first)` on.
    fn put_slots(&mut self, proc: &str, map: &str, first: u64, facts: Vec<SlotFacts>) {
        for (i, (unpredictable, why, paged_out)) in facts.into_iter().enumerate() {
            let at = (proc.to_string(), map.to_string(), first + i as u64);
            if let Some(u) = unpredictable {
                self.unpredictable.insert(at.clone(), u);
            }
            if let Some(w) = why {
                self.why.insert(at.clone(), w);
            }
            if paged_out {
                self.paged_out.insert(at);
            }
        }
    }

    /// mremap with a range, a place or a name: the moved pages, their VMAs and what the
    /// model knows of each slot go to the map they become, or back into the map they
    /// came from; the pages at the place leave their map (MREMAP_FIXED).
    fn remap(&mut self, x: &Mremap) {
        let Some(src) = self.procs.get(&x.proc).and_then(|maps| maps.get(&x.map)).cloned() else { return };
        let (first, count) = x.source(src.pages.len() as u64);
        let new = x.new_size();
        let anchor = x.to.as_ref().and_then(|t| t.anchor().ok());
        let mut fresh = self.ids();
        let range = first as usize..(first + count) as usize;
        let mut piece = Map {
            pages: src.pages[range.clone()].to_vec(),
            layout: src.layout.split_off(range.clone(), &mut fresh),
            pgoff: src.pgoff + first,
            adjacent: matches!(anchor, Some(Anchor::After(_, 0) | Anchor::Before(_, 0) | Anchor::Over(..))),
            origin: match x.page {
                Some(_) => Some((x.map.clone(), first)),
                None => src.origin.clone(),
            },
            ..src.clone()
        };
        if src.backing == Backing::DevZero && src.share == Share::Private {
            for a in piece.layout.0.iter_mut().flatten().filter(|a| a.anon.is_none()) {
                a.flags |= ADDR_PGOFF;
            }
        }
        piece.pages.resize(new as usize, None);
        piece.layout.resize(new as usize);
        let mut facts = self.take_slots(&x.proc, &x.map, first, count);
        facts.truncate(new as usize);
        let sem = self.sem;
        let Some(maps) = self.procs.get_mut(&x.proc) else { return };
        // The source: a whole map's name moves; a range leaves a hole, or with
        // DONTUNMAP stays mapped, empty and unlocked.
        if x.page.is_none() {
            maps.remove(&x.map);
            if x.dontunmap {
                self.leftovers.insert(x.proc.clone());
            }
        } else if let Some(m) = maps.get_mut(&x.map) {
            m.pages[range.clone()].fill(None);
            if x.dontunmap {
                m.layout.change(range.clone(), |a| a.flags &= !LOCKED, &mut fresh, sem);
            } else {
                m.layout.unmap(range.clone(), &mut fresh);
                if m.layout.0.iter().all(Option::is_none) {
                    maps.remove(&x.map);
                }
            }
        }
        // The place: pages from `at` of map `target` are replaced.
        let back = src.origin.clone().filter(|_| anchor == Some(Anchor::Back));
        let (target, at) = match (&anchor, &back) {
            (Some(Anchor::Over(m, page)), _) => (Some(m.to_string()), *page),
            (_, Some((from, page))) => (Some(from.clone()), *page),
            _ => (None, 0),
        };
        if let Some(target) = &target {
            let into = back.is_some();
            if let Some(m) = maps.get_mut(target) {
                let end = (at + new).min(m.pages.len() as u64);
                let r = at as usize..end as usize;
                if into {
                    m.pages[r.clone()].clone_from_slice(&piece.pages[..r.len()]);
                    m.layout.put(at as usize, &piece.layout, sem);
                } else {
                    m.pages[r.clone()].fill(None);
                    m.layout.unmap(r, &mut fresh);
                    m.adjacent = true;
                    if m.layout.0.iter().all(Option::is_none) {
                        maps.remove(target);
                    }
                }
            }
        }
        if let Some(Anchor::After(n, 0) | Anchor::Before(n, 0)) = anchor {
            if let Some(m) = maps.get_mut(n) {
                m.adjacent = true;
            }
        }
        let (dest, dest_at) = match (&back, x.result_name()) {
            (Some((from, page)), _) => (from.clone(), *page),
            (None, Some(name)) => (name.to_string(), 0),
            (None, None) => return,
        };
        if back.is_none() {
            maps.insert(dest.clone(), piece.clone());
        }
        self.next_id = fresh();
        if let Some(target) = target.filter(|t| *t != dest || back.is_some()) {
            drop(self.take_slots(&x.proc, &target, at, new));
        }
        self.put_slots(&x.proc, &dest, dest_at, facts);
        if x.dontunmap && x.page.is_some() {
            self.mark(&x.proc, &x.map, first..first + count, DONTUNMAP);
        }
        let anon = piece.share == Share::Private && matches!(piece.backing, Backing::Anon | Backing::DevZero);
        if new > count {
            self.mark_grown(&x.proc, &dest, dest_at + count..dest_at + new);
            if piece.locked {
                self.populate(&x.proc, &dest, dest_at + count..dest_at + new);
            }
            if anon && self.large.0 {
                self.mark(&x.proc, &dest, dest_at + count..dest_at + new, MTHP);
            }
        }
    }

    /// A read (`bytes` is `None`) or a write of `bytes` to one slot.
    fn touch(&mut self, proc: &str, name: &str, page: u64, bytes: Option<Bytes>) {
        let write = bytes.is_some();
        let slot = (proc.to_string(), name.to_string(), page);
        if self.unpredictable.get(&slot).is_some_and(|why| why == FAULT_AROUND) {
            self.unpredictable.remove(&slot);
        }
        let Some(m) = self.procs.get(proc).and_then(|maps| maps.get(name)) else { return };
        if m.layout.at(page as usize).is_none() {
            return; // unmapped: the agent refuses the step
        }
        if self.touch_hugetlb(proc, name, page, bytes.as_ref()) {
            return;
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
        let (share, backing, object, pgoff) = (m.share, m.backing, m.object, m.pgoff);
        let (frame, why) = match (share, current, write) {
            (Share::Shared, _, _) => {
                let obj = object.unwrap_or(0);
                (Frame::Object(obj, pgoff + page), Reason::Shared)
            }
            (Share::Private, Some(Frame::Anon(id)), true) => {
                if self.holders(Frame::Anon(id)) > 1 {
                    (Frame::Anon(self.fresh()), Reason::Cow)
                } else {
                    (Frame::Anon(id), Reason::Reuse)
                }
            }
            (Share::Private, Some(f), false) => (f, Reason::Read),
            (Share::Private, _, true) => (Frame::Anon(self.fresh()), Reason::PrivateWrite),
            (Share::Private, None, false) => match (backing, object) {
                (Backing::Anon | Backing::DevZero, _) => (Frame::Zero, Reason::ZeroPage),
                (_, Some(obj)) => (Frame::Object(obj, pgoff + page), Reason::PageCache),
                (_, None) => (Frame::Zero, Reason::ReadZero),
            },
        };
        if let Frame::Anon(id) = frame {
            self.origins.entry(id).or_insert_with(|| proc.to_string());
        }
        let mut fresh = self.ids();
        let m = self.procs.get_mut(proc).and_then(|maps| maps.get_mut(name)).expect("checked above");
        if matches!(frame, Frame::Anon(_)) {
            m.layout.prepare_anon(page as usize, &mut fresh);
        }
        m.pages[page as usize] = Some(frame);
        self.next_id = fresh();
        self.note(proc, name, page, why);
        if let Some(bytes) = bytes {
            // A write leaves the page its writer's alone: PageAnonExclusive.
            if let Frame::Anon(id) = frame {
                self.not_exclusive.remove(&id);
            }
            self.contents.insert(frame, bytes);
        }
    }

    fn fork(&mut self, parent: &str, child: &str) {
        let Some(maps) = self.procs.get(parent).cloned() else { return };
        if self.leftovers.contains(parent) {
            self.leftovers.insert(child.to_string());
        }
        let mut inherited = BTreeMap::new();
        let mut fresh = self.ids();
        let mut copies = Vec::new();
        for (name, m) in maps {
            let layout = m.layout.forked(&mut fresh);
            if layout.0.iter().all(Option::is_none) {
                continue;
            }
            // The child's VMAs are not VM_LOCKED.
            let mut c = Map { layout, locked: false, ..m.clone() };
            for (i, f) in c.pages.iter_mut().enumerate() {
                // fork copies PTEs only of VMAs with an anon_vma (never of shared ones,
                // which have none); others fault in on touch. WIPEONFORK and DONTFORK
                // VMAs come without theirs.
                let copied = m.layout.at(i).is_some_and(|a| a.anon.is_some() && a.flags & (WIPEONFORK | DONTFORK) == 0);
                if !copied {
                    // A private page that is not anon (zero page, page cache) in a VMA
                    // merged with a placed neighbour: copied if that one has an anon_vma.
                    let merged = m.adjacent
                        && m.share == Share::Private
                        && matches!(f, Some(Frame::Zero | Frame::Object(..)))
                        && m.layout.at(i).is_some_and(|a| a.flags & (WIPEONFORK | DONTFORK) == 0);
                    if merged {
                        self.unpredictable.insert((child.into(), name.clone(), i as u64), MERGED.into());
                    }
                    *f = None;
                } else if let Some(frame) = f.filter(|f| self.pinned(*f)) {
                    // copy_present_pte(): folio_try_dup_anon_rmap_pte() refuses an
                    // exclusive page of a maybe-pinned folio, so copy_present_page()
                    // gives the child its own page with the same bytes at once.
                    let copy = Frame::Anon(fresh());
                    copies.push((frame, copy));
                    *f = Some(copy);
                    self.why.insert((child.into(), name.clone(), i as u64), Why::rule(Reason::PinnedCopy));
                } else if f.is_some() {
                    self.why.insert(
                        (child.into(), name.clone(), i as u64),
                        Why { reason: Reason::Fork, fork: Some((child.to_string(), parent.to_string())) },
                    );
                }
            }
            for p in 0..m.pages.len() as u64 {
                let at = (parent.to_string(), name.clone(), p);
                if let Some(r) = self.unpredictable.get(&at).cloned() {
                    self.unpredictable.insert((child.into(), name.clone(), p), r);
                }
                if self.paged_out.contains(&at) {
                    self.paged_out.insert((child.into(), name.clone(), p));
                }
            }
            inherited.insert(name, c);
        }
        self.next_id = fresh();
        for (from, copy) in copies {
            if let Frame::Anon(id) = copy {
                self.origins.insert(id, child.to_string());
            }
            if let Some(bytes) = self.contents.get(&from).cloned() {
                self.contents.insert(copy, bytes);
            }
        }
        self.procs.insert(child.into(), inherited);
    }

    /// Whether a FOLL_PIN pin holds the page of a slot (reclaim and migration leave it).
    pub fn pinned_at(&self, proc: &str, map: &str, page: u64) -> bool {
        self.frame(proc, map, page).is_some_and(|f| self.pinned(f))
    }

    /// Whether any process holds a pin of any kind.
    pub fn holds_pins(&self) -> bool {
        self.pins.values().any(|frames| !frames.is_empty())
    }

    /// Whether the VMA at a slot is VM_MERGEABLE (MADV_MERGEABLE, kept across fork):
    /// ksmd gives each of its pages an rmap_item when it scans it.
    pub fn mergeable(&self, proc: &str, map: &str, page: u64) -> bool {
        let attrs = self.procs.get(proc).and_then(|m| m.get(map)).and_then(|m| m.layout.at(page as usize));
        attrs.is_some_and(|a| a.flags & MERGEABLE != 0)
    }

    /// The frame of a slot, `None` when nothing is mapped there.
    pub fn frame(&self, proc: &str, map: &str, page: u64) -> Option<Frame> {
        self.procs.get(proc)?.get(map)?.pages.get(page as usize).copied().flatten()
    }

    /// What a read of `(proc, map, page)` would see, `None` when the model has no such
    /// page. A page that process never touched reads as its object's page (shared and
    /// file mappings) or as zeros (private anonymous memory).
    pub fn contents(&self, proc: &str, map: &str, page: u64) -> Option<&Bytes> {
        let m = self.procs.get(proc)?.get(map)?;
        m.layout.at(page as usize)?;
        let frame = match m.pages.get(page as usize)? {
            Some(f) => *f,
            None => match m.object {
                Some(obj) => Frame::Object(obj, m.pgoff + page),
                None => return Some(&Bytes::ZERO),
            },
        };
        Some(self.contents.get(&frame).unwrap_or(&Bytes::ZERO))
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
        // Called per slot by `check: all`: clone only the matches.
        let mut out = BTreeSet::new();
        for (proc, maps) in &self.procs {
            for (name, m) in maps {
                for (i, _) in m.pages.iter().enumerate().filter(|(_, f)| **f == Some(frame)) {
                    out.insert((proc.clone(), name.clone(), i as u64));
                }
            }
        }
        out
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
    pub fn why(&self, slot: &Slot) -> Why {
        self.why.get(slot).cloned().unwrap_or(Why::rule(Reason::NeverTouched))
    }

    /// Live process labels.
    pub fn procs(&self) -> impl Iterator<Item = &String> {
        self.procs.keys()
    }

    /// The VMAs the model predicts over one map (O6), `None` for a map it does not know.
    pub fn vmas(&self, proc: &str, map: &str) -> Option<MapVmas> {
        let m = self.procs.get(proc)?.get(map)?;
        let private_anon = m.share == Share::Private && matches!(m.backing, Backing::Anon | Backing::DevZero);
        // A neighbour placed next to a private map may merge with it and lend or take
        // an anon_vma (vma_merge_new_range(), anon_vma_prepare()'s
        // find_mergeable_anon_vma()), which the model, keeping maps one by one, does
        // not follow; nor which anon_vma a range MREMAP_DONTUNMAP emptied keeps.
        let unsure = [MERGED, DONTUNMAP];
        let unsure_page = (0..m.pages.len() as u64).any(|p| {
            self.unpredictable.get(&(proc.into(), map.into(), p)).is_some_and(|w| unsure.contains(&w.as_str()))
        });
        let old_private = self.sem.old_vma_merge && m.share == Share::Private;
        let merges_certain = !(m.lock_touched || private_anon && m.adjacent || unsure_page || old_private);
        Some(MapVmas {
            pages: m.layout.0.clone(),
            share: m.share,
            // A private /dev/zero map is anonymous but, on some kernels, keeps its
            // file: its pgoff and inode are not judged. Anonymous pgoffs are the
            // address the VMA was made at, which only boundaries can judge.
            pgoff: m.object.filter(|_| !private_anon).map(|_| m.pgoff),
            file: match (m.backing, m.share) {
                (Backing::Anon, Share::Private) => Some(false),
                (Backing::DevZero, Share::Private) => None,
                _ => Some(true),
            },
            object: m.object,
            merges_certain,
            leftovers: self.leftovers.contains(proc),
        })
    }
}

/// What the model predicts of one map's VMAs (O6).
#[derive(Debug, Clone)]
pub struct MapVmas {
    /// Each page's VMA; `None` where nothing is mapped.
    pub pages: Vec<Option<Attrs>>,
    pub share: Share,
    /// The object page of page 0, where a file or shmem object backs the map.
    pub pgoff: Option<u64>,
    /// A file (or shmem) backs it (an inode), or none does; `None`: not judged.
    pub file: Option<bool>,
    /// The shared object, one per mmap: every map of it has the same inode.
    pub object: Option<u64>,
    /// Where its VMAs begin and end inside the map follows from the steps alone.
    pub merges_certain: bool,
    /// Its process may hold a nameless range a whole-map MREMAP_DONTUNMAP left
    /// behind, which may lie over this map's unmapped pages.
    pub leftovers: bool,
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

    /// Before 6.12 a faulted piece does not merge into an unfaulted neighbour whose
    /// anon_vma chain is empty (6.1's is_mergeable_anon_vma()), which the model does not
    /// follow: O6 judges no boundaries of private maps there (a clean 6.1 false alarm).
    #[test]
    fn private_vma_boundaries_are_judged_from_6_12_only() {
        let steps = parse(
            Path::new("t.yaml"),
            "name: t\nabout: t\nsteps:\n  \
             - mmap: { name: a, pages: 6, backing: file, share: private }\n",
        )
        .unwrap()
        .steps;
        for (release, certain) in [("6.1.0-57-arm64", false), ("6.12.117+deb12-arm64", true)] {
            let mut m = Model::for_release(release);
            for step in &steps {
                m.apply(step);
            }
            assert_eq!(m.vmas("p0", "a").unwrap().merges_certain, certain, "{release}");
        }
    }

    /// A whole map moved with MREMAP_DONTUNMAP leaves its old VMA mapped and nameless,
    /// possibly over another map's pages (a fuzz false alarm of O6): the process and
    /// its later forks hold such leftovers, and O6 does not judge unmapped pages there.
    #[test]
    fn a_whole_map_dontunmap_leaves_a_nameless_range_that_forks_inherit() {
        let m = run("name: t\nabout: t\nsteps:\n  - mmap: { name: a, pages: 4, backing: anon, share: private }\n  \
                     - mmap: { name: b, pages: 1, backing: anon, share: private }\n  \
                     - fork: { child: c1 }\n  - mremap: { map: b, pages: 1, dontunmap: true }\n  \
                     - fork: { child: c2 }\n");
        assert!(m.vmas("p0", "a").unwrap().leftovers);
        assert!(m.vmas("c2", "a").unwrap().leftovers, "a fork inherits the leftover");
        assert!(!m.vmas("c1", "a").unwrap().leftovers, "forked before the move");
    }

    /// mprotect_fixup() drops VM_ACCOUNT from an unfaulted private anon piece made
    /// read-only, so it no longer merges with a faulted neighbour given the same
    /// protection (seed 2027, run 833, on 6.12-debug and 7.2), and sets it again when
    /// the piece is made writable.
    #[test]
    fn an_unfaulted_read_only_piece_loses_vm_account_and_stays_apart() {
        let m = run("name: t\nabout: t\nsteps:\n  - mmap: { name: a, pages: 3, backing: anon, share: private }\n  \
                     - mprotect: { map: a, page: 1, pages: 1, prot: r }\n  - write: { map: a, page: 0 }\n  \
                     - mprotect: { map: a, page: 0, pages: 2, prot: none }\n");
        let pages = m.vmas("p0", "a").unwrap().pages;
        let vma = |i: usize| pages[i].unwrap().vma;
        assert_ne!(vma(0), vma(1), "VM_ACCOUNT differs");
        let m = run("name: t\nabout: t\nsteps:\n  - mmap: { name: a, pages: 3, backing: anon, share: private }\n  \
                     - mprotect: { map: a, page: 1, pages: 1, prot: r }\n  - mprotect: { map: a, page: 1, pages: 1, prot: rw }\n");
        let pages = m.vmas("p0", "a").unwrap().pages;
        assert!(pages.iter().all(|a| a.unwrap().vma == pages[0].unwrap().vma), "writable again: one VMA");
    }

    /// Pages an mremap grows a mergeable map by are mergeable too (seed 2028, run 1389,
    /// on 6.1: KSM merged two of them, which the model took for private pages).
    #[test]
    fn pages_a_mergeable_map_grows_by_may_be_merged() {
        let m = run("name: t\nabout: t\nsteps:\n  - mmap: { name: a, pages: 1, backing: anon, share: private }\n  \
                     - madvise: { map: a, page: 0, advice: mergeable }\n  - mremap: { map: a, pages: 5 }\n  \
                     - mremap: { map: a, page: 0, pages: 5, new_pages: 7, as: b, move: true }\n");
        assert_eq!(m.unpredictable.get(&slot("p0", "b", 3)).map(String::as_str), Some(KSM_MAY_MERGE));
        assert_eq!(m.unpredictable.get(&slot("p0", "b", 6)).map(String::as_str), Some(KSM_MAY_MERGE));
    }

    /// move_pages() refuses a UFFDIO_MOVE whose range crosses a VMA boundary, whole
    /// (seed 2029, run 566: a madvise had split the registered map).
    #[test]
    fn a_uffd_move_across_vmas_is_refused_whole() {
        let yaml = |advice: &str| {
            format!(
                "name: t\nabout: t\nsteps:\n  - mmap: {{ name: a, pages: 4, backing: anon, share: private }}\n  \
                 - write: {{ map: a, page: 0, pages: 2 }}\n  - madvise: {{ map: a, page: 3, pages: 1, advice: {advice} }}\n  \
                 - uffd: {{ map: a, mode: missing }}\n  \
                 - uffd_move: {{ map: a, page: 0, pages: 2, to: {{ map: a, page: 2 }} }}\n"
            )
        };
        let result = |advice: &str| {
            let s = parse(Path::new("t.yaml"), &yaml(advice)).unwrap();
            let mut m = Model::new();
            for step in &s.steps[..4] {
                m.apply(step);
            }
            m.uffd_result(&s.steps[4]).unwrap()
        };
        assert_eq!(result("nohugepage"), UffdResult { done: 0, errno: Some(EINVAL) });
        assert_eq!(result("cold"), UffdResult { done: 2, errno: None }, "no split: both pages move");
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
        assert_eq!(m.why(&slot("c1", "stack", 2)).reason, Reason::Cow);
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
        assert_eq!(m.why(&slot("p0", "stack", 2)).reason, Reason::Reuse);
        // With c1 alive, the same write copies: p0 gets a new page, c1 keeps the old.
        let m = run(&format!("{SEED} - write: {{map: stack, page: 2}}\n"));
        assert_ne!(m.frame("p0", "stack", 2), forked);
        assert_eq!(m.frame("c1", "stack", 2), forked);
        assert_eq!(m.sharers("c1", "stack", 2), [slot("c1", "stack", 2)].into());
    }

    /// 6.1 campaign, seed 77 run 2248: part of a tmpfs file made MADV_HUGEPAGE, and the
    /// pageout of that part split the file's THP, unmapping its pages in the other VMA.
    #[test]
    fn a_hugepage_advice_on_part_of_a_file_covers_the_whole_object() {
        let m = run("name: t\nabout: t\nsteps:\n - mmap: {name: f, pages: 6, backing: file, share: shared}\n - mmap: {name: a, pages: 2, backing: anon, share: private}\n - fork: {child: c1}\n - madvise: {map: f, page: 1, pages: 3, advice: hugepage}\n");
        for p in 0..6 {
            assert!(m.unpredictable.contains_key(&slot("c1", "f", p)), "c1 f[{p}]");
            assert!(m.unpredictable.contains_key(&slot("p0", "f", p)), "p0 f[{p}]");
        }
        assert!(!m.unpredictable.contains_key(&slot("p0", "a", 0)), "another object");
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
    fn large_folios_swap_and_mlock_are_not_predicted() {
        let text = "name: t\nabout: t\nmthp: [{ pages: 4, anon: always }]\nsteps:\n - mmap: {name: a, pages: 8, backing: anon, share: private}\n - mmap: {name: m, pages: 8, backing: memfd, share: shared}\n - mmap: {name: b, pages: 2, backing: anon, share: private}\n - write: {map: b, page: 0, pages: 2}\n - madvise: {map: b, page: 1, advice: pageout}\n - mlock: {map: b, page: 0}\n";
        let s = parse(Path::new("t.yaml"), text).unwrap();
        let mut m = Model::new().with_mthp(&s.mthp);
        for step in &s.steps {
            m.apply(step);
        }
        assert_eq!(m.unpredictable.get(&slot("p0", "a", 7)).map(String::as_str), Some(MTHP));
        assert!(!m.unpredictable.contains_key(&slot("p0", "m", 0)), "anon mTHP leaves shmem alone");
        assert_eq!(m.unpredictable.get(&slot("p0", "b", 1)).map(String::as_str), Some(SWAP));
        assert_eq!(m.unpredictable.get(&slot("p0", "b", 0)).map(String::as_str), Some(MLOCK));
        // Migration and splits move pages but keep the sharing the model predicts.
        let m = run(&format!("{SEED} - migrate: {{map: stack}}\n - split: {{map: stack}}\n - compact: {{}}\n"));
        assert_eq!(m.sharers("p0", "stack", 2), [slot("c1", "stack", 2), slot("p0", "stack", 2)].into());
        assert!(m.unpredictable.is_empty());
    }

    const PINNED: &str = "name: t\nabout: t\nsteps:\n - mmap: {name: a, pages: 3, backing: anon, share: private}\n - write: {map: a, page: 0, pages: 3}\n - pin: {map: a, page: 0, pages: 2, kind: uring}\n";

    #[test]
    fn fork_copies_a_pinned_exclusive_page_and_shares_the_rest() {
        let m = run(&format!("{PINNED} - fork: {{child: c1}}\n"));
        for p in 0..2 {
            assert_eq!(m.sharers("c1", "a", p), [slot("c1", "a", p)].into(), "page {p}");
            assert_eq!(m.contents("c1", "a", p), m.contents("p0", "a", p));
            assert_eq!(m.why(&slot("c1", "a", p)).reason, Reason::PinnedCopy);
        }
        assert_eq!(m.sharers("c1", "a", 2), [slot("c1", "a", 2), slot("p0", "a", 2)].into());
        // Unpinned, the next fork shares again.
        let m = run(&format!("{PINNED} - unpin: {{kind: uring}}\n - fork: {{child: c1}}\n"));
        assert_eq!(m.sharers("c1", "a", 0), [slot("c1", "a", 0), slot("p0", "a", 0)].into());
    }

    #[test]
    fn vmsplice_takes_a_reference_that_fork_does_not_look_for() {
        let m = run("name: t\nabout: t\nsteps:\n - mmap: {name: a, pages: 1, backing: anon, share: private}\n - write: {map: a, page: 0}\n - pin: {map: a, page: 0, kind: vmsplice}\n - fork: {child: c1}\n");
        assert_eq!(m.sharers("c1", "a", 0), [slot("c1", "a", 0), slot("p0", "a", 0)].into());
    }

    #[test]
    fn a_read_only_pin_unshares_a_shared_anon_page_and_keeps_its_bytes() {
        let m = run("name: t\nabout: t\nsteps:\n - mmap: {name: a, pages: 2, backing: anon, share: private}\n - write: {map: a, page: 0, pages: 2}\n - fork: {child: c1}\n - remote: {map: a, page: 0, kind: readv}\n");
        assert_eq!(m.sharers("p0", "a", 0), [slot("p0", "a", 0)].into());
        assert_eq!(m.contents("p0", "a", 0), m.contents("c1", "a", 0));
        assert_eq!(m.why(&slot("p0", "a", 0)).reason, Reason::PinUnshare);
        assert_eq!(m.sharers("p0", "a", 1).len(), 2);
    }

    #[test]
    fn ptrace_writes_one_word_into_a_read_only_private_map_by_cow() {
        let m = run("name: t\nabout: t\nsteps:\n - mmap: {name: a, pages: 1, backing: anon, share: private}\n - write: {map: a, page: 0, value: 7}\n - mprotect: {map: a, page: 0, prot: r}\n - fork: {child: c1}\n - remote: {proc: c1, map: a, page: 0, kind: ptrace}\n");
        assert_eq!(m.sharers("c1", "a", 0), [slot("c1", "a", 0)].into());
        let b = m.contents("c1", "a", 0).unwrap();
        assert_eq!((b.value, b.tag), (7, Some(Remote::poke_word(0, 5))));
        assert_eq!(m.contents("p0", "a", 0).unwrap().tag, None);
    }

    #[test]
    fn pageout_and_reclaim_leave_a_pinned_page_mapped() {
        for step in ["madvise: {map: a, page: 0, pages: 3, advice: pageout}", "reclaim: {}"] {
            let m = run(&format!("{PINNED} - {step}\n"));
            assert!(!m.unpredictable.contains_key(&slot("p0", "a", 0)), "{step}");
            assert!(m.unpredictable.contains_key(&slot("p0", "a", 2)), "{step}");
        }
    }

    #[test]
    fn truncate_unmaps_cow_copies_too_and_punch_keeps_them() {
        let base = "name: t\nabout: t\nsteps:\n - mmap: {name: m, pages: 4, backing: memfd, share: private}\n - read: {map: m, page: 0, pages: 4}\n - fork: {child: c1}\n - read: {proc: c1, map: m, page: 0, pages: 4}\n - write: {proc: c1, map: m, page: 3}\n - write: {proc: c1, map: m, page: 1}\n";
        let m = run(&format!("{base} - truncate: {{map: m, pages: 2}}\n"));
        // Past the end: the page cache pages and c1's COW copy (even_cows=1).
        for s in [slot("p0", "m", 3), slot("c1", "m", 3), slot("p0", "m", 2)] {
            assert_eq!(m.frame(&s.0, &s.1, s.2), None, "{s:?}");
        }
        assert_eq!(m.why(&slot("c1", "m", 3)).reason, Reason::Truncated);
        assert!(matches!(m.frame("c1", "m", 1), Some(Frame::Anon(_))));
        assert_eq!(m.sigbus_at("c1", "m", 0, 4), Some(2));
        assert_eq!(m.sigbus_at("p0", "m", 0, 2), None);
        let m = run(&format!("{base} - punch: {{map: m, page: 1, pages: 3}}\n"));
        // A punch keeps c1's COW copies (even_cows=0) and unmaps the page cache pages.
        assert!(matches!(m.frame("c1", "m", 3), Some(Frame::Anon(_))));
        assert!(matches!(m.frame("c1", "m", 1), Some(Frame::Anon(_))));
        assert_eq!(m.frame("c1", "m", 2), None);
        assert_eq!(m.frame("p0", "m", 1), None);
        assert!(matches!(m.frame("p0", "m", 0), Some(Frame::Object(..))));
        assert_eq!(m.sigbus_at("p0", "m", 0, 4), None);
    }

    #[test]
    fn a_hole_and_a_regrown_tail_read_as_zeros() {
        let m = run("name: t\nabout: t\nsteps:\n - mmap: {name: s, pages: 4, backing: anon, share: shared}\n - write: {map: s, page: 0, pages: 4}\n - fork: {child: c1}\n - madvise: {proc: c1, map: s, page: 1, pages: 1, advice: remove}\n - read: {map: s, page: 1}\n");
        assert_eq!(m.contents("p0", "s", 1).map(|b| b.value), Some(0));
        assert_ne!(m.contents("c1", "s", 2).map(|b| b.value), Some(0));
        let m = run("name: t\nabout: t\nsteps:\n - mmap: {name: f, pages: 4, backing: file, share: shared}\n - write: {map: f, page: 0, pages: 4}\n - truncate: {map: f, pages: 1}\n - truncate: {map: f, pages: 4}\n - write: {map: f, page: 0, pages: 4}\n");
        assert_eq!(m.sigbus_at("p0", "f", 0, 4), None);
        let m = run("name: t\nabout: t\nsteps:\n - mmap: {name: f, pages: 4, backing: file, share: shared}\n - write: {map: f, page: 0, pages: 4}\n - truncate: {map: f, pages: 1}\n - truncate: {map: f, pages: 4}\n - read: {map: f, page: 3}\n");
        assert_eq!(m.contents("p0", "f", 3).map(|b| b.value), Some(0));
    }

    #[test]
    fn reclaim_may_take_every_present_page_shared_ones_too() {
        let m = run("name: t\nabout: t\nsteps:\n - mmap: {name: a, pages: 3, backing: anon, share: private}\n - mmap: {name: m, pages: 2, backing: memfd, share: shared}\n - write: {map: a, page: 0, pages: 2}\n - write: {map: m, page: 1}\n - fork: {child: c1}\n - read: {proc: c1, map: m, page: 1}\n - reclaim: {}\n");
        for s in [slot("p0", "a", 0), slot("c1", "a", 1), slot("p0", "m", 1), slot("c1", "m", 1)] {
            assert_eq!(m.unpredictable.get(&s).map(String::as_str), Some(RECLAIM), "{s:?}");
            assert!(m.paged_out.contains(&s), "{s:?}");
        }
        // A page nobody faulted in has nothing to reclaim.
        assert!(!m.unpredictable.contains_key(&slot("p0", "a", 2)));
        assert!(!m.paged_out.contains(&slot("p0", "m", 0)));
    }

    #[test]
    fn mlock_splits_the_vma_so_populate_leaves_the_rest_without_an_anon_vma() {
        // Page 0 is locked and populated, page 1 only read: its VMA has no anon_vma, so
        // fork does not copy its page cache PTE (seed 2026, run 2527).
        let m = run("name: t\nabout: t\nsteps:\n - mmap: {name: m1, pages: 2, backing: memfd, share: private}\n - mlock: {map: m1, page: 0, pages: 1}\n - read: {map: m1, page: 1}\n - fork: {child: c2}\n");
        assert_eq!(m.frame("c2", "m1", 1), None);
        assert!(m.frame("p0", "m1", 1).is_some());
    }

    #[test]
    fn a_populated_private_vma_has_an_anon_vma_that_fork_passes_on() {
        // mlockall(MCL_FUTURE) populates m1 with write faults: its VMA has an anon_vma,
        // so c1's copy has one too, and c2 inherits c1's zero page (seed 2026, run 2856).
        let m = run("name: t\nabout: t\nsteps:\n - mlockall: {future: true}\n - mmap: {name: m1, pages: 1, backing: dev-zero, share: private}\n - fork: {child: c1}\n - mremap: {proc: c1, map: m1, pages: 3}\n - read: {proc: c1, map: m1, page: 1}\n - fork: {proc: c1, child: c2}\n");
        assert_eq!(m.frame("c2", "m1", 1), Some(Frame::Zero));
        assert_eq!(m.frame("c2", "m1", 2), None);
    }

    #[test]
    fn fork_copies_only_the_vmas_with_an_anon_vma() {
        // mprotect splits the map before the write, so page 5's VMA never gets an
        // anon_vma, and the child has no PTE there (seed 1, run 238).
        let m = run("name: t\nabout: t\nsteps:\n - mmap: {name: a, pages: 6, backing: file, share: private}\n - mprotect: {map: a, page: 4, pages: 1, prot: r}\n - read: {map: a, page: 5}\n - write: {map: a, page: 2}\n - fork: {child: c1}\n");
        assert_eq!(m.frame("c1", "a", 2), m.frame("p0", "a", 2));
        assert_eq!(m.frame("c1", "a", 5), None);
        assert!(m.frame("p0", "a", 5).is_some());
    }

    #[test]
    fn a_moved_range_takes_its_frames_and_bytes_along_and_brings_them_back() {
        let head = "name: t\nabout: t\nsteps:\n - mmap: {name: a, pages: 6, backing: anon, share: private}\n - write: {map: a, page: 0, pages: 6}\n - mremap: {map: a, page: 2, pages: 2, as: a2, to: {after: a}}\n";
        let m = run(head);
        let moved = m.frame("p0", "a2", 0);
        assert!(moved.is_some());
        assert_eq!(m.frame("p0", "a", 2), None, "the range left its map");
        assert_eq!(m.contents("p0", "a2", 1).map(|b| b.tag), Some(Some(3)), "the bytes page 3 was written with");
        let m = run(&format!("{head} - mremap: {{map: a2, pages: 2, to: {{back: true}}}}\n - fork: {{child: c1}}\n"));
        assert_eq!(m.frame("p0", "a", 2), moved, "back where it came from");
        assert_eq!(m.frame("c1", "a", 2), moved, "and fork shares it");
    }

    /// The clean-kernel finding of seed 2033 run 202 (6.12-debug), shrunk: copy_vma()
    /// gives an unfaulted piece of a private /dev/zero map a pgoff from its address,
    /// where the piece that stayed has its file offset, so back home it stays a VMA of
    /// its own. A plain anonymous map's pgoff was its address from the start: it merges.
    #[test]
    fn an_unfaulted_dev_zero_range_moved_back_stays_a_vma_of_its_own() {
        let vmas = |backing: &str, write: &str| {
            let m = run(&format!("name: t\nabout: t\nsteps:\n - mmap: {{name: a, pages: 2, backing: {backing}, share: private}}\n{write} - mremap: {{map: a, page: 0, pages: 1, as: b, move: true}}\n - mremap: {{map: b, pages: 1, to: {{back: true}}}}\n"));
            let pages = m.vmas("p0", "a").unwrap().pages;
            pages.iter().map(|a| a.unwrap().vma).collect::<std::collections::BTreeSet<_>>().len()
        };
        assert_eq!(vmas("dev-zero", ""), 2);
        assert_eq!(vmas("anon", ""), 1);
        assert_eq!(vmas("dev-zero", " - write: {map: a, page: 0, pages: 2}\n"), 1, "an anon_vma keeps the pgoff");
    }

    /// mlock_fixup() and mmap_region() give a hugetlb VMA no VM_LOCKED (nor
    /// VM_LOCKONFAULT), so mlockall(MCL_ONFAULT) leaves it populated by mm_populate()
    /// and do_mmap(), old and new, where other maps stay unfaulted (the clean 6.12-debug
    /// campaign's seed 2035 run 2340).
    #[test]
    fn mlockall_onfault_populates_hugetlb_maps_but_locks_none() {
        let m = run("name: t\nabout: t\nsteps:\n - mmap: {name: h, pages: 512, backing: hugetlb, share: private}\n - mlockall: {future: true, onfault: true}\n - mmap: {name: g, pages: 512, backing: hugetlbfs, share: shared}\n - mmap: {name: a, pages: 4, backing: anon, share: private}\n");
        for map in ["h", "g"] {
            assert_eq!(m.unpredictable.get(&slot("p0", map, 5)).map(String::as_str), Some(MLOCK), "{map}");
            assert!(m.vmas("p0", map).unwrap().pages.iter().all(|a| a.unwrap().flags & LOCKED == 0), "{map}");
        }
        assert_eq!(m.unpredictable.get(&slot("p0", "a", 1)), None, "onfault: the anon map waits for faults");
        assert!(m.vmas("p0", "a").unwrap().pages.iter().all(|a| a.unwrap().flags & LOCKED != 0));
    }

    #[test]
    fn a_file_range_moved_away_keeps_its_object_pages() {
        let m = run("name: t\nabout: t\nsteps:\n - mmap: {name: f, pages: 6, backing: memfd, share: shared}\n - mremap: {map: f, page: 4, pages: 2, as: g, move: true}\n - write: {map: g, page: 1}\n");
        assert!(matches!(m.frame("p0", "g", 1), Some(Frame::Object(_, 5))));
    }

    #[test]
    fn read_fault_maps_the_zero_page() {
        let m = run("name: t\nabout: t\nsteps:\n - mmap: {name: a, pages: 2, backing: anon, share: private}\n - read: {map: a, page: 1}\n");
        assert_eq!(m.frame("p0", "a", 1), Some(Frame::Zero));
        assert_eq!(m.frame("p0", "a", 0), None);
    }
}
