//! The sweep's finite vocabulary and its bounded exhaustive enumeration: every sequence
//! of 1 to `depth` core steps after each setup, in one deterministic order, each step
//! played on a [`World`] first, so the enumeration never yields a sequence the
//! validator would refuse. Symmetric duplicates are cut as the tree is walked, and
//! [`Reductions`] counts what each cut removed.

use crate::scenario::{
    count::pmd_pages, step_yaml, Access, Advice, Backing, CheckWhat, Fork, Madvise, Mmap, Mprotect, Mremap, Mthp,
    MthpMode, Proc, Prot, Range, Scenario, Share, Step, World, FIRST_PROC, MAX_PAGES,
};
use std::collections::BTreeMap;
use std::fmt;

/// The one map every sequence works on.
const MAP: &str = "a";
/// Pages of a small map: two mTHP folios of [`MTHP_PAGES`], so a range can cross one.
const SMALL_PAGES: u64 = 8;
/// The mTHP size the `mthp` setups turn on (order 2: 16K on 4k kernels, 64K on 16k).
const MTHP_PAGES: u64 = 4;

/// How large the setup's map is and which folios may back it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Size {
    /// [`SMALL_PAGES`] pages, small folios (no hint; mTHP sizes are off by default).
    Small,
    /// [`SMALL_PAGES`] pages with [`MTHP_PAGES`]-page mTHP on for anon and shmem.
    Mthp,
    /// One PMD of pages with MADV_HUGEPAGE: a THP where the backing allows one.
    Thp,
}

/// Where the setup's map lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Placement {
    /// Wherever mmap puts it. Placement relative to other maps and to the PMD
    /// (`at:`, `align: pmd-N`) joins this list when the scenario language has it; a
    /// setup then resolves it in [`Setup::mmap`].
    Fresh,
}

/// The map a sequence starts from: it is mapped, written whole, and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    pub backing: Backing,
    pub share: Share,
    pub size: Size,
    pub placement: Placement,
}

impl Setup {
    /// `anon/private/thp`: what the summary's per-backing coverage goes by.
    pub fn backing_label(&self) -> String {
        let backing = match self.backing {
            Backing::Anon => "anon",
            Backing::DevZero => "dev-zero",
            Backing::Memfd => "memfd",
            Backing::File => "file",
            Backing::Hugetlb => "hugetlb",
            Backing::Hugetlbfs => "hugetlbfs",
            Backing::Ext4 => "ext4",
        };
        let share = match self.share {
            Share::Private => "private",
            Share::Shared => "shared",
        };
        format!("{backing}/{share}")
    }

    fn size_label(&self) -> &'static str {
        match self.size {
            Size::Small => "small",
            Size::Mthp => "mthp",
            Size::Thp => "thp",
        }
    }

    fn pages(&self, page_size: u64) -> u64 {
        match self.size {
            Size::Small | Size::Mthp => SMALL_PAGES,
            Size::Thp => pmd_pages(page_size),
        }
    }

    fn mmap(&self, page_size: u64) -> Step {
        // A new placement fails to compile here until the mmap says where it lands.
        let Placement::Fresh = self.placement;
        Step::Mmap(Mmap {
            proc: FIRST_PROC.into(),
            name: MAP.into(),
            pages: self.pages(page_size),
            backing: self.backing,
            share: self.share,
            huge: (self.size == Size::Thp).then_some(true),
            locked: false,
            at: None,
            align: None,
        })
    }

    fn mthp(&self) -> Vec<Mthp> {
        match self.size {
            Size::Mthp => {
                vec![Mthp { pages: Some(MTHP_PAGES), anon: Some(MthpMode::Always), shmem: Some(MthpMode::Always) }]
            }
            Size::Small | Size::Thp => Vec::new(),
        }
    }

    /// A setup the kernel maps exactly as another one: a private /dev/zero map is plain
    /// anon (mmap_zero), a shared one is shmem_zero_setup as MAP_SHARED|MAP_ANONYMOUS;
    /// a small map of a file (on the guest's tmpfs) is a shmem inode as a memfd is,
    /// and the mounts differ only in their large-folio policy.
    fn twin(&self) -> Option<Setup> {
        match (self.backing, self.size) {
            (Backing::DevZero, _) => Some(Setup { backing: Backing::Anon, ..*self }),
            (Backing::File, Size::Small) => Some(Setup { backing: Backing::Memfd, ..*self }),
            _ => None,
        }
    }

    /// Whether the map may grow: past the end of its object a file or shmem page
    /// would SIGBUS, so only private anon memory grows (as in the fuzz generator).
    fn grows(&self) -> bool {
        matches!(self.backing, Backing::Anon | Backing::DevZero) && self.share == Share::Private
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.backing_label(), self.size_label())
    }
}

