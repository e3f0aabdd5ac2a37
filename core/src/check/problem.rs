//! What a check found wrong, typed. A problem is its kind: the message people read is
//! the kind's `Display`, and the title that identifies a failure across runs (fuzz
//! dedup, finding folders, mutants) is `ProblemKind::title`, built only from the fields
//! that say which bug it is (the check, the kind, an op, an errno), never from those that
//! vary from run to run (pfns, addresses, processes, counts) and never from the message.
//! So rewording a message moves no finding to another bucket.
//!
//! Results JSON keeps a problem as its check and message; a problem read back from it
//! is `ProblemKind::Saved`, text only.
//!
//! Architecture invariant: pure values; no I/O.

use crate::check::contents;
use crate::check::dmesg::{self, BadLine};
use crate::check::model::{slot_text, Slot, Why};
use crate::check::vma_diff;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Which check a problem comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Check {
    O1,
    O2,
    O3,
    O4,
    /// Page contents against the model.
    O5,
    /// The VMAs of /proc/PID/maps against the model's.
    O6,
    /// The scenario's `expect:` block.
    Expect,
    /// A step the agent could not carry out.
    Step,
    /// The module said something that does not parse, or lost lines.
    Module,
}

/// One problem: its check (which the kind decides) and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Saved", into = "Saved")]
pub struct Problem {
    pub check: Check,
    pub kind: ProblemKind,
}

impl Problem {
    pub fn new(kind: ProblemKind) -> Problem {
        Problem { check: kind.check(), kind }
    }

    /// What people read: the kind's `Display`.
    pub fn message(&self) -> String {
        self.kind.to_string()
    }

    /// The failure's identity as text: `O1: the walk ...`.
    pub fn title(&self) -> String {
        format!("{:?}: {}", self.check, self.kind.title())
    }
}

/// A problem as results JSON holds it.
#[derive(Serialize, Deserialize)]
struct Saved {
    check: Check,
    message: String,
}

impl From<Saved> for Problem {
    fn from(s: Saved) -> Problem {
        Problem { check: s.check, kind: ProblemKind::Saved { message: s.message } }
    }
}

impl From<Problem> for Saved {
    fn from(p: Problem) -> Saved {
        Saved { check: p.check, message: p.message() }
    }
}

/// A Linux errno as the guest returned it (asm-generic numbers, which arm64 uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    /// Its symbolic name, `EFAULT`; `errno N` for one this table lacks.
    pub fn name(self) -> String {
        const NAMES: [&str; 41] = [
            "",
            "EPERM",
            "ENOENT",
            "ESRCH",
            "EINTR",
            "EIO",
            "ENXIO",
            "E2BIG",
            "ENOEXEC",
            "EBADF",
            "ECHILD",
            "EAGAIN",
            "ENOMEM",
            "EACCES",
            "EFAULT",
            "ENOTBLK",
            "EBUSY",
            "EEXIST",
            "EXDEV",
            "ENODEV",
            "ENOTDIR",
            "EISDIR",
            "EINVAL",
            "ENFILE",
            "EMFILE",
            "ENOTTY",
            "ETXTBSY",
            "EFBIG",
            "ENOSPC",
            "ESPIPE",
            "EROFS",
            "EMLINK",
            "EPIPE",
            "EDOM",
            "ERANGE",
            "EDEADLK",
            "ENAMETOOLONG",
            "ENOLCK",
            "ENOSYS",
            "ENOTEMPTY",
            "ELOOP",
        ];
        match self.0 {
            n @ 1..=40 => NAMES[n as usize].to_string(),
            75 => "EOVERFLOW".into(),
            95 => "EOPNOTSUPP".into(),
            133 => "EHWPOISON".into(),
            n => format!("errno {n}"),
        }
    }
}

/// The number, as the agent sent it (messages have always shown it so).
impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A VMA the walk visited, as a problem names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitedVma {
    pub start: u64,
    pub end: u64,
    pub pid: u32,
    pub comm: String,
}

impl fmt::Display for VisitedVma {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VMA 0x{:x}-0x{:x} (pid {}, {})", self.start, self.end, self.pid, self.comm)
    }
}

