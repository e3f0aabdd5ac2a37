//! The scenario language: YAML files under scenarios/, their types, loading with
//! positioned errors, and a validation pass that runs before any guest starts.
//!
//! Architecture invariant: loading and validating a scenario does no I/O beyond reading
//! its file, and never boots a VM.

pub mod count;
mod emit;
pub mod request;
mod spans;
mod uffd;
mod validate;
pub mod world;
mod writeback;

pub use emit::step as step_yaml;
pub use emit::to_yaml;
use schemars::JsonSchema;
use serde::Deserialize;
pub use spans::Pos;
use std::fmt;
use std::path::{Path, PathBuf};
pub use uffd::{Uffd, UffdMode, UffdMove, UffdRange, UffdTo, UffdWp};
pub use world::{World, MAX_MAPS, MAX_PAGES, MAX_PROCS, MAX_RECLAIM_PAGES, MAX_STEPS};
pub use writeback::{DropCaches, Fsync, Msync, SyncAll};

/// The label of the first process, which exists from the start.
pub const FIRST_PROC: &str = "p0";

pub(crate) fn p0() -> String {
    FIRST_PROC.to_string()
}

/// A scenario file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Unique name; the file should be `<name>.yaml`.
    pub name: String,
    /// One line saying what the scenario exercises.
    pub about: String,
    /// The steps, run in order.
    #[serde(deserialize_with = "serde_yaml::with::singleton_map_recursive::deserialize")]
    pub steps: Vec<Step>,
    /// Assertions on the findpage and findtask results.
    #[serde(default)]
    pub expect: Vec<Expect>,
    /// Per-size THP settings (mTHP, 6.8+) for this scenario's run; the guest's reset
    /// puts them back. A size the kernel does not offer is skipped with a note.
    #[serde(default)]
    pub mthp: Vec<Mthp>,
    /// A real kernel bug this scenario reproduces: on the kernels it names, the failure
    /// it describes is expected (XFAIL), and its absence is a failure.
    #[serde(default)]
    pub known_bug: Option<KnownBug>,
    /// The source text, kept when a count depends on the page size (`pmd`), so
    /// [`Scenario::for_page_size`] can resolve it for another kernel.
    #[serde(skip)]
    #[schemars(skip)]
    pub text: Option<std::sync::Arc<str>>,
}

/// One per-size THP setting: `/sys/kernel/mm/transparent_hugepage/hugepages-<kB>/`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mthp {
    /// The folio size in pages (a power of two, e.g. 16 or `pmd`), or `all`: every
    /// size the kernel offers.
    #[serde(deserialize_with = "count::or_all")]
    #[schemars(with = "count::Count")]
    pub pages: Option<u64>,
    /// `enabled` for anonymous memory.
    #[serde(default)]
    pub anon: Option<MthpMode>,
    /// `shmem_enabled` for shmem, memfd and tmpfs files (6.11+).
    #[serde(default)]
    pub shmem: Option<MthpMode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MthpMode {
    Always,
    Madvise,
    Never,
    Inherit,
    /// shmem only.
    WithinSize,
    /// shmem only.
    Advise,
}

impl MthpMode {
    pub fn wire(self) -> &'static str {
        match self {
            MthpMode::Always => "always",
            MthpMode::Madvise => "madvise",
            MthpMode::Never => "never",
            MthpMode::Inherit => "inherit",
            MthpMode::WithinSize => "within_size",
            MthpMode::Advise => "advise",
        }
    }

    /// Whether faults may get large folios of this size without MADV_HUGEPAGE.
    pub fn without_advice(self) -> bool {
        matches!(self, MthpMode::Always | MthpMode::WithinSize)
    }
}