/// A range of the map, by what it means for the folios under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Whole,
    /// Page 1: inside the first folio, never at its start.
    Page,
    /// The first half.
    Half,
    /// The middle half, `len/4 .. 3*len/4`: across the folio boundary of two mTHP
    /// folios, and a partial range of a THP.
    Across,
}

impl Part {
    /// `(first, count)` in a map of `len` pages; `None` when it names no page.
    fn range(self, len: u64) -> Option<(u64, u64)> {
        let (first, count) = match self {
            Part::Whole => (0, len),
            Part::Page => (1.min(len.saturating_sub(1)), 1),
            Part::Half => (0, len / 2),
            Part::Across => (len / 4, len / 2),
        };
        (count > 0 && len > 0).then_some((first, count))
    }

    fn label(self) -> &'static str {
        match self {
            Part::Whole => "whole",
            Part::Page => "page",
            Part::Half => "half",
            Part::Across => "across",
        }
    }
}

/// How an mremap changes the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remap {
    /// To a fresh address, same size.
    Move,
    /// Twice the size.
    Grow,
    /// Half the size.
    Shrink,
}

/// One core step of the vocabulary; it runs in each live process in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Munmap(Part),
    /// mprotect to read-only (splits the VMA unless whole).
    Mprotect(Part),
    Dontneed(Part),
    Pageout(Part),
    Mremap(Remap),
    /// Fork; the child is `c1`, `c2`, ... in the order forks happen.
    Fork,
    /// A child exits (never p0).
    Exit,
}

impl Move {
    /// The op as the summary counts it: `munmap`, `madvise dontneed`, ...
    pub fn op(self) -> &'static str {
        match self {
            Move::Munmap(_) => "munmap",
            Move::Mprotect(_) => "mprotect",
            Move::Dontneed(_) => "madvise dontneed",
            Move::Pageout(_) => "madvise pageout",
            Move::Mremap(_) => "mremap",
            Move::Fork => "fork",
            Move::Exit => "exit",
        }
    }

    /// The op with its parameter class: `munmap across`, `mremap grow`.
    pub fn label(self) -> String {
        match self {
            Move::Munmap(p) | Move::Mprotect(p) | Move::Dontneed(p) | Move::Pageout(p) => {
                format!("{} {}", self.op(), p.label())
            }
            Move::Mremap(Remap::Move) => "mremap move".into(),
            Move::Mremap(Remap::Grow) => "mremap grow".into(),
            Move::Mremap(Remap::Shrink) => "mremap shrink".into(),
            Move::Fork | Move::Exit => self.op().into(),
        }
    }
}

/// The access after each step, in the process the step left in front (a fork's child,
/// p0 after an exit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    Write,
    Read,
}

/// What a sweep enumerates.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    pub setups: Vec<Setup>,
    pub moves: Vec<Move>,
    pub touches: Vec<Touch>,
    /// The kernel's page size: a THP setup maps one PMD of pages.
    pub page_size: u64,
}