/// Why a visited VMA cannot hold the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unfit {
    NoAnonVma,
    /// `label` is not in the page's fork `lineage`.
    NotInLineage {
        label: String,
        lineage: Vec<String>,
    },
    /// It maps another file (`None`: no file).
    OtherFile {
        maps: Option<String>,
        page_of: Option<String>,
    },
    /// It maps file pages `[first, end)`, the folio is `[folio_first, folio_end)`.
    OtherPages {
        first: u64,
        end: u64,
        folio_first: u64,
        folio_end: u64,
    },
}

impl Unfit {
    fn title(&self) -> &'static str {
        match self {
            Unfit::NoAnonVma => "it has no anon_vma",
            Unfit::NotInLineage { .. } => "its process is not in the page's fork lineage",
            Unfit::OtherFile { .. } => "it maps another file",
            Unfit::OtherPages { .. } => "it maps other pages of the file",
        }
    }
}

impl fmt::Display for Unfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = |n: &Option<String>| n.clone().unwrap_or_else(|| "no file".into());
        match self {
            Unfit::NoAnonVma => write!(f, "it has no anon_vma"),
            Unfit::NotInLineage { label, lineage } => {
                write!(f, "{label} is not in the page's fork lineage [{}]", lineage.join(", "))
            }
            Unfit::OtherFile { maps, page_of } => {
                write!(f, "it maps {} but the page is of {}", file(maps), file(page_of))
            }
            Unfit::OtherPages { first, end, folio_first, folio_end } => write!(
                f,
                "it maps pages 0x{first:x}-0x{end:x} of the file but the folio is 0x{folio_first:x}-0x{folio_end:x}"
            ),
        }
    }
}

/// What the walk of a large folio got wrong against pagemap, one clause each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolioMiss {
    /// Mappings pagemap shows that the walk did not list (a short list of places).
    Missed(String),
    /// Mappings the walk listed that pagemap does not show.
    Reported(String),
    /// A VMA line said `n` more mappings than it listed; pagemap has `got` there.
    Unlisted { n: u32, place: String, got: u32 },
}

impl fmt::Display for FolioMiss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FolioMiss::Missed(places) => write!(f, "the walk missed {places}"),
            FolioMiss::Reported(places) => write!(f, "the walk reported {places} which pagemap does not"),
            FolioMiss::Unlisted { n, place, got } => {
                write!(f, "the walk says {n} more mappings in {place} than it lists, pagemap has {got}")
            }
        }
    }
}

/// What sent pages to swap: the swap oracle's problems say which, and their titles
/// keep them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapOut {
    /// madvise(MADV_PAGEOUT): pages only this process maps.
    Pageout,
    /// The `reclaim` step's memory.reclaim: any page, shared ones too.
    Reclaim,
}

impl fmt::Display for SwapOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SwapOut::Pageout => "pageout",
            SwapOut::Reclaim => "reclaim",
        })
    }
}

/// How many PTEs and PMDs map a large folio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolioMaps {
    pub ptes: i64,
    pub pmds: i64,
}

impl fmt::Display for FolioMaps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} PTEs and {} PMDs map the folio", self.ptes, self.pmds)
    }
}

