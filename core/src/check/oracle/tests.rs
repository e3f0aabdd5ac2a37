//! The oracle judged on hand-built walks against hand-built ground truth: each case
//! removes or bends one fact and names the check that must catch it.

use super::*;
use crate::check::dmesg::collect_walk;
use crate::wire::parse_fields;

fn truth() -> Truth {
    let data = [
        "proc=p0 pid=10 name=a addr=0x10000 pages=2 pfns=0x100,0x101",
        "proc=c1 pid=11 name=a addr=0x10000 pages=2 pfns=0x100,0x201",
    ];
    Truth::from_data(&data.map(parse_fields), 4096).unwrap()
}

const PAGE: &str = "rmapcheck: req=1 page pfn=0x100 order=0 kind=anon mapcount=2 pagemapcount=- refcount=2 flags=0x0 mcsem=folio_mapcount";
const VMA_P0: &str = "rmapcheck: req=1 vma pid=10 comm=init start=0x10000 end=0x12000 flags=0x100073 prot=rw-p pgoff=0x10 file=- ops=- anon_vma=1 addr=0x10000 state=mapped level=pte";
const VMA_C1: &str = "rmapcheck: req=1 vma pid=11 comm=init start=0x10000 end=0x12000 flags=0x100073 prot=rw-p pgoff=0x10 file=- ops=- anon_vma=1 addr=0x10000 state=mapped level=pte";
const END: &str = "rmapcheck: req=1 end rc=0 mapped=2 visited=0";

fn check(lines: &[&str], pfn: Option<u64>, kpc: Option<i64>) -> Vec<Check> {
    let walk = collect_walk(lines.iter().copied(), 1);
    let slot = ("p0".to_string(), "a".to_string(), 0);
    check_walk(&walk, &truth(), &slot, pfn, kpc).into_iter().map(|p| p.check).collect()
}

#[test]
fn a_faithful_walk_passes() {
    assert_eq!(check(&[PAGE, VMA_P0, VMA_C1, END], Some(0x100), Some(2)), vec![]);
}

#[test]
fn a_walk_that_misses_a_mapper_breaks_o1_and_o2() {
    let end = END.replace("mapped=2", "mapped=1");
    assert_eq!(check(&[PAGE, VMA_P0, &end], Some(0x100), None), vec![Check::O1, Check::O2]);
}

#[test]
fn a_wrong_mapcount_breaks_o2() {
    let page = PAGE.replace("mapcount=2", "mapcount=3");
    assert_eq!(check(&[&page, VMA_P0, VMA_C1, END], Some(0x100), None), vec![Check::O2]);
}

#[test]
fn kpagecount_must_agree() {
    assert_eq!(check(&[PAGE, VMA_P0, VMA_C1, END], Some(0x100), Some(1)), vec![Check::O2]);
}

#[test]
fn a_reported_mapper_that_pagemap_lacks_breaks_o1() {
    let stray = VMA_C1.replace("addr=0x10000", "addr=0x11000");
    assert_eq!(check(&[PAGE, VMA_P0, &stray, END], Some(0x100), None), vec![Check::O1]);
}

#[test]
fn lost_lines_and_wrong_pages_are_reported() {
    assert_eq!(check(&[PAGE, VMA_P0, VMA_C1], Some(0x100), None), vec![Check::Module]);
    assert_eq!(check(&[PAGE, VMA_P0, VMA_C1, END], Some(0x999), None), vec![Check::O1]);
    assert_eq!(check(&[PAGE, VMA_P0, VMA_C1, END], None, None), vec![Check::O1]);
}

#[test]
fn visited_vmas_do_not_count_as_mappers() {
    let visited = VMA_C1.replace("state=mapped level=pte", "state=visited level=-");
    let page = PAGE.replace("mapcount=2", "mapcount=1");
    let data = [
        "proc=p0 pid=10 name=a addr=0x10000 pages=2 pfns=0x100,0x101",
        "proc=c1 pid=11 name=a addr=0x10000 pages=2 pfns=0x300,0x201",
    ];
    let truth = Truth::from_data(&data.map(parse_fields), 4096).unwrap();
    let walk = collect_walk([page.as_str(), VMA_P0, visited.as_str(), END], 1);
    let slot = ("p0".to_string(), "a".to_string(), 0);
    assert!(check_walk(&walk, &truth, &slot, Some(0x100), Some(1)).is_empty());
}

fn asked_checks(lines: &[&str], lineage: Option<&BTreeSet<String>>) -> Vec<Problem> {
    asked_problems(&collect_walk(lines.iter().copied(), 1), lineage, &[], &BTreeMap::new())
}

