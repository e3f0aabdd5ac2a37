//! The oracle: checks what the module reports against ground truth taken from outside
//! it (the agent's /proc/PID/pagemap reads and /proc/kpagecount).
//!
//! - O1 forward = reverse: the slots whose pagemap PFN is the page's PFN are exactly the
//!   slots the rmap walk reports as mapping it.
//! - O2 mapcount: an order-0 page's mapcount is the number of mapping PTEs found, and
//!   /proc/kpagecount agrees. Large folios are counted exactly, per kernel (`folio`).
//! - Every VMA the walk visits must be able to hold the page: a live workload process's,
//!   with the page's file and offsets, or anon in the page's fork lineage; and
//!   rmap_walk() must pass the address where the folio starts in it.
//! - O3 no splat (checked by the runner over the whole scenario).
//!
//! Architecture invariant: the oracle is pure; it judges values, it does no I/O.

use crate::check::dmesg::{VmaLine, VmaState, Walk};
use crate::check::model::Slot;
use crate::wire::Fields;
use std::collections::{BTreeMap, BTreeSet};

pub use crate::check::model::slot_text;
pub use crate::check::problem::{Check, Problem};
use crate::check::problem::{ProblemKind, Unfit, VisitedVma};

/// One mapping of one process as the agent's pagemap read saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapPages {
    pub name: String,
    pub addr: u64,
    pub pfns: Vec<Option<u64>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcPages {
    pub label: String,
    pub pid: u32,
    pub maps: Vec<MapPages>,
}

pub mod folio;
pub use folio::FolioTruth;

/// One VMA of /proc/PID/maps over a named map, clipped to it (O6): pages `lo..hi` of
/// the map, its permissions (`rw-p`), its pgoff at page `lo`, and its inode (0: anon).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmaSpan {
    pub lo: u64,
    pub hi: u64,
    pub perms: String,
    pub pgoff: u64,
    pub ino: u64,
    /// The VMA begins before the map (`b`) or ends after it (`e`): it was merged
    /// with a neighbouring map.
    pub begins_before: bool,
    pub ends_after: bool,
}

impl VmaSpan {
    /// The `vmas=` list of a pagemap line: `lo-hi:perms:pgoff:ino[:b|e|be|-],...`, or `-`.
    pub fn parse_list(s: &str) -> Result<Vec<VmaSpan>, String> {
        if s == "-" {
            return Ok(Vec::new());
        }
        s.split(',')
            .map(|v| {
                let bad = || format!("bad vma '{v}'");
                let mut f = v.split(':');
                let (range, perms, pgoff, ino) = (f.next(), f.next(), f.next(), f.next());
                let reach = f.next().unwrap_or("-");
                let (lo, hi) = range.and_then(|r| r.split_once('-')).ok_or_else(bad)?;
                let hex = |x: Option<&str>| x.and_then(|x| u64::from_str_radix(x, 16).ok()).ok_or_else(bad);
                Ok(VmaSpan {
                    lo: lo.parse().map_err(|_| bad())?,
                    hi: hi.parse().map_err(|_| bad())?,
                    perms: perms.filter(|p| p.len() == 4).ok_or_else(bad)?.to_string(),
                    pgoff: hex(pgoff)?,
                    ino: hex(ino)?,
                    begins_before: reach.contains('b'),
                    ends_after: reach.contains('e'),
                })
            })
            .collect()
    }
}

/// Ground truth: every named mapping of every live process, page by page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Truth {
    pub procs: Vec<ProcPages>,
    pub page_size: u64,
    /// Slots whose pagemap entry is a swap entry (bit 62), with the entry (type and
    /// offset, as pagemap packs them): equal entries are one swapped-out page.
    pub swapped: std::collections::BTreeMap<Slot, u64>,
    /// Present slots pagemap flags PM_MMAP_EXCLUSIVE (bit 56).
    pub exclusive: BTreeSet<Slot>,
    /// Frames that are a tail page of a large folio (KPF_COMPOUND_TAIL).
    pub tails: BTreeSet<u64>,
    /// Frames that are a page of a large folio, head or tail.
    pub large: BTreeSet<u64>,
    /// The VMAs over each (process, map), where the read listed them (O6).
    pub vmas: BTreeMap<(String, String), Vec<VmaSpan>>,
}