impl Vocabulary {
    /// The vocabulary `rmapcheck sweep` runs: sized so that depth 2 fits in 30 minutes
    /// on one machine (docs/FUZZ.md gives the counts).
    pub fn standard(page_size: u64) -> Vocabulary {
        let mut setups = Vec::new();
        for backing in [Backing::Anon, Backing::DevZero, Backing::Memfd, Backing::File] {
            for share in [Share::Private, Share::Shared] {
                for size in [Size::Small, Size::Mthp, Size::Thp] {
                    setups.push(Setup { backing, share, size, placement: Placement::Fresh });
                }
            }
        }
        Vocabulary {
            setups,
            moves: vec![
                Move::Munmap(Part::Page),
                Move::Munmap(Part::Across),
                Move::Mprotect(Part::Page),
                Move::Mprotect(Part::Across),
                Move::Dontneed(Part::Whole),
                Move::Dontneed(Part::Across),
                Move::Pageout(Part::Whole),
                Move::Mremap(Remap::Move),
                Move::Mremap(Remap::Grow),
                Move::Mremap(Remap::Shrink),
                Move::Fork,
                Move::Exit,
            ],
            touches: vec![Touch::Write, Touch::Read],
            page_size,
        }
    }

    /// A key that changes whenever the space would: a progress file is only trusted
    /// for the same space.
    pub fn key(&self, depth: usize) -> String {
        crate::cache::Key::new().part("sweep", format!("{depth} {self:?}")).short()
    }
}

/// One enumerated sequence.
#[derive(Debug, Clone)]
pub struct Sequence {
    /// Its number in the space: the order [`walk`] visits it.
    pub index: u64,
    pub setup: Setup,
    /// Its core steps, as `munmap across in c1`.
    pub moves: Vec<(Move, String)>,
    pub scenario: Scenario,
}

impl Sequence {
    /// `anon/private/thp: fork, munmap across in c1`.
    pub fn describe(&self) -> String {
        let moves: Vec<String> = self
            .moves
            .iter()
            .map(|(m, p)| if p == FIRST_PROC { m.label() } else { format!("{} in {p}", m.label()) })
            .collect();
        format!("{}: {}", self.setup, moves.join(", "))
    }
}

/// What each symmetry reduction removed: sequences (of 1 to depth steps) the
/// enumeration would otherwise have produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reductions {
    /// Setups the kernel maps as another one (/dev/zero as anon, a small tmpfs file
    /// as a memfd).
    pub twin_setups: u64,
    /// A step whose range resolves to the same step as an earlier choice.
    pub equal_ranges: u64,
    /// A write offered where no page is writable, or an access where no page is
    /// mapped: the same sequence as the other access.
    pub equal_touches: u64,
    /// mprotect to read-only of pages that are all read-only already (a no-op).
    pub no_op_repeats: u64,
    /// Fork children labelled `c1`, `c2`, ... in order: with free labels from a pool
    /// of `depth`, each sequence of f forks would have depth!/(depth-f)! variants.
    pub child_labels: u64,
    /// Accesses of disjoint runs of pages in one process commute; they are played in
    /// ascending order only (k runs: k! orders).
    pub commuting_touches: u64,
}

impl Reductions {
    pub fn lines(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("setups the kernel maps as another (/dev/zero as anon, a small tmpfs file as a memfd)", self.twin_setups),
            ("ranges that resolve to the same step", self.equal_ranges),
            ("accesses with nothing to write or read", self.equal_touches),
            ("mprotect of pages already read-only", self.no_op_repeats),
            ("fork children labelled in order (c1, c2, ...)", self.child_labels),
            ("accesses of disjoint runs in ascending order only", self.commuting_touches),
        ]
    }
}

/// The pages of the map in one process: `None` unmapped, else whether writable.
type Pages = Vec<Option<bool>>;

/// The state a prefix of a sequence left.
#[derive(Clone)]
struct Node {
    world: World,
    /// Per live process that has the map.
    pages: BTreeMap<String, Pages>,
    steps: Vec<Step>,
    moves: Vec<(Move, String)>,
    forks: usize,
    /// Orders of commuting accesses this prefix stands for (product of k!).
    orders: u64,
}

