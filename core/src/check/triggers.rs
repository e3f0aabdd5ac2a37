//! Trigger classes: the rmap situations a run reached, named so a fuzz campaign can say
//! how often it hit each ("large folio PTE-mapped by 2+ processes: 312 runs"). They are
//! read from what the walks and the pagemap saw, not from the steps, so a class counts
//! only when the kernel really got there.
//!
//! Architecture invariant: pure; classes are facts about values already gathered, and
//! every class is in `CLASSES`, so a summary can show what a campaign never reached.

use crate::check::dmesg::{VmaState, Walk};
use crate::check::model::Slot;
use crate::check::oracle::Truth;
use std::collections::{BTreeMap, BTreeSet};

/// /proc/kpageflags bit of an mlocked page (KPF_MLOCKED).
const KPF_MLOCKED: u64 = 1 << 33;
/// /proc/kpageflags bit of a hugetlb page (KPF_HUGE).
const KPF_HUGE: u64 = 1 << 17;

/// Every class, in the order a summary lists them: a class no run reached shows as 0.
/// /proc/kpageflags bit of a dirty page (KPF_DIRTY).
pub const KPF_DIRTY: u64 = 1 << 4;

/// Every class, in the order a summary lists them: a class no run reached shows as 0.
pub const CLASSES: [&str; 36] = [
    LARGE_PTE_2,
    LARGE_PTE_3,
    PMD_SHARED,
    PMD_AND_PTE,
    LARGE_PARTLY,
    MTHP_PTE,
    PMD_ORDER_PTE,
    KSM_1_2,
    KSM_3,
    MLOCKED_SHARED,
    SWAPPED,
    SWAP_2,
    SWAP_3,
    RECLAIM_SHARED,
    MIGRATE_1,
    MIGRATE_2,
    MIGRATE_3,
    MIGRATE_LARGE,
    PMD_STRADDLE,
    VMA_STRADDLE,
    MOVED_BACK,
    MERGE_FAULTED,
    MERGE_UNFAULTED,
    ANON_VMA_REUSED,
    PIN_FORK_COPY,
    PIN_UNSHARE,
    PIN_MIGRATE_REFUSED,
    TRUNCATE_SHARED,
    PUNCH_LARGE,
    SIGBUS_EOF,
    UFFD_SIGBUS,
    UFFD_MOVE,
    HUGETLB_SHARED,
    HUGETLB_COW,
    WRITEBACK_SHARED,
    REREAD,
];

pub const LARGE_PTE_2: &str = "large folio PTE-mapped by 2 processes (fork of a PTE-mapped large folio)";
pub const LARGE_PTE_3: &str = "large folio PTE-mapped by 3+ processes";
pub const PMD_SHARED: &str = "PMD-mapped THP shared by 2+ processes";
pub const PMD_AND_PTE: &str = "THP mapped by a PMD and by PTEs at once";
pub const LARGE_PARTLY: &str = "large folio partly COWed or unmapped (visited, not mapped)";
pub const MTHP_PTE: &str = "PTE-mapped mTHP (order below the PMD's)";
pub const PMD_ORDER_PTE: &str = "PTE-mapped folio of PMD order (a split PMD)";
pub const KSM_1_2: &str = "KSM page mapped by 1-2 processes";
pub const KSM_3: &str = "KSM page mapped by 3+ processes";
pub const MLOCKED_SHARED: &str = "mlocked page mapped by 2+ processes";
pub const SWAPPED: &str = "swapped-out page";
pub const SWAP_2: &str = "swap entry held by 2 processes";
pub const SWAP_3: &str = "swap entry held by 3+ processes";
pub const RECLAIM_SHARED: &str = "reclaim unmapped a page mapped by 2+ processes";
pub const MIGRATE_1: &str = "migration of a page mapped by 1 process";
pub const MIGRATE_2: &str = "migration of a page mapped by 2 processes";
pub const MIGRATE_3: &str = "migration of a page mapped by 3+ processes";
pub const MIGRATE_LARGE: &str = "migration of a large folio";
pub const PMD_STRADDLE: &str = "folio straddling a PMD boundary";
pub const MOVED_BACK: &str = "move and move back";
pub const PIN_FORK_COPY: &str = "fork copied a pinned anon page";
pub const PIN_UNSHARE: &str = "read-only pin unshared a shared anon page";
pub const PIN_MIGRATE_REFUSED: &str = "migration refused a pinned page";
pub const TRUNCATE_SHARED: &str = "truncate unmapped a page mapped by 2+ processes";
pub const PUNCH_LARGE: &str = "hole punched in a large folio";
pub const SIGBUS_EOF: &str = "SIGBUS beyond EOF";
pub const UFFD_MOVE: &str = "folio moved by UFFDIO_MOVE";
pub const UFFD_SIGBUS: &str = "SIGBUS from a userfaultfd range";
pub const HUGETLB_SHARED: &str = "hugetlb page mapped by 2+ processes";
pub const HUGETLB_COW: &str = "hugetlb COW after fork";
pub const VMA_STRADDLE: &str = "folio straddling a VMA end";
pub const WRITEBACK_SHARED: &str = "writeback cleaned a page mapped by 2+ processes";
pub const REREAD: &str = "contents reread from disk after drop_caches";
pub const MERGE_FAULTED: &str = "merge with a faulted neighbour";
pub const MERGE_UNFAULTED: &str = "merge with an unfaulted neighbour";
pub const ANON_VMA_REUSED: &str = "anon_vma reused in a fork chain";

