//! The large-folio checks on hand-built walks and `folio` reads: a 4-page folio (and a
//! 512-page PMD folio) under each kernel's semantics; each case bends one fact.

use super::*;
use crate::check::dmesg::collect_walk;
use crate::check::oracle::{check_asked, Asked, Check};
use crate::wire::parse_fields;

const PS: u64 = 4096;
const HEAD: u64 = 0x100;

/// p0 maps a 4-page folio at 0x10000 in map `a`; c1 maps pages 0-1 at 0x10000 and page 3
/// outside every named map (0x40000).
fn truth() -> Truth {
    let data = [
        "proc=p0 pid=10 name=a addr=0x10000 pages=4 pfns=0x100,0x101,0x102,0x103",
        "proc=c1 pid=11 name=a addr=0x10000 pages=4 pfns=0x100,0x101,-,-",
    ];
    Truth::from_data(&data.map(parse_fields), PS).unwrap()
}

fn folio(kpc: &str, lines: &[&str]) -> FolioTruth {
    let fields = parse_fields(&format!("kpc={kpc} kpf=0x8000,0x10000,0x0"));
    let data: Vec<Fields> = lines.iter().map(|l| parse_fields(l)).collect();
    FolioTruth::from_reply(&fields, &data, HEAD, 4, PS).unwrap()
}

const F_P0: &str = "proc=p0 pid=10 start=0x10000 end=0x14000 at=0x10000:0*4";
const F_C1: &str = "proc=c1 pid=11 start=0x10000 end=0x14000 at=0x10000:0*2";
const F_C1_OUT: &str = "proc=c1 pid=11 start=0x40000 end=0x41000 at=0x40000:3";

fn page(mcsem: &str, mapcount: i64, pmc: &str) -> String {
    format!(
        "rmapcheck: req=1 page pfn=0x100 order=2 kind=anon mapcount={mapcount} pagemapcount={pmc} refcount=9 flags=0x0 mcsem={mcsem} head=0x100 nr=4"
    )
}

fn vma(pid: u32, start: &str, end: &str, at: &str) -> String {
    format!(
        "rmapcheck: req=1 vma pid={pid} comm=init start={start} end={end} flags=0x100073 prot=rw-p pgoff=0x10 file=- ops=- anon_vma=1 addr={start} state=mapped level=pte rmap_addr={start} folio_addr={start} at={at}"
    )
}

const END: &str = "rmapcheck: req=1 end rc=0 mapped=3 visited=0";

fn run(lines: &[String], f: &FolioTruth) -> Vec<Problem> {
    let walk = collect_walk(lines.iter().map(String::as_str), 1);
    let slot = ("p0".to_string(), "a".to_string(), 0);
    let asked = Asked {
        slot: &slot,
        pfn: Some(HEAD),
        kpagecount: None,
        folio: Some(f),
        lineage: None,
        forks: &[],
        ksm_items: &Default::default(),
    };
    check_asked(&walk, &truth(), &asked)
}

fn checks(lines: &[String], f: &FolioTruth) -> Vec<Check> {
    run(lines, f).into_iter().map(|p| p.check).collect()
}

/// The faithful walk: p0 4 PTEs, c1 2 PTEs plus page 3 elsewhere: 7 PTEs in all;
/// per page 2,2,1,2.
fn walk(page_line: String) -> Vec<String> {
    vec![
        page_line,
        vma(10, "0x10000", "0x14000", "0x10000:pte*4"),
        vma(11, "0x10000", "0x14000", "0x10000:pte*2"),
        // It maps page 3 only, not the page asked about.
        vma(11, "0x40000", "0x41000", "0x40000:pte")
            .replace("addr=0x40000 state=mapped level=pte", "addr=- state=visited level=-"),
        END.into(),
    ]
}

fn three() -> FolioTruth {
    folio("2*2,1,2", &[F_P0, F_C1, F_C1_OUT])
}

#[test]
fn each_kernel_counts_exactly() {
    let f = three();
    assert_eq!(run(&walk(page("folio_mapcount", 7, "-")), &f), vec![]);
    assert_eq!(run(&walk(page("folio_mapcount+page_mapcount", 7, "2")), &f), vec![]);
    assert_eq!(run(&walk(page("page_mapcount", 2, "2")), &f), vec![]);
    // No per-page count: kpagecount is the average, 7 PTEs over 4 pages rounds to 2.
    let avg = folio("2*4", &[F_P0, F_C1, F_C1_OUT]);
    assert_eq!(run(&walk(page("folio_mapcount:no_page_mapcount", 7, "-")), &avg), vec![]);
}