/// The walk over the space; `visit` sees each sequence in order.
struct Walk<'a> {
    vocab: &'a Vocabulary,
    depth: usize,
    next: u64,
    reductions: Reductions,
    visit: &'a mut dyn FnMut(Sequence),
    /// Above 0 while a cut subtree is only counted.
    counting: u32,
}

/// Enumerate every sequence of 1 to `depth` core steps, in order, calling `visit` on
/// each; returns what the reductions removed.
pub fn walk(vocab: &Vocabulary, depth: usize, visit: &mut dyn FnMut(Sequence)) -> Reductions {
    let mut w = Walk { vocab, depth, next: 0, reductions: Reductions::default(), visit, counting: 0 };
    for setup in &vocab.setups {
        if let Some(twin) = setup.twin() {
            if vocab.setups.contains(&twin) {
                w.reductions.twin_setups += w.count_setup(setup);
                continue;
            }
        }
        if let Some(root) = w.root(setup) {
            w.grow(setup, &root);
        }
    }
    w.reductions
}

/// How many sequences [`walk`] yields.
pub fn count(vocab: &Vocabulary, depth: usize) -> (u64, Reductions) {
    let mut n = 0;
    let r = walk(vocab, depth, &mut |_| n += 1);
    (n, r)
}

impl Walk<'_> {
    /// The setup's steps: the mmap, a write of the whole map, a check.
    fn root(&self, setup: &Setup) -> Option<Node> {
        let mut node = Node {
            world: World::for_page_size(self.vocab.page_size),
            pages: BTreeMap::new(),
            steps: Vec::new(),
            moves: Vec::new(),
            forks: 0,
            orders: 1,
        };
        let mmap = setup.mmap(self.vocab.page_size);
        node.world.apply(&mmap).ok()?;
        let Step::Mmap(m) = &mmap else { unreachable!() };
        node.pages.insert(FIRST_PROC.into(), vec![Some(true); m.pages as usize]);
        node.steps.push(mmap);
        let write = touch_steps(&node.pages, FIRST_PROC, Touch::Write);
        for s in &write {
            node.world.apply(s).ok()?;
        }
        node.steps.extend(write);
        node.steps.push(Step::Check(CheckWhat::All));
        Some(node)
    }

    /// Sequences of a setup, without visiting them.
    fn count_setup(&mut self, setup: &Setup) -> u64 {
        let Some(root) = self.root(setup) else { return 0 };
        self.counted(|w| w.grow(setup, &root))
    }

    /// How many sequences `walk` numbers, counted with the reductions but visiting and
    /// recording nothing.
    fn counted(&mut self, walk: impl FnOnce(&mut Self)) -> u64 {
        let saved = (self.next, self.reductions.clone());
        self.counting += 1;
        walk(self);
        let n = self.next - saved.0;
        (self.next, self.reductions) = saved;
        self.counting -= 1;
        n
    }

    /// Visit every extension of `node` by one more step (and, depth allowing, more).
    fn grow(&mut self, setup: &Setup, node: &Node) {
        if node.moves.len() >= self.depth {
            return;
        }
        let mut seen: Vec<String> = Vec::new();
        let procs: Vec<String> = node.world.live().map(str::to_string).collect();
        for mv in self.vocab.moves.clone() {
            for proc in &procs {
                let Some((step, front)) = resolve(setup, mv, proc, node) else { continue };
                let mut world = node.world.clone();
                if world.apply(&step).is_err() {
                    continue;
                }
                let mut next = node.clone();
                next.world = world;
                effect(&mut next, mv, proc, &step);
                next.moves.push((mv, proc.clone()));
                next.steps.push(step.clone());
                let text = step_yaml(&step);
                if seen.contains(&text) {
                    self.reductions.equal_ranges += self.subtree(setup, &next, Some(&front));
                    continue;
                }
                seen.push(text);
                if is_no_op(mv, proc, node, &step) {
                    self.reductions.no_op_repeats += self.subtree(setup, &next, Some(&front));
                    continue;
                }
                self.touch(setup, next, &front);
            }
        }
    }

    /// After a step: each access the vocabulary has, then the check and the sequence.
    fn touch(&mut self, setup: &Setup, node: Node, front: &str) {
        let groups: Vec<Vec<Step>> = self.vocab.touches.iter().map(|&t| touch_steps(&node.pages, front, t)).collect();
        let any = groups.iter().any(|g| !g.is_empty());
        let mut empty_kept = false;
        for steps in groups {
            if steps.is_empty() && (any || empty_kept) {
                // Nothing to access: the same sequences as the choice that stands for it.
                let mut same = node.clone();
                same.steps.push(Step::Check(CheckWhat::All));
                self.reductions.equal_touches += self.subtree(setup, &same, None);
                continue;
            }
            empty_kept |= steps.is_empty();
            let mut next = node.clone();
            next.orders *= (1..=steps.len() as u64).product::<u64>();
            for s in &steps {
                next.world.apply(s).expect("accesses stay in mapped pages");
            }
            next.steps.extend(steps);
            next.steps.push(Step::Check(CheckWhat::All));
            self.emit(setup, &next);
            self.grow(setup, &next);
        }
    }

    fn emit(&mut self, setup: &Setup, node: &Node) {
        let index = self.next;
        self.next += 1;
        // The labels a free choice from a pool of `depth` would have given the forks.
        let labelled: u64 = (0..node.forks as u64).map(|i| (self.depth as u64).saturating_sub(i).max(1)).product();
        self.reductions.child_labels += labelled - 1;
        self.reductions.commuting_touches += node.orders - 1;
        if self.counting > 0 {
            return;
        }
        let mut scenario = Scenario {
            name: format!("sweep-d{}-{index}", self.depth),
            about: String::new(),
            steps: node.steps.clone(),
            expect: Vec::new(),
            mthp: setup.mthp(),
            known_bug: None,
            text: None,
        };
        let seq = Sequence { index, setup: *setup, moves: node.moves.clone(), scenario: scenario.clone() };
        scenario.about = format!("rmapcheck sweep, depth {}, sequence {index}: {}", self.depth, seq.describe());
        (self.visit)(Sequence { scenario, ..seq });
    }

    /// How many sequences a cut node stood for, counted with the same reductions and
    /// numbering nothing: with `front`, a node just after its step (each access
    /// follows); without, a node already accessed and checked.
    fn subtree(&mut self, setup: &Setup, node: &Node, front: Option<&str>) -> u64 {
        self.counted(|w| match front {
            Some(front) => w.touch(setup, node.clone(), front),
            None => {
                w.emit(setup, node);
                w.grow(setup, node);
            }
        })
    }
}