/// Every kind of problem a check reports, with what it found. `at` is the slot a
/// findpage asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    // The module's output.
    /// A module line that does not parse.
    BadModuleLine(BadLine),
    /// No end line for request `req`.
    WalkIncomplete {
        at: Slot,
        req: u64,
    },
    /// Fewer module lines than the end line counts: the kernel log lost some.
    LinesLost {
        at: Slot,
        page_line: bool,
        lines: usize,
        counted: usize,
    },
    /// The module has no mapcount rule by this name.
    UnknownMapcountSemantics {
        at: Slot,
        mcsem: String,
    },
    /// A findtask's module output has no end.
    FindtaskIncomplete {
        proc: String,
    },

    // O1: pagemap (forward) against the rmap walk (reverse).
    /// Pagemap has a page; the module found none (`rc` is its return code).
    NoPage {
        at: Slot,
        pfn: u64,
        rc: i32,
    },
    /// Pagemap has a page; the module says nothing is mapped.
    NothingMapped {
        at: Slot,
        pfn: u64,
    },
    /// The module found a page pagemap says is not present.
    NotPresent {
        at: Slot,
        page_kind: String,
    },
    /// The module walked another page than pagemap has.
    WrongPfn {
        at: Slot,
        walked: u64,
        pagemap: u64,
    },
    /// The walk missed mappers pagemap shows (`missing`), reported ones it does not
    /// (`extra`), or mappings outside the named maps (`strays`).
    WalkMismatch {
        at: Slot,
        pfn: u64,
        /// The module's kind of page: anon, file, shmem, ksm.
        page_kind: String,
        forward: Vec<Slot>,
        reverse: Vec<Slot>,
        missing: Vec<Slot>,
        extra: Vec<Slot>,
        strays: Vec<String>,
        /// The address of each missing and extra slot, where pagemap read it.
        addresses: BTreeMap<Slot, u64>,
    },
    /// rmap_walk() passed `passed` for `vma`, where the folio starts at `folio_start`.
    WrongAddress {
        at: Slot,
        vma: VisitedVma,
        passed: u64,
        folio_start: u64,
    },
    /// The walk visited a VMA of no live workload process (a stale VMA).
    UnownedVma {
        at: Slot,
        vma: VisitedVma,
    },
    /// The walk visited `label`'s VMA, which cannot hold this kind of page.
    UnfitVma {
        at: Slot,
        label: String,
        vma: VisitedVma,
        page_kind: String,
        why: Unfit,
    },
    /// The walk of a large folio against pagemap over the folio's whole range.
    FolioWalkMismatch {
        at: Slot,
        nr: u64,
        head: u64,
        mapped: usize,
        why: Vec<FolioMiss>,
    },
    /// A pageout or reclaim sent one page to two swap entries.
    SwapSplit {
        by: SwapOut,
        pfn: u64,
        entry: u64,
        first: Slot,
        other: Slot,
        other_entry: u64,
    },
    /// A pageout or reclaim swapped a page out for one mapper while another still maps it.
    SwapStillMapped {
        by: SwapOut,
        pfn: u64,
        first: Slot,
        holder: Slot,
    },

    // O2: mapcounts.
    /// An order-0 page's mapcount against the mapping PTEs the walk found.
    Mapcount {
        at: Slot,
        mapcount: i64,
        ptes: i64,
    },
    /// A KSM page's mapcount against pagemap's mappings.
    KsmMapcount {
        at: Slot,
        mapcount: i64,
        mappings: i64,
    },
    /// A large folio's mapcount below the VMAs that map it.
    FolioMapcountBelow {
        at: Slot,
        mapcount: i64,
        vmas: i64,
    },
    /// /proc/kpagecount against the module's mapcount.
    Kpagecount {
        at: Slot,
        kpagecount: i64,
        mapcount: i64,
    },
    /// Pagemap flags a page PM_MMAP_EXCLUSIVE that several processes map.
    NotExclusive {
        at: Slot,
        pfn: u64,
        whole_pmd: bool,
        mappers: Vec<String>,
    },
    /// The module's folio bounds against kpageflags of its head, last page and the next.
    FolioBounds {
        at: Slot,
        nr: u64,
        head: u64,
        kpageflags: [u64; 3],
    },
    /// A large folio's mapcount under this kernel's semantics (`mcsem`).
    FolioMapcount {
        at: Slot,
        mapcount: i64,
        mcsem: String,
        want: i64,
        maps: FolioMaps,
        this_page: i64,
    },
    /// A page of a large folio: its own mapcount.
    PageMapcount {
        at: Slot,
        got: i64,
        want: i64,
        maps: FolioMaps,
    },
    /// /proc/kpagecount of every page of a large folio, as runs (`1*3,2`).
    FolioKpagecount {
        at: Slot,
        got: String,
        want: String,
        mcsem: String,
        maps: FolioMaps,
    },

    // O3: the kernel complained.
    /// A splat: its first line and its normalised title.
    Splat {
        line: String,
        title: String,
    },
    /// New taint flags with no splat lines.
    Tainted {
        flags: String,
    },

    // O4 and O5: the model.
    /// The model's sharers of a slot against pagemap's; `why` is the model's reason.
    Sharing {
        at: Slot,
        expected: Vec<Slot>,
        why: Why,
        observed: Vec<Slot>,
    },
    /// The bytes a page holds against the model's.
    Contents(contents::Mismatch),
    /// A read or write step's signal against the model's: past a file's end
    /// (`expected`: the page the model stops at) every access gets SIGBUS, inside it
    /// none (`got`: the signal the worker caught, if any). In a map registered with
    /// userfaultfd (`uffd`), a fault that userfaultfd would have to answer gets SIGBUS.
    Signal {
        n: usize,
        op: String,
        at: Slot,
        expected: Option<u64>,
        got: Option<String>,
        uffd: bool,
    },
    /// A process's VMAs over a map against the model's (O6).
    Layout(vma_diff::Mismatch),

    /// What a UFFDIO_COPY, ZEROPAGE or MOVE did against the model's.
    Uffd {
        n: usize,
        op: String,
        at: Slot,
        expected: crate::check::model::UffdResult,
        got: crate::check::model::UffdResult,
    },

    // Steps and the guest.
    /// Step `n` failed in the agent.
    StepFailed {
        n: usize,
        op: String,
        errno: Errno,
        msg: String,
    },
    /// Step `n`'s worker stopped answering, stuck in the kernel at `frames` (innermost
    /// first, the scheduler's left out; empty when nothing said where).
    WorkerHung {
        n: usize,
        op: String,
        frames: Vec<String>,
    },
    /// Step `n`'s worker died; `how` is its signal and what the kernel logged.
    WorkerDied {
        n: usize,
        op: String,
        how: String,
    },
    /// Setting mTHP sizes failed.
    MthpFailed {
        args: String,
        errno: Errno,
    },
    /// The scenario did not run (no kernel, or the guest failed before it).
    NotRun {
        why: String,
    },
    /// The guest failed during a step (step-by-step replay); by a splat when
    /// `by_splat`, and `what` is then its title.
    GuestFault {
        cause: String,
        what: String,
        by_splat: bool,
    },

    // The scenario's own expectations.
    NoFindpageResult {
        at: String,
    },
    NoFindtaskResult {
        proc: String,
    },
    ExpectationFailed {
        what: String,
        diff: String,
    },
    /// A known kernel bug that did not show on a kernel that has it.
    KnownBugAbsent {
        finding: String,
        kernel: String,
        release: String,
    },

    /// Read back from results JSON, which keeps the text only.
    Saved {
        message: String,
    },
}