/// The problems of a walk of p0's a[0] at pfn 0x100 (kpagecount 2).
fn asked_problems(
    walk: &Walk,
    lineage: Option<&BTreeSet<String>>,
    forks: &[(String, String)],
    ksm_items: &BTreeMap<Slot, u64>,
) -> Vec<Problem> {
    let slot = ("p0".to_string(), "a".to_string(), 0);
    let asked = Asked { slot: &slot, pfn: Some(0x100), kpagecount: Some(2), folio: None, lineage, forks, ksm_items };
    check_asked(walk, &truth(), &asked)
}

#[test]
fn rmap_walk_must_pass_the_folios_address() {
    let wrong = format!("{VMA_C1} rmap_addr=0x11000 folio_addr=0x10000");
    let problems = asked_checks(&[PAGE, VMA_P0, &wrong, END], None);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].check, Check::O1);
    assert!(problems[0].message().contains("rmap_walk passed 0x11000"), "{}", problems[0].message());
}

#[test]
fn a_visit_to_a_process_that_is_gone_fails() {
    let gone = VMA_C1.replace("pid=11", "pid=99").replace("state=mapped level=pte", "state=visited level=-");
    let end = END.replace("visited=0", "visited=1");
    let problems = asked_checks(&[PAGE, VMA_P0, VMA_C1, &gone, &end], None);
    assert_eq!(problems.iter().map(|p| p.check).collect::<Vec<_>>(), vec![Check::O1]);
    assert!(problems[0].message().contains("no live workload process"), "{}", problems[0].message());
}

#[test]
fn anon_visits_stay_in_the_pages_fork_lineage() {
    let lines = [PAGE, VMA_P0, VMA_C1, END];
    let family: BTreeSet<String> = ["p0".to_string(), "c1".to_string()].into();
    assert!(asked_checks(&lines, Some(&family)).is_empty());
    let only_p0: BTreeSet<String> = ["p0".to_string()].into();
    let problems = asked_checks(&lines, Some(&only_p0));
    assert_eq!(problems.iter().map(|p| p.check).collect::<Vec<_>>(), vec![Check::O1]);
    assert!(problems[0].message().contains("c1 is not in the page's fork lineage"), "{}", problems[0].message());
    let no_anon_vma = VMA_C1.replace("anon_vma=1", "anon_vma=0");
    assert_eq!(asked_checks(&[PAGE, VMA_P0, &no_anon_vma, END], None).len(), 1);
}

#[test]
fn file_visits_need_the_same_file_and_offsets() {
    let page = PAGE.replace("kind=anon", "kind=file");
    let file = |v: &str, f: &str, pgoff: &str| v.replace("file=-", &format!("file={f}")).replace("pgoff=0x10", pgoff);
    let p0 = file(VMA_P0, "/tmp/rmc-a", "pgoff=0x0");
    let good = file(VMA_C1, "/tmp/rmc-a", "pgoff=0x0");
    assert!(asked_checks(&[&page, &p0, &good, END], None).is_empty());
    let other = file(VMA_C1, "/tmp/rmc-b", "pgoff=0x0");
    let far = file(VMA_C1, "/tmp/rmc-a", "pgoff=0x8");
    for bad in [other, far] {
        let problems = asked_checks(&[&page, &p0, &bad, END], None);
        assert_eq!(problems.iter().map(|p| p.check).collect::<Vec<_>>(), vec![Check::O1], "{bad}");
    }
}

