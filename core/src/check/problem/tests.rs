//! Every kind's message is the text the checks printed before problems had kinds (the
//! format strings they had, filled in by hand), and titles keep the kind, not the values.

use super::*;
use crate::check::contents::{Contents as Read, Mismatch};
use crate::check::model::{Bytes, Reason, Why};

fn slot(p: &str, m: &str, i: u64) -> Slot {
    (p.into(), m.into(), i)
}

fn vma() -> VisitedVma {
    VisitedVma { start: 0x10000, end: 0x14000, pid: 41, comm: "agent".into() }
}

const MAPS: FolioMaps = FolioMaps { ptes: 3, pmds: 1 };

/// One representative of every kind, with the message it must print.
fn cases() -> Vec<(ProblemKind, &'static str)> {
    use ProblemKind::*;
    let at = || slot("p0", "m3", 2);
    vec![
        (
            BadModuleLine(BadLine { line: "rmapcheck: req=3 page".into(), why: "no pfn".into() }),
            "bad module line (no pfn): rmapcheck: req=3 page",
        ),
        (WalkIncomplete { at: at(), req: 17 }, "findpage p0 m3[2]: the module's lines for req=17 are incomplete (no end line)"),
        (
            LinesLost { at: at(), page_line: true, lines: 2, counted: 5 },
            "findpage p0 m3[2]: the kernel log lost the module's lines (a page line, 2 of 5 VMA lines)",
        ),
        (
            LinesLost { at: at(), page_line: false, lines: 0, counted: 3 },
            "findpage p0 m3[2]: the kernel log lost the module's lines (no page line, 0 of 3 VMA lines)",
        ),
        (
            UnknownMapcountSemantics { at: at(), mcsem: "odd".into() },
            "findpage p0 m3[2]: unknown mapcount semantics 'odd'",
        ),
        (FindtaskIncomplete { proc: "c1".into() }, "findtask c1: incomplete module output"),
        (
            NoPage { at: at(), pfn: 0x4a1c2, rc: -14 },
            "findpage p0 m3[2]: pagemap has pfn 0x4a1c2 but the module found no page (rc=-14)",
        ),
        (
            NothingMapped { at: at(), pfn: 0x4a1c2 },
            "findpage p0 m3[2]: pagemap has pfn 0x4a1c2 but the module says nothing is mapped",
        ),
        (
            NotPresent { at: at(), page_kind: "anon".into() },
            "findpage p0 m3[2]: the module found a anon page but pagemap says not present",
        ),
        (
            WrongPfn { at: at(), walked: 0x100, pagemap: 0x200 },
            "findpage p0 m3[2]: the module walked pfn 0x100 but pagemap has 0x200",
        ),
        (
            WalkMismatch {
                at: at(),
                pfn: 0x4a1c2,
                page_kind: "anon".into(),
                forward: vec![slot("c1", "m3", 2), slot("c2", "m3", 2), slot("p0", "m3", 2)],
                reverse: vec![slot("c1", "m3", 2), slot("p0", "m3", 2)],
                missing: vec![slot("c2", "m3", 2)],
                extra: Vec::new(),
                strays: Vec::new(),
                addresses: [(slot("c2", "m3", 2), 0x7f0000002000)].into(),
            },
            "findpage p0 m3[2]: pagemap maps pfn 0x4a1c2 at [c1 m3[2], c2 m3[2], p0 m3[2]] but the rmap walk found [c1 m3[2], p0 m3[2]]; the walk missed c2 m3[2]",
        ),
        (
            WalkMismatch {
                at: at(),
                pfn: 0x51,
                page_kind: "file".into(),
                forward: vec![slot("p0", "m3", 2)],
                reverse: Vec::new(),
                missing: vec![slot("p0", "m3", 2)],
                extra: vec![slot("c4", "m0", 0)],
                strays: vec!["c4 0x40000 (outside every named mapping)".into()],
                addresses: BTreeMap::new(),
            },
            "findpage p0 m3[2]: pagemap maps pfn 0x51 at [p0 m3[2]] but the rmap walk found [nothing]; the walk missed p0 m3[2]; the walk reported c4 m0[0] which pagemap does not; mapped outside the named mappings: c4 0x40000 (outside every named mapping)",
        ),
        (
            WrongAddress { at: at(), vma: vma(), passed: 0x11000, folio_start: 0x10000 },
            "findpage p0 m3[2]: rmap_walk passed 0x11000 for the VMA 0x10000-0x14000 of pid 41, but the folio starts at 0x10000 there",
        ),
        (
            UnownedVma { at: at(), vma: vma() },
            "findpage p0 m3[2]: the walk visited the VMA 0x10000-0x14000 (pid 41, agent), which no live workload process owns",
        ),
        (
            UnfitVma { at: at(), label: "c1".into(), vma: vma(), page_kind: "anon".into(), why: Unfit::NoAnonVma },
            "findpage p0 m3[2]: the walk visited c1's VMA 0x10000-0x14000 (pid 41, agent), which cannot hold this anon page: it has no anon_vma",
        ),
        (
            UnfitVma {
                at: at(),
                label: "c1".into(),
                vma: vma(),
                page_kind: "anon".into(),
                why: Unfit::NotInLineage { label: "c1".into(), lineage: vec!["c2".into(), "p0".into()] },
            },
            "findpage p0 m3[2]: the walk visited c1's VMA 0x10000-0x14000 (pid 41, agent), which cannot hold this anon page: c1 is not in the page's fork lineage [c2, p0]",
        ),
        (
            UnfitVma {
                at: at(),
                label: "c1".into(),
                vma: vma(),
                page_kind: "file".into(),
                why: Unfit::OtherFile { maps: None, page_of: Some("/tmp/f".into()) },
            },
            "findpage p0 m3[2]: the walk visited c1's VMA 0x10000-0x14000 (pid 41, agent), which cannot hold this file page: it maps no file but the page is of /tmp/f",
        ),
        (
            UnfitVma {
                at: at(),
                label: "c1".into(),
                vma: vma(),
                page_kind: "shmem".into(),
                why: Unfit::OtherPages { first: 0x10, end: 0x14, folio_first: 0x2, folio_end: 0x3 },
            },
            "findpage p0 m3[2]: the walk visited c1's VMA 0x10000-0x14000 (pid 41, agent), which cannot hold this shmem page: it maps pages 0x10-0x14 of the file but the folio is 0x2-0x3",
        ),
        (
            FolioWalkMismatch {
                at: at(),
                nr: 16,
                head: 0x4a000,
                mapped: 31,
                why: vec![
                    FolioMiss::Missed("c1 m3[4], c1 0x40000 (outside every named mapping)".into()),
                    FolioMiss::Reported("c2 m3[0]".into()),
                    FolioMiss::Unlisted { n: 4, place: "c3 m3[0]".into(), got: 3 },
                ],
            },
            "findpage p0 m3[2]: pagemap maps the 16-page folio at pfn 0x4a000 31 times; the walk missed c1 m3[4], c1 0x40000 (outside every named mapping); the walk reported c2 m3[0] which pagemap does not; the walk says 4 more mappings in c3 m3[0] than it lists, pagemap has 3",
        ),
        (
            SwapSplit { by: SwapOut::Pageout, pfn: 0x2a0, entry: 0x2b0, first: slot("p0", "a", 0), other: slot("c2", "a", 0), other_entry: 0x2c0 },
            "pageout: pfn 0x2a0 went to swap entry 0x2b0 for p0 a[0] but to 0x2c0 for c2 a[0]",
        ),
        (
            SwapStillMapped { by: SwapOut::Pageout, pfn: 0x2a0, first: slot("p0", "a", 0), holder: slot("c1", "a", 0) },
            "pageout: pfn 0x2a0 was swapped out for p0 a[0] but c1 a[0] still maps it",
        ),
        (Mapcount { at: at(), mapcount: 3, ptes: 2 }, "findpage p0 m3[2]: mapcount 3 but the walk found 2 mapping PTEs"),
        (
            KsmMapcount { at: at(), mapcount: 2, mappings: 4 },
            "findpage p0 m3[2]: KSM page mapcount 2 but pagemap has 4 mappings",
        ),
        (
            FolioMapcountBelow { at: at(), mapcount: 1, vmas: 2 },
            "findpage p0 m3[2]: folio mapcount 1 is below the 2 VMAs that map it",
        ),
        (
            Kpagecount { at: at(), kpagecount: 2, mapcount: 3 },
            "findpage p0 m3[2]: /proc/kpagecount says 2, the module's mapcount 3",
        ),
        (
            NotExclusive { at: slot("c2", "m1", 200), pfn: 0x4e00, whole_pmd: true, mappers: vec!["c2".into(), "p0".into()] },
            "c2 m1[200]: pagemap flags pfn 0x4e00 exclusive to one mm (PM_MMAP_EXCLUSIVE) in a PMD-size folio mapped whole here, but 2 map it: c2, p0",
        ),
        (
            NotExclusive { at: slot("c2", "m1", 3), pfn: 0x4e03, whole_pmd: false, mappers: vec!["c2".into(), "p0".into()] },
            "c2 m1[3]: pagemap flags pfn 0x4e03 exclusive to one mm (PM_MMAP_EXCLUSIVE), but 2 map it: c2, p0",
        ),
        (
            FolioBounds { at: at(), nr: 4, head: 0x100, kpageflags: [0x8000, 0x10000, 0x0] },
            "findpage p0 m3[2]: the module says the folio is 4 pages from pfn 0x100, but kpageflags of its head, last page and the next are 0x8000, 0x10000, 0x0",
        ),
        (
            FolioMapcount { at: at(), mapcount: 5, mcsem: "folio_mapcount".into(), want: 4, maps: MAPS, this_page: 2 },
            "findpage p0 m3[2]: mapcount 5 (folio_mapcount) but it must be 4: 3 PTEs and 1 PMDs map the folio, 2 of them this page",
        ),
        (
            PageMapcount { at: at(), got: 3, want: 2, maps: MAPS },
            "findpage p0 m3[2]: the page's own mapcount is 3 but 2 mappings map this page (3 PTEs and 1 PMDs map the folio)",
        ),
        (
            FolioKpagecount { at: at(), got: "2*3,1".into(), want: "2*4".into(), mcsem: "entire".into(), maps: MAPS },
            "findpage p0 m3[2]: /proc/kpagecount of the folio's pages is [2*3,1] but must be [2*4] (entire; 3 PTEs and 1 PMDs map the folio)",
        ),
        (
            Splat { line: "WARNING: CPU: 0 PID: 7 at mm/rmap.c:1234 folio_add+0x2a4/0x2f0".into(), title: "t".into() },
            "kernel splat: WARNING: CPU: 0 PID: 7 at mm/rmap.c:1234 folio_add+0x2a4/0x2f0",
        ),
        (Tainted { flags: "W".into() }, "the kernel is newly tainted: W"),
        (
            Sharing {
                at: slot("c1", "a", 0),
                expected: vec![slot("c1", "a", 0), slot("p0", "a", 0)],
                why: Why { reason: Reason::Fork, fork: Some(("c1".into(), "p0".into())) },
                observed: vec![slot("c1", "a", 0)],
            },
            "c1 a[0]: the model expects it shared by [c1 a[0], p0 a[0]] (fork: c1 shares p0's private pages until a write), the kernel has [c1 a[0]]",
        ),
        (
            Sharing {
                at: slot("p0", "a", 1),
                expected: vec![slot("p0", "a", 1)],
                why: Why { reason: Reason::NeverTouched, fork: None },
                observed: Vec::new(),
            },
            "p0 a[1]: the model expects it shared by [p0 a[1]] (the page was never touched), the kernel has []",
        ),
        (
            Contents(Mismatch {
                slot: slot("p0", "s", 0),
                seen: Read::Mixed { first: 0x0404040404040404, digest: 0x52cb8c9afa08e3cf },
                want: Bytes { value: 4, tag: None, may_be_zero: false, rest_may_be_zero: false, by: Some(("p0".into(), 4)) },
            }),
            "p0 s[0]: the page holds mixed bytes (first 0x0404040404040404, digest 52cb8c9afa08e3cf) but the model expects 0x04 in every byte (written by p0 at step 4)",
        ),
        (
            Contents(Mismatch {
                slot: slot("p0", "a", 2),
                seen: Read::Uniform(0),
                want: Bytes { value: 3, tag: Some(2), may_be_zero: true, rest_may_be_zero: false, by: None },
            }),
            "p0 a[2]: the page holds 0x00 in every byte but the model expects 0x03 in every byte after its page index 2 or zeros (MADV_FREE) (the model's page)",
        ),
        (
            StepFailed { n: 12, op: "mremap".into(), errno: Errno(14), msg: "mremap".into() },
            "step 12 (mremap): failed with errno 14 (mremap)",
        ),
        (
            MthpFailed { args: "size_kb=64 anon=always".into(), errno: Errno(22) },
            "mthp size_kb=64 anon=always: failed with errno 22",
        ),
        (NotRun { why: "kernel 6.12 is not ready: no image".into() }, "kernel 6.12 is not ready: no image"),
        (
            GuestFault { cause: "died".into(), what: "Unable to handle kernel paging request".into(), by_splat: true },
            "guest fault (died): Unable to handle kernel paging request",
        ),
        (NoFindpageResult { at: "m0[3]".into() }, "expect findpage m0[3]: no result (the step failed?)"),
        (NoFindtaskResult { proc: "c1".into() }, "expect findtask c1: no result"),
        (
            ExpectationFailed { what: "findpage p0 m0[3]".into(), diff: "-mapcount: 2\n+mapcount: 1".into() },
            "expect findpage p0 m0[3] does not hold:\n-mapcount: 2\n+mapcount: 1",
        ),
        (
            KnownBugAbsent { finding: "pagemap-pmd-exclusive".into(), kernel: "7.2".into(), release: "7.2.0".into() },
            "known kernel bug pagemap-pmd-exclusive did not show on 7.2 (7.2.0): if it is fixed there, say so in docs/FINDINGS.md and take 7.2 out of known_bug.on",
        ),
    ]
}

