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
    assert_eq!(check(&[PAGE, VMA_P0, END], Some(0x100), None), vec![Check::O1, Check::O2]);
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