#[test]
fn a_ksm_walk_owes_only_same_address_copies_and_its_own_rmap_items() {
    let s = |p: &str| (p.to_string(), "m".to_string(), 3);
    let fork = |parent: &str, child: &str| (parent.to_string(), child.to_string());
    // Map m at 0x10000 in every process but c5, whose copy mremap moved to 0x90000;
    // each maps page 3 at pfn 0x100.
    let line =
        |p: &str, pid: u32, addr: &str| format!("proc={p} pid={pid} name=m addr={addr} pages=4 pfns=0x1,0x2,0x3,0x100");
    let lines = [
        line("p0", 10, "0x10000"),
        line("c1", 11, "0x10000"),
        line("c3", 13, "0x10000"),
        line("c4", 14, "0x10000"),
        line("c5", 15, "0x90000"),
        line("c6", 16, "0x10000"),
    ];
    let truth = Truth::from_data(&lines.map(|l| parse_fields(&l)), 4096).unwrap();
    let none = BTreeMap::new();
    // p0 forked c1 and c3; c1 (alone mergeable) merged the page in place, then forked
    // c4 and c5; c5 moved its copy, then forked c6.
    let forks = [fork("p0", "c1"), fork("p0", "c3"), fork("c1", "c4"), fork("c1", "c5"), fork("c5", "c6")];
    let found = BTreeSet::from([s("c1")]);
    let missing = BTreeSet::from([s("p0"), s("c3"), s("c4"), s("c5"), s("c6")]);
    // Owed: c4, a copy at the merged address. Not owed: the parent and sibling that
    // kept the page merged in place, the moved copy c5, and c6, forked from the move.
    assert_eq!(ksm_reachable(missing.clone(), &found, &forks, &truth, &none), BTreeSet::from([s("c4")]));
    // A process with an rmap_item of its own at its address is owed too (c3 made its
    // VMA mergeable and ksmd scanned it); one whose item was left at an address it
    // since moved from is not (c5's item at 0x10000).
    let items = BTreeMap::from([(s("c3"), 0x13000), (s("c5"), 0x13000)]);
    assert_eq!(ksm_reachable(missing, &found, &forks, &truth, &items), BTreeSet::from([s("c3"), s("c4")]));
    // The walk reaches c1's merged address only: c1's own mapping of the page at
    // another address (a page KSM made stable in place) is out of its reach.
    let other = ("c1".to_string(), "n".to_string(), 0);
    assert!(ksm_reachable(BTreeSet::from([other]), &found, &forks, &truth, &none).is_empty());
}

/// The checks that fail for a walk of p0's a[0] at pfn 0x100, a KSM page.
fn ksm_checks(walk: &Walk, forks: &[(String, String)], items: &BTreeMap<Slot, u64>) -> Vec<Check> {
    asked_problems(walk, None, forks, items).into_iter().map(|p| p.check).collect()
}

#[test]
fn a_ksm_walk_that_misses_a_reachable_mapper_fails() {
    let page = PAGE.replace("kind=anon", "kind=ksm");
    let end = END.replace("mapped=2", "mapped=1");
    let walk = collect_walk([page.as_str(), VMA_P0, &end], 1);
    let judge = |forks: &[(String, String)]| ksm_checks(&walk, forks, &BTreeMap::new());
    // c1 was forked from p0, whose VMA KSM merged: the walk owes it.
    assert_eq!(judge(&[("p0".into(), "c1".into())]), vec![Check::O1]);
    // c1 is p0's parent: a page made stable in place by p0 keeps c1 out of reach.
    assert!(judge(&[("c1".into(), "p0".into())]).is_empty());
}

#[test]
fn a_ksm_page_without_a_stable_node_owes_no_mapper() {
    // break_cow() after a failed try_to_merge_two_pages() leaves the page KSM with no
    // stable node; rmap_walk_ksm() then walks nothing, though a fork copy maps it.
    let end = "rmapcheck: req=1 end rc=0 mapped=0 visited=0";
    let forks = [("p0".to_string(), "c1".to_string())];
    let items = BTreeMap::from([(("c1".to_string(), "a".to_string(), 0), 0x10000)]);
    let judge = |node: &str| {
        let page = PAGE.replace("kind=anon", "kind=ksm") + node;
        ksm_checks(&collect_walk([page.as_str(), end], 1), &forks, &items)
    };
    assert!(judge(" ksmnode=0").is_empty());
    // With a stable node, c1's own rmap_item at the address makes it owed.
    assert_eq!(judge(" ksmnode=1"), vec![Check::O1]);
    assert_eq!(judge(""), vec![Check::O1]);
}

#[test]
fn lost_log_lines_blame_the_log_not_the_rmap() {
    // The page line was overwritten: not "the module found no page".
    let problems = asked_checks(&[VMA_P0, VMA_C1, END], None);
    assert_eq!(problems.iter().map(|p| p.check).collect::<Vec<_>>(), vec![Check::Module], "{problems:?}");
    assert!(problems[0].message().contains("lost"), "{}", problems[0].message());
    // One VMA line of the two the end line counts is gone.
    let problems = asked_checks(&[PAGE, VMA_P0, END], None);
    assert_eq!(problems.iter().map(|p| p.check).collect::<Vec<_>>(), vec![Check::Module], "{problems:?}");
}

