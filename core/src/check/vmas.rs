//! O6, the layout oracle: each live process's VMAs over each named map (from
//! /proc/PID/maps, clipped to the map: which pages are mapped, where a VMA begins and
//! ends, its permissions, its pgoff and its file) against the VMAs the model predicts.
//! A wrong merge, a wrong split or a wrong pgoff is a finding before any page shows it.
//!
//! What a map's neighbours do is not judged: VMAs are compared inside each map only,
//! and where the model cannot follow a merge (`MapVmas::merges_certain`) only what is
//! certain (mapped pages, permissions, pgoff, file) is.
//!
//! Architecture invariant: pure; it judges values, it does no I/O.

use crate::check::model::{MapVmas, Model};
use crate::check::oracle::{Truth, VmaSpan};
pub use crate::check::vma_diff::{Diff, Mismatch};
use crate::scenario::{Prot, Share};
use std::collections::BTreeMap;

/// `rw-p` for a protection and a sharing.
fn perms(prot: Prot, share: Share) -> String {
    let rwx = match prot {
        Prot::None => "---",
        Prot::R => "r--",
        Prot::Rw => "rw-",
        Prot::Rx => "r-x",
        Prot::Rwx => "rwx",
    };
    format!("{rwx}{}", if share == Share::Shared { 's' } else { 'p' })
}

/// O6 over every map of every live process the read listed VMAs for; `(n, op)` is the
/// last step that could change them. One mismatch per map: the first difference.
pub fn check(model: &Model, truth: &Truth, n: usize, op: &str) -> Vec<Mismatch> {
    let mut out = Vec::new();
    for p in &truth.procs {
        // Within a process, every map of one shared object has one inode.
        let mut inodes: BTreeMap<u64, u64> = BTreeMap::new();
        for m in &p.maps {
            let (Some(spans), Some(want)) =
                (truth.vmas.get(&(p.label.clone(), m.name.clone())), model.vmas(&p.label, &m.name))
            else {
                continue;
            };
            // Pages another map now lies over (a range moved over this one with
            // MREMAP_FIXED) are that map's to judge.
            let ps = truth.page_size;
            let covered = |i: u64| {
                let at = m.addr + i * ps;
                p.maps.iter().any(|o| o.name != m.name && (o.addr..o.addr + o.pfns.len() as u64 * ps).contains(&at))
            };
            if let Some((lo, hi, diff)) = first_diff(spans, &want, m.pfns.len() as u64, &covered, &mut inodes) {
                let (proc, map) = (p.label.clone(), m.name.clone());
                out.push(Mismatch { n, op: op.to_string(), proc, map, lo, hi, diff });
            }
        }
    }
    out
}