fn procs_at(walk: &Walk, level: Option<&str>) -> BTreeSet<u32> {
    walk.vmas
        .iter()
        .filter(|v| v.state == VmaState::Mapped && level.is_none_or(|l| v.level.as_deref() == Some(l)))
        .map(|v| v.pid)
        .collect()
}

/// The classes one findpage walk shows; `kpageflags` from the agent's reply, and
/// `pmd_order` the folio order a PMD maps on this kernel.
pub fn of_walk(walk: &Walk, kpageflags: Option<u64>, pmd_order: u32) -> Vec<&'static str> {
    let mut out = Vec::new();
    let Some(page) = &walk.page else { return out };
    let all = procs_at(walk, None);
    if page.kind == "ksm" {
        out.push(if all.len() >= 3 { KSM_3 } else { KSM_1_2 });
    }
    if kpageflags.is_some_and(|f| f & KPF_HUGE != 0) {
        // A hugetlb folio is mapped whole or not at all: the THP classes do not apply.
        if all.len() >= 2 {
            out.push(HUGETLB_SHARED);
        }
        // A VMA the walk reaches that maps another page: a private COW copy since fork.
        if walk.vmas.iter().any(|v| v.state == VmaState::Visited) {
            out.push(HUGETLB_COW);
        }
    } else if page.order > 0 {
        let (pte, pmd) = (procs_at(walk, Some("pte")), procs_at(walk, Some("pmd")));
        match pte.len() {
            0 | 1 => {}
            2 => out.push(LARGE_PTE_2),
            _ => out.push(LARGE_PTE_3),
        }
        if pmd.len() >= 2 {
            out.push(PMD_SHARED);
        }
        if !pmd.is_empty() && !pte.is_empty() {
            out.push(PMD_AND_PTE);
        }
        if walk.vmas.iter().any(|v| v.state == VmaState::Visited) {
            out.push(LARGE_PARTLY);
        }
        if !pte.is_empty() && pmd.is_empty() {
            out.push(if page.order >= pmd_order { PMD_ORDER_PTE } else { MTHP_PTE });
        }
    }
    if kpageflags.is_some_and(|f| f & KPF_MLOCKED != 0) && all.len() >= 2 {
        out.push(MLOCKED_SHARED);
    }
    out
}

/// Whether a large folio is mapped across a PMD boundary somewhere: two pages of one
/// folio (the second a tail of the first's, at the next frame) on either side of a
/// PMD-aligned address.
fn straddles_pmd(truth: &Truth) -> bool {
    let pmd = truth.page_size * (truth.page_size / 8);
    truth.procs.iter().flat_map(|p| &p.maps).any(|m| {
        m.pfns.windows(2).enumerate().any(|(i, w)| {
            let at = m.addr + (i as u64 + 1) * truth.page_size;
            matches!(w, [Some(a), Some(b)] if *b == a + 1 && truth.tails.contains(b))
                && pmd > 0
                && at.is_multiple_of(pmd)
        })
    })
}