#[test]
fn an_exclusive_page_that_two_processes_map_breaks_o2() {
    let data = [
        "proc=p0 pid=10 name=a addr=0x10000 pages=2 pfns=0x100,0x101 excl=0x100,0x101",
        "proc=c1 pid=11 name=a addr=0x10000 pages=2 pfns=0x100,0x201 excl=-,0x201",
    ];
    let truth = Truth::from_data(&data.map(parse_fields), 4096).unwrap();
    let problems = check_exclusive(&truth);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].check, Check::O2);
    assert!(problems[0].message().contains("pfn 0x100"), "{}", problems[0].message());
    // A clear bit on a page one process maps promises nothing.
    let data = ["proc=p0 pid=10 name=a addr=0x10000 pages=2 pfns=0x100,0x101 excl=-,0x101"];
    assert!(check_exclusive(&Truth::from_data(&data.map(parse_fields), 4096).unwrap()).is_empty());
}

#[test]
fn an_exclusive_bit_read_off_a_whole_pmd_is_named_so() {
    // c1 maps a PMD-size folio (512 frames from 0x200, at a 2 MiB boundary) whole; p0
    // maps one of its pages by a PTE, elsewhere.
    let frames: Vec<String> = (0..512).map(|i| format!("{:#x}", 0x200 + i)).collect();
    let folio: Vec<&str> = (0..512).map(|i| if i == 0 { "h" } else { "t" }).collect();
    let excl = frames.join(",");
    let c1 = format!(
        "proc=c1 pid=11 name=m addr=0x200000 pages=512 pfns={} excl={excl} folio={}",
        frames.join(","),
        folio.join(",")
    );
    let p0 = "proc=p0 pid=10 name=m addr=0x600000 pages=1 pfns=0x2c8".to_string();
    let truth = Truth::from_data(&[c1, p0].map(|l| parse_fields(&l)), 4096).unwrap();
    assert!(truth.maps_whole_pmd(&("c1".into(), "m".into(), 200)));
    assert!(!truth.maps_whole_pmd(&("p0".into(), "m".into(), 0)));
    let problems = check_exclusive(&truth);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].message().contains("(PM_MMAP_EXCLUSIVE) in a PMD-size folio mapped whole here"),
        "{problems:?}"
    );
    // The same frames one page off the PMD boundary are not a PMD mapping.
    let shifted = Truth {
        procs: truth
            .procs
            .iter()
            .cloned()
            .map(|mut p| {
                for m in &mut p.maps {
                    m.addr += 4096;
                }
                p
            })
            .collect(),
        ..truth.clone()
    };
    assert!(!shifted.maps_whole_pmd(&("c1".into(), "m".into(), 200)));
}

#[test]
fn the_exclusive_bit_is_judged_from_6_10_only() {
    assert!(!exclusive_is_per_page("6.1.0-56-arm64"));
    assert!(exclusive_is_per_page("6.12.117"));
    assert!(exclusive_is_per_page("7.2.13+deb14-arm64"));
    let data = [
        "proc=p0 pid=10 name=a addr=0x10000 pages=1 pfns=0x100 excl=0x100",
        "proc=c1 pid=11 name=a addr=0x10000 pages=1 pfns=0x100",
    ];
    let truth = Truth::from_data(&data.map(parse_fields), 4096).unwrap();
    assert!(check_exclusive_on(&truth, "6.1.0-56-arm64").is_empty());
    assert_eq!(check_exclusive_on(&truth, "6.12.117").len(), 1);
}

#[test]
fn one_walk_per_large_folio_unless_part_of_it_is_mapped_nowhere() {
    // p0 maps a 4-page folio at 0x20..0x24 whole; c1 maps its last two pages and an
    // order-0 page. 0x22 follows 0x21 (present), so it needs no walk of its own.
    let data = [
        "proc=p0 pid=1 name=a addr=0x1000 pages=4 pfns=0x20,0x21,0x22,0x23 folio=h,t,t,t",
        "proc=c1 pid=2 name=a addr=0x1000 pages=3 pfns=0x22,0x23,0x9 folio=t,t,-",
        "proc=c2 pid=3 name=b addr=0x1000 pages=2 pfns=0x32,0x33 folio=t,t",
    ];
    let truth = Truth::from_data(&data.map(parse_fields), 4096).unwrap();
    let present: BTreeSet<u64> = truth.slots().into_iter().map(|(_, pfn)| pfn).collect();
    let walked: Vec<u64> = present.iter().copied().filter(|p| truth.needs_walk(*p, &present)).collect();
    // 0x32 is the first mapped page of a folio whose head is mapped nowhere.
    assert_eq!(walked, [0x9, 0x20, 0x32]);
}
