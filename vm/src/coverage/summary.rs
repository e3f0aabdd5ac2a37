//! Coverage as the reports show it: per file of `lines::FILES` and per function, each
//! coverable line (one with a KCOV call site) marked reached or not; the rmap entry points never reached; and
//! coverage over time as curves. Pure over a `Mapping` and sets of PCs.

use super::lines::{Frame, Mapping, FILES};
use super::pcs::Pcs;
use super::series::Series;
use std::collections::{BTreeMap, BTreeSet};

/// The rmap entry points the terminal summary names when no run reached them: what
/// mm/rmap.c exports or the rest of mm calls (6.12 names), and the walkers.
pub const ENTRY_POINTS: &[(&str, &str)] = &[
    ("mm/rmap.c", "__anon_vma_prepare"),
    ("mm/rmap.c", "anon_vma_clone"),
    ("mm/rmap.c", "anon_vma_fork"),
    ("mm/rmap.c", "unlink_anon_vmas"),
    ("mm/rmap.c", "folio_get_anon_vma"),
    ("mm/rmap.c", "folio_lock_anon_vma_read"),
    ("mm/rmap.c", "folio_referenced"),
    ("mm/rmap.c", "folio_mkclean"),
    ("mm/rmap.c", "folio_move_anon_rmap"),
    ("mm/rmap.c", "folio_add_anon_rmap_ptes"),
    ("mm/rmap.c", "folio_add_anon_rmap_pmd"),
    ("mm/rmap.c", "folio_add_new_anon_rmap"),
    ("mm/rmap.c", "folio_add_file_rmap_ptes"),
    ("mm/rmap.c", "folio_add_file_rmap_pmd"),
    ("mm/rmap.c", "folio_remove_rmap_ptes"),
    ("mm/rmap.c", "folio_remove_rmap_pmd"),
    ("mm/rmap.c", "try_to_unmap"),
    ("mm/rmap.c", "try_to_migrate"),
    ("mm/rmap.c", "try_to_unmap_flush"),
    ("mm/rmap.c", "page_address_in_vma"),
    ("mm/rmap.c", "mm_find_pmd"),
    ("mm/rmap.c", "__put_anon_vma"),
    ("mm/rmap.c", "rmap_walk"),
    ("mm/rmap.c", "rmap_walk_locked"),
    ("mm/rmap.c", "rmap_walk_anon"),
    ("mm/rmap.c", "rmap_walk_file"),
    ("mm/rmap.c", "hugetlb_add_anon_rmap"),
    ("mm/rmap.c", "hugetlb_add_new_anon_rmap"),
    ("mm/page_vma_mapped.c", "page_vma_mapped_walk"),
    ("mm/page_vma_mapped.c", "page_mapped_in_vma"),
    ("mm/ksm.c", "rmap_walk_ksm"),
];

/// What the reports say once of a vmlinux without KCOV's callback.
pub const NO_KCOV: &str =
    "the vmlinux has no KCOV call sites (a kernel built without CONFIG_KCOV): no line counts as coverable";

/// The file whose lines the coverage-over-time plot counts.
pub const PLOT_FILE: &str = "mm/rmap.c";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Reached,
    Never,
    /// The vmlinux has no such function (another version, or inlined away).
    Absent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuncCov {
    pub name: String,
    /// Every coverable line, and whether a run reached it.
    pub lines: BTreeMap<u32, bool>,
    /// The first and last line with code (coverable or not).
    pub span: (u32, u32),
}

