//! The sequence generator: random but valid scenarios over every step kind.
//!
//! It keeps a symbolic copy of what the guest will hold (live processes, their maps,
//! which pages are mapped and with what protection) and only picks steps that are
//! valid in that state and cannot fault in the workload: no write to a read-only page,
//! no touch past the end of a file, no mremap across a split VMA.
//!
//! Architecture invariant: generation is a pure function of the configuration, the
//! campaign seed and the run number; the kernel never influences it.

use crate::scenario::count::pmd_pages;
use crate::scenario::span;
use crate::scenario::{
    Access, Advice, Align, Anchor, Backing, CheckWhat, Compact, Fork, Ksm, Madvise, Migrate, Mlock, Mlockall, Mmap,
    Mprotect, Mremap, Mthp, MthpMode, PageRef, Pin, PinKind, Place, Proc, Prot, Range, Reclaim, Remote, RemoteKind,
    Scenario, Share, Step, Truncate, Unpin, World, FIRST_PROC, MAX_PAGES, MAX_PROCS,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rmapcheck_core::ops::HUGETLB_POOL;
use rmapcheck_core::scenario::world::MAX_PIN_PAGES;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::str::FromStr;

mod uffd;
mod writeback;

/// Relative weights of the step kinds. A kind with weight 0 never appears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weights(pub BTreeMap<Op, u32>);

/// The step kinds the generator picks from (`check: all` is injected, not picked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    Mmap,
    Munmap,
    Mprotect,
    Mremap,
    Madvise,
    Write,
    Read,
    Fork,
    Exit,
    Findpage,
    Findtask,
    /// Run KSM (merges what MADV_MERGEABLE maps hold alike).
    Ksm,
    /// MADV_PAGEOUT, MADV_COLD or MADV_FREE.
    Pageout,
    /// move_pages() to the other node.
    Migrate,
    /// Compact all memory.
    Compact,
    /// memory.reclaim: reclaim with its reference check, shared pages too.
    Reclaim,
    /// Split (debugfs) or collapse (MADV_COLLAPSE) THPs.
    Thp,
    /// mlock, munlock, mlockall, munlockall.
    Mlock,
    /// Where maps land: a map next to another (faulted or not), a sub-range moved
    /// away, over another map or back, a large map across a PMD boundary.
    Place,
    /// Test only (weight 0 unless asked for): corrupts a page behind the model's back.
    Poke,
    /// pin (io_uring, vmsplice) a range a process holds, or unpin a kind.
    Pin,
    /// A one-shot GUP from outside: process_vm_readv/writev, ptrace POKEDATA.
    Remote,
    /// A hole in a file (punch on a memfd or file map, MADV_REMOVE on a shared map);
    /// its motif truncates.
    Truncate,
    /// msync, fsync, sync or drop_caches.
    Writeback,
    /// A map of one huge page of hugetlb memory (MAP_HUGETLB or a hugetlbfs file).
    Hugetlb,
    /// userfaultfd: register a map, then copy, zeropage, move or write-protect in it.
    Uffd,
}

impl Op {
    pub const ALL: [Op; 26] = [
        Op::Mmap,
        Op::Munmap,
        Op::Mprotect,
        Op::Mremap,
        Op::Madvise,
        Op::Write,
        Op::Read,
        Op::Fork,
        Op::Exit,
        Op::Findpage,
        Op::Findtask,
        Op::Ksm,
        Op::Pageout,
        Op::Migrate,
        Op::Compact,
        Op::Reclaim,
        Op::Thp,
        Op::Mlock,
        Op::Place,
        Op::Poke,
        Op::Pin,
        Op::Remote,
        Op::Truncate,
        Op::Writeback,
        Op::Hugetlb,
        Op::Uffd,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::Mmap => "mmap",
            Op::Munmap => "munmap",
            Op::Mprotect => "mprotect",
            Op::Mremap => "mremap",
            Op::Madvise => "madvise",
            Op::Write => "write",
            Op::Read => "read",
            Op::Fork => "fork",
            Op::Exit => "exit",
            Op::Findpage => "findpage",
            Op::Findtask => "findtask",
            Op::Ksm => "ksm",
            Op::Pageout => "pageout",
            Op::Migrate => "migrate",
            Op::Compact => "compact",
            Op::Reclaim => "reclaim",
            Op::Thp => "thp",
            Op::Mlock => "mlock",
            Op::Place => "place",
            Op::Poke => "poke",
            Op::Pin => "pin",
            Op::Remote => "remote",
            Op::Truncate => "truncate",
            Op::Writeback => "writeback",
            Op::Hugetlb => "hugetlb",
            Op::Uffd => "uffd",
        }
    }
}

impl Default for Weights {
    /// Writes and forks dominate: they make the sharing rmap must track.
    fn default() -> Weights {
        Weights(BTreeMap::from([
            (Op::Mmap, 8),
            (Op::Munmap, 3),
            (Op::Mprotect, 3),
            (Op::Mremap, 3),
            (Op::Madvise, 5),
            (Op::Write, 14),
            (Op::Read, 5),
            (Op::Fork, 6),
            (Op::Exit, 2),
            (Op::Findpage, 2),
            (Op::Findtask, 1),
            (Op::Ksm, 2),
            (Op::Pageout, 4),
            (Op::Migrate, 3),
            (Op::Compact, 1),
            (Op::Reclaim, 1),
            (Op::Thp, 4),
            (Op::Mlock, 1),
            (Op::Place, 3),
            (Op::Poke, 0),
            (Op::Pin, 2),
            (Op::Remote, 2),
            (Op::Truncate, 2),
            (Op::Writeback, 2),
            (Op::Hugetlb, 1),
            (Op::Uffd, 2),
        ]))
    }
}

/// `fork=10,exit=0`: overrides of the default weights.
impl FromStr for Weights {
    type Err = String;
    fn from_str(s: &str) -> Result<Weights, String> {
        let mut w = Weights::default();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (name, value) = part.split_once('=').ok_or_else(|| format!("'{part}' is not op=weight"))?;
            let op = Op::ALL.iter().find(|o| o.name() == name.trim()).ok_or_else(|| {
                let names: Vec<_> = Op::ALL.iter().map(|o| o.name()).collect();
                format!("unknown op '{}' (one of {})", name.trim(), names.join(", "))
            })?;
            let value = value.trim().parse().map_err(|_| format!("weight '{}' is not a number", value.trim()))?;
            w.0.insert(*op, value);
        }
        if w.0.values().all(|v| *v == 0) {
            return Err("every weight is 0".into());
        }
        Ok(w)
    }
}

impl fmt::Display for Weights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(op, w)| format!("{}={w}", op.name())).collect();
        write!(f, "{}", parts.join(","))
    }
}

/// The largest map that mmap locks, mlock locks or mlockall finds (see `mmap`).
const LOCK_MAX_PAGES: u64 = 64;

/// Bounds of generated sequences.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Steps per sequence, not counting injected checks.
    pub steps: usize,
    /// Live processes at most.
    pub max_procs: usize,
    /// Maps per process at most.
    pub max_maps: usize,
    /// Pages per map at most.
    pub max_pages: u64,
    /// Inject `check: all` after every this many steps (and always at the end).
    pub check_every: usize,
    /// Pages of a map with `huge: true`; 0 draws them like any map. A PMD's worth
    /// (page size / 8) gives whole THPs, hence large folios.
    pub huge_pages: u64,
    pub weights: Weights,
    /// The kernel's page size: large maps are sized in PMDs of it.
    pub page_size: u64,
    /// One mmap in this many is large: half a PMD up to two PMDs (0: never). Every
    /// present page is walked at each check, so they cost: a THP is 512 walks (2048
    /// on 16k).
    pub large_every: u32,
    /// One run in this many turns an anon or shmem mTHP size on (0: never).
    pub mthp_every: u32,
    /// One run in this many plays a motif somewhere in its second half (0: never): a
    /// short sequence that reaches a situation random steps rarely reach (`Motif`).
    pub motif_every: u32,
}

impl Default for GenConfig {
    fn default() -> GenConfig {
        GenConfig {
            steps: 30,
            max_procs: 5,
            max_maps: 4,
            max_pages: 6,
            check_every: 1,
            huge_pages: 0,
            weights: Weights::default(),
            page_size: crate::scenario::count::DEFAULT_PAGE_SIZE,
            large_every: 15,
            mthp_every: 4,
            motif_every: 4,
        }
    }
}

/// The seed of run `run` of a campaign seeded with `seed` (splitmix64, so neighbouring
/// runs get unrelated streams).
pub fn run_seed(seed: u64, run: u64) -> u64 {
    let mut z = seed ^ run.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[derive(Debug, Clone, Copy)]
struct PageState {
    present: bool,
    prot: Prot,
}

#[derive(Debug, Clone)]
struct MapState {
    backing: Backing,
    share: Share,
    pages: Vec<PageState>,
    /// No partial mprotect or flag-changing madvise yet, so the map is one VMA and
    /// mremap may move it whole.
    one_vma: bool,
    dontfork: bool,
    /// MADV_MERGEABLE: writes often use the shared byte, so KSM has pages to merge.
    mergeable: bool,
    /// Some of it may be VM_LOCKED: madvise that drops or reclaims pages (dontneed,
    /// free, cold, pageout) fails there with EINVAL.
    locked: bool,
    /// Faults may map large folios here (a THP-sized anon map with a hugepage hint, or
    /// anon memory under the run's mTHP size): migrate and thp prefer it.
    large: bool,
    /// Made with `align:`: where it ends, in pages from the PMD boundary it was
    /// aligned to (negative: before it), so a map moved right after it straddles.
    align_end: Option<i64>,
    /// hugetlb memory: the map (private) or file (shared) it was made as, which fork
    /// copies keep. Only reads, writes and findpage touch it (`pick_map`).
    hugetlb: Option<usize>,
    /// Registered with the process's userfaultfd: no mremap, pin, remote access or
    /// mlock then (World::uffd_refusal).
    uffd: Option<crate::scenario::UffdMode>,
}

impl MapState {
    /// Private anon memory: may grow with mremap, may take MADV_WIPEONFORK.
    fn anon_like(&self) -> bool {
        self.share == Share::Private && matches!(self.backing, Backing::Anon | Backing::DevZero)
    }
    fn all_present(&self) -> bool {
        self.pages.iter().all(|p| p.present)
    }
}

#[derive(Debug, Clone)]
struct ProcState {
    label: String,
    maps: BTreeMap<String, MapState>,
    /// mlockall(MCL_FUTURE): its later maps are locked. fork does not pass it on.
    lock_future: bool,
}

impl ProcState {
    /// Its private hugetlb maps (one huge page each), which a fork copies.
    fn hugetlb_private(&self) -> u64 {
        self.maps.values().filter(|m| m.hugetlb.is_some() && m.share == Share::Private && !m.dontfork).count() as u64
    }

    /// The state of a child that this process forks: DONTFORK maps stay behind, and no
    /// VMA of the child is VM_LOCKED.
    fn forked(&self, child: &str) -> ProcState {
        let maps = self
            .maps
            .iter()
            .filter(|(_, m)| !m.dontfork)
            .map(|(n, m)| (n.clone(), MapState { locked: false, uffd: None, ..m.clone() }))
            .collect();
        ProcState { label: child.to_string(), maps, lock_future: false }
    }
}

fn readable(p: Prot) -> bool {
    p != Prot::None
}

fn writable(p: Prot) -> bool {
    matches!(p, Prot::Rw | Prot::Rwx)
}

struct Gen<'a> {
    cfg: &'a GenConfig,
    rng: ChaCha8Rng,
    procs: Vec<ProcState>,
    /// The scenario's processes and maps, for what makes a step valid; `procs` keeps
    /// what the generator wants beyond that (protections, locks, large folios).
    world: World,
    next_map: usize,
    next_child: usize,
    steps: Vec<Step>,
    /// The run's mTHP folio size in pages, if it turned one on.
    mthp_pages: Option<u64>,
    /// That size, if it is on for shmem (memfd, tmpfs) too.
    shmem_folio: Option<u64>,
}