#[test]
fn every_kind_prints_the_message_it_always_printed() {
    for (kind, text) in cases() {
        assert_eq!(kind.to_string(), text, "{kind:?}");
    }
}

#[test]
fn each_kind_belongs_to_its_check() {
    let check = |k: ProblemKind| Problem::new(k).check;
    assert_eq!(check(ProblemKind::Tainted { flags: "W".into() }), Check::O3);
    assert_eq!(check(ProblemKind::Mapcount { at: slot("p0", "a", 0), mapcount: 2, ptes: 1 }), Check::O2);
    let fault = |by_splat| ProblemKind::GuestFault { cause: "died".into(), what: "x".into(), by_splat };
    assert_eq!(check(fault(true)), Check::O3);
    assert_eq!(check(fault(false)), Check::Step);
    assert_eq!(check(ProblemKind::NoFindtaskResult { proc: "c1".into() }), Check::Expect);
}

/// Results JSON keeps `{check, message}` as it always did, and reads back as text.
#[test]
fn results_json_holds_the_check_and_the_message() {
    for (kind, text) in cases() {
        let p = Problem::new(kind);
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json, serde_json::json!({"check": p.check, "message": text}));
        let back: Problem = serde_json::from_value(json).unwrap();
        assert_eq!((back.check, back.message()), (p.check, text.to_string()));
    }
}