/// One step. Steps run in `p0` unless `proc` names another process.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Step {
    /// Map `pages` pages and name the mapping.
    Mmap(Mmap),
    /// Unmap a mapping, or a range of its pages.
    Munmap(Range),
    /// Change the protection of a range (splits the VMA).
    Mprotect(Mprotect),
    /// Resize or move a mapping.
    Mremap(Mremap),
    /// madvise a range.
    Madvise(Madvise),
    /// Write `value` to every byte of the pages.
    Write(Access),
    /// Read one byte of each page (a read fault).
    Read(Access),
    /// Fork `proc`; the child gets the label `child`.
    Fork(Fork),
    /// The process exits; the step returns once it is reaped.
    Exit(Proc),
    /// Walk the rmap of one page.
    Findpage(PageRef),
    /// List a process's VMAs through the module.
    Findtask(Proc),
    /// `check: all` checks every mapped page of every live process.
    Check(CheckWhat),
    /// Run KSM until it stops merging.
    Ksm(Ksm),
    /// Split the THPs of a range (debugfs `split_huge_pages`; needs DEBUG_FS).
    Split(Range),
    /// Move pages to another NUMA node with move_pages(2), as the kernel's rmap
    /// selftest does; every mapper must then see the new PFN.
    Migrate(Migrate),
    /// Compact all memory (`/proc/sys/vm/compact_memory`).
    Compact(Compact),
    /// Reclaim memory through the root memory cgroup's memory.reclaim (cgroup v2,
    /// 5.19+): shrink_folio_list with its reference check (folio_referenced) and
    /// try_to_unmap, which MADV_PAGEOUT skips.
    Reclaim(Reclaim),
    /// mlock(2) a range (`onfault`: mlock2 MLOCK_ONFAULT).
    Mlock(Mlock),
    /// munlock(2) a range.
    Munlock(Range),
    /// mlockall(2) in one process.
    Mlockall(Mlockall),
    /// munlockall(2) in one process.
    Munlockall(Proc),
    /// Test only: change one byte of a present page behind the model's back (through
    /// /proc/PID/mem), so O5 has a silent corruption to find.
    Poke(PageRef),
    /// Pin pages with a GUP the process holds until `unpin` (io_uring fixed buffers:
    /// FOLL_PIN|FOLL_LONGTERM|FOLL_WRITE; vmsplice into a pipe: FOLL_GET).
    Pin(Pin),
    /// Release every pin of one kind that a process holds.
    Unpin(Unpin),
    /// A one-shot GUP of a process's pages from outside it (process_vm_readv/writev:
    /// FOLL_PIN; ptrace POKEDATA: FOLL_FORCE|FOLL_WRITE, which COWs into a read-only
    /// private map).
    Remote(Remote),
    /// ftruncate(2) the file a memfd or file map maps to `pages` pages (shrink or
    /// grow): truncate_pagecache() unmaps what lies past the new end from every
    /// mapper, private COW copies included.
    Truncate(Truncate),
    /// fallocate(2) PUNCH_HOLE|KEEP_SIZE over the file pages a range of a memfd or
    /// file map maps: shared mappers lose the pages, private COW copies stay.
    Punch(Range),
    /// msync(2) a range: MS_SYNC writes its dirty pages back, and writeback
    /// (folio_mkclean) write-protects each in every process that maps it.
    Msync(Msync),
    /// fsync(2) the file behind a map.
    Fsync(Fsync),
    /// sync(2): write back every dirty page of every filesystem.
    Sync(SyncAll),
    /// Drop the clean page cache no process maps (`/proc/sys/vm/drop_caches` = 1), so
    /// the next fault of such a page reads it back from the filesystem.
    #[serde(rename = "drop_caches")]
    DropCaches(DropCaches),
    /// Register a private anonymous map with the process's userfaultfd
    /// (UFFD_FEATURE_SIGBUS: a fault it would report delivers SIGBUS instead). A
    /// fork's child does not inherit the registration (no UFFD_FEATURE_EVENT_FORK).
    Uffd(Uffd),
    /// UFFDIO_COPY: new exclusive anon pages with `value` (a write's bytes) into
    /// pages of a registered map that nothing maps.
    #[serde(rename = "uffd_copy")]
    UffdCopy(Access),
    /// UFFDIO_ZEROPAGE: the zero page into pages of a registered map that nothing maps.
    #[serde(rename = "uffd_zeropage")]
    UffdZeropage(UffdRange),
    /// UFFDIO_MOVE (6.8+): move exclusive anon pages, folio and rmap, to an empty
    /// range of a registered map of the same process.
    #[serde(rename = "uffd_move")]
    UffdMove(UffdMove),
    /// UFFDIO_WRITEPROTECT: a write to a protected page gets SIGBUS, a read does not.
    #[serde(rename = "uffd_wp")]
    UffdWp(UffdWp),
}

/// How a `pin` step pins its pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PinKind {
    /// IORING_REGISTER_BUFFERS: pin_user_pages(FOLL_WRITE|FOLL_LONGTERM), a write fault
    /// on each page first (it breaks COW), the page then PageAnonExclusive and pinned.
    Uring,
    /// vmsplice(2) into a pipe the process holds: iov_iter_get_pages2(), a FOLL_GET
    /// reference (no pin, no unshare) on 6.1, 6.12 and 7.2 alike.
    Vmsplice,
}

impl PinKind {
    pub const ALL: [PinKind; 2] = [PinKind::Uring, PinKind::Vmsplice];

    /// Its name on the wire and in YAML.
    pub fn wire(self) -> &'static str {
        match self {
            PinKind::Uring => "uring",
            PinKind::Vmsplice => "vmsplice",
        }
    }
}

/// How a `remote` step reaches another process's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RemoteKind {
    /// process_vm_readv(2): pin_user_pages_remote(FOLL_PIN), read-only, so a shared
    /// anon page is unshared first (gup_must_unshare, FAULT_FLAG_UNSHARE).
    Readv,
    /// process_vm_writev(2): pin_user_pages_remote(FOLL_PIN|FOLL_WRITE), a write that
    /// fills each page as a `write` step does.
    Writev,
    /// PTRACE_POKEDATA of one word at each page's start: access_process_vm with
    /// FOLL_FORCE|FOLL_WRITE, which may write a read-only private map (COW).
    Ptrace,
}