/// Generate run `run` of the campaign seeded with `seed`.
pub fn generate(cfg: &GenConfig, seed: u64, run: u64) -> Scenario {
    let mut g = Gen {
        cfg,
        rng: ChaCha8Rng::seed_from_u64(run_seed(seed, run)),
        procs: vec![ProcState { label: FIRST_PROC.into(), maps: BTreeMap::new(), lock_future: false }],
        world: World::for_page_size(cfg.page_size),
        next_map: 0,
        next_child: 1,
        steps: Vec::new(),
        mthp_pages: None,
        shmem_folio: None,
    };
    let mthp = g.mthp();
    g.mthp_pages = mthp.first().and_then(|m| m.pages);
    g.shmem_folio = mthp.first().filter(|m| m.shmem.is_some()).and_then(|m| m.pages);
    let every = cfg.check_every.max(1);
    let mut since_check = 0;
    let steps = cfg.steps.max(1);
    // In the middle half: late enough that random steps made something for it to act
    // on, early enough that random steps act on what it made. A motif that finds no
    // room (processes, maps) is tried again at the next step.
    let mut motif_at = (cfg.motif_every > 0 && g.rng.gen_range(0..cfg.motif_every) == 0)
        .then(|| g.rng.gen_range(steps / 4..(steps * 3 / 4).max(steps / 4 + 1)));
    let kind = motif_at.map(|_| g.pick_motif());
    let mut motif = VecDeque::new();
    let mut i = 0;
    while i < steps || !motif.is_empty() {
        if let (Some(kind), true) = (kind, motif_at == Some(i)) {
            motif = g.motif(kind).into();
            motif_at = (motif.is_empty() && i + 1 < steps).then_some(i + 1);
        }
        i += 1;
        let Some(step) = motif.pop_front().or_else(|| g.pick()) else { break };
        g.steps.push(step);
        since_check += 1;
        if since_check == every {
            g.steps.push(Step::Check(CheckWhat::All));
            since_check = 0;
        }
    }
    if !matches!(g.steps.last(), Some(Step::Check(_))) {
        g.steps.push(Step::Check(CheckWhat::All));
    }
    Scenario {
        name: format!("fuzz-s{seed}-r{run}"),
        about: format!("generated by rmapcheck fuzz, seed {seed}, run {run}"),
        steps: g.steps,
        expect: Vec::new(),
        mthp,
        known_bug: None,
        text: None,
    }
}

/// The generator's symbolic state driven by steps from elsewhere (corpus entries,
/// mutants, scenario files): `apply` plays a step if the generator could have made it
/// in this state (valid, and it cannot fault in the workload), and `pick` makes a new
/// one as the generator would.
pub struct Sim<'a>(Gen<'a>);

impl<'a> Sim<'a> {
    /// The state at the start of a run with `mthp`; `seed` drives `pick`.
    pub fn new(cfg: &'a GenConfig, seed: u64, mthp: &[Mthp]) -> Sim<'a> {
        let mut g = Gen {
            cfg,
            rng: ChaCha8Rng::seed_from_u64(seed),
            procs: vec![ProcState { label: FIRST_PROC.into(), maps: BTreeMap::new(), lock_future: false }],
            world: World::for_page_size(cfg.page_size),
            next_map: 0,
            next_child: 1,
            steps: Vec::new(),
            mthp_pages: None,
            shmem_folio: None,
        };
        g.mthp_pages = mthp.first().and_then(|m| m.pages);
        g.shmem_folio = mthp.first().filter(|m| m.shmem.is_some()).and_then(|m| m.pages);
        Sim(g)
    }

    /// A motif's steps, played into the state (none when it has no room here).
    pub fn motif(&mut self) -> Vec<Step> {
        let kind = self.0.pick_motif();
        self.0.motif(kind)
    }

    /// A new valid step for this state, already played.
    pub fn pick(&mut self) -> Option<Step> {
        self.0.pick()
    }

    /// A new step of kind `op`, already played.
    pub fn make(&mut self, op: Op) -> Option<Step> {
        if self.0.possible(op) {
            self.0.make(op)
        } else {
            None
        }
    }

    /// The labels of the live processes.
    pub fn live(&self) -> Vec<String> {
        self.0.procs.iter().map(|p| p.label.clone()).collect()
    }

    /// Whether `proc` is live and has the map `map`.
    pub fn has_map(&self, proc: &str, map: &str) -> bool {
        self.0.procs.iter().any(|p| p.label == proc && p.maps.contains_key(map))
    }

    /// A map name and a child label no earlier step used.
    pub fn fresh_labels(&self) -> (usize, usize) {
        (self.0.next_map, self.0.next_child)
    }

    /// Play `step` if it is one the generator could have made here.
    pub fn apply(&mut self, step: &Step) -> bool {
        let ok = self.0.allows(step);
        if ok {
            self.0.absorb(step);
        }
        ok
    }
}

/// An mremap of a whole map: to `pages` pages, to a place or not.
fn whole_mremap(proc: String, map: String, pages: u64, to: Option<Place>, move_: bool, dontunmap: bool) -> Step {
    Step::Mremap(Mremap { proc, map, pages, page: None, new_pages: None, as_: None, to, move_, dontunmap })
}

/// The number in a label like `m12` or `c3`.
fn label_number(label: &str, prefix: char) -> Option<usize> {
    label.strip_prefix(prefix)?.parse().ok()
}

impl Gen<'_> {
    fn proc_of(&self, label: &str) -> Option<usize> {
        self.procs.iter().position(|p| p.label == label)
    }

    fn map_of(&self, proc: &str, map: &str) -> Option<&MapState> {
        self.procs.get(self.proc_of(proc)?)?.maps.get(map)
    }

    /// Whether every page of `[first, first+count)` of `m` is present and `want`s.
    fn range_ok(m: &MapState, first: u64, count: u64, want: impl Fn(&PageState) -> bool) -> bool {
        count > 0
            && first.checked_add(count).is_some_and(|end| end <= m.pages.len() as u64)
            && m.pages[first as usize..(first + count) as usize].iter().all(|p| p.present && want(p))
    }

    /// Whether the generator could have made `step` in this state: a valid step (the
    /// World's rules) that cannot fault in the workload and that the generator makes.
    fn allows(&self, step: &Step) -> bool {
        if self.world.clone().apply(step).is_err() {
            return false;
        }
        let map = |p: &str, m: &str| self.map_of(p, m);
        match step {
            Step::Madvise(x) => map(&x.proc, &x.map).is_some_and(|m| {
                let len = m.pages.len() as u64;
                let count = x.pages.unwrap_or(len.saturating_sub(x.page));
                let whole_only =
                    matches!(x.advice, Advice::Dontfork | Advice::Dofork | Advice::Wipeonfork | Advice::Keeponfork);
                let anon_only = matches!(x.advice, Advice::Wipeonfork | Advice::Keeponfork | Advice::Free);
                let reclaims = matches!(x.advice, Advice::Dontneed | Advice::Free | Advice::Cold | Advice::Pageout);
                (!whole_only || (x.page == 0 && count == len))
                    && (!anon_only || m.anon_like())
                    && !(reclaims && m.locked)
            }),
            Step::Mremap(x) if x.placed() => map(&x.proc, &x.map).is_some_and(|m| {
                let (_, count) = x.source(m.pages.len() as u64);
                m.one_vma && (m.anon_like() || x.new_size() <= count) && (!x.dontunmap || m.anon_like())
            }),
            Step::Mremap(x) => map(&x.proc, &x.map).is_some_and(|m| {
                let old = m.pages.len() as u64;
                m.one_vma
                    && (m.anon_like() || x.pages <= old)
                    && (!x.dontunmap || (m.anon_like() && x.pages == old && !x.move_))
            }),
            Step::Write(a) | Step::Read(a) => map(&a.proc, &a.map).is_some_and(|m| {
                let write = matches!(step, Step::Write(_));
                Self::range_ok(m, a.page, a.pages, |p| if write { writable(p.prot) } else { readable(p.prot) })
            }),
            Step::Poke(r) => map(&r.proc, &r.map).is_some_and(|m| Self::range_ok(m, r.page, 1, |p| writable(p.prot))),
            Step::Pin(x) => map(&x.proc, &x.map).is_some_and(|m| match x.kind {
                PinKind::Uring => m.anon_like() && Self::range_ok(m, x.page, x.pages, |p| writable(p.prot)),
                PinKind::Vmsplice => Self::range_ok(m, x.page, x.pages, |p| readable(p.prot)),
            }),
            Step::Remote(x) => map(&x.proc, &x.map).is_some_and(|m| match x.kind {
                RemoteKind::Readv => Self::range_ok(m, x.page, x.pages, |p| readable(p.prot)),
                RemoteKind::Writev => Self::range_ok(m, x.page, x.pages, |p| writable(p.prot)),
                // FOLL_FORCE writes a read-only map only where it is private (COW).
                RemoteKind::Ptrace => {
                    m.share == Share::Private && Self::range_ok(m, x.page, x.pages, |p| readable(p.prot))
                }
            }),
            Step::Migrate(x) => x.node.is_none_or(|n| n <= 1),
            Step::Mlock(x) => map(&x.proc, &x.map).is_some_and(|m| {
                let (first, count) = span(x.page, x.pages, m.pages.len() as u64);
                Self::range_ok(m, first, count, |p| x.onfault || readable(p.prot))
            }),
            Step::Fork(f) => label_number(&f.child, 'c').is_none_or(|n| n >= self.next_child),
            // The generator never ends the last process: steps need one to run in.
            Step::Exit(_) => self.procs.len() > 1,
            _ => true,
        }
    }

    /// The state of the map an `mmap` step makes in process `pi`.
    fn mapped(&self, m: &Mmap, pi: usize) -> MapState {
        MapState {
            backing: m.backing,
            share: m.share,
            pages: vec![PageState { present: true, prot: Prot::Rw }; m.pages as usize],
            one_vma: true,
            dontfork: false,
            mergeable: false,
            locked: m.locked || self.procs[pi].lock_future,
            large: self.may_map_large_folios(m.backing, m.share, m.huge, m.pages),
            align_end: m.align.map(|a| a.0 + m.pages as i64),
            hugetlb: m.backing.hugetlb().then_some(self.next_map),
            uffd: None,
        }
    }

    /// Play `step` (which `allows` accepted) into the state, as `make` does for its own.
    fn absorb(&mut self, step: &Step) {
        // A move back needs the World from before the step: where the range came from.
        if let Step::Mremap(x) = step {
            if let Some(pi) = self.proc_of(&x.proc).filter(|_| x.placed()) {
                self.track_remap(pi, x);
            }
            if let Some(n) = x.as_.as_deref().and_then(|a| label_number(a, 'm')) {
                self.next_map = self.next_map.max(n + 1);
            }
        }
        let valid = self.world.apply(step);
        debug_assert!(valid.is_ok(), "{step:?}: {valid:?}");
        let Some(pi) = step.proc().and_then(|p| self.proc_of(p)) else { return };
        match step {
            Step::Mmap(m) => {
                if let Some(n) = label_number(&m.name, 'm') {
                    self.next_map = self.next_map.max(n + 1);
                }
                let state = self.mapped(m, pi);
                self.procs[pi].maps.insert(m.name.clone(), state);
            }
            Step::Munmap(r) => {
                let m = self.map_mut(pi, &r.map);
                let (first, count) = span(r.page, r.pages, m.pages.len() as u64);
                for p in first..first + count {
                    m.pages[p as usize].present = false;
                }
                m.one_vma = false;
                if !m.pages.iter().any(|p| p.present) {
                    self.procs[pi].maps.remove(&r.map);
                }
            }
            Step::Mprotect(x) => {
                let m = self.map_mut(pi, &x.map);
                let count = x.pages.unwrap_or(m.pages.len() as u64 - x.page);
                if count != m.pages.len() as u64 {
                    m.one_vma = false;
                }
                for p in x.page..x.page + count {
                    m.pages[p as usize].prot = x.prot;
                }
            }
            Step::Madvise(x) => {
                let m = self.map_mut(pi, &x.map);
                let whole = x.pages.is_none_or(|n| x.page == 0 && n == m.pages.len() as u64);
                match x.advice {
                    Advice::Dontfork => m.dontfork = true,
                    Advice::Dofork => m.dontfork = false,
                    Advice::Mergeable => {
                        m.mergeable = true;
                        m.one_vma &= whole;
                    }
                    Advice::Hugepage | Advice::Nohugepage | Advice::Unmergeable => m.one_vma &= whole,
                    _ => {}
                }
            }
            Step::Mremap(x) if x.placed() => {}
            Step::Mremap(x) => {
                let m = self.map_mut(pi, &x.map);
                let prot = m.pages[0].prot;
                m.pages = vec![PageState { present: true, prot }; x.pages as usize];
            }
            Step::Mlock(x) => {
                let m = self.map_mut(pi, &x.map);
                let (first, count) = span(x.page, x.pages, m.pages.len() as u64);
                m.one_vma &= first == 0 && count == m.pages.len() as u64;
                m.locked = true;
            }
            Step::Mlockall(x) => {
                let p = &mut self.procs[pi];
                p.lock_future |= x.future;
                for m in p.maps.values_mut() {
                    m.locked |= x.current;
                }
            }
            Step::Munlock(r) => {
                let m = self.map_mut(pi, &r.map);
                let (first, count) = span(r.page, r.pages, m.pages.len() as u64);
                m.one_vma &= first == 0 && count == m.pages.len() as u64;
            }
            Step::Fork(f) => {
                if let Some(n) = label_number(&f.child, 'c') {
                    self.next_child = self.next_child.max(n + 1);
                }
                let child = self.procs[pi].forked(&f.child);
                self.procs.push(child);
            }
            Step::Exit(_) => {
                self.procs.remove(pi);
            }
            Step::Uffd(x) => self.map_mut(pi, &x.map).uffd = Some(x.mode),
            _ => {}
        }
    }
}