/// Whether a large folio is mapped across a VMA's end: two pages of one folio (the
/// second a tail of the first's, at the next frame) in two VMAs of one map, as the
/// read's `vmas=` lists them.
fn straddles_vma(truth: &Truth) -> bool {
    truth.procs.iter().any(|p| {
        p.maps.iter().any(|m| {
            let Some(spans) = truth.vmas.get(&(p.label.clone(), m.name.clone())) else { return false };
            let vma = |i: u64| spans.iter().position(|s| (s.lo..s.hi).contains(&i));
            m.pfns.windows(2).enumerate().any(|(i, w)| {
                matches!(w, [Some(a), Some(b)] if *b == a + 1 && truth.tails.contains(b))
                    && vma(i as u64) != vma(i as u64 + 1)
            })
        })
    })
}

/// For every two maps of one process that one VMA joins (the first's last VMA ends
/// after it and the second begins right there, in a VMA that begins before it):
/// whether both sides hold present pages in that VMA. A faulted neighbour has an
/// anon_vma or page cache pages the merge had to agree with; an unfaulted one has not.
fn merges(truth: &Truth) -> Vec<bool> {
    let mut out = Vec::new();
    for p in &truth.procs {
        let spans = |m: &crate::check::oracle::MapPages| truth.vmas.get(&(p.label.clone(), m.name.clone()));
        for a in &p.maps {
            let end = a.addr + a.pfns.len() as u64 * truth.page_size;
            let Some(b) = p.maps.iter().find(|b| b.addr == end && !b.pfns.is_empty()) else { continue };
            let (Some(sa), Some(sb)) = (spans(a), spans(b)) else { continue };
            let last = sa.iter().find(|s| s.hi == a.pfns.len() as u64 && s.ends_after);
            let first = sb.iter().find(|s| s.lo == 0 && s.begins_before);
            let (Some(last), Some(first)) = (last, first) else { continue };
            let faulted = |m: &crate::check::oracle::MapPages, lo: u64, hi: u64| {
                m.pfns[lo as usize..hi as usize].iter().any(Option::is_some)
            };
            out.push(faulted(a, last.lo, last.hi) && faulted(b, first.lo, first.hi));
        }
    }
    out
}

/// Whether a walk shows an anon_vma that anon_vma_clone() reused down a fork chain:
/// a VMA whose anon_vma is the parent of the anon_vma of a VMA in one of its own
/// ancestors (`forks`: parent, child), where a fresh fork would give the reverse.
/// The kernel reuses an anon_vma that has no VMA of its own left and fewer than two
/// children, so this needs a middle generation gone.
pub fn anon_vma_reused(walk: &Walk, truth: &Truth, forks: &[(String, String)]) -> bool {
    let descends = |young: &str, from: &str| {
        let mut who = young.to_string();
        for _ in 0..forks.len() {
            match forks.iter().rev().find(|(_, c)| *c == who) {
                Some((p, _)) if p == from => return true,
                Some((p, _)) => who = p.clone(),
                None => return false,
            }
        }
        false
    };
    let owned: Vec<(&str, &(String, String))> =
        walk.vmas.iter().filter_map(|v| Some((truth.label(v.pid)?, v.av.as_ref()?))).collect();
    owned.iter().any(|&(young, (av, _))| {
        owned.iter().any(|&(old, (_, parent))| parent == av && young != old && descends(young, old))
    })
}

/// Whether pages that moved away and back (`moved_back`: process, map, first page,
/// count) are mapped in their map again, as the pagemap shows.
pub fn moved_back<'a>(truth: &Truth, moved_back: impl IntoIterator<Item = (&'a str, &'a str, u64, u64)>) -> bool {
    moved_back.into_iter().any(|(proc, map, first, count)| {
        let m = truth.procs.iter().filter(|p| p.label == proc).flat_map(|p| &p.maps).find(|m| m.name == map);
        m.is_some_and(|m| (first..first + count).any(|i| m.pfns.get(i as usize).is_some_and(Option::is_some)))
    })
}