#[test]
fn too_high_and_too_low_both_fail() {
    let f = three();
    for n in [6, 8] {
        assert_eq!(checks(&walk(page("folio_mapcount", n, "-")), &f), vec![Check::O2], "{n}");
    }
    // 6.1 prints page_mapcount() twice: both are wrong.
    assert_eq!(checks(&walk(page("page_mapcount", 3, "3")), &f), vec![Check::O2, Check::O2]);
    assert_eq!(checks(&walk(page("folio_mapcount+page_mapcount", 7, "1")), &f), vec![Check::O2]);
}

#[test]
fn kpagecount_is_judged_per_page() {
    let wrong = folio("2*3,1", &[F_P0, F_C1, F_C1_OUT]);
    assert_eq!(checks(&walk(page("folio_mapcount", 7, "-")), &wrong), vec![Check::O2]);
    let per_page = three();
    assert_eq!(checks(&walk(page("folio_mapcount:no_page_mapcount", 7, "-")), &per_page), vec![Check::O2]);
}

#[test]
fn a_walk_that_misses_one_pte_of_the_folio_fails_o1() {
    let f = three();
    let mut lines = walk(page("folio_mapcount", 7, "-"));
    lines.remove(3); // c1's PTE of page 3, outside every named map
    *lines.last_mut().unwrap() = END.replace("mapped=3", "mapped=2");
    let problems = run(&lines, &f);
    assert_eq!(problems.iter().map(|p| p.check).collect::<Vec<_>>(), vec![Check::O1]);
    assert!(problems[0].message().contains("c1 0x40000 (outside every named mapping)"), "{problems:?}");
    let mut short = walk(page("folio_mapcount", 7, "-"));
    short[1] = vma(10, "0x10000", "0x14000", "0x10000:pte*3");
    assert_eq!(checks(&short, &f), vec![Check::O1]);
}

#[test]
fn truncated_at_lists_must_count_what_they_leave_out() {
    let f = three();
    let mut lines = walk(page("folio_mapcount", 7, "-"));
    lines[1] = vma(10, "0x10000", "0x14000", "0x10000:pte*3,+1");
    assert_eq!(checks(&lines, &f), vec![]);
    lines[1] = vma(10, "0x10000", "0x14000", "0x10000:pte*3,+2");
    assert_eq!(checks(&lines, &f), vec![Check::O1]);
}

#[test]
fn folio_bounds_must_match_kpageflags() {
    let mut f = three();
    f.kpageflags[2] = KPF_COMPOUND_TAIL; // the folio goes on past nr
    assert_eq!(checks(&walk(page("folio_mapcount", 7, "-")), &f), vec![Check::O2]);
}

#[test]
fn pmd_mappings_count_once_when_smaps_can_tell() {
    let nr = 512u64;
    let kpc = parse_fields("kpc=2*512 kpf=0x8000,0x10000,0x0");
    let mk = |pmd: &str| {
        let data: Vec<Fields> = [
            format!("proc=p0 pid=10 start=0x200000 end=0x400000 {pmd} at=0x200000:0*512"),
            "proc=c1 pid=11 start=0x200000 end=0x400000 at=0x200000:0*512".to_string(),
        ]
        .iter()
        .map(|l| parse_fields(l))
        .collect();
        FolioTruth::from_reply(&kpc, &data, 0x200, nr, PS).unwrap()
    };
    let walk = |at0: &str| collect_walk([vma(10, "0x200000", "0x400000", at0).as_str(), END], 1);
    // p0 by a PMD (smaps: one PMD, one candidate), c1 by 512 PTEs.
    let c = counts(&mk("pmd=1 cand=1"), &walk("0x200000:pmd"));
    assert_eq!((c.total, c.entire, c.per_page[7]), (513, 1, 2));
    // No PMD in smaps: all PTEs, whatever the walk says.
    let c = counts(&mk("pmd=0 cand=1"), &walk("0x200000:pmd"));
    assert_eq!((c.total, c.entire), (1024, 0));
    // Fewer PMDs than candidates: smaps cannot say which, so the walk's level counts.
    assert_eq!(counts(&mk("pmd=1 cand=2"), &walk("0x200000:pmd")).total, 513);
    assert_eq!(counts(&mk("pmd=1 cand=2"), &walk("0x200000:pte*512")).total, 1024);
}

#[test]
fn the_folio_reply_parses() {
    let f = three();
    assert_eq!(f.kpagecount, vec![2, 2, 1, 2]);
    assert_eq!(f.vmas[2].pages, vec![(0x40000, 3)]);
    let bad = parse_fields("kpc=2*3 kpf=0x8000,0x10000,0x0");
    assert!(FolioTruth::from_reply(&bad, &[], HEAD, 4, PS).is_err(), "3 counts for 4 pages");
}