/// How many processes, and maps in one process, a motif may add past the run's bounds
/// (`max_procs`, `max_maps`): a fork chain needs three forks wherever it lands.
const MOTIF_ROOM: usize = 3;

/// Short sequences that reach what random steps rarely reach (the trigger classes a
/// 10-minute campaign hit fewest times before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Motif {
    /// A THP shared by fork, then one page mprotected in one process: that process's
    /// PMD is split, the other's is not.
    PmdAndPte,
    /// A THP or mTHP folio, maybe shared by fork, moved to the other node.
    MigrateLarge,
    /// Equal pages merged by KSM and mapped by three processes (forked after the
    /// merge, before it, or three unrelated maps), or by one process at several
    /// addresses.
    Ksm3,
    /// Pages swapped out, then forked twice: three processes hold each swap entry
    /// (MADV_PAGEOUT leaves pages that others map alone, so swap-out comes first).
    Swap3,
    /// Pages written, then forked (a private map COW-shares them, a shared one is one
    /// page), then reclaimed: reclaim unmaps a page from every process, which
    /// MADV_PAGEOUT never does for a shared page.
    ReclaimShared,
    /// A map of large folios written, then moved whole right after a small map that
    /// ends a few pages before a PMD boundary: a fault maps a folio aligned to its size,
    /// so only a move makes one straddle the boundary.
    StraddlePmd,
    /// A written range moved away as a map of its own (maybe forked and written
    /// there), then moved back into its hole.
    MoveBack,
    /// A fork chain whose middle generation exits (its anon_vma may then be reused by
    /// the next fork), while a survivor splits a VMA and merges it again.
    ForkChain,
    /// kselftest mm/cow.c's matrix: pages written (an mTHP folio under an mTHP size),
    /// pinned by io_uring, forked, then written in parent and child: fork copies the
    /// pinned exclusive pages.
    PinFork,
    /// A memfd two processes map shared, truncated below a page both map, read across
    /// the cut (SIGBUS past the end), and grown back to its size.
    TruncateShared,
    /// A shared ext4 page written back while two processes map it, written again,
    /// synced, dropped from the page cache and read back from disk.
    Writeback,
    /// A private anon map written whole, registered with userfaultfd, then two
    /// userfaultfd operations on it (copy, zeropage, write-protect or move): random
    /// steps rarely pick the op again after registering. Only the first half is
    /// written, so a UFFDIO_MOVE of written pages into the unwritten half can succeed
    /// (a move onto a present page is EEXIST).
    Uffd,
    /// A map placed right after another of the same kind, one or both written: the
    /// kernel merges the two VMAs, with a faulted neighbour's anon_vma or without one.
    Merge,
}