/// The step a move makes in `proc` from `node`, and the process in front after it.
fn resolve(setup: &Setup, mv: Move, proc: &str, node: &Node) -> Option<(Step, String)> {
    let here = || (proc.to_string(), MAP.to_string());
    let len = node.world.size(proc, MAP);
    let ranged = |part: Part| -> Option<(String, String, u64, u64)> {
        let (first, count) = part.range(len)?;
        let (proc, map) = here();
        Some((proc, map, first, count))
    };
    let step = match mv {
        Move::Munmap(part) => {
            let (proc, map, page, pages) = ranged(part)?;
            let whole = part == Part::Whole;
            Step::Munmap(Range { proc, map, page: (!whole).then_some(page), pages: (!whole).then_some(pages) })
        }
        Move::Mprotect(part) => {
            let (proc, map, page, pages) = ranged(part)?;
            Step::Mprotect(Mprotect { proc, map, page, pages: Some(pages), prot: Prot::R })
        }
        Move::Dontneed(part) | Move::Pageout(part) => {
            let (proc, map, page, pages) = ranged(part)?;
            let advice = if matches!(mv, Move::Dontneed(_)) { Advice::Dontneed } else { Advice::Pageout };
            Step::Madvise(Madvise { proc, map, page, pages: Some(pages), advice })
        }
        Move::Mremap(how) => {
            // One VMA only: the map must be whole and all of one protection.
            let pages = node.pages.get(proc)?;
            if len == 0 || pages.iter().any(|p| *p != Some(true)) {
                return None;
            }
            let (proc, map) = here();
            let (size, move_) = match how {
                Remap::Move => (len, true),
                Remap::Grow if !setup.grows() => return None,
                Remap::Grow => ((2 * len).min(MAX_PAGES), false),
                Remap::Shrink => (len / 2, false),
            };
            if size == 0 || size == len && !move_ {
                return None;
            }
            Step::Mremap(Mremap {
                proc,
                map,
                pages: size,
                page: None,
                new_pages: None,
                as_: None,
                to: None,
                move_,
                dontunmap: false,
            })
        }
        Move::Fork => {
            let child = format!("c{}", node.forks + 1);
            let step = Step::Fork(Fork { proc: proc.to_string(), child: child.clone() });
            return Some((step, child));
        }
        Move::Exit => {
            if proc == FIRST_PROC {
                return None;
            }
            return Some((Step::Exit(Proc { proc: proc.to_string() }), FIRST_PROC.into()));
        }
    };
    Some((step, proc.to_string()))
}