/// The innermost frames of a hung worker's stack that its title names.
const HUNG_TITLE_FRAMES: usize = 3;

/// Where a hung worker waits, for titles: ` in a ← b ← c`, its innermost frames.
fn hung_where(frames: &[String]) -> String {
    if frames.is_empty() {
        return " (no kernel stack)".into();
    }
    format!(" in {}", frames.iter().take(HUNG_TITLE_FRAMES).cloned().collect::<Vec<_>>().join(" ← "))
}

fn slots(set: &[Slot]) -> String {
    if set.is_empty() {
        return "nothing".into();
    }
    set.iter().map(slot_text).collect::<Vec<_>>().join(", ")
}

impl ProblemKind {
    pub fn check(&self) -> Check {
        use ProblemKind::*;
        match self {
            BadModuleLine(_) | WalkIncomplete { .. } | LinesLost { .. } | UnknownMapcountSemantics { .. } => {
                Check::Module
            }
            FindtaskIncomplete { .. } => Check::Module,
            NoPage { .. } | NothingMapped { .. } | NotPresent { .. } | WrongPfn { .. } | WalkMismatch { .. } => {
                Check::O1
            }
            WrongAddress { .. } | UnownedVma { .. } | UnfitVma { .. } | FolioWalkMismatch { .. } => Check::O1,
            SwapSplit { .. } | SwapStillMapped { .. } => Check::O1,
            Mapcount { .. } | KsmMapcount { .. } | FolioMapcountBelow { .. } | Kpagecount { .. } => Check::O2,
            NotExclusive { .. } | FolioBounds { .. } | FolioMapcount { .. } | PageMapcount { .. } => Check::O2,
            FolioKpagecount { .. } => Check::O2,
            Splat { .. } | Tainted { .. } => Check::O3,
            Sharing { .. } | Signal { .. } | Uffd { .. } => Check::O4,
            Contents(_) => Check::O5,
            Layout(_) => Check::O6,
            StepFailed { .. } | MthpFailed { .. } | NotRun { .. } => Check::Step,
            WorkerHung { .. } | WorkerDied { .. } => Check::Step,
            GuestFault { by_splat: true, .. } => Check::O3,
            GuestFault { .. } => Check::Step,
            NoFindpageResult { .. } | NoFindtaskResult { .. } | ExpectationFailed { .. } => Check::Expect,
            KnownBugAbsent { .. } => Check::Expect,
            // Only `Problem::from(Saved)` makes one, with the check it saved.
            Saved { .. } => Check::Step,
        }
    }