fn parse_hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

impl Truth {
    /// Build from the `D` lines of a `pagemap` reply.
    pub fn from_data(data: &[Fields], page_size: u64) -> Result<Truth, String> {
        let mut truth = Truth {
            procs: Vec::new(),
            page_size,
            swapped: Default::default(),
            exclusive: BTreeSet::new(),
            tails: BTreeSet::new(),
            large: BTreeSet::new(),
            vmas: BTreeMap::new(),
        };
        for d in data {
            let get = |k: &str| d.get(k).ok_or_else(|| format!("pagemap line without {k}: {d:?}"));
            let label = get("proc")?.clone();
            let pid = get("pid")?.parse().map_err(|_| format!("bad pid in {d:?}"))?;
            if !d.contains_key("name") {
                // A live process without maps.
                truth.procs.push(ProcPages { label, pid, maps: Vec::new() });
                continue;
            }
            let addr = parse_hex(get("addr")?).ok_or_else(|| format!("bad addr in {d:?}"))?;
            let pfns =
                get("pfns")?
                    .split(',')
                    .map(|p| {
                        if p == "-" {
                            Ok(None)
                        } else {
                            parse_hex(p).map(Some).ok_or_else(|| format!("bad pfn '{p}'"))
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
            let map = MapPages { name: get("name")?.clone(), addr, pfns };
            // `swap=` and `excl=` come only when some page of the map has the flag.
            let flagged = |key: &str| {
                let list = d.get(key).map(|s| s.split(',').map(parse_hex).collect::<Vec<_>>()).unwrap_or_default();
                list.into_iter().enumerate().filter_map(|(i, e)| Some((i as u64, e?)))
            };
            for (i, e) in flagged("swap") {
                truth.swapped.insert((label.clone(), map.name.clone(), i), e);
            }
            for (i, _) in flagged("excl").filter(|(i, _)| map.pfns.get(*i as usize).is_some_and(|p| p.is_some())) {
                truth.exclusive.insert((label.clone(), map.name.clone(), i));
            }
            // `folio=` too: h (a large folio's head), t (a tail) or - per page.
            let folio = d.get("folio").map(|s| s.split(',').collect::<Vec<_>>()).unwrap_or_default();
            for (t, pfn) in folio.iter().zip(&map.pfns).filter_map(|(t, p)| Some((*t, (*p)?))) {
                if t != "-" {
                    truth.large.insert(pfn);
                }
                if t == "t" {
                    truth.tails.insert(pfn);
                }
            }
            if let Some(v) = d.get("vmas") {
                truth.vmas.insert((label.clone(), map.name.clone()), VmaSpan::parse_list(v)?);
            }
            match truth.procs.iter_mut().find(|p| p.label == label) {
                Some(p) => p.maps.push(map),
                None => truth.procs.push(ProcPages { label, pid, maps: vec![map] }),
            }
        }
        Ok(truth)
    }

    /// Whether `pfn` needs a walk of its own: not when it is a tail page whose previous
    /// frame (in `present`) is too, or the head, since one walk covers a whole folio.
    pub fn needs_walk(&self, pfn: u64, present: &BTreeSet<u64>) -> bool {
        !(self.tails.contains(&pfn) && pfn.checked_sub(1).is_some_and(|p| present.contains(&p)))
    }

    pub fn label(&self, pid: u32) -> Option<&str> {
        self.procs.iter().find(|p| p.pid == pid).map(|p| p.label.as_str())
    }

    pub fn pid(&self, label: &str) -> Option<u32> {
        self.procs.iter().find(|p| p.label == label).map(|p| p.pid)
    }

    /// The slot at `addr` in process `pid`. Where maps overlap (a range moved over
    /// part of another map), the one with a page there wins.
    pub fn locate(&self, pid: u32, addr: u64) -> Option<Slot> {
        let proc = self.procs.iter().find(|p| p.pid == pid)?;
        let within = |m: &&MapPages| addr >= m.addr && addr < m.addr + m.pfns.len() as u64 * self.page_size;
        let index = |m: &MapPages| ((addr - m.addr) / self.page_size) as usize;
        let mut maps = proc.maps.iter().filter(within);
        let first = maps.clone().next()?;
        let m = maps.find(|m| m.pfns[index(m)].is_some()).unwrap_or(first);
        Some((proc.label.clone(), m.name.clone(), index(m) as u64))
    }

    /// The pid and address of a slot.
    pub fn address(&self, slot: &Slot) -> Option<(u32, u64)> {
        let proc = self.procs.iter().find(|p| p.label == slot.0)?;
        let map = proc.maps.iter().find(|m| m.name == slot.1)?;
        Some((proc.pid, map.addr + slot.2 * self.page_size))
    }

    /// A label for `(pid, addr)` even outside the named mappings.
    pub fn describe(&self, pid: u32, addr: u64) -> String {
        match self.locate(pid, addr) {
            Some((p, m, i)) => format!("{p} {m}[{i}]"),
            None => format!(
                "{} 0x{addr:x} (outside every named mapping)",
                self.label(pid).map(str::to_string).unwrap_or(format!("pid {pid}"))
            ),
        }
    }

    /// Every slot whose pagemap PFN is `pfn`.
    pub fn holders(&self, pfn: u64) -> BTreeSet<Slot> {
        // Called per page by `check: all`: clone only the matches.
        let mut out = BTreeSet::new();
        for p in &self.procs {
            for m in &p.maps {
                for (i, _) in m.pfns.iter().enumerate().filter(|(_, f)| **f == Some(pfn)) {
                    out.insert((p.label.clone(), m.name.clone(), i as u64));
                }
            }
        }
        out
    }

    /// The pagemap PFN of one slot, if present.
    pub fn pfn_of(&self, slot: &Slot) -> Option<u64> {
        let p = self.procs.iter().find(|p| p.label == slot.0)?;
        let m = p.maps.iter().find(|m| m.name == slot.1)?;
        m.pfns.get(slot.2 as usize).copied().flatten()
    }

    /// Whether the slot's process maps the whole PMD-aligned range around it with the
    /// frames of one PMD-size large folio, in order: the shape a PMD mapping has (and
    /// the only one in which pagemap reads an entry off a PMD).
    pub fn maps_whole_pmd(&self, slot: &Slot) -> bool {
        let Some(m) =
            self.procs.iter().find(|p| p.label == slot.0).and_then(|p| p.maps.iter().find(|m| m.name == slot.1))
        else {
            return false;
        };
        let pmd_pages = self.page_size / 8;
        let pmd_bytes = pmd_pages * self.page_size;
        let va = m.addr + slot.2 * self.page_size;
        let start = va & !(pmd_bytes - 1);
        if start < m.addr {
            return false;
        }
        let first = ((start - m.addr) / self.page_size) as usize;
        let Some(range) = m.pfns.get(first..first + pmd_pages as usize) else { return false };
        let Some(Some(head)) = range.first().copied() else { return false };
        head % pmd_pages == 0
            && self.large.contains(&head)
            && range.iter().enumerate().all(|(i, p)| *p == Some(head + i as u64))
    }

    /// Every present slot and its PFN.
    pub fn slots(&self) -> Vec<(Slot, u64)> {
        let mut out = Vec::new();
        for p in &self.procs {
            for m in &p.maps {
                for (i, pfn) in m.pfns.iter().enumerate() {
                    if let Some(pfn) = pfn {
                        out.push(((p.label.clone(), m.name.clone(), i as u64), *pfn));
                    }
                }
            }
        }
        out
    }
}

/// What the agent saw of the page a findpage asked about, and the truth around it.
pub struct Asked<'a> {
    pub slot: &'a Slot,
    /// Its pagemap PFN.
    pub pfn: Option<u64>,
    pub kpagecount: Option<i64>,
    /// The folio's truth over every live process's whole address space (large folios).
    pub folio: Option<&'a FolioTruth>,
    /// For an anon page: the process that created it and its descendants, the only
    /// ones whose VMAs can hold it. `None` where the model cannot say.
    pub lineage: Option<&'a BTreeSet<String>>,
    /// The run's forks so far, in order, as (parent, child): who a KSM walk can reach.
    pub forks: &'a [(String, String)],
    /// The slots in a mergeable VMA when ksmd last scanned (a `ksm` step), with their
    /// address then: each holds an rmap_item of its own there.
    pub ksm_items: &'a BTreeMap<Slot, u64>,
}

/// PM_MMAP_EXCLUSIVE: on every kernel a set bit means one mm maps the page (before
/// 6.15, and without CONFIG_NO_PAGE_MAPCOUNT, its own mapcount is 1; with it, the
/// folio is not maybe-mapped-shared). A clear bit promises nothing.
pub fn check_exclusive(truth: &Truth) -> Vec<Problem> {
    check_exclusive_on(truth, "")
}

/// Before 6.10, pagemap took the bit of every page of a PMD-mapped THP from the head
/// page's mapcount ("fs/proc/task_mmu: properly detect PM_MMAP_EXCLUSIVE per page of
/// PMD-mapped THPs" fixed it), so there it says nothing about one page.
pub fn exclusive_is_per_page(release: &str) -> bool {
    crate::check::release_version(release) >= (6, 10)
}

/// `check_exclusive` on the kernel whose `uname -r` is `release` ("": the newest rule).
pub fn check_exclusive_on(truth: &Truth, release: &str) -> Vec<Problem> {
    if !release.is_empty() && !exclusive_is_per_page(release) {
        return Vec::new();
    }
    let mut procs: std::collections::BTreeMap<u64, BTreeSet<&str>> = Default::default();
    for p in &truth.procs {
        for m in &p.maps {
            for pfn in m.pfns.iter().flatten() {
                procs.entry(*pfn).or_default().insert(&p.label);
            }
        }
    }
    let mut out = Vec::new();
    let mut told = BTreeSet::new();
    for slot in &truth.exclusive {
        let Some(pfn) = truth.pfn_of(slot) else { continue };
        let who = &procs[&pfn];
        if who.len() > 1 && told.insert(pfn) {
            // Where pagemap read the entry off a PMD, say so (`whole_pmd`): the 6.15+
            // pagemap bug (docs/FINDINGS.md) lives there only, and its known_bug names
            // this text.
            out.push(Problem::new(ProblemKind::NotExclusive {
                at: slot.clone(),
                pfn,
                whole_pmd: truth.maps_whole_pmd(slot),
                mappers: who.iter().map(|w| w.to_string()).collect(),
            }));
        }
    }
    out
}

/// The missing mappers of a KSM page that its walk should have found. rmap_walk_ksm()
/// walks, per rmap_item of the stable node, the VMAs in the anon_vma tree of the VMA
/// that item was made in, and of those only the ones that cover the item's address:
/// that mapping, and its copies in processes forked from it while they stay at that
/// address. So a mapper must be found when it is such a copy of a mapper the walk
/// found, or when it holds an rmap_item of its own at its address (`ksm_items`).
/// Every other mapper keeps the page where no walk reaches it, and is excused:
/// try_to_merge_one_page() makes a page stable in place, so the merging process's
/// parent and siblings (after a fork), a fork copy that mremap moved, or another
/// address in the same process keep mapping it with no rmap_item (mm/ksm.c, 6.1 to 7.2;
/// known upstream since 2015, docs/FINDINGS.md "Known kernel limitations").
fn ksm_reachable(
    missing: BTreeSet<Slot>,
    found: &BTreeSet<Slot>,
    forks: &[(String, String)],
    truth: &Truth,
    items: &BTreeMap<Slot, u64>,
) -> BTreeSet<Slot> {
    let address = |s: &Slot| truth.address(s).map(|(_, a)| a);
    let mut reach: BTreeSet<Slot> = found.clone();
    for (parent, child) in forks {
        let copies: Vec<Slot> = reach
            .iter()
            .filter(|s| &s.0 == parent)
            .map(|s| (s, (child.clone(), s.1.clone(), s.2)))
            .filter(|(s, copy)| address(copy).is_some() && address(copy) == address(s))
            .map(|(_, copy)| copy)
            .collect();
        reach.extend(copies);
    }
    let own_item = |s: &Slot| items.get(s).is_some_and(|a| Some(*a) == address(s));
    missing.into_iter().filter(|s| reach.contains(s) || own_item(s)).collect()
}

/// O1 and O2 for one findpage walk of `slot`, whose pagemap PFN was `pfn`.
pub fn check_walk(walk: &Walk, truth: &Truth, slot: &Slot, pfn: Option<u64>, kpagecount: Option<i64>) -> Vec<Problem> {
    let items = BTreeMap::new();
    check_asked(
        walk,
        truth,
        &Asked { slot, pfn, kpagecount, folio: None, lineage: None, forks: &[], ksm_items: &items },
    )
}

/// O1 and O2 for one findpage walk, with everything the runner knows about the page.
pub fn check_asked(walk: &Walk, truth: &Truth, asked: &Asked) -> Vec<Problem> {
    let (slot, pfn, kpagecount) = (asked.slot, asked.pfn, asked.kpagecount);
    let mut out = Vec::new();
    let at = slot.clone();
    for bad in &walk.bad_lines {
        out.push(Problem::new(ProblemKind::BadModuleLine(bad.clone())));
    }
    let Some((rc, _, _)) = walk.end else {
        out.push(Problem::new(ProblemKind::WalkIncomplete { at, req: walk.req }));
        return out;
    };
    // The module prints a page line (kind=none included) and one line per VMA it
    // counts; fewer lines than that means kernel log records were overwritten before
    // the agent read them, which says nothing about the kernel's rmap.
    let (lines, counted) = (walk.vmas.len(), walk.end.map_or(0, |(_, m, v)| (m + v) as usize));
    if rc == 0 && (walk.page.is_none() || lines != counted) {
        out.push(Problem::new(ProblemKind::LinesLost { at, page_line: walk.page.is_some(), lines, counted }));
        return out;
    }
    let Some(page) = &walk.page else {
        if let Some(pfn) = pfn {
            out.push(Problem::new(ProblemKind::NoPage { at, pfn, rc }));
        }
        return out;
    };
    match (page.kind.as_str(), pfn) {
        ("none", None) => return out,
        ("none", Some(p)) => {
            out.push(Problem::new(ProblemKind::NothingMapped { at, pfn: p }));
            return out;
        }
        (kind, None) => {
            out.push(Problem::new(ProblemKind::NotPresent { at, page_kind: kind.to_string() }));
            return out;
        }
        (_, Some(p)) if p != page.pfn => {
            out.push(Problem::new(ProblemKind::WrongPfn { at, walked: page.pfn, pagemap: p }));
            return out;
        }
        ("zero", _) => return out,
        _ => {}
    }
    // O1: forward (pagemap) = reverse (rmap walk).
    let mut reverse = BTreeSet::new();
    let mut strays = Vec::new();
    for v in walk.vmas.iter().filter(|v| v.state == VmaState::Mapped) {
        match v.addr.and_then(|a| truth.locate(v.pid, a)) {
            Some(s) => {
                reverse.insert(s);
            }
            None => strays.push(truth.describe(v.pid, v.addr.unwrap_or(0))),
        }
    }
    let forward = truth.holders(page.pfn);
    let mut missing: BTreeSet<_> = forward.difference(&reverse).cloned().collect();
    if page.kind == "ksm" {
        missing = match page.ksm_node {
            // No stable node: rmap_walk_ksm() returns at once (docs/FINDINGS.md,
            // "ksm-break-cow-nodeless-page").
            Some(false) => BTreeSet::new(),
            _ => ksm_reachable(missing, &reverse, asked.forks, truth, asked.ksm_items),
        };
    }
    let extra: BTreeSet<_> = reverse.difference(&forward).cloned().collect();
    if !missing.is_empty() || !extra.is_empty() || !strays.is_empty() {
        let addresses = missing.iter().chain(&extra).filter_map(|s| Some((s.clone(), truth.address(s)?.1))).collect();
        out.push(Problem::new(ProblemKind::WalkMismatch {
            at: at.clone(),
            pfn: page.pfn,
            page_kind: page.kind.clone(),
            forward: forward.iter().cloned().collect(),
            reverse: reverse.into_iter().collect(),
            missing: missing.into_iter().collect(),
            extra: extra.into_iter().collect(),
            strays,
            addresses,
        }));
    }
    out.extend(judge_visits(walk, truth, asked, &page.kind, &at));
    let large = page.nr_pages.is_some_and(|n| n > 1) && page.kind != "ksm";
    if let (true, Some(folio)) = (large, asked.folio) {
        out.extend(folio::check_folio(walk, page, folio, truth, &at));
        return out;
    }
    // O2: mapcount.
    let mapped = walk.vmas.iter().filter(|v| v.state == VmaState::Mapped).count() as i64;
    if page.order == 0 && page.kind != "ksm" && page.mapcount != mapped {
        out.push(Problem::new(ProblemKind::Mapcount { at: at.clone(), mapcount: page.mapcount, ptes: mapped }));
    }
    // A KSM walk may not reach every mapper (see `ksm_reachable`): count pagemap's.
    let holders = forward.len() as i64;
    if page.order == 0 && page.kind == "ksm" && page.mapcount != holders {
        out.push(Problem::new(ProblemKind::KsmMapcount { at: at.clone(), mapcount: page.mapcount, mappings: holders }));
    }
    if page.order > 0 && page.mapcount < mapped {
        out.push(Problem::new(ProblemKind::FolioMapcountBelow {
            at: at.clone(),
            mapcount: page.mapcount,
            vmas: mapped,
        }));
    }
    if let Some(kpc) = kpagecount {
        if page.order == 0 && kpc != page.mapcount {
            out.push(Problem::new(ProblemKind::Kpagecount { at, kpagecount: kpc, mapcount: page.mapcount }));
        }
    }
    out
}

/// Every VMA the walk visited must be one that can hold the page, and rmap_walk() must
/// have passed the address where the folio starts in it.
fn judge_visits(walk: &Walk, truth: &Truth, asked: &Asked, kind: &str, at: &Slot) -> Vec<Problem> {
    let mut out = Vec::new();
    let here = |v: &VmaLine| VisitedVma { start: v.start, end: v.end, pid: v.pid, comm: v.comm.clone() };
    // The asking process's own VMA names the file and offsets of a file page.
    let own = truth.address(asked.slot).and_then(|(pid, addr)| {
        walk.vmas.iter().find(|v| v.pid == pid && (v.start..v.end).contains(&addr)).map(|v| (v, addr))
    });
    let page = walk.page.as_ref();
    let file_range = own.zip(page).map(|((v, addr), p)| {
        let index = v.pgoff + (addr - v.start) / truth.page_size;
        let first = index.wrapping_sub(p.pfn - p.head.unwrap_or(p.pfn));
        (v.file.clone(), first, first + p.nr_pages.unwrap_or(1))
    });
    for v in &walk.vmas {
        if let Some((passed, folio_start)) = v.rmap_addr_mismatch() {
            out.push(Problem::new(ProblemKind::WrongAddress { at: at.clone(), vma: here(v), passed, folio_start }));
        }
        let Some(label) = truth.label(v.pid) else {
            out.push(Problem::new(ProblemKind::UnownedVma { at: at.clone(), vma: here(v) }));
            continue;
        };
        let why = match kind {
            "anon" if !v.anon_vma => Some(Unfit::NoAnonVma),
            "anon" => asked
                .lineage
                .filter(|l| !l.contains(label))
                .map(|l| Unfit::NotInLineage { label: label.to_string(), lineage: l.iter().cloned().collect() }),
            "file" | "shmem" => file_range.as_ref().and_then(|(file, first, end)| {
                let pages = (v.end - v.start) / truth.page_size;
                if v.file != *file {
                    Some(Unfit::OtherFile { maps: v.file.clone(), page_of: file.clone() })
                } else if v.pgoff >= *end || v.pgoff + pages <= *first {
                    Some(Unfit::OtherPages {
                        first: v.pgoff,
                        end: v.pgoff + pages,
                        folio_first: *first,
                        folio_end: *end,
                    })
                } else {
                    None
                }
            }),
            _ => None,
        };
        if let Some(why) = why {
            out.push(Problem::new(ProblemKind::UnfitVma {
                at: at.clone(),
                label: label.to_string(),
                vma: here(v),
                page_kind: kind.to_string(),
                why,
            }));
        }
    }
    out
}

#[cfg(test)]
mod tests;