/// Whether `step` changes nothing: an mprotect to read-only of read-only pages.
fn is_no_op(mv: Move, proc: &str, node: &Node, step: &Step) -> bool {
    let (Move::Mprotect(_), Some(pages)) = (mv, node.pages.get(proc)) else { return false };
    let len = pages.len() as u64;
    let Some((first, count)) = step.pages_in(len) else { return false };
    (first..first + count).all(|p| pages[p as usize] == Some(false))
}

/// The page states after `step` (already valid in the world).
fn effect(node: &mut Node, mv: Move, proc: &str, step: &Step) {
    match mv {
        Move::Fork => {
            node.forks += 1;
            if let Some(p) = node.pages.get(proc).cloned() {
                node.pages.insert(format!("c{}", node.forks), p);
            }
        }
        Move::Exit => {
            node.pages.remove(proc);
        }
        Move::Mremap(_) => {
            let Step::Mremap(x) = step else { return };
            node.pages.insert(proc.to_string(), vec![Some(true); x.pages as usize]);
        }
        Move::Munmap(_) | Move::Mprotect(_) => {
            let Some(pages) = node.pages.get_mut(proc) else { return };
            let Some((first, count)) = step.pages_in(pages.len() as u64) else { return };
            let to = if matches!(mv, Move::Munmap(_)) { None } else { Some(false) };
            for p in first..first + count {
                pages[p as usize] = to;
            }
            if pages.iter().all(Option::is_none) {
                node.pages.remove(proc);
            }
        }
        Move::Dontneed(_) | Move::Pageout(_) => {}
    }
}

/// The accesses of `touch` in `proc`: one per run of pages it may access, ascending.
fn touch_steps(pages: &BTreeMap<String, Pages>, proc: &str, touch: Touch) -> Vec<Step> {
    let Some(pages) = pages.get(proc) else { return Vec::new() };
    let ok = |p: &Option<bool>| match touch {
        Touch::Write => *p == Some(true),
        Touch::Read => p.is_some(),
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < pages.len() {
        if !ok(&pages[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < pages.len() && ok(&pages[i]) {
            i += 1;
        }
        let access = Access {
            proc: proc.to_string(),
            map: MAP.into(),
            page: start as u64,
            pages: (i - start) as u64,
            value: None,
        };
        out.push(match touch {
            Touch::Write => Step::Write(access),
            Touch::Read => Step::Read(access),
        });
    }
    out
}