impl FuncCov {
    pub fn reached(&self) -> usize {
        self.lines.values().filter(|r| **r).count()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCov {
    pub file: String,
    /// In source order (by first line).
    pub functions: Vec<FuncCov>,
}

impl FileCov {
    pub fn lines(&self) -> (usize, usize) {
        self.functions.iter().fold((0, 0), |(r, t), f| (r + f.reached(), t + f.lines.len()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    pub has_lines: bool,
    /// The vmlinux has KCOV call sites; without, no line is coverable.
    pub has_kcov: bool,
    pub pcs: usize,
    pub files: Vec<FileCov>,
    pub entry_points: Vec<(String, String, Reach)>,
    /// Every function some PC was in (innermost or caller).
    pub functions: BTreeSet<String>,
}

/// The lines of `file` that `pcs` reached.
fn reached_lines<'a>(mapping: &'a Mapping, pcs: impl IntoIterator<Item = &'a u64>) -> BTreeSet<&'a Frame> {
    pcs.into_iter().flat_map(|pc| mapping.frames(*pc)).filter(|f| f.line > 0).collect()
}

pub fn build(mapping: &Mapping, pcs: &Pcs) -> Coverage {
    let reached = reached_lines(mapping, pcs.as_slice());
    let functions: BTreeSet<String> =
        pcs.as_slice().iter().flat_map(|pc| mapping.frames(*pc)).map(|f| f.function.clone()).collect();
    let mut per: BTreeMap<&str, BTreeMap<&str, BTreeMap<u32, bool>>> = BTreeMap::new();
    for f in mapping.coverable.iter().chain(reached.iter().copied()) {
        if FILES.contains(&f.file.as_str()) {
            let hit = reached.contains(f);
            let slot = per.entry(&f.file).or_default().entry(&f.function).or_default().entry(f.line).or_default();
            *slot |= hit;
        }
    }
    let files = FILES
        .iter()
        .filter_map(|file| {
            let funcs = per.remove(file)?;
            let mut functions: Vec<FuncCov> = funcs
                .into_iter()
                .map(|(name, lines)| FuncCov { name: name.to_string(), span: span(mapping, file, name, &lines), lines })
                .collect();
            functions.sort_by_key(|f| (f.span.0, f.name.clone()));
            Some(FileCov { file: file.to_string(), functions })
        })
        .collect();
    let known: BTreeSet<&str> = mapping.spans.iter().map(|s| s.function.as_str()).collect();
    let entry_points = ENTRY_POINTS
        .iter()
        .map(|(file, name)| {
            let reach = if functions.contains(*name) {
                Reach::Reached
            } else if mapping.has_lines && !known.contains(name) {
                Reach::Absent
            } else {
                Reach::Never
            };
            (file.to_string(), name.to_string(), reach)
        })
        .collect();
    Coverage {
        has_lines: mapping.has_lines,
        has_kcov: mapping.has_kcov,
        pcs: pcs.len(),
        files,
        entry_points,
        functions,
    }
}

/// The lines a function has code on, first to last, stretched over `lines` (the
/// span of a function with no line table is its coverable lines').
fn span(mapping: &Mapping, file: &str, function: &str, lines: &BTreeMap<u32, bool>) -> (u32, u32) {
    let code = mapping.spans.iter().find(|s| s.file == file && s.function == function).map(|s| (s.first, s.last));
    let (first, last) = (lines.keys().next().copied().unwrap_or(0), lines.keys().last().copied().unwrap_or(0));
    code.map_or((first, last), |(a, b)| (a.min(first), b.max(last)))
}

/// One campaign's coverage over time: `(runs, seconds, y)` per point, where `y` is the
/// lines of `PLOT_FILE` reached so far (PCs where the vmlinux has no lines).
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub name: String,
    pub points: Vec<(u64, f64, u64)>,
}

pub fn curve(series: &Series, mapping: &Mapping) -> Curve {
    let mut seen: BTreeSet<&Frame> = BTreeSet::new();
    let mut points = Vec::new();
    for p in &series.points {
        let y = if mapping.has_lines {
            seen.extend(reached_lines(mapping, &p.new).into_iter().filter(|f| f.file == PLOT_FILE));
            seen.iter().map(|f| f.line).collect::<BTreeSet<_>>().len() as u64
        } else {
            p.pcs
        };
        points.push((p.runs, p.secs, y));
    }
    let name = series.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    Curve { name, points }
}

/// A mapping by hand, for this module's tests and the report's above.
#[cfg(any(test, feature = "test-support"))]
pub mod example {
    use super::*;
    use crate::coverage::lines::Span;

    pub fn fr(file: &str, function: &str, line: u32) -> Frame {
        Frame { file: file.into(), function: function.into(), line }
    }

    /// A mapping by hand: rmap_walk has code on lines 9-14 and call sites on 10-13,
    /// try_to_unmap code on 20-22 and call sites on 20-21; PC 1 reaches rmap_walk:10,
    /// PC 2 an inline helper called from rmap_walk:12, PC 3 try_to_unmap:20.
    pub fn example() -> Mapping {
        let mut m = Mapping { has_lines: true, has_kcov: true, ..Mapping::default() };
        for l in 10..=13 {
            m.coverable.push(fr("mm/rmap.c", "rmap_walk", l));
        }
        m.coverable.extend([fr("mm/rmap.c", "try_to_unmap", 20), fr("mm/rmap.c", "try_to_unmap", 21)]);
        m.coverable.push(fr("mm/memory.c", "do_anonymous_page", 5));
        let span = |file: &str, function: &str, first, last| Span {
            file: file.into(),
            function: function.into(),
            first,
            last,
        };
        m.spans = vec![
            span("mm/rmap.c", "rmap_walk", 9, 14),
            span("mm/rmap.c", "try_to_unmap", 20, 22),
            span("mm/memory.c", "do_anonymous_page", 5, 5),
        ];
        m.pcs.insert(1, vec![fr("mm/rmap.c", "rmap_walk", 10)]);
        m.pcs.insert(2, vec![fr("include/linux/mm.h", "folio_ref", 3), fr("mm/rmap.c", "rmap_walk", 12)]);
        m.pcs.insert(3, vec![fr("mm/rmap.c", "try_to_unmap", 20)]);
        m
    }
}

#[cfg(test)]
mod tests {
    use super::example::example;
    use super::*;
    use crate::coverage::series::Point;

    #[test]
    fn lines_functions_and_entry_points() {
        let m = example();
        let c = build(&m, &Pcs::new(vec![1, 2]));
        assert_eq!(c.files.len(), 2);
        let rmap = &c.files[0];
        assert_eq!(rmap.file, "mm/rmap.c");
        assert_eq!(rmap.functions.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["rmap_walk", "try_to_unmap"]);
        let walk = &rmap.functions[0];
        assert_eq!(
            walk.lines.iter().map(|(l, r)| (*l, *r)).collect::<Vec<_>>(),
            [(10, true), (11, false), (12, true), (13, false)]
        );
        assert_eq!(walk.span, (9, 14), "lines 9 and 14 have code but no call site");
        assert_eq!(rmap.lines(), (2, 6));
        assert_eq!(c.files[1].lines(), (0, 1));
        let reach = |name: &str| c.entry_points.iter().find(|(_, n, _)| n == name).unwrap().2;
        assert_eq!(reach("rmap_walk"), Reach::Reached);
        assert_eq!(reach("try_to_unmap"), Reach::Never);
        assert_eq!(reach("folio_add_anon_rmap_ptes"), Reach::Absent);
        assert!(c.functions.contains("folio_ref"));
    }

    #[test]
    fn a_path_reaches_the_coverable_lines_it_runs_and_the_function_spans_its_code() {
        use crate::coverage::callsites;
        use crate::coverage::lines::{tests::tiny_kcov_vmlinux, Symbolizer};
        let (_dir, bin) = tiny_kcov_vmlinux();
        let sym = Symbolizer::open(&bin).unwrap();
        let sites = callsites::read(&bin).unwrap().addresses;
        let m = Mapping::build(&sym, &Pcs::new(sites.iter().map(|a| a + 4).collect())).unwrap();
        // try_to_unmap's early return: every call site of it but the one on line 14.
        let early = sites
            .iter()
            .map(|a| a + 4)
            .filter(|pc| m.frames(*pc).iter().any(|f| f.function == "try_to_unmap" && f.line != 14));
        let c = build(&m, &Pcs::new(early.collect()));
        let f = c.files[0].functions.iter().find(|f| f.name == "try_to_unmap").unwrap();
        assert_eq!(f.lines.iter().map(|(l, r)| (*l, *r)).collect::<Vec<_>>(), [(12, true), (13, true), (14, false)]);
        assert_eq!(f.span, (11, 15), "the braces have code, no call site");
        assert!(c.has_kcov);
    }

    #[test]
    fn curves_count_plot_file_lines_over_time() {
        let m = example();
        let p = |runs, secs, new: Vec<u64>| Point { runs, secs, pcs: 0, corpus: 0, new };
        let s = Series {
            path: "out/coverage.jsonl".into(),
            kernel: None,
            release: None,
            points: vec![p(1, 0.5, vec![1]), p(4, 2.0, vec![2, 3]), p(9, 6.0, vec![])],
        };
        let c = curve(&s, &m);
        assert_eq!(c.name, "coverage");
        assert_eq!(c.points, [(1, 0.5, 1), (4, 2.0, 3), (9, 6.0, 3)]);
    }
}