/// The first difference between `spans` (the kernel's) and `want` over a map of
/// `pages` pages: the pages it concerns and what differs.
fn first_diff(
    spans: &[VmaSpan],
    want: &MapVmas,
    pages: u64,
    covered: &dyn Fn(u64) -> bool,
    inodes: &mut BTreeMap<u64, u64>,
) -> Option<(u64, u64, Diff)> {
    let model = |i: u64| want.pages.get(i as usize).copied().flatten();
    // Pages the model has unmapped may hold another map's VMA (moved over) or what a
    // whole-map MREMAP_DONTUNMAP left behind (move_vma() keeps the old VMA).
    let elsewhere = |i: u64| covered(i) || want.leftovers;
    let got = |i: u64| spans.iter().find(|s| (s.lo..s.hi).contains(&i)).filter(|_| model(i).is_some() || !elsewhere(i));
    // Mapped or not, as one run of pages that differ.
    if let Some(i) = (0..pages).find(|&i| got(i).is_some() != model(i).is_some()) {
        let mapped = got(i).is_some();
        let end = (i..pages).find(|&j| got(j).is_some() != mapped || model(j).is_some() == mapped).unwrap_or(pages);
        return Some((i, end, Diff::Mapped(mapped)));
    }
    // Where VMAs begin and end, between two mapped pages.
    if want.merges_certain {
        for i in 1..pages {
            let (Some(a), Some(b), Some(x), Some(y)) = (got(i - 1), got(i), model(i - 1), model(i)) else { continue };
            let (kernel, model) = (a != b, x.vma != y.vma);
            if kernel != model {
                let s = if kernel { b } else { a };
                return Some((i, s.hi.min(pages), if kernel { Diff::Split } else { Diff::Merged }));
            }
        }
    }
    for s in spans {
        let span = (s.lo, s.hi.min(pages));
        for i in span.0..span.1 {
            let Some(a) = model(i) else { continue };
            let perms = perms(a.prot, want.share);
            if s.perms != perms {
                return Some((span.0, span.1, Diff::Perms { got: s.perms.clone(), want: perms }));
            }
            if let Some(base) = want.pgoff {
                let (got, want) = (s.pgoff + (i - s.lo), base + i);
                if got != want {
                    return Some((span.0, span.1, Diff::Pgoff { got: s.pgoff, want: want - (i - s.lo) }));
                }
            }
        }
        // A span over pages the model has unmapped is another map's (moved over).
        if !(span.0..span.1).any(|i| model(i).is_some()) {
            continue;
        }
        let inode = match (want.file, want.object) {
            (Some(false), _) if s.ino != 0 => Some("anonymous (inode 0)".to_string()),
            (Some(true), _) if s.ino == 0 => Some("a file".to_string()),
            (Some(true), Some(obj)) => match inodes.insert(obj, s.ino) {
                Some(before) if before != s.ino => Some(format!("0x{before:x}, as its object's other VMAs")),
                _ => None,
            },
            _ => None,
        };
        if let Some(want) = inode {
            return Some((span.0, span.1, Diff::Inode { got: s.ino, want }));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse;
    use std::path::Path;

    fn model(yaml: &str) -> Model {
        let s = parse(Path::new("t.yaml"), yaml).expect("parses");
        let mut m = Model::new();
        for step in &s.steps {
            m.apply(step);
        }
        m
    }

    fn truth(vmas: &str, pages: usize) -> Truth {
        let mut t = Truth { page_size: 4096, ..Truth::default() };
        let map = crate::check::oracle::MapPages { name: "m".into(), addr: 0x10000, pfns: vec![None; pages] };
        t.procs.push(crate::check::oracle::ProcPages { label: "p0".into(), pid: 1, maps: vec![map] });
        t.vmas.insert(("p0".into(), "m".into()), VmaSpan::parse_list(vmas).unwrap());
        t
    }

    const SPLIT: &str = "name: t\nabout: t\nsteps:\n  - mmap: { name: m, pages: 8, backing: anon, share: private }\n  - mprotect: { map: m, page: 2, pages: 2, prot: r }\n";

    #[test]
    fn a_split_the_model_makes_passes() {
        let t = truth("0-2:rw-p:10:0,2-4:r--p:12:0,4-8:rw-p:14:0", 8);
        assert_eq!(check(&model(SPLIT), &t, 2, "mprotect"), vec![]);
    }

    #[test]
    fn a_merge_across_a_model_boundary_is_found() {
        let t = truth("0-2:rw-p:10:0,2-8:r--p:12:0", 8);
        let found = check(&model(SPLIT), &t, 2, "mprotect");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].diff, Diff::Merged);
        assert_eq!(found[0].lo, 4);
        assert_eq!(found[0].title(), "after mprotect: one VMA spans two of the model's (a merge)");
    }

    #[test]
    fn wrong_permissions_and_unmapped_pages_are_found() {
        let t = truth("0-2:rw-p:10:0,2-4:rw-p:12:0,4-8:rw-p:14:0", 8);
        let found = check(&model(SPLIT), &t, 2, "mprotect");
        assert_eq!(found[0].diff, Diff::Perms { got: "rw-p".into(), want: "r--p".into() });
        let t = truth("0-2:rw-p:10:0,2-4:r--p:12:0,4-7:rw-p:14:0", 8);
        assert_eq!(check(&model(SPLIT), &t, 2, "mprotect")[0].diff, Diff::Mapped(false));
    }

    #[test]
    fn a_file_map_s_pgoff_follows_its_pages() {
        let yaml = "name: t\nabout: t\nsteps:\n  - mmap: { name: m, pages: 4, backing: memfd, share: shared }\n";
        let good = truth("0-4:rw-s:0:2a", 4);
        assert_eq!(check(&model(yaml), &good, 1, "mmap"), vec![]);
        let bad = truth("0-4:rw-s:3:2a", 4);
        let found = check(&model(yaml), &bad, 1, "mmap");
        assert_eq!(found[0].diff, Diff::Pgoff { got: 3, want: 0 });
        assert_eq!(found[0].to_string(), "step 1 (mmap): p0's VMA at m[0..4] has pgoff 0x3, model 0x0");
        let anon = truth("0-4:rw-s:0:0", 4);
        assert!(matches!(check(&model(yaml), &anon, 1, "mmap")[0].diff, Diff::Inode { .. }));
    }

    #[test]
    fn boundaries_of_a_map_placed_next_to_a_private_one_are_not_judged() {
        let yaml = "name: t\nabout: t\nsteps:\n  - mmap: { name: a, pages: 4, backing: anon, share: private }\n  - mmap: { name: m, pages: 8, backing: anon, share: private, at: { after: a } }\n  - mprotect: { map: m, page: 2, pages: 2, prot: r }\n";
        let t = truth("0-2:rw-p:10:0,2-4:r--p:12:0,4-6:rw-p:14:0,6-8:rw-p:16:0", 8);
        assert_eq!(check(&model(yaml), &t, 3, "mprotect"), vec![], "only what is certain");
        let t = truth("0-2:rw-p:10:0,2-4:rw-p:12:0,4-8:rw-p:14:0", 8);
        assert_eq!(check(&model(yaml), &t, 3, "mprotect").len(), 1, "permissions still are");
    }
}