/// No title carries a value that differs from run to run: no hex, no slot, no step.
#[test]
fn titles_carry_no_values() {
    for (kind, _) in cases() {
        let t = Problem::new(kind.clone()).title();
        assert!(!t.contains("0x") && !t.contains("m3[") && !t.contains("p0"), "{kind:?}: {t}");
        assert!(!t.contains("step 12") && !t.contains("c1 a["), "{kind:?}: {t}");
    }
}

#[test]
fn an_o1_miss_reads_in_mm_terms() {
    let (miss, _) = &cases()[10];
    assert_eq!(
        miss.in_mm_terms().as_deref(),
        Some(
            "the rmap walk of the anon folio at pfn 0x4a1c2 did not reach c2's mapping at 0x7f0000002000 (c2 m3[2]), which pagemap shows"
        )
    );
    let (both, _) = &cases()[11];
    let text = both.in_mm_terms().unwrap();
    assert!(text.contains("did not reach p0's mapping (p0 m3[2])") && text.contains("reported c4's mapping"), "{text}");
    assert_eq!(cases()[0].0.in_mm_terms(), None, "a bad module line is not the kernel's");
}

#[test]
fn errnos_have_names() {
    assert_eq!(Errno(14).name(), "EFAULT");
    assert_eq!(Errno(12).name(), "ENOMEM");
    assert_eq!(Errno(95).name(), "EOPNOTSUPP");
    assert_eq!(Errno(999).name(), "errno 999");
    assert_eq!(Errno(14).to_string(), "14", "messages show the number");
}