    /// What identifies the failure, without the check: the kind and the fields that
    /// tell one bug from another. Kept close to the text of the message where that
    /// reads well, with `#`, `SLOT` and `[..]` where the message has values.
    pub fn title(&self) -> String {
        use ProblemKind::*;
        match self {
            BadModuleLine(b) => format!("bad module line ({})", b.why),
            WalkIncomplete { .. } => "the module's lines are incomplete (no end line)".into(),
            LinesLost { .. } => "the kernel log lost the module's lines".into(),
            UnknownMapcountSemantics { mcsem, .. } => format!("unknown mapcount semantics '{mcsem}'"),
            FindtaskIncomplete { .. } => "findtask: incomplete module output".into(),
            NoPage { rc, .. } => format!("pagemap has pfn but the module found no page (rc={rc})"),
            NothingMapped { .. } => "pagemap has pfn but the module says nothing is mapped".into(),
            NotPresent { page_kind, .. } => format!("the module found a {page_kind} page but pagemap says not present"),
            WrongPfn { .. } => "the module walked pfn but pagemap has another".into(),
            WalkMismatch { missing, extra, strays, .. } => {
                let mut t = "pagemap maps pfn at [..] but the rmap walk found [..]".to_string();
                if !missing.is_empty() {
                    t.push_str("; the walk missed SLOT");
                }
                if !extra.is_empty() {
                    t.push_str("; the walk reported SLOT which pagemap does not");
                }
                if !strays.is_empty() {
                    t.push_str("; mapped outside the named mappings");
                }
                t
            }
            WrongAddress { .. } => "rmap_walk passed an address other than where the folio starts in the VMA".into(),
            UnownedVma { .. } => "the walk visited a VMA which no live workload process owns".into(),
            UnfitVma { page_kind, why, .. } => {
                format!("the walk visited a VMA which cannot hold this {page_kind} page: {}", why.title())
            }
            FolioWalkMismatch { why, .. } => {
                let mut t = "pagemap maps the folio # times".to_string();
                for w in why {
                    t.push_str(match w {
                        FolioMiss::Missed(_) => "; the walk missed SLOT",
                        FolioMiss::Reported(_) => "; the walk reported SLOT which pagemap does not",
                        FolioMiss::Unlisted { .. } => "; the walk says more mappings than it lists",
                    });
                }
                t
            }
            SwapSplit { by, .. } => format!("{by}: pfn went to two swap entries"),
            SwapStillMapped { by, .. } => format!("{by}: pfn was swapped out for SLOT but SLOT still maps it"),
            Mapcount { .. } => "mapcount # but the walk found # mapping PTEs".into(),
            KsmMapcount { .. } => "KSM page mapcount # but pagemap has # mappings".into(),
            FolioMapcountBelow { .. } => "folio mapcount # is below the # VMAs that map it".into(),
            Kpagecount { .. } => "/proc/kpagecount says #, the module's mapcount #".into(),
            NotExclusive { whole_pmd, .. } => format!(
                "pagemap flags pfn exclusive to one mm (PM_MMAP_EXCLUSIVE){}, but # map it",
                if *whole_pmd { " in a PMD-size folio mapped whole here" } else { "" }
            ),
            FolioBounds { .. } => "the module's folio bounds disagree with kpageflags".into(),
            FolioMapcount { mcsem, .. } => format!("mapcount # ({mcsem}) but it must be #"),
            PageMapcount { .. } => "the page's own mapcount is # but # mappings map this page".into(),
            FolioKpagecount { mcsem, .. } => {
                format!("/proc/kpagecount of the folio's pages is [..] but must be [..] ({mcsem})")
            }
            Splat { title, .. } => title.clone(),
            Tainted { flags } => format!("the kernel is newly tainted: {flags}"),
            // The model's reason, as docs/FUZZ.md says O4 is titled.
            Sharing { why, .. } => {
                format!("the model expects it shared by [..] ({}), the kernel has [..]", why.title())
            }
            Contents(m) => m.title(),
            Signal { op, expected, got, uffd: true, .. } => match (expected, got) {
                (Some(_), None) => format!("{op} that userfaultfd must answer got no SIGBUS"),
                (None, _) => format!("{op} that userfaultfd need not answer got a signal"),
                (Some(_), Some(_)) => format!("{op} in a userfaultfd range stopped at another page"),
            },
            Signal { op, expected, got, .. } => match (expected, got) {
                (Some(_), None) => format!("{op} past the file's end got no SIGBUS"),
                (None, _) => format!("{op} inside the file got a signal"),
                (Some(_), Some(_)) => format!("{op} past the file's end stopped at another page"),
            },
            Layout(m) => m.title(),
            Uffd { op, expected, got, .. } => {
                let name = |r: &crate::check::model::UffdResult| r.errno.map_or("no error".into(), |e| Errno(e).name());
                format!("{op} stopped with {} where the model expects {}", name(got), name(expected))
            }
            StepFailed { op, errno, msg, .. } => format!("{op} failed with {} ({msg})", errno.name()),
            WorkerHung { op, frames, .. } => format!("{op} hung{}", hung_where(frames)),
            WorkerDied { op, how, .. } => format!("{op}: the worker died of {how}"),
            MthpFailed { errno, .. } => format!("mthp failed with {}", errno.name()),
            // Text from elsewhere (a kernel that is not ready, a guest fault): its first
            // line with numbers stripped is all there is.
            NotRun { why } => dmesg::normalise_title(why.lines().next().unwrap_or("")),
            GuestFault { cause, what, .. } => format!("guest fault ({cause}): {}", dmesg::normalise_title(what)),
            NoFindpageResult { .. } => "expect findpage: no result".into(),
            NoFindtaskResult { .. } => "expect findtask: no result".into(),
            ExpectationFailed { .. } => "an expectation does not hold".into(),
            KnownBugAbsent { finding, .. } => format!("known kernel bug {finding} did not show"),
            Saved { message } => message.clone(),
        }
    }
}