impl Gen<'_> {
    /// A motif, by weight: those whose classes random steps never reach come more often.
    fn pick_motif(&mut self) -> Motif {
        let all = [
            (Motif::PmdAndPte, 1),
            (Motif::MigrateLarge, 1),
            (Motif::Ksm3, 2),
            (Motif::Swap3, 1),
            (Motif::ReclaimShared, 1),
            (Motif::StraddlePmd, 1),
            (Motif::MoveBack, 1),
            (Motif::ForkChain, 3),
            (Motif::PinFork, 3),
            (Motif::TruncateShared, 3),
            (Motif::Writeback, 2),
            (Motif::Uffd, 1),
            (Motif::Merge, 3),
        ];
        all.choose_weighted(&mut self.rng, |(_, w)| *w).expect("weights").0
    }

    /// The steps of one motif, played into the state; none when the state has no room
    /// for it (processes or maps), or when a kind of step it needs has weight 0. A
    /// motif may go MOTIF_ROOM processes and maps past the run's bounds.
    fn motif(&mut self, motif: Motif) -> Vec<Step> {
        let needs: &[Op] = match motif {
            Motif::PmdAndPte => &[Op::Mmap, Op::Fork, Op::Mprotect],
            Motif::MigrateLarge => &[Op::Mmap, Op::Migrate],
            Motif::Ksm3 => &[Op::Mmap, Op::Write, Op::Ksm, Op::Fork],
            Motif::Swap3 => &[Op::Mmap, Op::Write, Op::Pageout, Op::Fork],
            Motif::ReclaimShared => &[Op::Mmap, Op::Write, Op::Fork, Op::Reclaim],
            Motif::StraddlePmd | Motif::MoveBack => &[Op::Mmap, Op::Write, Op::Place],
            Motif::ForkChain => &[Op::Mmap, Op::Write, Op::Fork, Op::Exit, Op::Mprotect],
            Motif::PinFork => &[Op::Mmap, Op::Write, Op::Pin, Op::Fork],
            Motif::TruncateShared => &[Op::Mmap, Op::Write, Op::Fork, Op::Truncate],
            Motif::Writeback => &[Op::Mmap, Op::Write, Op::Fork, Op::Writeback],
            Motif::Uffd => &[Op::Mmap, Op::Write, Op::Uffd],
            Motif::Merge => &[Op::Mmap, Op::Write, Op::Place],
        };
        if needs.iter().any(|op| self.cfg.weights.0.get(op).is_none_or(|w| *w == 0)) {
            return Vec::new();
        }
        // Each fork may copy the private hugetlb maps of the process that holds most.
        let forks_fit = |g: &Self, forks: usize| {
            let copies = g.procs.iter().map(ProcState::hugetlb_private).max().unwrap_or(0) * forks as u64;
            g.procs.len() + forks <= g.cfg.max_procs + MOTIF_ROOM
                && g.world.made() + forks <= MAX_PROCS
                && g.hugetlb_need() + copies <= HUGETLB_POOL
        };
        let mut out = Vec::new();
        match motif {
            Motif::PmdAndPte | Motif::MigrateLarge => {
                let may_fork = self.cfg.weights.0.get(&Op::Fork).is_some_and(|w| *w > 0);
                let fork = motif == Motif::PmdAndPte || (may_fork && self.rng.gen_bool(0.5));
                let Some(pi) = self.motif_proc(1).filter(|_| forks_fit(self, fork as usize)) else { return out };
                let pmd = pmd_pages(self.cfg.page_size);
                // Under an anon mTHP size, a migration may take an mTHP folio instead.
                let (pages, huge) = match self.mthp_pages {
                    Some(n) if motif == Motif::MigrateLarge && self.rng.gen_bool(0.5) => (4 * n, None),
                    _ => (pmd, Some(true)),
                };
                let map = self.motif_mmap(&mut out, pi, pages, huge);
                // A fault maps the large folio (mmap alone populates nothing): one
                // write fills a THP, which is the whole map; an mTHP folio is the
                // first quarter.
                let (page, folio) = match huge {
                    Some(_) => (self.rng.gen_range(0..pages), pages),
                    None => (0, pages / 4),
                };
                let proc = self.procs[pi].label.clone();
                let count = if huge.is_some() { 1 } else { folio };
                self.play(&mut out, Step::Write(Access { proc, map: map.clone(), page, pages: count, value: None }));
                let mut who = pi;
                if fork {
                    let child = self.motif_fork(&mut out, pi);
                    if self.rng.gen_bool(0.5) {
                        who = child;
                    }
                }
                let proc = self.procs[who].label.clone();
                let page = self.rng.gen_range(0..folio);
                let step = if motif == Motif::PmdAndPte {
                    Step::Mprotect(Mprotect { proc, map, page, pages: Some(1), prot: Prot::R })
                } else {
                    let count = self.rng.gen_range(1..=16).min(folio - page);
                    Step::Migrate(Migrate { proc, map, page: Some(page), pages: Some(count), node: None })
                };
                self.play(&mut out, step);
            }
            Motif::Swap3 => {
                let Some(pi) = self.motif_proc(1).filter(|_| forks_fit(self, 2)) else { return out };
                let pages = self.rng.gen_range(1..=self.cfg.max_pages.max(1));
                let map = self.motif_mmap(&mut out, pi, pages, None);
                let proc = self.procs[pi].label.clone();
                let write = Step::Write(Access { proc: proc.clone(), map: map.clone(), page: 0, pages, value: None });
                let advice = Advice::Pageout;
                let pageout = Step::Madvise(Madvise { proc, map, page: 0, pages: Some(pages), advice });
                self.play(&mut out, write);
                self.play(&mut out, pageout);
                let c1 = self.motif_fork(&mut out, pi);
                let parent = if self.rng.gen_bool(0.5) { c1 } else { pi };
                self.motif_fork(&mut out, parent);
            }
            Motif::ReclaimShared => {
                let Some(pi) = self.motif_proc(1).filter(|_| forks_fit(self, 1)) else { return out };
                let pages = self.rng.gen_range(1..=self.cfg.max_pages.max(1));
                let map = self.motif_mmap(&mut out, pi, pages, None);
                let proc = self.procs[pi].label.clone();
                self.play(&mut out, Step::Write(Access { proc, map, page: 0, pages, value: None }));
                self.motif_fork(&mut out, pi);
                self.play(&mut out, Step::Reclaim(Reclaim { pages: None }));
            }
            Motif::PinFork => {
                let Some(pi) = self.motif_proc(1).filter(|_| forks_fit(self, 1)) else { return out };
                let pages = self.mthp_pages.unwrap_or(4).clamp(1, MAX_PIN_PAGES);
                let map = self.motif_mmap(&mut out, pi, pages, None);
                let proc = self.procs[pi].label.clone();
                let all = Access { proc: proc.clone(), map: map.clone(), page: 0, pages, value: None };
                self.play(&mut out, Step::Write(all));
                let page = self.rng.gen_range(0..pages);
                let count = self.rng.gen_range(1..=pages - page);
                let kind = PinKind::Uring;
                self.play(&mut out, Step::Pin(Pin { proc: proc.clone(), map: map.clone(), page, pages: count, kind }));
                let child = self.motif_fork(&mut out, pi);
                match self.rng.gen_range(0..3) {
                    // The child reads its pages by process_vm_readv: a read-only pin
                    // unshares each page it shares with the parent (the unpinned ones).
                    0 => {
                        let proc = self.procs[child].label.clone();
                        let kind = RemoteKind::Readv;
                        let remote = Remote { proc, map: map.clone(), page: 0, pages, kind, value: None };
                        self.try_play(&mut out, Step::Remote(remote));
                    }
                    // The parent's pinned pages cannot migrate: move_pages() leaves them.
                    1 => {
                        let migrate =
                            Migrate { proc, map: map.clone(), page: Some(page), pages: Some(count), node: None };
                        self.try_play(&mut out, Step::Migrate(migrate));
                    }
                    _ => {
                        for who in [pi, child] {
                            let proc = self.procs[who].label.clone();
                            let page = self.rng.gen_range(0..pages);
                            let write = Access { proc, map: map.clone(), page, pages: 1, value: None };
                            self.play(&mut out, Step::Write(write));
                        }
                    }
                }
            }
            Motif::TruncateShared => {
                let Some(pi) = self.motif_proc(1).filter(|_| forks_fit(self, 1)) else { return out };
                // Under a shmem mTHP size, two folios of it: a punch inside the first.
                let folio = self.shmem_folio.filter(|n| *n >= 2 && 2 * n <= MAX_PAGES && self.rng.gen_bool(0.5));
                let pages = match folio {
                    Some(n) => 2 * n,
                    None => self.rng.gen_range(2..=self.cfg.max_pages.max(2)),
                };
                let name = format!("m{}", self.next_map);
                let proc = self.procs[pi].label.clone();
                let (backing, share) = (Backing::Memfd, Share::Shared);
                let mmap = Mmap {
                    proc,
                    name: name.clone(),
                    pages,
                    backing,
                    share,
                    huge: None,
                    locked: false,
                    at: None,
                    align: None,
                };
                self.play(&mut out, Step::Mmap(mmap));
                let proc = self.procs[pi].label.clone();
                self.play(&mut out, Step::Write(Access { proc, map: name.clone(), page: 0, pages, value: None }));
                let child = self.motif_fork(&mut out, pi);
                let (parent, child) = (self.procs[pi].label.clone(), self.procs[child].label.clone());
                // fork copies no PTE of a shared file map: the child faults its own in.
                let all = Access { proc: child.clone(), map: name.clone(), page: 0, pages, value: None };
                self.play(&mut out, Step::Read(all));
                if let Some(n) = folio {
                    let page = self.rng.gen_range(1..n);
                    let count = self.rng.gen_range(1..=n - page);
                    let punch = Range { proc: parent, map: name.clone(), page: Some(page), pages: Some(count) };
                    self.play(&mut out, Step::Punch(punch));
                    self.play(&mut out, Step::Read(Access { proc: child, map: name, page: 0, pages, value: None }));
                    return out;
                }
                let cut = self.rng.gen_range(1..pages);
                let truncate = |pages| Step::Truncate(Truncate { proc: parent.clone(), map: name.clone(), pages });
                self.play(&mut out, truncate(cut));
                // Across the cut: the pages before it, then SIGBUS at the first past it.
                let read = Access { proc: child, map: name.clone(), page: cut - 1, pages: 2, value: None };
                self.play(&mut out, Step::Read(read));
                self.play(&mut out, truncate(pages));
            }
            Motif::Writeback => {
                let Some(pi) = self.motif_proc(1).filter(|_| forks_fit(self, 1)) else { return out };
                let pages = self.rng.gen_range(1..=self.cfg.max_pages.max(1));
                self.writeback_motif(&mut out, pi, pages);
            }
            Motif::Uffd => {
                let Some(pi) = self.motif_proc(1) else { return out };
                let pages = self.rng.gen_range(2..=self.cfg.max_pages.max(2));
                let map = self.motif_mmap(&mut out, pi, pages, None);
                let proc = self.procs[pi].label.clone();
                let half = pages / 2;
                self.play(
                    &mut out,
                    Step::Write(Access { proc: proc.clone(), map: map.clone(), page: 0, pages: half, value: None }),
                );
                use crate::scenario::{Uffd, UffdMode, UffdMove, UffdTo, UffdWp};
                let mode = *[UffdMode::Missing, UffdMode::Wp, UffdMode::Both].choose(&mut self.rng).expect("not empty");
                if !self.try_play(&mut out, Step::Uffd(Uffd { proc: proc.clone(), map: map.clone(), mode })) {
                    return out;
                }
                // Written pages moved into the unwritten half, whose PTEs are none.
                let moved = self.rng.gen_range(1..=half.min(pages - half));
                let to = UffdTo { map: map.clone(), page: half };
                let step = Step::UffdMove(UffdMove { proc: proc.clone(), map: map.clone(), page: 0, pages: moved, to });
                self.try_play(&mut out, step);
                // Write-protected pages, then a write to one: SIGBUS, the page unchanged.
                if mode.wp() {
                    let wp = UffdWp { proc: proc.clone(), map: map.clone(), page: 0, pages, on: true };
                    if self.try_play(&mut out, Step::UffdWp(wp)) {
                        let page = self.rng.gen_range(0..pages);
                        self.try_play(&mut out, Step::Write(Access { proc, map, page, pages: 1, value: None }));
                    }
                }
                // uffd() may register another map instead, already in its state.
                if let Some(step) = self.uffd() {
                    self.try_play(&mut out, step);
                }
            }
            Motif::Merge => {
                if let Some(pi) = self.motif_proc(2) {
                    self.motif_merge(&mut out, pi);
                }
            }
            Motif::Ksm3 => {
                let unrelated = self.rng.gen_range(0..4);
                let Some(pi) = self.motif_proc(1).filter(|_| forks_fit(self, 2)) else {
                    return out;
                };
                let pages = self.rng.gen_range(2..=self.cfg.max_pages.max(2));
                if unrelated == 3 {
                    // One process: its equal pages become one KSM page at each address.
                    self.motif_mergeable(&mut out, pi, pages);
                    out.push(Step::Ksm(Ksm { timeout_ms: Some(2000) }));
                } else if unrelated == 0 {
                    let (c1, c2) = (self.motif_fork(&mut out, pi), self.motif_fork(&mut out, pi));
                    for who in [pi, c1, c2] {
                        self.motif_mergeable(&mut out, who, pages);
                    }
                    out.push(Step::Ksm(Ksm { timeout_ms: Some(2000) }));
                } else {
                    let merge_first = unrelated == 1;
                    let map = self.motif_mergeable(&mut out, pi, pages);
                    if merge_first {
                        out.push(Step::Ksm(Ksm { timeout_ms: Some(2000) }));
                    }
                    let c1 = self.motif_fork(&mut out, pi);
                    let parent = if self.rng.gen_bool(0.5) { c1 } else { pi };
                    self.motif_fork(&mut out, parent);
                    if !merge_first {
                        out.push(Step::Ksm(Ksm { timeout_ms: Some(2000) }));
                    }
                    debug_assert!(self.procs[pi].maps.contains_key(&map));
                }
            }
            Motif::StraddlePmd => self.motif_straddle_pmd(&mut out),
            Motif::MoveBack => {
                if let Some(pi) = self.motif_proc(2).filter(|_| forks_fit(self, 1)) {
                    self.motif_move_back(&mut out, pi);
                }
            }
            Motif::ForkChain => {
                if let Some(pi) = self.motif_proc(1).filter(|_| forks_fit(self, 3)) {
                    self.motif_fork_chain(&mut out, pi);
                }
            }
        }
        out
    }

    fn motif_straddle_pmd(&mut self, out: &mut Vec<Step>) {
        let Some(pi) = self.motif_proc(2) else { return };
        let pmd = pmd_pages(self.cfg.page_size);
        let (pages, huge, folio) = match self.mthp_pages {
            Some(n) if self.rng.gen_bool(0.5) => ((4 * n).min(MAX_PAGES), None, n),
            _ => (pmd.min(MAX_PAGES), Some(true), pmd),
        };
        let map = self.motif_mmap(out, pi, pages, huge);
        let proc = self.procs[pi].label.clone();
        let count = if huge.is_some() { 1 } else { pages };
        self.play(
            out,
            Step::Write(Access { proc: proc.clone(), map: map.clone(), page: 0, pages: count, value: None }),
        );
        // The anchor ends `before` pages short of a boundary; the moved map begins there.
        let before = *[1u64, 4, 8, 16]
            .iter()
            .filter(|&&b| b < folio)
            .collect::<Vec<_>>()
            .choose(&mut self.rng)
            .copied()
            .unwrap_or(&1);
        let anchor = format!("m{}", self.next_map);
        let align = Some(Align(-(before as i64 + 4)));
        let mmap = Step::Mmap(Mmap {
            proc: proc.clone(),
            name: anchor.clone(),
            pages: 4,
            backing: Backing::Anon,
            share: Share::Private,
            huge: None,
            locked: false,
            at: None,
            align,
        });
        if !self.try_play(out, mmap) {
            return;
        }
        let to = Some(Place { after: Some(anchor), ..Place::default() });
        self.try_play(out, whole_mremap(proc, map, pages, to, false, false));
    }

    fn motif_merge(&mut self, out: &mut Vec<Step>, pi: usize) {
        let pages = self.rng.gen_range(1..=self.cfg.max_pages.max(1));
        let first = self.motif_mmap(out, pi, pages, None);
        let proc = self.procs[pi].label.clone();
        let faulted = self.rng.gen_bool(0.5);
        if faulted {
            let write = Access { proc: proc.clone(), map: first.clone(), page: 0, pages, value: None };
            self.play(out, Step::Write(write));
        }
        let second = format!("m{}", self.next_map);
        let mmap = Step::Mmap(Mmap {
            proc: proc.clone(),
            name: second.clone(),
            pages,
            backing: Backing::Anon,
            share: Share::Private,
            huge: None,
            locked: false,
            at: Some(Place { after: Some(first), ..Place::default() }),
            align: None,
        });
        if self.try_play(out, mmap) {
            let page = self.rng.gen_range(0..pages);
            self.play(out, Step::Write(Access { proc, map: second, page, pages: 1, value: None }));
        }
    }

    fn motif_move_back(&mut self, out: &mut Vec<Step>, pi: usize) {
        let pages = self.rng.gen_range(2..=self.cfg.max_pages.max(2));
        let map = self.motif_mmap(out, pi, pages, None);
        let proc = self.procs[pi].label.clone();
        self.play(out, Step::Write(Access { proc: proc.clone(), map: map.clone(), page: 0, pages, value: None }));
        let first = self.rng.gen_range(0..pages);
        let count = self.rng.gen_range(1..=(pages - first).min(pages - 1).max(1));
        let moved = format!("m{}", self.next_map);
        let away = Step::Mremap(Mremap {
            proc,
            map,
            pages: count,
            page: Some(first),
            new_pages: None,
            as_: Some(moved.clone()),
            to: None,
            move_: true,
            dontunmap: false,
        });
        if !self.try_play(out, away) {
            return;
        }
        let mut who = pi;
        let may_fork = self.cfg.weights.0.get(&Op::Fork).is_some_and(|w| *w > 0);
        if may_fork && self.rng.gen_bool(0.5) {
            let child = self.motif_fork(out, pi);
            if self.rng.gen_bool(0.5) {
                who = child;
            }
        }
        let proc = self.procs[who].label.clone();
        if self.rng.gen_bool(0.5) {
            let page = self.rng.gen_range(0..count);
            self.play(out, Step::Write(Access { proc: proc.clone(), map: moved.clone(), page, pages: 1, value: None }));
        }
        let back = Some(Place { back: true, ..Place::default() });
        self.try_play(out, whole_mremap(proc, moved, count, back, false, false));
    }

    fn motif_fork_chain(&mut self, out: &mut Vec<Step>, pi: usize) {
        let pages = self.rng.gen_range(3..=self.cfg.max_pages.max(3));
        let map = self.motif_mmap(out, pi, pages, None);
        let label = |g: &Self, i: usize| g.procs[i].label.clone();
        let proc = label(self, pi);
        self.play(out, Step::Write(Access { proc, map: map.clone(), page: 0, pages, value: None }));
        let c1 = self.motif_fork(out, pi);
        if self.rng.gen_bool(0.5) {
            let page = self.rng.gen_range(0..pages);
            let proc = label(self, c1);
            self.play(out, Step::Write(Access { proc, map: map.clone(), page, pages: 1, value: None }));
        }
        let c2 = self.motif_fork(out, c1);
        let (c1_label, c2_label) = (label(self, c1), label(self, c2));
        self.play(out, Step::Exit(Proc { proc: c1_label }));
        let c2 = self.proc_of(&c2_label).expect("c2 lives");
        let c3 = self.motif_fork(out, c2);
        // A survivor splits its VMA in three and merges it back.
        let who = if self.rng.gen_bool(0.5) { c2 } else { c3 };
        let proc = label(self, who);
        let page = self.rng.gen_range(1..pages - 1);
        let split =
            Step::Mprotect(Mprotect { proc: proc.clone(), map: map.clone(), page, pages: Some(1), prot: Prot::R });
        let merge =
            Step::Mprotect(Mprotect { proc: proc.clone(), map: map.clone(), page, pages: Some(1), prot: Prot::Rw });
        if self.try_play(out, split) {
            self.try_play(out, merge);
        }
        self.play(out, Step::Write(Access { proc, map, page, pages: 1, value: None }));
    }

    /// A process with room for `maps` more maps whose new maps are not locked (a
    /// locked THP would be populated and walked whole at every check).
    fn motif_proc(&mut self, maps: usize) -> Option<usize> {
        let fit = |p: &ProcState| p.maps.len() + maps <= self.cfg.max_maps + MOTIF_ROOM && !p.lock_future;
        let room: Vec<usize> = (0..self.procs.len()).filter(|&i| fit(&self.procs[i])).collect();
        room.choose(&mut self.rng).copied()
    }

    /// A motif's private anon map in process `pi`, played; returns its name.
    fn motif_mmap(&mut self, out: &mut Vec<Step>, pi: usize, pages: u64, huge: Option<bool>) -> String {
        let name = format!("m{}", self.next_map);
        let proc = self.procs[pi].label.clone();
        let step = Step::Mmap(Mmap {
            proc,
            name: name.clone(),
            pages,
            backing: Backing::Anon,
            share: Share::Private,
            huge,
            locked: false,
            at: None,
            align: None,
        });
        self.play(out, step);
        name
    }

    /// A motif's fork of process `pi`, played; returns the child's index.
    fn motif_fork(&mut self, out: &mut Vec<Step>, pi: usize) -> usize {
        let step = Step::Fork(Fork { proc: self.procs[pi].label.clone(), child: format!("c{}", self.next_child) });
        self.play(out, step);
        self.procs.len() - 1
    }

    /// A motif's map of equal pages that KSM may merge, played; returns its name.
    fn motif_mergeable(&mut self, out: &mut Vec<Step>, pi: usize, pages: u64) -> String {
        let map = self.motif_mmap(out, pi, pages, None);
        let proc = self.procs[pi].label.clone();
        let write = Step::Write(Access { proc: proc.clone(), map: map.clone(), page: 0, pages, value: Some(0x5a) });
        let advise = Step::Madvise(Madvise { proc, map: map.clone(), page: 0, pages: None, advice: Advice::Mergeable });
        self.play(out, write);
        self.play(out, advise);
        map
    }

    /// A motif's step: played into the state, then added to the motif's steps.
    fn play(&mut self, out: &mut Vec<Step>, step: Step) {
        self.absorb(&step);
        out.push(step);
    }

    /// A motif's step that the World may refuse (a placement whose range is taken):
    /// played only when valid. Returns whether it was.
    fn try_play(&mut self, out: &mut Vec<Step>, step: Step) -> bool {
        let valid = self.world.clone().apply(&step).is_ok();
        if valid {
            self.play(out, step);
        }
        valid
    }
}