/// The classes a pagemap read shows: swap entries and who holds them, and large folios
/// across a PMD boundary.
pub fn of_truth(truth: &Truth) -> Vec<&'static str> {
    let mut holders: BTreeMap<u64, BTreeSet<&str>> = BTreeMap::new();
    for ((proc, _, _), entry) in &truth.swapped {
        holders.entry(*entry).or_default().insert(proc);
    }
    let mut out = BTreeSet::new();
    if straddles_pmd(truth) {
        out.insert(PMD_STRADDLE);
    }
    if straddles_vma(truth) {
        out.insert(VMA_STRADDLE);
    }
    for faulted in merges(truth) {
        out.insert(if faulted { MERGE_FAULTED } else { MERGE_UNFAULTED });
    }
    for procs in holders.values() {
        out.insert(match procs.len() {
            0 | 1 => SWAPPED,
            2 => SWAP_2,
            _ => SWAP_3,
        });
    }
    out.into_iter().collect()
}

/// The class a `reclaim` step reached, from pagemap reads before and after it: a page
/// that 2+ processes mapped and that none maps any more (swapped out, or a shmem or
/// file page dropped from their page tables), which only reclaim's rmap walk does.
pub fn of_reclaim(before: &Truth, after: &Truth) -> Vec<&'static str> {
    if shared_gone(before, after) {
        vec![RECLAIM_SHARED]
    } else {
        Vec::new()
    }
}

/// The classes of a truncate or hole punch (`punch`), from pagemap before and after
/// it and the slots whose file pages it named (`punched`, a punch's own range).
pub fn of_truncate(before: &Truth, after: &Truth, punched: &[Slot]) -> Vec<&'static str> {
    let mut out = Vec::new();
    if shared_gone(before, after) {
        out.push(TRUNCATE_SHARED);
    }
    if punched.iter().any(|s| before.pfn_of(s).is_some_and(|pfn| before.large.contains(&pfn))) {
        out.push(PUNCH_LARGE);
    }
    out
}

/// Whether a page 2+ processes mapped before left all of them.
fn shared_gone(before: &Truth, after: &Truth) -> bool {
    let now: BTreeSet<(String, u64)> = after.slots().into_iter().map(|(s, pfn)| (s.0, pfn)).collect();
    let mut mappers: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for ((proc, _, _), pfn) in before.slots() {
        mappers.entry(pfn).or_default().insert(proc);
    }
    // A mapper that exited between the reads cannot be here: the step runs no process.
    mappers.iter().any(|(pfn, procs)| procs.len() >= 2 && procs.iter().all(|p| !now.contains(&(p.clone(), *pfn))))
}

/// Whether a fork gave `child` a page of its own where `parent` maps one at the same
/// slot (copy_present_page(), which only a maybe-pinned exclusive page takes), as
/// the pagemap read right after the fork shows.
pub fn fork_copied(after: &Truth, parent: &str, child: &str) -> bool {
    let slots: BTreeMap<(String, String, u64), u64> = after.slots().into_iter().collect();
    slots.iter().any(|((proc, map, page), pfn)| {
        proc == child && slots.get(&(parent.to_string(), map.clone(), *page)).is_some_and(|p| p != pfn)
    })
}

/// Whether a slot of `slots` held a page 2+ slots mapped before a read-only pin and
/// a page of its own after it.
/// Whether a UFFDIO_MOVE moved a present page: one of its `done` source slots held
/// a frame before it.
pub fn uffd_moved(before: &Truth, proc: &str, map: &str, page: u64, done: u64) -> bool {
    let slots: BTreeMap<_, _> = before.slots().into_iter().collect();
    (page..page + done).any(|p| slots.contains_key(&(proc.to_string(), map.to_string(), p)))
}

pub fn pin_unshared(before: &Truth, after: &Truth, slots: &[(String, String, u64)]) -> bool {
    let (was, now): (BTreeMap<_, _>, BTreeMap<_, _>) =
        (before.slots().into_iter().collect(), after.slots().into_iter().collect());
    let mappers = |pfn: u64| was.values().filter(|p| **p == pfn).count();
    slots.iter().any(|s| match (was.get(s), now.get(s)) {
        (Some(a), Some(b)) => a != b && mappers(*a) >= 2,
        _ => false,
    })
}

