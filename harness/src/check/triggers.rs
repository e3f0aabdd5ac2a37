//! Trigger classes: the rmap situations a run reached, named so a fuzz campaign can say
//! how often it hit each ("large folio PTE-mapped by 2+ processes: 312 runs"). They are
//! read from what the walks and the pagemap saw, not from the steps, so a class counts
//! only when the kernel really got there.
//!
//! Architecture invariant: pure; classes are facts about values already gathered.

use crate::check::dmesg::{VmaState, Walk};
use crate::check::oracle::Truth;
use std::collections::{BTreeMap, BTreeSet};

/// /proc/kpageflags bit of an mlocked page (KPF_MLOCKED).
const KPF_MLOCKED: u64 = 1 << 33;

fn procs_at(walk: &Walk, level: Option<&str>) -> BTreeSet<u32> {
    walk.vmas
        .iter()
        .filter(|v| v.state == VmaState::Mapped && level.is_none_or(|l| v.level.as_deref() == Some(l)))
        .map(|v| v.pid)
        .collect()
}

fn many(n: usize) -> &'static str {
    if n >= 3 {
        "3+ processes"
    } else {
        "2 processes"
    }
}

/// The classes one findpage walk shows; `kpageflags` from the agent's reply.
pub fn of_walk(walk: &Walk, kpageflags: Option<u64>) -> Vec<String> {
    let mut out = Vec::new();
    let Some(page) = &walk.page else { return out };
    let all = procs_at(walk, None);
    if page.kind == "ksm" {
        out.push(format!("KSM page mapped by {}", if all.len() >= 3 { "3+ processes" } else { "1-2 processes" }));
    }
    if page.order > 0 {
        let (pte, pmd) = (procs_at(walk, Some("pte")), procs_at(walk, Some("pmd")));
        if pte.len() >= 2 {
            out.push(format!("large folio PTE-mapped by {}", many(pte.len())));
        }
        if pmd.len() >= 2 {
            out.push(format!("PMD-mapped THP shared by {}", many(pmd.len())));
        }
        if !pmd.is_empty() && !pte.is_empty() {
            out.push("THP mapped by a PMD and by PTEs at once".to_string());
        }
        if walk.vmas.iter().any(|v| v.state == VmaState::Visited) {
            out.push("large folio partly COWed or unmapped (visited, not mapped)".to_string());
        }
        if !pte.is_empty() && pmd.is_empty() {
            out.push(format!("PTE-mapped large folio of order {}", page.order));
        }
    }
    if kpageflags.is_some_and(|f| f & KPF_MLOCKED != 0) && all.len() >= 2 {
        out.push("mlocked page mapped by 2+ processes".to_string());
    }
    out
}

/// The classes a pagemap read shows: swap entries and who holds them.
pub fn of_truth(truth: &Truth) -> Vec<String> {
    let mut holders: BTreeMap<u64, BTreeSet<&str>> = BTreeMap::new();
    for ((proc, _, _), entry) in &truth.swapped {
        holders.entry(*entry).or_default().insert(proc);
    }
    let mut out = BTreeSet::new();
    for procs in holders.values() {
        out.insert(if procs.len() >= 2 {
            format!("swap entry held by {}", many(procs.len()))
        } else {
            "swapped-out page".to_string()
        });
    }
    out.into_iter().collect()
}

/// The class of migrating a page that `mappers` processes map, of folio order `order`.
pub fn of_migration(mappers: usize, large: bool) -> String {
    let who = match mappers {
        0 | 1 => "1 process",
        2 => "2 processes",
        _ => "3+ processes",
    };
    format!("migration of a {} mapped by {who}", if large { "large folio" } else { "page" })
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
        let t = of_walk(&walk(&[PAGE, &a, &b, &c, "end rc=0 mapped=3 visited=0"]), None);
        assert!(t.contains(&"large folio PTE-mapped by 3+ processes".to_string()), "{t:?}");
        assert!(t.contains(&"PTE-mapped large folio of order 4".to_string()), "{t:?}");
        let (a, b) = (vma(1, "pmd", "mapped"), vma(2, "pte", "mapped"));
        let t = of_walk(&walk(&[PAGE, &a, &b, "end rc=0 mapped=2 visited=0"]), Some(1 << 33));
        assert!(t.contains(&"THP mapped by a PMD and by PTEs at once".to_string()), "{t:?}");
        assert!(t.contains(&"mlocked page mapped by 2+ processes".to_string()), "{t:?}");
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
        assert_eq!(t, vec!["swap entry held by 3+ processes".to_string(), "swapped-out page".to_string()]);
    }
}