impl RemoteKind {
    pub const ALL: [RemoteKind; 3] = [RemoteKind::Readv, RemoteKind::Writev, RemoteKind::Ptrace];

    /// Its name on the wire and in YAML.
    pub fn wire(self) -> &'static str {
        match self {
            RemoteKind::Readv => "readv",
            RemoteKind::Writev => "writev",
            RemoteKind::Ptrace => "ptrace",
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    #[serde(default = "p0")]
    pub proc: String,
    pub map: String,
    #[serde(deserialize_with = "count::one")]
    #[schemars(with = "count::Count")]
    pub page: u64,
    #[serde(default = "one", deserialize_with = "count::one")]
    #[schemars(with = "count::Count")]
    pub pages: u64,
    pub kind: PinKind,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Unpin {
    #[serde(default = "p0")]
    pub proc: String,
    pub kind: PinKind,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Remote {
    /// The process whose pages are reached (the agent's controller reaches them).
    #[serde(default = "p0")]
    pub proc: String,
    pub map: String,
    #[serde(deserialize_with = "count::one")]
    #[schemars(with = "count::Count")]
    pub page: u64,
    #[serde(default = "one", deserialize_with = "count::one")]
    #[schemars(with = "count::Count")]
    pub pages: u64,
    pub kind: RemoteKind,
    /// `writev`: the byte written (default as for `write`: unique to the step, with
    /// the page index over the first 8 bytes).
    #[serde(default)]
    pub value: Option<u8>,
}

impl Remote {
    /// The word PTRACE_POKEDATA stores at the start of `page` at step `step`: unique to
    /// both, so a poke that lands on the wrong page or not at all shows.
    pub fn poke_word(page: u64, step: usize) -> u64 {
        0x5054_0000_0000_0000 | (step as u64) << 24 | page
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Truncate {
    #[serde(default = "p0")]
    pub proc: String,
    pub map: String,
    /// The file's new size, in pages of the file (0 empties it).
    #[serde(deserialize_with = "count::one")]
    #[schemars(with = "count::Count")]
    pub pages: u64,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Migrate {
    #[serde(default = "p0")]
    pub proc: String,
    pub map: String,
    #[serde(default, deserialize_with = "count::opt")]
    #[schemars(with = "Option<count::Count>")]
    pub page: Option<u64>,
    #[serde(default, deserialize_with = "count::opt")]
    #[schemars(with = "Option<count::Count>")]
    pub pages: Option<u64>,
    /// The target node (default: each page to a node it is not on).
    #[serde(default)]
    pub node: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Compact {}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reclaim {
    /// How many pages to ask for. By default more than the guest has, so that reclaim
    /// takes all the workload's memory it can: the root cgroup's reclaim also takes the
    /// agent's pages, so a count the size of the workload may leave it all in place.
    #[serde(default, deserialize_with = "count::opt")]
    #[schemars(with = "Option<count::Count>")]
    pub pages: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mlock {
    #[serde(default = "p0")]
    pub proc: String,
    pub map: String,
    #[serde(default, deserialize_with = "count::opt")]
    #[schemars(with = "Option<count::Count>")]
    pub page: Option<u64>,
    #[serde(default, deserialize_with = "count::opt")]
    #[schemars(with = "Option<count::Count>")]
    pub pages: Option<u64>,
    /// MLOCK_ONFAULT: lock pages as they fault in instead of populating now.
    #[serde(default)]
    pub onfault: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mlockall {
    #[serde(default = "p0")]
    pub proc: String,
    /// MCL_CURRENT (default true).
    #[serde(default = "yes")]
    pub current: bool,
    /// MCL_FUTURE: later mmaps of this process are locked (and populated).
    #[serde(default)]
    pub future: bool,
    /// MCL_ONFAULT.
    #[serde(default)]
    pub onfault: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Backing {
    Anon,
    DevZero,
    Memfd,
    File,
    /// MAP_ANONYMOUS | MAP_HUGETLB: huge pages of the default size (the PMD size).
    Hugetlb,
    /// A file on the guest's hugetlbfs mount, of the default huge page size.
    Hugetlbfs,
    /// A file on the guest's ext4 filesystem (a block device: writeback, drop_caches).
    Ext4,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Share {
    Private,
    Shared,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mmap {
    #[serde(default = "p0")]
    pub proc: String,
    pub name: String,
    #[serde(deserialize_with = "count::one")]
    #[schemars(with = "count::Count")]
    pub pages: u64,
    pub backing: Backing,
    pub share: Share,
    /// true: MADV_HUGEPAGE on a PMD-aligned range; false: MADV_NOHUGEPAGE.
    #[serde(default)]
    pub huge: Option<bool>,
    /// MAP_LOCKED: the kernel populates and locks the range at mmap.
    #[serde(default)]
    pub locked: bool,
    /// Where it lands: `{ after: m }` or `{ before: m }`, another map of the same
    /// process, with an optional `gap` in pages (MAP_FIXED_NOREPLACE).
    #[serde(default)]
    pub at: Option<Place>,
    /// Where it starts relative to a PMD boundary (`pmd`, `pmd+N`, `pmd-N` pages), so a
    /// large folio can straddle the boundary.
    #[serde(default)]
    pub align: Option<Align>,
}

/// Where a map lands or a moved range goes, relative to another map of the same
/// process: exactly one of `after`, `before`, `over` (mremap only) and `back` (mremap
/// only). Plain data, so a generator can enumerate placements.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Place {
    /// Right after this map's last page (its extent, holes included), plus `gap`.
    #[serde(default)]
    pub after: Option<String>,
    /// Right before this map's first page, less `gap`.
    #[serde(default)]
    pub before: Option<String>,
    /// mremap only: over this map's pages from `page` (MREMAP_FIXED replaces them).
    #[serde(default)]
    pub over: Option<String>,
    /// With `over`: the first page of that map the moved range replaces.
    #[serde(default, deserialize_with = "count::opt")]
    #[schemars(with = "Option<count::Count>")]
    pub page: Option<u64>,
    /// mremap only: back where the range (a map made by `as`) came from.
    #[serde(default)]
    pub back: bool,
    /// Free pages between the two maps (default 0: adjacent).
    #[serde(default, deserialize_with = "count::opt")]
    #[schemars(with = "Option<count::Count>")]
    pub gap: Option<u64>,
}

/// What a [`Place`] names, once checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor<'a> {
    After(&'a str, u64),
    Before(&'a str, u64),
    Over(&'a str, u64),
    Back,
}

impl Place {
    /// The one anchor it names, or why it names none or several.
    pub fn anchor(&self) -> Result<Anchor<'_>, String> {
        let gap = self.gap.unwrap_or(0);
        let named = [self.after.is_some(), self.before.is_some(), self.over.is_some(), self.back];
        if named.iter().filter(|n| **n).count() != 1 {
            return Err("a place names exactly one of after, before, over and back".into());
        }
        if self.page.is_some() && self.over.is_none() {
            return Err("page goes with over".into());
        }
        if self.gap.is_some() && self.after.is_none() && self.before.is_none() {
            return Err("gap goes with after or before".into());
        }
        Ok(match (&self.after, &self.before, &self.over) {
            (Some(m), _, _) => Anchor::After(m, gap),
            (_, Some(m), _) => Anchor::Before(m, gap),
            (_, _, Some(m)) => Anchor::Over(m, self.page.unwrap_or(0)),
            _ => Anchor::Back,
        })
    }
}

/// A start `pages` pages past a PMD boundary (negative: before the next one), written
/// `pmd`, `pmd+N` or `pmd-N`; the same on every page size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[schemars(with = "String")]
pub struct Align(pub i64);

impl Align {
    /// Parse `pmd`, `pmd+N` or `pmd-N`.
    pub fn parse(s: &str) -> Result<Align, String> {
        let bad = || format!("'{s}' is not an alignment: pmd, pmd+N or pmd-N (pages)");
        let rest = s.trim().strip_prefix("pmd").ok_or_else(bad)?;
        if rest.is_empty() {
            return Ok(Align(0));
        }
        let (sign, n) = match (rest.strip_prefix('+'), rest.strip_prefix('-')) {
            (Some(n), _) => (1, n),
            (_, Some(n)) => (-1, n),
            _ => return Err(bad()),
        };
        let n: i64 = n.trim().parse().map_err(|_| bad())?;
        Ok(Align(sign * n))
    }
}

impl fmt::Display for Align {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("pmd"),
            n if n > 0 => write!(f, "pmd+{n}"),
            n => write!(f, "pmd-{}", -n),
        }
    }
}

impl<'de> Deserialize<'de> for Align {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Align, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Align;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an alignment: pmd, pmd+N or pmd-N (pages)")
            }
            // Checked in the visitor, so a bad value keeps its own position.
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Align, E> {
                Align::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// A range of pages in a mapping; without `page`, the whole mapping.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Range {
    #[serde(default = "p0")]
    pub proc: String,
    pub map: String,
    #[serde(default, deserialize_with = "count::opt")]
    #[schemars(with = "Option<count::Count>")]
    pub page: Option<u64>,
    /// Number of pages from `page` (default: 1 when `page` is given).
    #[serde(default, deserialize_with = "count::opt")]
    #[schemars(with = "Option<count::Count>")]
    pub pages: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Prot {
    None,
    R,
    Rw,
    Rx,
    Rwx,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mprotect {
    #[serde(default = "p0")]
    pub proc: String,
    pub map: String,
    #[serde(default, deserialize_with = "count::one")]
    #[schemars(with = "count::Count")]
    pub page: u64,
    #[serde(default, deserialize_with = "count::opt")]
    #[schemars(with = "Option<count::Count>")]
    pub pages: Option<u64>,
    pub prot: Prot,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mremap {
    #[serde(default = "p0")]
    pub proc: String,
    pub map: String,
    /// The new size in pages; with `page`, the number of pages of the range moved.
    #[serde(deserialize_with = "count::one")]
    #[schemars(with = "count::Count")]
    pub pages: u64,
    /// Move only the range of `pages` pages from this one; it becomes the map `as`.
    #[serde(default, deserialize_with = "count::opt")]
    #[schemars(with = "Option<count::Count>")]
    pub page: Option<u64>,
    /// With `page`: the moved range's new size (default: `pages`).
    #[serde(default, deserialize_with = "count::opt")]
    #[schemars(with = "Option<count::Count>")]
    pub new_pages: Option<u64>,
    /// With `page`: the name of the map the moved range becomes.
    #[serde(default, rename = "as")]
    pub as_: Option<String>,
    /// Where it goes (MREMAP_MAYMOVE | MREMAP_FIXED): `{ after: m }`, `{ before: m }`,
    /// `{ over: m, page: k }` or `{ back: true }`.
    #[serde(default)]
    pub to: Option<Place>,
    /// Move to a fresh address (MREMAP_MAYMOVE | MREMAP_FIXED).
    #[serde(default, rename = "move")]
    pub move_: bool,
    /// Leave the old range mapped but empty (MREMAP_DONTUNMAP; implies move).
    #[serde(default)]
    pub dontunmap: bool,
}

impl Mremap {
    /// The pages `(first, count)` it moves out of its map of `len` pages.
    pub fn source(&self, len: u64) -> (u64, u64) {
        match self.page {
            Some(p) => (p, self.pages),
            None => (0, len),
        }
    }

    /// The size in pages of what it leaves at the new place.
    pub fn new_size(&self) -> u64 {
        match self.page {
            Some(_) => self.new_pages.unwrap_or(self.pages),
            None => self.pages,
        }
    }

    /// Whether it uses a sub-range, a name or a place (the forms beyond a plain resize or
    /// move).
    pub fn placed(&self) -> bool {
        self.page.is_some() || self.new_pages.is_some() || self.as_.is_some() || self.to.is_some()
    }

    /// The name of what it leaves at the new place (`None` for `to: { back: true }`).
    pub fn result_name(&self) -> Option<&str> {
        if self.to.as_ref().is_some_and(|t| t.back) {
            return None;
        }
        Some(self.as_.as_deref().unwrap_or(&self.map))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Advice {
    Dontneed,
    Dontfork,
    Dofork,
    Wipeonfork,
    Keeponfork,
    Mergeable,
    Unmergeable,
    Hugepage,
    Nohugepage,
    Collapse,
    Pageout,
    Cold,
    /// MADV_FREE: the pages keep their bytes until reclaim, then read as zeros.
    Free,
    /// MADV_REMOVE: punch a hole in the file under a shared mapping (as `punch`).
    Remove,
}

impl Advice {
    pub fn wire(self) -> &'static str {
        match self {
            Advice::Dontneed => "dontneed",
            Advice::Dontfork => "dontfork",
            Advice::Dofork => "dofork",
            Advice::Wipeonfork => "wipeonfork",
            Advice::Keeponfork => "keeponfork",
            Advice::Mergeable => "mergeable",
            Advice::Unmergeable => "unmergeable",
            Advice::Hugepage => "hugepage",
            Advice::Nohugepage => "nohugepage",
            Advice::Collapse => "collapse",
            Advice::Pageout => "pageout",
            Advice::Cold => "cold",
            Advice::Free => "free",
            Advice::Remove => "remove",
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Madvise {
    #[serde(default = "p0")]
    pub proc: String,
    pub map: String,
    #[serde(default, deserialize_with = "count::one")]
    #[schemars(with = "count::Count")]
    pub page: u64,
    #[serde(default, deserialize_with = "count::opt")]
    #[schemars(with = "Option<count::Count>")]
    pub pages: Option<u64>,
    pub advice: Advice,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Access {
    #[serde(default = "p0")]
    pub proc: String,
    pub map: String,
    #[serde(deserialize_with = "count::one")]
    #[schemars(with = "count::Count")]
    pub page: u64,
    #[serde(default = "one", deserialize_with = "count::one")]
    #[schemars(with = "count::Count")]
    pub pages: u64,
    /// The byte written to every byte of each page (default: a byte unique to the step,
    /// with the page's index in its map over the first 8 bytes, so pages never merge by
    /// accident and a page that moves shows).
    #[serde(default)]
    pub value: Option<u8>,
}

pub(crate) fn one() -> u64 {
    1
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fork {
    #[serde(default = "p0")]
    pub proc: String,
    pub child: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Proc {
    #[serde(default = "p0")]
    pub proc: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PageRef {
    #[serde(default = "p0")]
    pub proc: String,
    pub map: String,
    #[serde(deserialize_with = "count::one")]
    #[schemars(with = "count::Count")]
    pub page: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CheckWhat {
    All,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ksm {
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// A kernel bug that rmapcheck found and that is not fixed on some kernels of the
/// matrix. Its entry in docs/FINDINGS.md says what it is and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KnownBug {
    /// Its heading in docs/FINDINGS.md (`pagemap-pmd-exclusive`).
    pub finding: String,
    /// The kernel keys that have it. Elsewhere the scenario must pass.
    pub on: Vec<String>,
    /// The check that catches it, as reports name it: `O1` ... `O5`.
    pub check: String,
    /// Text every one of its problems contains: only this failure is expected, never
    /// another one beside it.
    pub says: String,
}

/// An assertion about one findpage (`findpage: shm[0]`) or findtask (`findtask: p0`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `map[page]`, as walked by a findpage step; the page may be relative (`h[pmd-1]`).
    #[serde(default, deserialize_with = "count::page_ref")]
    pub findpage: Option<String>,
    /// The process of the findpage (default: any findpage of that page).
    #[serde(default)]
    pub proc: Option<String>,
    /// A process label whose findtask listing is checked.
    #[serde(default)]
    pub findtask: Option<String>,
    /// Only on these kernels: keys (`6.1`) or page sizes (`4k`, `16k`).
    #[serde(default)]
    pub on: Option<Vec<String>>,
    #[serde(flatten)]
    pub facts: Facts,
    /// Alternatives: the expectation holds if any one of them does (for semantics that
    /// differ between kernels, e.g. KSM or COW reuse).
    #[serde(default)]
    pub any_of: Option<Vec<Facts>>,
}

/// The facts an expectation can assert.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub order: Option<u32>,
    #[serde(default)]
    pub mapcount: Option<i64>,
    #[serde(default)]
    pub mapped_by: Option<Vec<String>>,
    #[serde(default)]
    pub visited_not_mapped: Option<Vec<String>>,
    /// For findtask: the normalised VMA lines of the named maps, in address order.
    #[serde(default)]
    pub vmas: Option<Vec<String>>,
}

/// A scenario error with its place: `file.yaml:12:7: unknown mapping 'shm2'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    pub file: PathBuf,
    pub pos: Pos,
    pub msg: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file.display(), self.pos.line, self.pos.col, self.msg)
    }
}

/// Every error of one file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct Errors(pub Vec<Error>);

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "{}", lines.join("\n"))
    }
}

/// Scenario files larger than this are refused before parsing.
const MAX_BYTES: usize = 1 << 20;

/// A scenario with the file it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub scenario: Scenario,
}

/// Parse and validate scenario text. `file` only names the source in errors.
pub fn parse(file: &Path, text: &str) -> Result<Scenario, Errors> {
    let err = |pos: Pos, msg: String| Errors(vec![Error { file: file.to_path_buf(), pos, msg }]);
    if text.len() > MAX_BYTES {
        return Err(err(Pos { line: 1, col: 1 }, format!("file is larger than {MAX_BYTES} bytes")));
    }
    let spans = spans::scan(text).map_err(|(pos, msg)| err(pos, msg))?;
    let (scenario, relative) = count::with_page_size(count::DEFAULT_PAGE_SIZE, || deserialize(text));
    let mut scenario = scenario.map_err(|(pos, msg)| err(pos, msg))?;
    let mut problems = validate::validate(&scenario);
    // A finding of a 16k campaign counts pages of 16 KiB: valid there, it may not be
    // at 4 KiB (a page past a hugetlb map's 512). It is a scenario for 16k kernels.
    if !problems.is_empty() {
        if let Ok(big) = count::with_page_size(16384, || deserialize(text)).0 {
            if count::with_page_size(16384, || validate::validate(&big)).0.is_empty() {
                let mut big = big;
                big.text = Some(text.into());
                return Ok(big);
            }
        }
    }
    if relative {
        // Counts relative to the PMD must make sense on 16k kernels too.
        scenario.text = Some(text.into());
        match count::with_page_size(16384, || deserialize(text)).0 {
            Ok(big) => {
                let small = problems.clone();
                for (path, msg) in count::with_page_size(16384, || validate::validate(&big)).0 {
                    if !small.contains(&(path.clone(), msg.clone())) {
                        problems.push((path, format!("{msg} (with 16 KiB pages)")));
                    }
                }
            }
            Err((pos, msg)) => return Err(err(pos, format!("{msg} (with 16 KiB pages)"))),
        }
    }
    if problems.is_empty() {
        Ok(scenario)
    } else {
        Err(Errors(
            problems
                .into_iter()
                .map(|(path, msg)| Error { file: file.to_path_buf(), pos: spans.at(&path), msg })
                .collect(),
        ))
    }
}

fn deserialize(text: &str) -> Result<Scenario, (Pos, String)> {
    serde_yaml::from_str(text).map_err(|e| {
        let pos = e.location().map(|l| Pos { line: l.line(), col: l.column() }).unwrap_or(Pos { line: 1, col: 1 });
        // serde's message may repeat the position; keep only the cause.
        let msg = e.to_string();
        (pos, msg.split(" at line ").next().unwrap_or(&msg).to_string())
    })
}

impl Scenario {
    /// The scenario as a kernel with `page_size` pages sees it: counts relative to the
    /// PMD resolved for that size, checked again for it (a scenario loaded as one for
    /// 16k kernels may not hold at 4k).
    pub fn for_page_size(&self, page_size: u64) -> Result<Scenario, String> {
        let Some(text) = &self.text else { return Ok(self.clone()) };
        let mut s = count::with_page_size(page_size, || deserialize(text)).0.map_err(|(_, m)| m)?;
        let problems = count::with_page_size(page_size, || validate::validate(&s)).0;
        if let Some((path, msg)) = problems.first() {
            return Err(format!("{path}: {msg} (with {} KiB pages)", page_size / 1024));
        }
        s.text = self.text.clone();
        Ok(s)
    }
}

/// Load one scenario file.
pub fn load(path: &Path) -> Result<Loaded, Errors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Errors(vec![Error { file: path.to_path_buf(), pos: Pos { line: 1, col: 1 }, msg: format!("cannot read: {e}") }])
    })?;
    parse(path, &text).map(|scenario| Loaded { path: path.to_path_buf(), scenario })
}

/// The known kernel bugs of the scenarios in `dir` (their `known_bug` blocks).
pub fn known_bugs(dir: &Path) -> anyhow::Result<Vec<KnownBug>> {
    let mut out = Vec::new();
    for file in discover(&[dir.to_path_buf()])? {
        let loaded = load(&file).map_err(|e| anyhow::anyhow!("{e}"))?;
        out.extend(loaded.scenario.known_bug);
    }
    Ok(out)
}

/// The scenario files named by `paths` (files, or directories of `*.yaml`), sorted.
pub fn discover(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    use anyhow::Context;
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("{}: cannot read", p.display()))?;
        if meta.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("{}: cannot list directory", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// The JSON Schema of scenario files, for editors.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Scenario);
    serde_json::to_string_pretty(&schema).expect("schema serialises") + "\n"
}

/// Which field of each step names its process, and which its map: one list for the
/// shared accessors and the mutable ones (`$borrow` is `&` or `&mut`).
macro_rules! proc_of {
    ($step:expr, $($borrow:tt)+) => {
        match $step {
            Step::Mmap(s) => Some($($borrow)+ s.proc),
            Step::Munmap(s) | Step::Split(s) | Step::Munlock(s) => Some($($borrow)+ s.proc),
            Step::Mprotect(s) => Some($($borrow)+ s.proc),
            Step::Mremap(s) => Some($($borrow)+ s.proc),
            Step::Madvise(s) => Some($($borrow)+ s.proc),
            Step::Write(s) | Step::Read(s) => Some($($borrow)+ s.proc),
            Step::Fork(s) => Some($($borrow)+ s.proc),
            Step::Exit(s) | Step::Findtask(s) | Step::Munlockall(s) => Some($($borrow)+ s.proc),
            Step::Findpage(s) | Step::Poke(s) => Some($($borrow)+ s.proc),
            Step::Migrate(s) => Some($($borrow)+ s.proc),
            Step::Mlock(s) => Some($($borrow)+ s.proc),
            Step::Mlockall(s) => Some($($borrow)+ s.proc),
            Step::Pin(s) => Some($($borrow)+ s.proc),
            Step::Unpin(s) => Some($($borrow)+ s.proc),
            Step::Remote(s) => Some($($borrow)+ s.proc),
            Step::Truncate(s) => Some($($borrow)+ s.proc),
            Step::Punch(s) => Some($($borrow)+ s.proc),
            Step::Check(_) | Step::Ksm(_) | Step::Compact(_) | Step::Reclaim(_) => None,
            Step::Msync(s) => Some($($borrow)+ s.proc),
            Step::Fsync(s) => Some($($borrow)+ s.proc),
            Step::Sync(_) | Step::DropCaches(_) => None,
            Step::Uffd(s) => Some($($borrow)+ s.proc),
            Step::UffdCopy(s) => Some($($borrow)+ s.proc),
            Step::UffdZeropage(s) => Some($($borrow)+ s.proc),
            Step::UffdMove(s) => Some($($borrow)+ s.proc),
            Step::UffdWp(s) => Some($($borrow)+ s.proc),
        }
    };
}

macro_rules! map_of {
    ($step:expr, $($borrow:tt)+) => {
        match $step {
            Step::Mmap(m) => Some($($borrow)+ m.name),
            Step::Munmap(r) | Step::Split(r) | Step::Munlock(r) => Some($($borrow)+ r.map),
            Step::Mprotect(x) => Some($($borrow)+ x.map),
            Step::Mremap(x) => Some($($borrow)+ x.map),
            Step::Madvise(x) => Some($($borrow)+ x.map),
            Step::Write(a) | Step::Read(a) => Some($($borrow)+ a.map),
            Step::Findpage(r) | Step::Poke(r) => Some($($borrow)+ r.map),
            Step::Migrate(x) => Some($($borrow)+ x.map),
            Step::Mlock(x) => Some($($borrow)+ x.map),
            Step::Pin(x) => Some($($borrow)+ x.map),
            Step::Remote(x) => Some($($borrow)+ x.map),
            Step::Truncate(x) => Some($($borrow)+ x.map),
            Step::Punch(r) => Some($($borrow)+ r.map),
            Step::Msync(x) => Some($($borrow)+ x.map),
            Step::Fsync(x) => Some($($borrow)+ x.map),
            Step::Uffd(x) => Some($($borrow)+ x.map),
            Step::UffdCopy(x) => Some($($borrow)+ x.map),
            Step::UffdZeropage(x) => Some($($borrow)+ x.map),
            Step::UffdMove(x) => Some($($borrow)+ x.map),
            Step::UffdWp(x) => Some($($borrow)+ x.map),
            _ => None,
        }
    };
}

impl Step {
    /// The process a step runs in.
    pub fn proc(&self) -> Option<&str> {
        proc_of!(self, &).map(String::as_str)
    }

    /// The mapping a step names, if any.
    pub fn map(&self) -> Option<&str> {
        map_of!(self, &).map(String::as_str)
    }

    /// The process a step runs in, to relabel it (the shrinker folds processes, the
    /// mutator moves steps).
    pub fn proc_mut(&mut self) -> Option<&mut String> {
        proc_of!(self, &mut)
    }

    /// The mapping a step names, to relabel it.
    pub fn map_mut(&mut self) -> Option<&mut String> {
        map_of!(self, &mut)
    }

    /// The step's name as written in YAML.
    pub fn op(&self) -> &'static str {
        match self {
            Step::Mmap(_) => "mmap",
            Step::Munmap(_) => "munmap",
            Step::Mprotect(_) => "mprotect",
            Step::Mremap(_) => "mremap",
            Step::Madvise(_) => "madvise",
            Step::Write(_) => "write",
            Step::Read(_) => "read",
            Step::Fork(_) => "fork",
            Step::Exit(_) => "exit",
            Step::Findpage(_) => "findpage",
            Step::Findtask(_) => "findtask",
            Step::Check(_) => "check",
            Step::Ksm(_) => "ksm",
            Step::Split(_) => "split",
            Step::Migrate(_) => "migrate",
            Step::Compact(_) => "compact",
            Step::Reclaim(_) => "reclaim",
            Step::Mlock(_) => "mlock",
            Step::Munlock(_) => "munlock",
            Step::Mlockall(_) => "mlockall",
            Step::Munlockall(_) => "munlockall",
            Step::Poke(_) => "poke",
            Step::Pin(_) => "pin",
            Step::Unpin(_) => "unpin",
            Step::Remote(_) => "remote",
            Step::Truncate(_) => "truncate",
            Step::Punch(_) => "punch",
            Step::Msync(_) => "msync",
            Step::Fsync(_) => "fsync",
            Step::Sync(_) => "sync",
            Step::DropCaches(_) => "drop_caches",
            Step::Uffd(_) => "uffd",
            Step::UffdCopy(_) => "uffd_copy",
            Step::UffdZeropage(_) => "uffd_zeropage",
            Step::UffdMove(_) => "uffd_move",
            Step::UffdWp(_) => "uffd_wp",
        }
    }
}

/// The pages `[first, first+count)` that an optional `page`/`pages` pair names in a map
/// of `len` pages: the whole map without `page`, one page with `page` alone.
pub fn span(page: Option<u64>, pages: Option<u64>, len: u64) -> (u64, u64) {
    match page {
        Some(p) => (p, pages.unwrap_or(1)),
        None => (0, pages.unwrap_or(len)),
    }
}

/// Split `shm[3]` into `("shm", 3)`.
pub fn parse_page_ref(s: &str) -> Option<(&str, u64)> {
    let (name, rest) = s.split_once('[')?;
    let idx = rest.strip_suffix(']')?.parse().ok()?;
    Some((name, idx))
}

#[cfg(test)]
mod tests;