impl ProblemKind {
    /// What is wrong in the kernel's own terms, for a report to linux-mm; `None` where
    /// the message already says it as well as it can be said.
    pub fn in_mm_terms(&self) -> Option<String> {
        use ProblemKind::*;
        let place = |addresses: &BTreeMap<Slot, u64>, s: &Slot| match addresses.get(s) {
            Some(a) => format!("{}'s mapping at 0x{a:x} ({})", s.0, slot_text(s)),
            None => format!("{}'s mapping ({})", s.0, slot_text(s)),
        };
        match self {
            WalkMismatch { pfn, page_kind, missing, extra, addresses, .. } => {
                let mut out = Vec::new();
                if !missing.is_empty() {
                    let who: Vec<String> = missing.iter().map(|s| place(addresses, s)).collect();
                    out.push(format!(
                        "the rmap walk of the {page_kind} folio at pfn 0x{pfn:x} did not reach {}, which pagemap shows",
                        who.join(", ")
                    ));
                }
                if !extra.is_empty() {
                    let who: Vec<String> = extra.iter().map(|s| place(addresses, s)).collect();
                    out.push(format!(
                        "the rmap walk of the {page_kind} folio at pfn 0x{pfn:x} reported {}, where pagemap shows another page or none",
                        who.join(", ")
                    ));
                }
                (!out.is_empty()).then(|| out.join("; "))
            }
            WrongAddress { vma, passed, folio_start, .. } => Some(format!(
                "rmap_walk() called rmap_one for pid {}'s VMA 0x{:x}-0x{:x} with address 0x{passed:x}, \
                 but the folio starts at 0x{folio_start:x} there (vma_address() of its index)",
                vma.pid, vma.start, vma.end
            )),
            UnownedVma { vma, .. } => Some(format!(
                "the rmap walk visited the VMA 0x{:x}-0x{:x} of pid {} ({}), which no live workload process \
                 owns: a VMA still in the folio's anon_vma or i_mmap interval tree after its mm let it go",
                vma.start, vma.end, vma.pid, vma.comm
            )),
            SwapStillMapped { pfn, first, holder, .. } => Some(format!(
                "reclaim swapped out the page at pfn 0x{pfn:x} for {}, so try_to_unmap() must have unmapped it \
                 everywhere, but {} still maps it",
                slot_text(first),
                slot_text(holder)
            )),
            Mapcount { mapcount, ptes, .. } => {
                Some(format!("the page's mapcount is {mapcount}, but the rmap walk found {ptes} PTEs mapping it"))
            }
            _ => None,
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ProblemKind::*;
        let at = |s: &Slot| slot_text(s);
        match self {
            BadModuleLine(b) => write!(f, "{b}"),
            WalkIncomplete { at: s, req } => {
                write!(f, "findpage {}: the module's lines for req={req} are incomplete (no end line)", at(s))
            }
            LinesLost { at: s, page_line, lines, counted } => write!(
                f,
                "findpage {}: the kernel log lost the module's lines ({} page line, {lines} of {counted} VMA lines)",
                at(s),
                if *page_line { "a" } else { "no" }
            ),
            UnknownMapcountSemantics { at: s, mcsem } => {
                write!(f, "findpage {}: unknown mapcount semantics '{mcsem}'", at(s))
            }
            FindtaskIncomplete { proc } => write!(f, "findtask {proc}: incomplete module output"),
            NoPage { at: s, pfn, rc } => {
                write!(f, "findpage {}: pagemap has pfn 0x{pfn:x} but the module found no page (rc={rc})", at(s))
            }
            NothingMapped { at: s, pfn } => {
                write!(f, "findpage {}: pagemap has pfn 0x{pfn:x} but the module says nothing is mapped", at(s))
            }
            NotPresent { at: s, page_kind } => {
                write!(f, "findpage {}: the module found a {page_kind} page but pagemap says not present", at(s))
            }
            WrongPfn { at: s, walked, pagemap } => {
                write!(f, "findpage {}: the module walked pfn 0x{walked:x} but pagemap has 0x{pagemap:x}", at(s))
            }
            WalkMismatch { at: s, pfn, forward, reverse, missing, extra, strays, .. } => {
                write!(
                    f,
                    "findpage {}: pagemap maps pfn 0x{pfn:x} at [{}] but the rmap walk found [{}]",
                    at(s),
                    slots(forward),
                    slots(reverse)
                )?;
                if !missing.is_empty() {
                    write!(f, "; the walk missed {}", slots(missing))?;
                }
                if !extra.is_empty() {
                    write!(f, "; the walk reported {} which pagemap does not", slots(extra))?;
                }
                if !strays.is_empty() {
                    write!(f, "; mapped outside the named mappings: {}", strays.join(", "))?;
                }
                Ok(())
            }
            WrongAddress { at: s, vma, passed, folio_start } => write!(
                f,
                "findpage {}: rmap_walk passed 0x{passed:x} for the VMA 0x{:x}-0x{:x} of pid {}, but the folio starts at 0x{folio_start:x} there",
                at(s),
                vma.start,
                vma.end,
                vma.pid
            ),
            UnownedVma { at: s, vma } => {
                write!(f, "findpage {}: the walk visited the {vma}, which no live workload process owns", at(s))
            }
            UnfitVma { at: s, label, vma, page_kind, why } => write!(
                f,
                "findpage {}: the walk visited {label}'s {vma}, which cannot hold this {page_kind} page: {why}",
                at(s)
            ),
            FolioWalkMismatch { at: s, nr, head, mapped, why } => {
                let why: Vec<String> = why.iter().map(FolioMiss::to_string).collect();
                write!(
                    f,
                    "findpage {}: pagemap maps the {nr}-page folio at pfn 0x{head:x} {mapped} times; {}",
                    at(s),
                    why.join("; ")
                )
            }
            SwapSplit { by, pfn, entry, first, other, other_entry } => write!(
                f,
                "{by}: pfn 0x{pfn:x} went to swap entry 0x{entry:x} for {} but to 0x{other_entry:x} for {}",
                at(first),
                at(other)
            ),
            SwapStillMapped { by, pfn, first, holder } => write!(
                f,
                "{by}: pfn 0x{pfn:x} was swapped out for {} but {} still maps it",
                at(first),
                at(holder)
            ),
            Mapcount { at: s, mapcount, ptes } => {
                write!(f, "findpage {}: mapcount {mapcount} but the walk found {ptes} mapping PTEs", at(s))
            }
            KsmMapcount { at: s, mapcount, mappings } => {
                write!(f, "findpage {}: KSM page mapcount {mapcount} but pagemap has {mappings} mappings", at(s))
            }
            FolioMapcountBelow { at: s, mapcount, vmas } => {
                write!(f, "findpage {}: folio mapcount {mapcount} is below the {vmas} VMAs that map it", at(s))
            }
            Kpagecount { at: s, kpagecount, mapcount } => {
                write!(f, "findpage {}: /proc/kpagecount says {kpagecount}, the module's mapcount {mapcount}", at(s))
            }
            NotExclusive { at: s, pfn, whole_pmd, mappers } => write!(
                f,
                "{}: pagemap flags pfn 0x{pfn:x} exclusive to one mm (PM_MMAP_EXCLUSIVE){}, but {} map it: {}",
                at(s),
                if *whole_pmd { " in a PMD-size folio mapped whole here" } else { "" },
                mappers.len(),
                mappers.join(", ")
            ),
            FolioBounds { at: s, nr, head, kpageflags: [h, l, n] } => write!(
                f,
                "findpage {}: the module says the folio is {nr} pages from pfn 0x{head:x}, but kpageflags of its head, last page and the next are 0x{h:x}, 0x{l:x}, 0x{n:x}",
                at(s)
            ),
            FolioMapcount { at: s, mapcount, mcsem, want, maps, this_page } => write!(
                f,
                "findpage {}: mapcount {mapcount} ({mcsem}) but it must be {want}: {maps}, {this_page} of them this page",
                at(s)
            ),
            PageMapcount { at: s, got, want, maps } => write!(
                f,
                "findpage {}: the page's own mapcount is {got} but {want} mappings map this page ({maps})",
                at(s)
            ),
            FolioKpagecount { at: s, got, want, mcsem, maps } => write!(
                f,
                "findpage {}: /proc/kpagecount of the folio's pages is [{got}] but must be [{want}] ({mcsem}; {maps})",
                at(s)
            ),
            Splat { line, .. } => write!(f, "kernel splat: {line}"),
            Tainted { flags } => write!(f, "the kernel is newly tainted: {flags}"),
            Sharing { at: s, expected, why, observed } => {
                let show = |v: &[Slot]| v.iter().map(slot_text).collect::<Vec<_>>().join(", ");
                write!(
                    f,
                    "{}: the model expects it shared by [{}] ({why}), the kernel has [{}]",
                    at(s),
                    show(expected),
                    show(observed)
                )
            }
            Contents(m) => write!(f, "{m}"),
            Signal { n, op, at: s, expected, got, uffd } => {
                let want = match (expected, uffd) {
                    (Some(p), false) => format!("SIGBUS at page {p}, past the file's end"),
                    (None, false) => "no signal: every page is inside the file".into(),
                    (Some(p), true) => format!("SIGBUS at page {p}, a fault userfaultfd must answer"),
                    (None, true) => "no signal: no fault userfaultfd must answer".into(),
                };
                let got = got.as_deref().unwrap_or("no signal");
                write!(f, "step {n} ({op}) {}: the model expects {want}, the worker got {got}", at(s))
            }
            Layout(m) => write!(f, "{m}"),
            Uffd { n, op, at: s, expected, got } => {
                let done = |r: &crate::check::model::UffdResult| match r.errno {
                    None => format!("{} page(s)", r.done),
                    Some(e) => format!("{} page(s), then {}", r.done, Errno(e).name()),
                };
                let (expected, got) = (done(expected), done(got));
                write!(f, "step {n} ({op}) to {}: the model expects {expected}, the kernel did {got}", at(s))
            }
            StepFailed { n, op, errno, msg } => write!(f, "step {n} ({op}): failed with errno {errno} ({msg})"),
            WorkerHung { n, op, frames } => {
                write!(f, "step {n} ({op}) hung{}", hung_where(frames))?;
                if frames.len() > HUNG_TITLE_FRAMES {
                    write!(f, " (stack: {})", frames.join(" ← "))?;
                }
                Ok(())
            }
            WorkerDied { n, op, how } => write!(f, "step {n} ({op}): the worker died of {how}"),
            MthpFailed { args, errno } => write!(f, "mthp {args}: failed with errno {errno}"),
            NotRun { why } => write!(f, "{why}"),
            GuestFault { cause, what, .. } => write!(f, "guest fault ({cause}): {what}"),
            NoFindpageResult { at } => write!(f, "expect findpage {at}: no result (the step failed?)"),
            NoFindtaskResult { proc } => write!(f, "expect findtask {proc}: no result"),
            ExpectationFailed { what, diff } => write!(f, "expect {what} does not hold:\n{diff}"),
            KnownBugAbsent { finding, kernel, release } => write!(
                f,
                "known kernel bug {finding} did not show on {kernel} ({release}): if it is fixed there, say so in docs/FINDINGS.md \
                 and take {kernel} out of known_bug.on"
            ),
            Saved { message } => write!(f, "{message}"),
        }
    }
}

#[cfg(test)]
mod tests;