/// The class of migrating a page that `mappers` processes map (a large folio is one
/// class whoever maps it).
pub fn of_migration(mappers: usize, large: bool) -> &'static str {
    match (large, mappers) {
        (true, _) => MIGRATE_LARGE,
        (false, 0 | 1) => MIGRATE_1,
        (false, 2) => MIGRATE_2,
        _ => MIGRATE_3,
    }
}

/// The pages a writeback step (msync, fsync, sync) may clean: the frames 2+ processes
/// map (in `before`, a pagemap read before it) whose kpageflags say dirty.
pub fn writeback_candidates(before: &Truth, flags: impl Fn(u64) -> Option<u64>) -> Vec<u64> {
    let mut mappers: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for ((proc, _, _), pfn) in before.slots() {
        mappers.entry(pfn).or_default().insert(proc);
    }
    mappers
        .into_iter()
        .filter(|(pfn, procs)| procs.len() >= 2 && flags(*pfn).is_some_and(|f| f & KPF_DIRTY != 0))
        .map(|(pfn, _)| pfn)
        .collect()
}

/// The class of a writeback step: one of its `candidates` is clean after it (kpageflags
/// `after`). Anon pages stay dirty (writeback is of the page cache), so only a page
/// cache page that folio_mkclean() cleaned in its 2+ mappers counts.
pub fn of_writeback(candidates: &[u64], after: impl Fn(u64) -> Option<u64>) -> Vec<&'static str> {
    if candidates.iter().any(|&pfn| after(pfn).is_some_and(|f| f & KPF_DIRTY == 0)) {
        vec![WRITEBACK_SHARED]
    } else {
        Vec::new()
    }
}