impl Gen<'_> {
    /// One valid step, or `None` when no kind with a weight is possible.
    fn pick(&mut self) -> Option<Step> {
        let mut choices: Vec<(Op, u32)> =
            self.cfg.weights.0.iter().filter(|(op, w)| **w > 0 && self.possible(**op)).map(|(o, w)| (*o, *w)).collect();
        while !choices.is_empty() {
            let op = choices.choose_weighted(&mut self.rng, |(_, w)| *w).ok()?.0;
            if let Some(step) = self.make(op) {
                return Some(step);
            }
            choices.retain(|(o, _)| *o != op);
        }
        None
    }

    fn possible(&self, op: Op) -> bool {
        // Steps from elsewhere (a corpus entry) may have ended every process.
        if self.procs.is_empty() {
            return false;
        }
        let any_map = self.procs.iter().any(|p| !p.maps.is_empty());
        match op {
            Op::Mmap | Op::Hugetlb => self.procs.iter().any(|p| p.maps.len() < self.cfg.max_maps),
            Op::Fork => self.procs.len() < self.cfg.max_procs && self.world.made() < MAX_PROCS,
            Op::Exit => self.procs.len() > 1,
            Op::Findtask | Op::Compact | Op::Ksm | Op::Writeback => true,
            Op::Mlock => true,
            _ => any_map,
        }
    }

    fn proc_index(&mut self) -> usize {
        self.rng.gen_range(0..self.procs.len())
    }

    /// A random (process index, map name) whose map satisfies `want`.
    /// hugetlb maps are left out: most steps cannot apply to them (`World::hugetlb_refusal`)
    /// or take whole huge pages only; `pick_any_map` includes them.
    fn pick_map(&mut self, want: impl Fn(&MapState) -> bool) -> Option<(usize, String)> {
        self.pick_any_map(|m| m.hugetlb.is_none() && want(m))
    }

    /// A random (process index, map name) whose map satisfies `want`, hugetlb maps too.
    fn pick_any_map(&mut self, want: impl Fn(&MapState) -> bool) -> Option<(usize, String)> {
        let all: Vec<(usize, String)> = self
            .procs
            .iter()
            .enumerate()
            .flat_map(|(i, p)| p.maps.iter().filter(|(_, m)| want(m)).map(move |(n, _)| (i, n.clone())))
            .collect();
        all.choose(&mut self.rng).cloned()
    }

    /// A hole that leaves the file's size alone: `punch` in a memfd or file map, or
    /// MADV_REMOVE in a shared writable map that is not locked (EINVAL there).
    fn hole(&mut self) -> Option<Step> {
        let file = |m: &MapState| matches!(m.backing, Backing::Memfd | Backing::File);
        let shared = |m: &MapState| m.share == Share::Shared && !m.locked;
        let (pi, map) = self.pick_map(|m| (file(m) || shared(m)) && m.pages.iter().any(|p| p.present))?;
        let m = &self.procs[pi].maps[&map];
        let remove = shared(m) && (!file(m) || self.rng.gen_bool(0.3));
        let (page, pages) = self.pick_range(pi, &map, |p| p.present && (!remove || writable(p.prot)))?;
        let proc = self.procs[pi].label.clone();
        Some(if remove {
            Step::Madvise(Madvise { proc, map, page, pages: Some(pages), advice: Advice::Remove })
        } else {
            Step::Punch(Range { proc, map, page: Some(page), pages: Some(pages) })
        })
    }

    /// Whether faults may map large folios in a new map: private anon memory with a
    /// hugepage hint and room for a THP, or any under the run's mTHP size.
    fn may_map_large_folios(&self, backing: Backing, share: Share, huge: Option<bool>, pages: u64) -> bool {
        let anon_private = backing == Backing::Anon && share == Share::Private;
        let thp = huge == Some(true) && pages >= pmd_pages(self.cfg.page_size) / 2;
        anon_private && (thp || self.mthp_pages.is_some_and(|n| pages >= n))
    }

    /// A map with present pages, mostly one where faults may map large folios.
    fn pick_large_map(&mut self) -> Option<(usize, String)> {
        let present = |m: &MapState| m.pages.iter().any(|p| p.present);
        if self.rng.gen_bool(0.75) {
            if let Some(found) = self.pick_map(|m| m.large && present(m)) {
                return Some(found);
            }
        }
        self.pick_map(present)
    }

    /// A random run of consecutive pages of `map` that all satisfy `want`.
    fn pick_range(&mut self, pi: usize, name: &str, want: impl Fn(&PageState) -> bool) -> Option<(u64, u64)> {
        let pages = &self.procs[pi].maps[name].pages;
        let starts: Vec<usize> = (0..pages.len()).filter(|&i| want(&pages[i])).collect();
        let start = *starts.choose(&mut self.rng)?;
        let run = pages[start..].iter().take_while(|p| want(p)).count();
        let len = self.rng.gen_range(1..=run);
        Some((start as u64, len as u64))
    }

    fn map_mut(&mut self, pi: usize, name: &str) -> &mut MapState {
        self.procs[pi].maps.get_mut(name).expect("picked from the live maps")
    }

    /// A new step of kind `op`, played into the state.
    fn make(&mut self, op: Op) -> Option<Step> {
        let step = self.make_step(op)?;
        let valid = self.world.apply(&step);
        debug_assert!(valid.is_ok(), "{step:?}: {valid:?}");
        Some(step)
    }

    fn make_step(&mut self, op: Op) -> Option<Step> {
        match op {
            Op::Mmap => self.mmap(),
            Op::Munmap => self.munmap(),
            Op::Mprotect => self.mprotect(),
            Op::Mremap => self.mremap(),
            Op::Place => self.place(),
            Op::Madvise => self.madvise(),
            Op::Write | Op::Read => {
                let write = op == Op::Write;
                let ok = move |p: &PageState| p.present && if write { writable(p.prot) } else { readable(p.prot) };
                let (pi, map) = self.pick_any_map(|m| m.pages.iter().any(ok))?;
                let (page, mut pages) = self.pick_range(pi, &map, ok)?;
                // Every page touched is walked by each later check: keep touches of
                // large maps short, mostly.
                if pages > self.cfg.max_pages && self.rng.gen_bool(0.9) {
                    pages = self.rng.gen_range(1..=self.cfg.max_pages.max(1));
                }
                let proc = self.procs[pi].label.clone();
                // Mostly the runner's distinct default; sometimes one shared byte, which
                // makes equal pages that KSM could merge (often, in mergeable maps).
                let p = if self.procs[pi].maps[&map].mergeable { 0.6 } else { 0.1 };
                let value = (write && self.rng.gen_bool(p)).then_some(0x5a);
                let a = Access { proc, map, page, pages, value };
                Some(if write { Step::Write(a) } else { Step::Read(a) })
            }
            Op::Fork => {
                let pi = self.proc_index();
                if self.hugetlb_need() + self.procs[pi].hugetlb_private() > HUGETLB_POOL {
                    return None;
                }
                let child = format!("c{}", self.next_child);
                self.next_child += 1;
                let proc = self.procs[pi].label.clone();
                let state = self.procs[pi].forked(&child);
                self.procs.push(state);
                Some(Step::Fork(Fork { proc, child }))
            }
            Op::Exit => {
                let pi = self.proc_index();
                let p = self.procs.remove(pi);
                Some(Step::Exit(Proc { proc: p.label }))
            }
            Op::Findpage => {
                let (pi, map) = self.pick_any_map(|m| m.pages.iter().any(|p| p.present))?;
                let (page, _) = self.pick_range(pi, &map, |p| p.present)?;
                Some(Step::Findpage(PageRef { proc: self.procs[pi].label.clone(), map, page }))
            }
            Op::Findtask => {
                let pi = self.proc_index();
                Some(Step::Findtask(Proc { proc: self.procs[pi].label.clone() }))
            }
            Op::Ksm => self.ksm(),
            Op::Compact => Some(Step::Compact(Compact {})),
            Op::Writeback => self.writeback(),
            Op::Hugetlb => self.hugetlb(),
            Op::Uffd => self.uffd(),
            // Mostly all it can get; sometimes a little, so reclaim stops part way and
            // the reference check decides what goes.
            Op::Reclaim => {
                let pages = self.rng.gen_bool(0.25).then(|| self.rng.gen_range(1..=64));
                Some(Step::Reclaim(Reclaim { pages }))
            }
            Op::Pageout => self.pageout(),
            Op::Truncate => self.hole(),
            Op::Migrate => {
                let (pi, map) = self.pick_large_map()?;
                let (page, pages) = self.pick_range(pi, &map, |p| p.present)?;
                let node = self.rng.gen_bool(0.2).then_some(0);
                let proc = self.procs[pi].label.clone();
                Some(Step::Migrate(Migrate { proc, map, page: Some(page), pages: Some(pages), node }))
            }
            Op::Thp => {
                let (pi, map) = self.pick_large_map()?;
                let (page, pages) = self.pick_range(pi, &map, |p| p.present)?;
                let proc = self.procs[pi].label.clone();
                Some(match self.rng.gen_range(0..3) {
                    0 => Step::Split(Range { proc, map, page: Some(page), pages: Some(pages) }),
                    1 => Step::Madvise(Madvise { proc, map, page, pages: Some(pages), advice: Advice::Collapse }),
                    // One read-only page splits the PMD of a THP in this process alone:
                    // the folio stays PMD-mapped wherever it was shared by fork.
                    _ => self.mprotect_pages(pi, map, page, 1, Prot::R),
                })
            }
            Op::Mlock => self.mlock(),
            Op::Pin => self.pin(),
            Op::Remote => {
                let kind = *RemoteKind::ALL.choose(&mut self.rng).expect("not empty");
                let ok = move |m: &MapState, p: &PageState| {
                    p.present
                        && m.uffd.is_none()
                        && match kind {
                            RemoteKind::Writev => writable(p.prot),
                            RemoteKind::Ptrace => m.share == Share::Private && readable(p.prot),
                            RemoteKind::Readv => readable(p.prot),
                        }
                };
                let (pi, map) = self.pick_map(|m| m.pages.iter().any(|p| ok(m, p)))?;
                let m = self.procs[pi].maps[&map].clone();
                let (page, pages) = self.pick_range(pi, &map, |p| ok(&m, p))?;
                let proc = self.procs[pi].label.clone();
                Some(Step::Remote(Remote { proc, map, page, pages: pages.min(MAX_PIN_PAGES), kind, value: None }))
            }
            Op::Poke => {
                // Writable, so a FOLL_FORCE write into a shared mapping is allowed.
                let ok = |p: &PageState| p.present && writable(p.prot);
                let (pi, map) = self.pick_map(|m| m.pages.iter().any(ok))?;
                let (page, _) = self.pick_range(pi, &map, ok)?;
                Some(Step::Poke(PageRef { proc: self.procs[pi].label.clone(), map, page }))
            }
        }
    }

    /// Unpin a kind a process holds, one time in four; otherwise pin a range: io_uring
    /// on private anon memory it may write, vmsplice on any it may read.
    fn pin(&mut self) -> Option<Step> {
        let pi = self.proc_index();
        let proc = self.procs[pi].label.clone();
        let held: Vec<PinKind> = PinKind::ALL.into_iter().filter(|k| self.world.holds_pin(&proc, *k)).collect();
        if !held.is_empty() && self.rng.gen_bool(0.25) {
            let kind = *held.choose(&mut self.rng).expect("not empty");
            return Some(Step::Unpin(Unpin { proc, kind }));
        }
        let kind = *PinKind::ALL.choose(&mut self.rng).expect("not empty");
        let ok = move |m: &MapState, p: &PageState| {
            p.present
                && m.uffd.is_none()
                && match kind {
                    PinKind::Uring => m.anon_like() && writable(p.prot),
                    PinKind::Vmsplice => readable(p.prot),
                }
        };
        let names: Vec<String> = self.procs[pi]
            .maps
            .iter()
            .filter(|(_, m)| m.pages.iter().any(|p| ok(m, p)))
            .map(|(n, _)| n.clone())
            .collect();
        let map = names.choose(&mut self.rng)?.clone();
        let m = self.procs[pi].maps[&map].clone();
        let (page, pages) = self.pick_range(pi, &map, |p| ok(&m, p))?;
        Some(Step::Pin(Pin { proc, map, page, pages: pages.min(MAX_PIN_PAGES), kind }))
    }

    /// KSM once some map is mergeable; before that, make one mergeable (whole, so it
    /// stays one VMA), which KSM needs.
    fn ksm(&mut self) -> Option<Step> {
        if self.procs.iter().any(|p| p.maps.values().any(|m| m.mergeable)) {
            return Some(Step::Ksm(Ksm { timeout_ms: Some(2000) }));
        }
        let (pi, map) = self.pick_map(|m| m.anon_like() && m.all_present())?;
        let proc = self.procs[pi].label.clone();
        self.map_mut(pi, &map).mergeable = true;
        Some(Step::Madvise(Madvise { proc, map, page: 0, pages: None, advice: Advice::Mergeable }))
    }

    /// MADV_PAGEOUT, MADV_COLD, or MADV_FREE (private anon only: EINVAL elsewhere).
    fn pageout(&mut self) -> Option<Step> {
        let advice = *[Advice::Pageout, Advice::Pageout, Advice::Cold, Advice::Free].choose(&mut self.rng)?;
        let anon_only = advice == Advice::Free;
        let (pi, map) =
            self.pick_map(|m| m.pages.iter().any(|p| p.present) && (!anon_only || m.anon_like()) && !m.locked)?;
        let (page, pages) = self.pick_range(pi, &map, |p| p.present)?;
        let proc = self.procs[pi].label.clone();
        Some(Step::Madvise(Madvise { proc, map, page, pages: Some(pages), advice }))
    }

    fn mlock(&mut self) -> Option<Step> {
        let pi = self.proc_index();
        let proc = self.procs[pi].label.clone();
        let any = self.procs[pi].maps.values().any(|m| m.pages.iter().any(|p| p.present));
        match self.rng.gen_range(0..6) {
            0..=2 if any => {
                let names: Vec<String> = self.procs[pi]
                    .maps
                    .iter()
                    .filter(|(_, m)| m.pages.len() as u64 <= LOCK_MAX_PAGES && m.pages.iter().any(|p| p.present))
                    .filter(|(_, m)| m.uffd.is_none())
                    .map(|(n, _)| n.clone())
                    .collect();
                let map = names.choose(&mut self.rng)?.clone();
                let (lock, onfault) = (self.rng.gen_bool(0.7), self.rng.gen_bool(0.3));
                // mlock populates, and cannot populate PROT_NONE pages (ENOMEM).
                let populate = lock && !onfault;
                let (page, pages) = self.pick_range(pi, &map, |p| p.present && (!populate || readable(p.prot)))?;
                // VM_LOCKED on part of a map splits its VMA.
                let m = self.map_mut(pi, &map);
                if pages != m.pages.len() as u64 {
                    m.one_vma = false;
                }
                m.locked |= lock;
                Some(if lock {
                    Step::Mlock(Mlock { proc, map, page: Some(page), pages: Some(pages), onfault })
                } else {
                    Step::Munlock(Range { proc, map, page: Some(page), pages: Some(pages) })
                })
            }
            3 | 4 if self.procs[pi].maps.values().all(|m| m.pages.len() as u64 <= LOCK_MAX_PAGES) => {
                let registered = self.procs[pi].maps.values().any(|m| m.uffd.is_some());
                let future = registered || self.rng.gen_bool(0.5);
                let current = !registered && (!future || self.rng.gen_bool(0.5));
                let onfault = self.rng.gen_bool(0.3);
                let p = &mut self.procs[pi];
                p.lock_future |= future;
                for m in p.maps.values_mut() {
                    m.locked |= current;
                }
                Some(Step::Mlockall(Mlockall { proc, current, future, onfault }))
            }
            _ => Some(Step::Munlockall(Proc { proc })),
        }
    }

    /// The run's mTHP setting: one size on for anon or shmem memory, or none.
    fn mthp(&mut self) -> Vec<Mthp> {
        if self.cfg.mthp_every == 0 || self.rng.gen_range(0..self.cfg.mthp_every) != 0 {
            return Vec::new();
        }
        let pages = *[4, 8, 16, 32, 64].choose(&mut self.rng).expect("not empty");
        let (anon, shmem) = match self.rng.gen_range(0..3) {
            0 => (Some(MthpMode::Always), None),
            1 => (None, Some(MthpMode::Always)),
            _ => (Some(MthpMode::Always), Some(MthpMode::Always)),
        };
        vec![Mthp { pages: Some(pages), anon, shmem }]
    }

    /// A map size: mostly small, sometimes around a PMD (half, one, one and a bit, two).
    fn map_pages(&mut self) -> u64 {
        if self.cfg.large_every > 0 && self.rng.gen_range(0..self.cfg.large_every) == 0 {
            let pmd = pmd_pages(self.cfg.page_size);
            let pages = *[pmd / 2, pmd, pmd, pmd + 8, 2 * pmd].choose(&mut self.rng).expect("not empty");
            return pages.clamp(1, MAX_PAGES);
        }
        // Under mTHP, room for a few folios of the size, so faults can use them.
        let folio = self.mthp_pages.unwrap_or(0);
        if folio > 0 && self.rng.gen_bool(0.5) {
            return self.rng.gen_range(folio..=4 * folio).min(MAX_PAGES);
        }
        self.rng.gen_range(1..=self.cfg.max_pages.max(1))
    }

    fn mmap(&mut self) -> Option<Step> {
        let room: Vec<usize> =
            (0..self.procs.len()).filter(|&i| self.procs[i].maps.len() < self.cfg.max_maps).collect();
        let pi = *room.choose(&mut self.rng)?;
        let name = format!("m{}", self.next_map);
        self.next_map += 1;
        let pages = self.map_pages();
        let large = pages > self.cfg.max_pages;
        // Large maps are mostly private anon memory: that is where THPs come from.
        let backing = if large && self.rng.gen_bool(0.5) {
            Backing::Anon
        } else {
            *[Backing::Anon, Backing::DevZero, Backing::Memfd, Backing::File, Backing::Ext4].choose(&mut self.rng)?
        };
        let private = if large && backing == Backing::Anon { 0.8 } else { 0.5 };
        let share = if self.rng.gen_bool(private) { Share::Private } else { Share::Shared };
        let no_huge = backing == Backing::DevZero && share == Share::Private;
        // Large maps ask for THPs more often: that is what they are for.
        let huge = match self.rng.gen_range(0..20) {
            0 => Some(false),
            1 if !no_huge => Some(true),
            2..=13 if large && !no_huge => Some(true),
            _ => None,
        };
        // After the draws, so the sequences without huge_pages stay as they were.
        let pages = if huge == Some(true) && self.cfg.huge_pages > 0 { self.cfg.huge_pages } else { pages };
        // Locking populates the whole map, and `check: all` walks every page it
        // populated: only small maps are locked, so one run stays fast.
        let pages = if self.procs[pi].lock_future { pages.min(LOCK_MAX_PAGES) } else { pages };
        let locked = self.rng.gen_range(0..40) == 0 && pages <= LOCK_MAX_PAGES;
        let large_folios = self.may_map_large_folios(backing, share, huge, pages);
        let state = MapState {
            backing,
            share,
            pages: vec![PageState { present: true, prot: Prot::Rw }; pages as usize],
            one_vma: true,
            dontfork: false,
            mergeable: false,
            locked: locked || self.procs[pi].lock_future,
            large: large_folios,
            align_end: None,
            hugetlb: None,
            uffd: None,
        };
        let proc = self.procs[pi].label.clone();
        self.procs[pi].maps.insert(name.clone(), state);
        Some(Step::Mmap(Mmap { proc, name, pages, backing, share, huge, locked, at: None, align: None }))
    }

    /// A map of one huge page of hugetlb memory, MAP_HUGETLB or a hugetlbfs file,
    /// private or shared, when the guest's pool holds it and every fork copy's COW.
    /// Or, one time in three, a migration of a hugetlb map there is: move_pages() moves
    /// the whole huge page (remove_migration_pte(): hugetlb_add_anon_rmap()).
    fn hugetlb(&mut self) -> Option<Step> {
        if self.rng.gen_bool(1.0 / 3.0) {
            if let Some((pi, map)) = self.pick_any_map(|m| m.hugetlb.is_some()) {
                let proc = self.procs[pi].label.clone();
                let page = self.rng.gen_range(0..self.procs[pi].maps[&map].pages.len() as u64);
                return Some(Step::Migrate(Migrate { proc, map, page: Some(page), pages: Some(1), node: None }));
            }
        }
        if self.hugetlb_need() + 1 > HUGETLB_POOL {
            return None;
        }
        let room: Vec<usize> = (0..self.procs.len())
            .filter(|&i| self.procs[i].maps.len() < self.cfg.max_maps && !self.procs[i].lock_future)
            .collect();
        let pi = *room.choose(&mut self.rng)?;
        let backing = *[Backing::Hugetlb, Backing::Hugetlbfs].choose(&mut self.rng)?;
        let share = if self.rng.gen_bool(0.5) { Share::Private } else { Share::Shared };
        let name = format!("m{}", self.next_map);
        let (proc, pages) = (self.procs[pi].label.clone(), pmd_pages(self.cfg.page_size));
        let mmap =
            Mmap { proc, name: name.clone(), pages, backing, share, huge: None, locked: false, at: None, align: None };
        let step = Step::Mmap(mmap.clone());
        // The World knows the kernel's huge page: a page size it does not take no map.
        self.world.clone().apply(&step).ok()?;
        // As `absorb` does: the map's id is the next map number after its own.
        self.next_map += 1;
        let state = self.mapped(&mmap, pi);
        self.procs[pi].maps.insert(name, state);
        Some(step)
    }

    /// The most huge pages the live hugetlb maps may use: each copy of a private map
    /// its own (a fork's copy COWs it), each shared file one. Stricter than the World's
    /// budget, which counts private maps only where they are faulted.
    fn hugetlb_need(&self) -> u64 {
        let shared: BTreeSet<usize> = self
            .procs
            .iter()
            .flat_map(|p| p.maps.values())
            .filter(|m| m.share == Share::Shared)
            .filter_map(|m| m.hugetlb)
            .collect();
        let private: u64 = self.procs.iter().map(ProcState::hugetlb_private).sum();
        private + shared.len() as u64
    }

    fn munmap(&mut self) -> Option<Step> {
        let (pi, map) = self.pick_map(|m| m.pages.iter().any(|p| p.present))?;
        let proc = self.procs[pi].label.clone();
        let whole = self.procs[pi].maps[&map].all_present() && self.rng.gen_bool(0.4);
        let (page, pages) = if whole {
            let n = self.procs[pi].maps[&map].pages.len() as u64;
            (0, n)
        } else {
            self.pick_range(pi, &map, |p| p.present)?
        };
        let m = self.map_mut(pi, &map);
        for p in page..page + pages {
            m.pages[p as usize].present = false;
        }
        m.one_vma = false;
        if !m.pages.iter().any(|p| p.present) {
            self.procs[pi].maps.remove(&map);
        }
        let step = if whole {
            Range { proc, map, page: None, pages: None }
        } else {
            Range { proc, map, page: Some(page), pages: Some(pages) }
        };
        Some(Step::Munmap(step))
    }

    fn mprotect(&mut self) -> Option<Step> {
        let (pi, map) = self.pick_map(|m| m.pages.iter().any(|p| p.present))?;
        let (page, pages) = self.pick_range(pi, &map, |p| p.present)?;
        let prot = *[Prot::Rw, Prot::Rw, Prot::R, Prot::R, Prot::None, Prot::Rx, Prot::Rwx].choose(&mut self.rng)?;
        Some(self.mprotect_pages(pi, map, page, pages, prot))
    }

    /// mprotect `pages` pages of `map` from `page`, in the state as in the step.
    fn mprotect_pages(&mut self, pi: usize, map: String, page: u64, pages: u64, prot: Prot) -> Step {
        let proc = self.procs[pi].label.clone();
        let m = self.map_mut(pi, &map);
        if pages != m.pages.len() as u64 {
            m.one_vma = false;
        }
        for p in page..page + pages {
            m.pages[p as usize].prot = prot;
        }
        Step::Mprotect(Mprotect { proc, map, page, pages: Some(pages), prot })
    }

    fn mremap(&mut self) -> Option<Step> {
        let (pi, map) = self.pick_map(|m| m.one_vma && m.all_present() && m.uffd.is_none())?;
        let proc = self.procs[pi].label.clone();
        let m = &self.procs[pi].maps[&map];
        let old = m.pages.len() as u64;
        let (anon, prot) = (m.anon_like(), m.pages[0].prot);
        let dontunmap = anon && self.rng.gen_bool(0.2);
        // Past the end of its object, a file or shmem page would SIGBUS: only private
        // anon memory grows.
        let pages = if dontunmap {
            old
        } else if anon {
            self.rng.gen_range(1..=self.cfg.max_pages.max(old))
        } else {
            self.rng.gen_range(1..=old)
        };
        let move_ = !dontunmap && self.rng.gen_bool(0.5);
        let m = self.map_mut(pi, &map);
        m.pages = vec![PageState { present: true, prot }; pages as usize];
        Some(whole_mremap(proc, map, pages, None, move_, dontunmap))
    }

    /// A placement step: a map right next to another, a sub-range moved away (next
    /// to a map, over part of one, or anywhere), a moved range moved back, or a large
    /// map that starts a few pages before a PMD boundary. Checked on a copy of the
    /// world, so only valid ones come out.
    fn place(&mut self) -> Option<Step> {
        let step = match self.rng.gen_range(0..8) {
            0..=2 => self.place_mmap(),
            3..=5 => self.place_move(),
            6 => self.place_back(),
            _ => self.place_across_pmd(),
        }?;
        self.world.clone().apply(&step).ok()?;
        match &step {
            Step::Mmap(m) => {
                let pi = self.proc_of(&m.proc)?;
                let state = self.mapped(m, pi);
                self.procs[pi].maps.insert(m.name.clone(), state);
            }
            Step::Mremap(x) => {
                let pi = self.proc_of(&x.proc)?;
                self.track_remap(pi, x);
            }
            _ => {}
        }
        Some(step)
    }

    /// A private anon map (mostly) right after or before another map of the process.
    fn place_mmap(&mut self) -> Option<Step> {
        let max = self.cfg.max_maps;
        let (pi, anchor) = self.pick_map(|_| true)?;
        if self.procs[pi].maps.len() >= max || self.procs[pi].lock_future {
            return None;
        }
        let name = format!("m{}", self.next_map);
        self.next_map += 1;
        let pages = self.rng.gen_range(1..=self.cfg.max_pages.max(1));
        let near = &self.procs[pi].maps[&anchor];
        // Alike is what merges; sometimes the neighbour is of another kind.
        let (backing, share) =
            if self.rng.gen_bool(0.7) { (Backing::Anon, Share::Private) } else { (near.backing, near.share) };
        let gap = if self.rng.gen_bool(0.8) { None } else { Some(self.rng.gen_range(1..=4)) };
        let (after, before) = if self.rng.gen_bool(0.6) { (Some(anchor), None) } else { (None, Some(anchor)) };
        let at = Some(Place { after, before, gap, ..Place::default() });
        let proc = self.procs[pi].label.clone();
        Some(Step::Mmap(Mmap { proc, name, pages, backing, share, huge: None, locked: false, at, align: None }))
    }

    /// A sub-range of a one-VMA map moved next to another map, over part of one, or to
    /// a fresh place; it may grow (anon), shrink or use DONTUNMAP (anon).
    fn place_move(&mut self) -> Option<Step> {
        let (pi, map) = self.pick_map(|m| m.one_vma && m.all_present() && m.pages.len() > 1 && m.uffd.is_none())?;
        if self.procs[pi].maps.len() >= self.cfg.max_maps {
            return None;
        }
        let (page, pages) = self.pick_range(pi, &map, |p| p.present)?;
        let anon = self.procs[pi].maps[&map].anon_like();
        let dontunmap = anon && self.rng.gen_bool(0.15);
        let new_pages = match self.rng.gen_range(0..6) {
            0 if anon && !dontunmap => Some(pages + self.rng.gen_range(1..=4)),
            1 if pages > 1 && !dontunmap => Some(self.rng.gen_range(1..pages)),
            _ => None,
        };
        let others: Vec<String> =
            self.procs[pi].maps.iter().filter(|(_, m)| m.hugetlb.is_none()).map(|(n, _)| n.clone()).collect();
        let target = others.choose(&mut self.rng)?.clone();
        let size = new_pages.unwrap_or(pages);
        let to = match self.rng.gen_range(0..5) {
            0 | 1 => Some(Place { after: Some(target), ..Place::default() }),
            2 => Some(Place { before: Some(target), ..Place::default() }),
            3 => {
                let len = self.procs[pi].maps[&target].pages.len() as u64;
                (len >= size && target != map).then(|| Place {
                    over: Some(target),
                    page: Some(self.rng.gen_range(0..=len - size)),
                    ..Place::default()
                })
            }
            _ => None,
        };
        let move_ = to.is_none() && !dontunmap;
        let as_ = Some(format!("m{}", self.next_map));
        self.next_map += 1;
        let proc = self.procs[pi].label.clone();
        Some(Step::Mremap(Mremap { proc, map, pages, page: Some(page), new_pages, as_, to, move_, dontunmap }))
    }

    /// A range that moved away (a map made by `as:`) moved back into its hole.
    fn place_back(&mut self) -> Option<Step> {
        let movers: Vec<(usize, String, u64)> = self
            .procs
            .iter()
            .enumerate()
            .flat_map(|(i, p)| {
                p.maps
                    .iter()
                    .filter(|(_, m)| m.one_vma && m.all_present() && m.uffd.is_none())
                    .map(move |(n, m)| (i, n.clone(), m.pages.len() as u64))
            })
            .filter(|(i, n, _)| self.world.map(&self.procs[*i].label, n).is_some_and(|m| m.origin().is_some()))
            .collect();
        let (pi, map, pages) = movers.choose(&mut self.rng)?.clone();
        let proc = self.procs[pi].label.clone();
        let to = Some(Place { back: true, ..Place::default() });
        Some(whole_mremap(proc, map, pages, to, false, false))
    }

    /// A large folio across a PMD boundary: a map where faults may map large folios
    /// moved whole right after a map that ends a few pages before a boundary, or such a
    /// map to move one after, or a THP-sized or mTHP map aligned a few pages before one.
    fn place_across_pmd(&mut self) -> Option<Step> {
        let anchors: Vec<(usize, String, String)> = self
            .procs
            .iter()
            .enumerate()
            .flat_map(|(i, p)| {
                let ends = p
                    .maps
                    .iter()
                    .filter(|(_, m)| m.align_end.is_some_and(|e| e < 0) && m.pages[m.pages.len() - 1].present);
                let movers = p.maps.iter().filter(|(_, m)| m.large && m.one_vma && m.all_present() && m.uffd.is_none());
                ends.flat_map(move |(a, _)| {
                    movers.clone().filter(move |(n, _)| *n != a).map(move |(n, _)| (i, a.clone(), n.clone()))
                })
            })
            .collect();
        match self.rng.gen_range(0..3) {
            0 if !anchors.is_empty() => {
                let (pi, anchor, map) = anchors.choose(&mut self.rng)?.clone();
                let pages = self.procs[pi].maps[&map].pages.len() as u64;
                let proc = self.procs[pi].label.clone();
                let to = Some(Place { after: Some(anchor), ..Place::default() });
                Some(whole_mremap(proc, map, pages, to, false, false))
            }
            1 => self.pmd_anchor(),
            _ => self.pmd_aligned_large(),
        }
    }

    /// A small private anon map that ends 1 to 16 pages before a PMD boundary.
    fn pmd_anchor(&mut self) -> Option<Step> {
        let room: Vec<usize> =
            (0..self.procs.len()).filter(|&i| self.procs[i].maps.len() < self.cfg.max_maps).collect();
        let pi = *room.choose(&mut self.rng)?;
        if self.procs[pi].lock_future {
            return None;
        }
        let before = *[1, 4, 8, 16].choose(&mut self.rng)?;
        let name = format!("m{}", self.next_map);
        self.next_map += 1;
        let proc = self.procs[pi].label.clone();
        let (backing, share) = (Backing::Anon, Share::Private);
        let align = Some(Align(-(before + 4)));
        Some(Step::Mmap(Mmap { proc, name, pages: 4, backing, share, huge: None, locked: false, at: None, align }))
    }

    /// A THP-sized or mTHP map that starts a few pages before a PMD boundary.
    fn pmd_aligned_large(&mut self) -> Option<Step> {
        let room: Vec<usize> =
            (0..self.procs.len()).filter(|&i| self.procs[i].maps.len() < self.cfg.max_maps).collect();
        let pi = *room.choose(&mut self.rng)?;
        if self.procs[pi].lock_future {
            return None;
        }
        let pmd = pmd_pages(self.cfg.page_size);
        let pages = match self.mthp_pages {
            Some(folio) if self.rng.gen_bool(0.5) => (4 * folio).min(MAX_PAGES),
            _ => pmd.min(MAX_PAGES),
        };
        let before = *[1, 4, 8, 16].choose(&mut self.rng)?;
        let (backing, share) =
            if self.rng.gen_bool(0.75) { (Backing::Anon, Share::Private) } else { (Backing::Memfd, Share::Shared) };
        let name = format!("m{}", self.next_map);
        self.next_map += 1;
        let proc = self.procs[pi].label.clone();
        let align = Some(Align(-before));
        Some(Step::Mmap(Mmap { proc, name, pages, backing, share, huge: Some(true), locked: false, at: None, align }))
    }

    /// The state after a placed mremap: the moved pages leave their map (DONTUNMAP:
    /// they stay) and make a map of their own, or rejoin the map they came from; the
    /// pages at an `over` place leave that map.
    fn track_remap(&mut self, pi: usize, x: &Mremap) {
        let Some(src) = self.procs[pi].maps.get(&x.map).cloned() else { return };
        let (first, count) = x.source(src.pages.len() as u64);
        let prot = src.pages.get(first as usize).map_or(Prot::Rw, |p| p.prot);
        let maps = &mut self.procs[pi].maps;
        if x.page.is_none() {
            maps.remove(&x.map);
        } else if let Some(m) = maps.get_mut(&x.map) {
            m.one_vma = false;
            if !x.dontunmap {
                for p in &mut m.pages[first as usize..(first + count) as usize] {
                    p.present = false;
                }
            }
            if !m.pages.iter().any(|p| p.present) {
                maps.remove(&x.map);
            }
        }
        let place = x.to.as_ref().and_then(|t| t.anchor().ok());
        if let Some(Anchor::Over(target, page)) = place {
            if let Some(m) = maps.get_mut(target) {
                let end = (page + x.new_size()).min(m.pages.len() as u64);
                for p in &mut m.pages[page as usize..end as usize] {
                    p.present = false;
                }
                m.one_vma = false;
                if !m.pages.iter().any(|p| p.present) {
                    maps.remove(target);
                }
            }
        }
        if place == Some(Anchor::Back) {
            // The World knew where it came from before this step.
            let from = self.world.map(&self.procs[pi].label, &x.map).and_then(|m| m.origin());
            let (name, page, n) = match from {
                Some((name, page, n)) => (name.to_string(), page, n),
                None => return,
            };
            if let Some(m) = self.procs[pi].maps.get_mut(&name) {
                for p in &mut m.pages[page as usize..(page + n) as usize] {
                    *p = PageState { present: true, prot };
                }
            }
            return;
        }
        let name = x.result_name().expect("not back").to_string();
        let state = MapState {
            pages: vec![PageState { present: true, prot }; x.new_size() as usize],
            one_vma: true,
            locked: false,
            align_end: None,
            ..src
        };
        self.procs[pi].maps.insert(name, state);
    }

    fn madvise(&mut self) -> Option<Step> {
        let advice = *[
            Advice::Dontneed,
            Advice::Dontneed,
            Advice::Dontneed,
            Advice::Dontfork,
            Advice::Dofork,
            Advice::Wipeonfork,
            Advice::Keeponfork,
            Advice::Cold,
            Advice::Hugepage,
            Advice::Nohugepage,
            Advice::Mergeable,
            Advice::Unmergeable,
            Advice::Free,
        ]
        .choose(&mut self.rng)?;
        let whole_only = matches!(advice, Advice::Dontfork | Advice::Dofork | Advice::Wipeonfork | Advice::Keeponfork);
        let anon_only = matches!(advice, Advice::Wipeonfork | Advice::Keeponfork | Advice::Free);
        let reclaims = matches!(advice, Advice::Dontneed | Advice::Free | Advice::Cold);
        let (pi, map) = self.pick_map(|m| {
            if reclaims && m.locked {
                false
            } else if whole_only {
                m.all_present() && (!anon_only || m.anon_like())
            } else {
                m.pages.iter().any(|p| p.present) && (!anon_only || m.anon_like())
            }
        })?;
        let proc = self.procs[pi].label.clone();
        let len = self.procs[pi].maps[&map].pages.len() as u64;
        let (page, pages) = if whole_only { (0, len) } else { self.pick_range(pi, &map, |p| p.present)? };
        let m = self.map_mut(pi, &map);
        match advice {
            Advice::Dontfork => m.dontfork = true,
            Advice::Dofork => m.dontfork = false,
            Advice::Mergeable => {
                m.mergeable = true;
                if pages != len {
                    m.one_vma = false
                }
            }
            // These set VMA flags, so a partial range splits the VMA.
            Advice::Hugepage | Advice::Nohugepage | Advice::Unmergeable if pages != len => m.one_vma = false,
            _ => {}
        }
        Some(Step::Madvise(Madvise { proc, map, page, pages: (!whole_only).then_some(pages), advice }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{parse, to_yaml};
    use std::collections::BTreeSet;
    use std::path::Path;

    #[test]
    fn every_generated_sequence_is_valid_and_round_trips() {
        let cfg = GenConfig { steps: 60, ..GenConfig::default() };
        for run in 0..400 {
            let s = generate(&cfg, 7, run);
            let yaml = to_yaml(&s, "");
            let parsed = parse(Path::new("gen.yaml"), &yaml).unwrap_or_else(|e| panic!("run {run}:\n{e}\n{yaml}"));
            assert_eq!(to_yaml(&parsed, ""), yaml, "run {run} does not round-trip");
        }
    }

    #[test]
    fn a_seed_gives_the_same_sequence_and_runs_differ() {
        let cfg = GenConfig::default();
        let a = to_yaml(&generate(&cfg, 42, 3), "");
        assert_eq!(a, to_yaml(&generate(&cfg, 42, 3), ""));
        assert_ne!(a, to_yaml(&generate(&cfg, 42, 4), ""));
        assert_ne!(a, to_yaml(&generate(&cfg, 43, 3), ""));
    }

    /// Generated hugetlb maps fit the guest's pool whatever each copy faults: every live
    /// copy of a private map may own a huge page of its own, every shared map's file one.
    #[test]
    fn hugetlb_maps_and_their_fork_copies_fit_the_pool() {
        let cfg = GenConfig { weights: "hugetlb=20,fork=20".parse().unwrap(), ..GenConfig::default() };
        let mut copied = 0;
        for run in 0..100 {
            // Process -> its hugetlb maps (name, shared); names are unique in a run.
            let mut held: BTreeMap<String, BTreeSet<(String, bool)>> = BTreeMap::new();
            for st in generate(&cfg, 7, run).steps {
                match &st {
                    Step::Mmap(m) if m.backing.hugetlb() => {
                        held.entry(m.proc.clone()).or_default().insert((m.name.clone(), m.share == Share::Shared));
                    }
                    Step::Fork(f) => {
                        let maps = held.get(&f.proc).cloned().unwrap_or_default();
                        copied += usize::from(!maps.is_empty());
                        held.insert(f.child.clone(), maps);
                    }
                    Step::Exit(p) => {
                        held.remove(&p.proc);
                    }
                    _ => {}
                }
                let private = held.values().flatten().filter(|(_, shared)| !shared).count();
                let files: BTreeSet<&String> = held.values().flatten().filter(|(_, s)| *s).map(|(n, _)| n).collect();
                assert!((private + files.len()) as u64 <= HUGETLB_POOL, "run {run}: {st:?} leaves {held:?}");
            }
        }
        assert!(copied > 0, "no fork copied a hugetlb map");
    }

    #[test]
    fn every_kind_appears_over_a_campaign() {
        let cfg = GenConfig::default();
        let mut ops = std::collections::BTreeSet::new();
        let mut backings = std::collections::BTreeSet::new();
        let mut advice = std::collections::BTreeSet::new();
        let mut deep_fork = false;
        // 400 runs: a write-protect needs the uffd op twice in a run, or its motif.
        for run in 0..400 {
            for st in generate(&cfg, 1, run).steps {
                ops.insert(st.op());
                match &st {
                    Step::Mmap(m) => {
                        backings.insert(format!("{:?}/{:?}", m.backing, m.share));
                    }
                    Step::Madvise(m) => {
                        advice.insert(m.advice.wire());
                    }
                    Step::Fork(f) if f.proc != FIRST_PROC => deep_fork = true,
                    _ => {}
                }
            }
        }
        // Ops named like a step make that step; the others make these.
        let made = [
            "ksm",
            "migrate",
            "compact",
            "split",
            "mlock",
            "munlock",
            "mlockall",
            "munlockall",
            "check",
            "msync",
            "fsync",
            "sync",
            "drop_caches",
            "uffd_copy",
            "uffd_zeropage",
            "uffd_move",
            "uffd_wp",
        ];
        let indirect = ["pageout", "thp", "place", "writeback", "hugetlb"];
        let weighted = Op::ALL.into_iter().filter(|op| cfg.weights.0[op] > 0).map(|o| o.name());
        for name in weighted.filter(|n| !indirect.contains(n)).chain(made) {
            assert!(ops.contains(name), "{name} never generated");
        }
        for a in ["pageout", "cold", "free", "collapse"] {
            assert!(advice.contains(a), "madvise {a} never generated: {advice:?}");
        }
        assert!(!ops.contains("poke"), "a test-only step is generated by default");
        assert_eq!(backings.len(), 14, "{backings:?}");
        for a in ["dontneed", "dontfork", "wipeonfork"] {
            assert!(advice.contains(a), "madvise {a} never generated: {advice:?}");
        }
        assert!(deep_fork, "no fork tree deeper than one level");
    }

    #[test]
    fn large_maps_and_mthp_follow_the_page_size() {
        for (ps, pmd) in [(4096, 512), (16384, 2048)] {
            let cfg = GenConfig { page_size: ps, ..GenConfig::default() };
            let (mut sizes, mut mthp) = (std::collections::BTreeSet::new(), 0);
            for run in 0..200 {
                let s = generate(&cfg, 3, run);
                mthp += usize::from(!s.mthp.is_empty());
                for st in &s.steps {
                    if let Step::Mmap(m) = st {
                        sizes.insert(m.pages);
                    }
                }
            }
            for want in [pmd / 2, pmd, pmd + 8, 2 * pmd] {
                assert!(sizes.contains(&want), "{ps}: no {want}-page map in {sizes:?}");
            }
            assert!((20..=80).contains(&mthp), "{ps}: {mthp} of 200 runs set mTHP");
        }
    }

    /// Each motif shows in the steps: a fork, then one page of a THP map mprotected; a
    /// migration of a THP or mTHP map; three processes holding a mergeable map of equal
    /// pages when KSM runs; a pageout, then two forks; a write, a fork, then reclaim.
    #[test]
    fn every_motif_is_played() {
        let cfg = GenConfig { motif_every: 1, ..GenConfig::default() };
        let (mut split, mut migrated, mut ksm3, mut swap3, mut reclaimed) = (0, 0, 0, 0, 0);
        let (mut straddled, mut moved_back, mut chained) = (0, 0, 0);
        let mut aligned = BTreeSet::new();
        let mut written_then_forked = false;
        let mut paged_out = BTreeMap::new();
        // Twelve motifs share one run in four, and placement steps share the rest: 900
        // runs give each motif about 18, and random steps reach the classes too.
        const RUNS: u64 = 900;
        let mut uffd_ops = 0;
        for run in 0..RUNS {
            let s = generate(&cfg, 11, run);
            let mut sim = Sim::new(&cfg, 0, &s.mthp);
            let mut forked_after = BTreeMap::new();
            let mut exited_parent = BTreeSet::new();
            for st in &s.steps {
                match st {
                    Step::Mmap(m) if m.align.is_some() => {
                        aligned.insert((run, m.proc.clone(), m.name.clone()));
                    }
                    Step::Mremap(x) if x.to.as_ref().is_some_and(|t| t.back) => moved_back += 1,
                    Step::Mremap(x) => {
                        let after = x.to.as_ref().and_then(|t| t.after.clone());
                        straddled += usize::from(
                            x.page.is_none()
                                && after.is_some_and(|a| aligned.contains(&(run, x.proc.clone(), a)))
                                && sim.0.map_of(&x.proc, &x.map).is_some_and(|m| m.large),
                        );
                    }
                    Step::Exit(p) => {
                        exited_parent.insert(p.proc.clone());
                    }
                    Step::UffdCopy(_) | Step::UffdZeropage(_) | Step::UffdWp(_) | Step::UffdMove(_) => uffd_ops += 1,
                    // A fork by a process whose parent exited before: the chain's third.
                    Step::Fork(f) => {
                        chained += usize::from(s.steps.iter().any(
                            |o| matches!(o, Step::Fork(g) if g.child == f.proc && exited_parent.contains(&g.proc)),
                        ))
                    }
                    _ => {}
                }
                assert!(sim.apply(st), "run {run}: {st:?} is not valid");
                match st {
                    Step::Mmap(m) if m.huge == Some(true) => {
                        forked_after.insert(m.name.clone(), false);
                    }
                    Step::Write(_) => written_then_forked = false,
                    Step::Reclaim(_) if written_then_forked => reclaimed += 1,
                    Step::Fork(_) => {
                        written_then_forked = true;
                        forked_after.values_mut().for_each(|f| *f = true);
                        for forks in paged_out.values_mut() {
                            *forks += 1;
                            swap3 += usize::from(*forks == 2);
                        }
                    }
                    Step::Madvise(x) if x.advice == Advice::Pageout => {
                        paged_out.insert(x.map.clone(), 0);
                    }
                    Step::Mprotect(x) if x.pages == Some(1) && forked_after.get(&x.map) == Some(&true) => split += 1,
                    Step::Migrate(x) if sim.0.map_of(&x.proc, &x.map).is_some_and(|m| m.large) => migrated += 1,
                    Step::Ksm(_) => {
                        let holders = |p: &ProcState| p.maps.values().any(|m| m.mergeable && m.pages.len() >= 2);
                        if sim.0.procs.iter().filter(|p| holders(p)).count() >= 3 {
                            ksm3 += 1;
                        }
                    }
                    _ => {}
                }
            }
        }
        let all = [
            ("PMD and PTEs", split),
            ("large migration", migrated),
            ("KSM of 3", ksm3),
            ("swap of 3", swap3),
            ("reclaim after a fork", reclaimed),
            ("a large map moved across a PMD boundary", straddled),
            ("a range moved back", moved_back),
            ("a fork after the chain's middle exited", chained),
            ("a userfaultfd operation", uffd_ops),
        ];
        for (what, n) in all {
            assert!(n >= 20, "{what}: {n} in {RUNS} runs");
        }
    }

    #[test]
    fn checks_are_injected_every_n_steps() {
        let cfg = GenConfig { steps: 12, check_every: 4, ..GenConfig::default() };
        let s = generate(&cfg, 5, 0);
        let checks: Vec<usize> =
            s.steps.iter().enumerate().filter(|(_, st)| matches!(st, Step::Check(_))).map(|(i, _)| i).collect();
        assert_eq!(checks, vec![4, 9, 14], "{}", to_yaml(&s, ""));
    }

    #[test]
    fn weights_parse_and_refuse_nonsense() {
        let w: Weights = "fork=20, exit=0".parse().unwrap();
        assert_eq!(w.0[&Op::Fork], 20);
        assert_eq!(w.0[&Op::Exit], 0);
        assert_eq!(w.0[&Op::Write], Weights::default().0[&Op::Write]);
        assert!("frok=1".parse::<Weights>().unwrap_err().contains("unknown op 'frok'"));
        assert!("fork".parse::<Weights>().is_err());
        let zero = Op::ALL.iter().map(|o| format!("{}=0", o.name())).collect::<Vec<_>>().join(",");
        assert!(zero.parse::<Weights>().is_err());
        let cfg = GenConfig { weights: "exit=0,fork=0".parse().unwrap(), ..GenConfig::default() };
        for run in 0..50 {
            assert!(generate(&cfg, 9, run).steps.iter().all(|s| !matches!(s, Step::Fork(_) | Step::Exit(_))));
        }
    }
}

#[cfg(test)]
mod sim_tests {
    use super::*;
    use crate::scenario::Proc;

    #[test]
    fn the_last_process_never_exits_so_a_simulation_can_always_go_on() {
        // A corpus entry whose p0 exits (a guided campaign panicked on an empty range).
        let cfg = GenConfig::default();
        let mut sim = Sim::new(&cfg, 1, &[]);
        assert!(!sim.apply(&Step::Exit(Proc { proc: FIRST_PROC.into() })));
        assert_eq!(sim.live(), [FIRST_PROC.to_string()]);
        for op in Op::ALL {
            sim.make(op);
        }
    }
}