/// The class of a read after drop_caches: it read a page of a block filesystem map
/// (`ext4_maps`) that no process mapped when drop_caches ran (`unmapped`) and that
/// holds written bytes (`written`: not all zero). Whether it came from disk or stayed
/// in the page cache because it was still dirty, kpageflags cannot say once no one maps
/// it; the writeback scenarios and the motif sync first, so there it comes from disk.
pub fn of_reread(ext4_map: bool, unmapped: bool, written: bool) -> Vec<&'static str> {
    if ext4_map && unmapped && written {
        vec![REREAD]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::dmesg::walk_in_records;

    fn walk(lines: &[&str]) -> Walk {
        let recs: Vec<String> = lines.iter().map(|l| format!("6,1,1;rmapcheck: req=7 {l}")).collect();
        walk_in_records(&recs, 7)
    }

    const PAGE: &str = "page pfn=0x100 order=4 kind=anon mapcount=3 pagemapcount=- refcount=4 flags=0x0 mcsem=folio_mapcount head=0x100 nr=16";

    fn vma(pid: u32, level: &str, state: &str) -> String {
        format!("vma pid={pid} comm=w start=0x1000 end=0x9000 flags=0x0 prot=rw-p pgoff=0x1 file=- ops=- anon_vma=1 addr=0x1000 state={state} level={level} rmap_addr=0x1000 folio_addr=0x1000 at=-")
    }

    #[test]
    fn a_large_folio_mapped_by_ptes_in_three_processes() {
        let (a, b, c) = (vma(1, "pte", "mapped"), vma(2, "pte", "mapped"), vma(3, "pte", "mapped"));
        let t = of_walk(&walk(&[PAGE, &a, &b, &c, "end rc=0 mapped=3 visited=0"]), None, 9);
        assert!(t.contains(&LARGE_PTE_3), "{t:?}");
        assert!(t.contains(&MTHP_PTE), "{t:?}");
        let (a, b) = (vma(1, "pmd", "mapped"), vma(2, "pte", "mapped"));
        let t = of_walk(&walk(&[PAGE, &a, &b, "end rc=0 mapped=2 visited=0"]), Some(1 << 33), 9);
        assert!(t.contains(&PMD_AND_PTE), "{t:?}");
        assert!(t.contains(&MLOCKED_SHARED), "{t:?}");
    }

    #[test]
    fn a_hugetlb_page_counts_as_hugetlb_not_as_a_thp() {
        let huge = Some(KPF_HUGE);
        let (a, b) = (vma(1, "pmd", "mapped"), vma(2, "pmd", "mapped"));
        let t = of_walk(&walk(&[PAGE, &a, &b, "end rc=0 mapped=2 visited=0"]), huge, 9);
        assert_eq!(t, vec![HUGETLB_SHARED]);
        let (a, b) = (vma(1, "pmd", "mapped"), vma(2, "-", "visited"));
        let t = of_walk(&walk(&[PAGE, &a, &b, "end rc=0 mapped=1 visited=1"]), huge, 9);
        assert_eq!(t, vec![HUGETLB_COW]);
    }

    #[test]
    fn a_folio_across_a_pmd_boundary_straddles_it() {
        // 4k pages: 0x200000 is a PMD boundary; pages 0x1fe000.. map frames 0x9..0xc.
        let data = [crate::wire::parse_fields(
            "proc=p0 pid=1 name=a addr=0x1fe000 pages=4 pfns=0x9,0xa,0xb,0xc folio=h,t,t,t",
        )];
        let truth = Truth::from_data(&data, 4096).unwrap();
        assert!(of_truth(&truth).contains(&PMD_STRADDLE));
        let data = [crate::wire::parse_fields("proc=p0 pid=1 name=a addr=0x1fe000 pages=4 pfns=0x9,0xa,0x20,0x21")];
        assert!(!of_truth(&Truth::from_data(&data, 4096).unwrap()).contains(&PMD_STRADDLE), "small pages");
        assert!(moved_back(&truth, [("p0", "a", 2, 2)]));
        assert!(!moved_back(&truth, [("p0", "b", 2, 2)]));
    }

    #[test]
    fn a_folio_across_a_vma_end_straddles_it() {
        let line = |vmas: &str| {
            let fields =
                format!("proc=p0 pid=1 name=a addr=0x10000 pages=4 pfns=0x9,0xa,0xb,0xc folio=h,t,t,t vmas={vmas}");
            Truth::from_data(&[crate::wire::parse_fields(&fields)], 4096).unwrap()
        };
        assert!(of_truth(&line("0-2:rw-p:10:0,2-4:r--p:12:0")).contains(&VMA_STRADDLE));
        assert!(!of_truth(&line("0-4:rw-p:10:0")).contains(&VMA_STRADDLE), "one VMA");
    }

    #[test]
    fn one_vma_over_two_maps_is_a_merge_faulted_or_not() {
        let read = |b_pfns: &str, a_reach: &str, b_reach: &str| {
            let lines = [
                format!("proc=p0 pid=1 name=a addr=0x10000 pages=2 pfns=0x9,0xa vmas=0-2:rw-p:0:0:{a_reach}"),
                format!("proc=p0 pid=1 name=b addr=0x12000 pages=2 pfns={b_pfns} vmas=0-2:rw-p:0:0:{b_reach}"),
            ];
            let data: Vec<_> = lines.iter().map(|l| crate::wire::parse_fields(l)).collect();
            of_truth(&Truth::from_data(&data, 4096).unwrap())
        };
        assert!(read("0xb,-", "e", "b").contains(&MERGE_FAULTED));
        assert!(read("-,-", "e", "b").contains(&MERGE_UNFAULTED));
        let apart = read("0xb,-", "-", "-");
        assert!(!apart.contains(&MERGE_FAULTED) && !apart.contains(&MERGE_UNFAULTED), "two VMAs");
    }

    #[test]
    fn an_ancestors_anon_vma_parented_by_a_descendants_is_a_reuse() {
        let data = [
            crate::wire::parse_fields("proc=p0 pid=1 name=a addr=0x10000 pages=1 pfns=0x9"),
            crate::wire::parse_fields("proc=c2 pid=3 name=a addr=0x10000 pages=1 pfns=0x9"),
            crate::wire::parse_fields("proc=c3 pid=4 name=a addr=0x10000 pages=1 pfns=0x9"),
        ];
        let truth = Truth::from_data(&data, 4096).unwrap();
        let vma = |pid: u32, av: &str| {
            format!("vma pid={pid} comm=w start=0x10000 end=0x11000 flags=0x0 prot=rw-p pgoff=0x10 file=- ops=- anon_vma=1 addr=0x10000 state=mapped level=pte av={av}")
        };
        // p0 forked c1 (gone), c1 forked c2; c2 forked c3, which got c1's anon_vma (B).
        let forks = [("p0", "c1"), ("c1", "c2"), ("c2", "c3")].map(|(p, c)| (p.to_string(), c.to_string()));
        let reused = [PAGE, &vma(1, "A:0"), &vma(3, "C:B"), &vma(4, "B:A"), "end rc=0 mapped=3 visited=0"];
        assert!(anon_vma_reused(&walk(&reused), &truth, &forks));
        // A fresh anon_vma for c3 (D, parented by c2's C): no reuse.
        let fresh = [PAGE, &vma(1, "A:0"), &vma(3, "C:B"), &vma(4, "D:C"), "end rc=0 mapped=3 visited=0"];
        assert!(!anon_vma_reused(&walk(&fresh), &truth, &forks));
    }

    #[test]
    fn reclaim_of_a_shared_page_counts_once_no_mapper_keeps_it() {
        let read = |lines: &[&str]| {
            let data: Vec<_> = lines.iter().map(|l| crate::wire::parse_fields(l)).collect();
            Truth::from_data(&data, 4096).unwrap()
        };
        let before = read(&[
            "proc=p0 pid=1 name=a addr=0x1000 pages=2 pfns=0x9,0xa",
            "proc=c1 pid=2 name=a addr=0x1000 pages=2 pfns=0x9,-",
        ]);
        let kept = read(&[
            "proc=p0 pid=1 name=a addr=0x1000 pages=2 pfns=0x9,- swap=-,0x40",
            "proc=c1 pid=2 name=a addr=0x1000 pages=2 pfns=-,- swap=0x20,-",
        ]);
        assert!(of_reclaim(&before, &kept).is_empty(), "p0 still maps the shared page");
        let gone = read(&[
            "proc=p0 pid=1 name=a addr=0x1000 pages=2 pfns=-,0xa swap=0x20,-",
            "proc=c1 pid=2 name=a addr=0x1000 pages=2 pfns=-,- swap=0x20,-",
        ]);
        assert_eq!(of_reclaim(&before, &gone), vec![RECLAIM_SHARED]);
    }

    #[test]
    fn swap_entries_count_their_processes() {
        let data: Vec<_> = [
            "proc=p0 pid=1 name=a addr=0x1000 pages=2 pfns=-,- swap=0x20,0x40",
            "proc=c1 pid=2 name=a addr=0x1000 pages=2 pfns=-,0x9 swap=0x20,-",
            "proc=c2 pid=3 name=a addr=0x1000 pages=2 pfns=-,0x9 swap=0x20,-",
        ]
        .iter()
        .map(|l| crate::wire::parse_fields(l))
        .collect();
        let t = of_truth(&Truth::from_data(&data, 4096).unwrap());
        assert_eq!(t, vec![SWAP_3, SWAPPED]);
    }

    #[test]
    fn writeback_counts_a_shared_dirty_page_it_cleaned() {
        let data = [
            crate::wire::parse_fields("proc=p0 pid=1 name=f addr=0x1000 pages=2 pfns=0x9,0xa"),
            crate::wire::parse_fields("proc=c1 pid=2 name=f addr=0x1000 pages=2 pfns=0x9,-"),
        ];
        let before = Truth::from_data(&data, 4096).unwrap();
        let dirty = |_: u64| Some(KPF_DIRTY);
        assert_eq!(writeback_candidates(&before, dirty), vec![0x9], "0xa has one mapper");
        assert!(writeback_candidates(&before, |_| Some(0)).is_empty(), "clean already");
        assert_eq!(of_writeback(&[0x9], |_| Some(0)), vec![WRITEBACK_SHARED]);
        assert!(of_writeback(&[0x9], dirty).is_empty(), "still dirty: an anon page, or MS_ASYNC");
        assert_eq!(of_reread(true, true, true), vec![REREAD]);
        assert!(of_reread(false, true, true).is_empty() && of_reread(true, false, true).is_empty());
    }
}
