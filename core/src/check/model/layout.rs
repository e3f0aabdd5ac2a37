//! A mapping's VMAs, page by page: where mprotect, madvise and munmap split it, where
//! the kernel merges pieces again, and which pieces have an anon_vma. Fork copies the
//! page tables only of VMAs with one, so the model needs this per VMA, not per map.

use crate::scenario::Prot;
use std::collections::BTreeMap;

/// VMA flags that madvise sets; changing one on part of a VMA splits it.
pub const DONTFORK: u8 = 1;
pub const WIPEONFORK: u8 = 2;
pub const HUGEPAGE: u8 = 4;
pub const NOHUGEPAGE: u8 = 8;
pub const MERGEABLE: u8 = 16;
/// VM_LOCKED (with or without VM_LOCKONFAULT): mlock splits VMAs like any flag.
pub const LOCKED: u8 = 32;
/// VM_ACCOUNT of a private anon map: mprotect_fixup() drops it from a piece made
/// read-only while it has no anon_vma and sets it again when it is made writable, so
/// such a piece no longer merges with a faulted read-only neighbour.
pub const ACCOUNT: u8 = 64;
/// A vm_pgoff taken from the VMA's address: copy_vma() gives a moved anonymous VMA
/// without an anon_vma `addr >> PAGE_SHIFT`. A private /dev/zero map's VMAs had their
/// file offset, so a piece moved unfaulted no longer merges with one that stayed.
pub const ADDR_PGOFF: u8 = 128;

/// Where kernels differ in how they merge VMAs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Semantics {
    /// 6.16+ (879bca0a2c4f, "mm/vma: fix incorrectly disallowed anonymous VMA merges"):
    /// a piece with an anon_vma may merge into a neighbour without one, unless the
    /// piece came through fork.
    pub merge_faulted_into_unfaulted: bool,
    /// Before 6.12, vma_merge() (mm/mmap.c) asks is_mergeable_anon_vma() with the
    /// neighbour's anon_vma chain, which an unfaulted neighbour has empty: a faulted
    /// piece does not merge into it. The model follows the 6.12 rules only, so where
    /// private VMAs begin and end is not judged there.
    pub old_vma_merge: bool,
}

impl Semantics {
    /// Whether `moving` may merge into `into` as far as their anon_vmas go
    /// (is_mergeable_anon_vma()): before 6.16 the one with an anon_vma must be the
    /// neighbour, and its chain must have one link.
    fn anon_mergeable(self, moving: Attrs, into: Attrs) -> bool {
        match (moving.anon, into.anon) {
            (None, None) => true,
            (Some(x), Some(y)) => x == y,
            (None, Some(_)) => !into.chained,
            (Some(_), None) => self.merge_faulted_into_unfaulted && !moving.chained,
        }
    }
}

/// What the VMA a page lies in is like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attrs {
    /// The VMA (unique in the model).
    pub vma: u64,
    pub prot: Prot,
    pub flags: u8,
    /// Which anon_vma the VMA has, if any.
    pub anon: Option<u64>,
    /// Its anon_vma chain has more than one link (it came through fork), so the kernel
    /// neither merges it with a neighbour that has no anon_vma nor lends that
    /// neighbour its anon_vma.
    pub chained: bool,
}

/// One entry per page of the mapping; `None` where it was unmapped.
#[derive(Debug, Clone)]
pub struct Layout(pub Vec<Option<Attrs>>);

impl Layout {
    pub fn new(pages: usize, vma: u64, flags: u8) -> Layout {
        Layout(vec![Some(Attrs { vma, prot: Prot::Rw, flags, anon: None, chained: false }); pages])
    }

    pub fn at(&self, i: usize) -> Option<Attrs> {
        self.0.get(i).copied().flatten()
    }

    /// The pages of the VMA page `i` lies in.
    fn run(&self, i: usize) -> std::ops::Range<usize> {
        let Some(a) = self.at(i) else { return i..i };
        let same = |j: usize| self.at(j).is_some_and(|b| b.vma == a.vma);
        let mut lo = i;
        while lo > 0 && same(lo - 1) {
            lo -= 1;
        }
        let mut hi = i + 1;
        while same(hi) {
            hi += 1;
        }
        lo..hi
    }

    /// Give every piece of a split VMA an id of its own.
    fn renumber(&mut self, fresh: &mut impl FnMut() -> u64) {
        let mut seen = std::collections::BTreeSet::new();
        let mut i = 0;
        while i < self.0.len() {
            let r = self.run(i);
            if r.is_empty() {
                i += 1;
                continue;
            }
            let id = self.at(i).map(|a| a.vma).unwrap_or(0);
            if !seen.insert(id) {
                let new = fresh();
                for a in self.0[r.clone()].iter_mut().flatten() {
                    a.vma = new;
                }
            }
            i = r.end;
        }
    }

    pub fn unmap(&mut self, range: std::ops::Range<usize>, fresh: &mut impl FnMut() -> u64) {
        for i in range {
            if let Some(p) = self.0.get_mut(i) {
                *p = None;
            }
        }
        self.renumber(fresh);
    }

    /// mremap to `pages`: the tail goes, or the last VMA grows.
    pub fn resize(&mut self, pages: usize) {
        let last = self.0.iter().rev().find_map(|a| *a);
        self.0.resize(pages, last);
    }

    /// Change the attributes of the mapped pages in `range` (mprotect, madvise): the
    /// VMAs split where the change begins and ends, and each changed piece, left to
    /// right, merges with a neighbour that is now alike, as vma_merge() does.
    pub fn change(
        &mut self,
        range: std::ops::Range<usize>,
        f: impl Fn(&mut Attrs),
        fresh: &mut impl FnMut() -> u64,
        sem: Semantics,
    ) {
        let end = range.end.min(self.0.len());
        let start = range.start.min(end);
        let mut new_ids = BTreeMap::new();
        let mut changed = vec![false; self.0.len()];
        for (page, changed) in self.0[start..end].iter_mut().zip(&mut changed[start..end]) {
            let Some(a) = page.as_mut() else { continue };
            let before = *a;
            f(a);
            if a.prot != before.prot || a.flags != before.flags {
                a.vma = *new_ids.entry(before.vma).or_insert_with(&mut *fresh);
                *changed = true;
            }
        }
        if new_ids.is_empty() {
            return;
        }
        self.renumber(fresh);
        self.merge(start..end, &changed, sem);
    }

    /// Each `changed` piece in `range`, left to right, merges with a neighbour that is
    /// alike, as vma_merge() does.
    fn merge(&mut self, range: std::ops::Range<usize>, changed: &[bool], sem: Semantics) {
        let (start, end) = (range.start, range.end);
        let mut i = start;
        while i < end {
            let r = self.run(i);
            if r.is_empty() || !changed[i] {
                i = r.end.max(i + 1);
                continue;
            }
            i = r.end;
            let Some(p) = self.at(r.start) else { continue };
            // vma_merge(): into the left neighbour if it can, and the right one too when
            // the two neighbours' anon_vmas agree; else into the right one alone. The
            // kernel changes VMAs left to right, so a right neighbour the same call
            // changes still has its old attributes here: it merges later, as the piece
            // that moves into this one.
            let can = |n: Option<Attrs>| {
                n.filter(|n| n.vma != p.vma && n.prot == p.prot && n.flags == p.flags && sem.anon_mergeable(p, *n))
            };
            let right_changes_later = changed.get(r.end).copied().unwrap_or(false);
            let left = can(r.start.checked_sub(1).and_then(|j| self.at(j)));
            let right = if right_changes_later { None } else { can(self.at(r.end)) };
            let (lo, hi, with) = match (left, right) {
                (Some(l), Some(n)) if l.anon.is_none() || n.anon.is_none() || l.anon == n.anon => {
                    (self.run(r.start - 1).start, self.run(r.end).end, [Some(l), Some(n)])
                }
                (Some(l), _) => (self.run(r.start - 1).start, r.end, [Some(l), None]),
                (None, Some(n)) => (r.start, self.run(r.end).end, [None, Some(n)]),
                (None, None) => continue,
            };
            let anon = with.iter().flatten().find_map(|n| n.anon).or(p.anon);
            let chained = p.chained || with.iter().flatten().any(|n| n.chained);
            let vma = with.iter().flatten().next().map(|n| n.vma).unwrap_or(p.vma);
            for j in lo..hi {
                self.0[j] = Some(Attrs { vma, anon, chained, ..p });
            }
        }
    }

    /// The VMAs of `range`, split off (moved away by mremap): each piece gets a new id,
    /// and keeps its flags and anon_vma.
    pub fn split_off(&self, range: std::ops::Range<usize>, fresh: &mut impl FnMut() -> u64) -> Layout {
        let mut ids = BTreeMap::new();
        let pages = self.0[range]
            .iter()
            .map(|a| a.map(|a| Attrs { vma: *ids.entry(a.vma).or_insert_with(&mut *fresh), ..a }))
            .collect();
        Layout(pages)
    }

    /// Put `piece`'s VMAs at page `at` (a range moved back): they merge with
    /// neighbours that are alike, as the kernel merges a moved VMA.
    pub fn put(&mut self, at: usize, piece: &Layout, sem: Semantics) {
        let end = (at + piece.0.len()).min(self.0.len());
        self.0[at..end].copy_from_slice(&piece.0[..end - at]);
        let changed: Vec<bool> = (0..self.0.len()).map(|i| (at..end).contains(&i)).collect();
        self.merge(at..end, &changed, sem);
    }

    /// anon_vma_prepare() for the VMA of page `i`: reuse an adjacent compatible VMA's
    /// anon_vma (same flags but for protection, a chain of one), else a new one.
    pub fn prepare_anon(&mut self, i: usize, fresh: &mut impl FnMut() -> u64) {
        let Some(a) = self.at(i) else { return };
        if a.anon.is_some() {
            return;
        }
        let r = self.run(i);
        let lend = |j: Option<usize>| {
            j.and_then(|j| self.at(j)).filter(|b| b.flags == a.flags && !b.chained).and_then(|b| b.anon)
        };
        let anon = lend(Some(r.end)).or_else(|| lend(r.start.checked_sub(1))).unwrap_or_else(fresh);
        for p in self.0[r].iter_mut().flatten() {
            p.anon = Some(anon);
        }
    }

    /// The child's layout after fork: no DONTFORK pieces; WIPEONFORK pieces without an
    /// anon_vma; every other piece with an anon_vma gets one of its own, chained to the
    /// parent's.
    pub fn forked(&self, fresh: &mut impl FnMut() -> u64) -> Layout {
        let mut ids = BTreeMap::new();
        let mut anons = BTreeMap::new();
        let pages = self
            .0
            .iter()
            .map(|a| {
                let a = (*a)?;
                if a.flags & DONTFORK != 0 {
                    return None;
                }
                let vma = *ids.entry(a.vma).or_insert_with(&mut *fresh);
                let anon = match a.anon {
                    Some(_) if a.flags & WIPEONFORK == 0 => Some(*anons.entry(a.vma).or_insert_with(&mut *fresh)),
                    _ => None,
                };
                // dup_mmap() clears VM_LOCKED in the child.
                Some(Attrs { vma, anon, chained: anon.is_some(), flags: a.flags & !LOCKED, ..a })
            })
            .collect();
        Layout(pages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> impl FnMut() -> u64 {
        let mut n = 100;
        move || {
            n += 1;
            n
        }
    }

    #[test]
    fn a_split_piece_has_no_anon_vma_until_written_and_merges_back() {
        let mut fresh = counter();
        let mut l = Layout::new(6, 1, 0);
        l.change(4..5, |a| a.prot = Prot::R, &mut fresh, Semantics::default());
        let vmas: Vec<u64> = l.0.iter().map(|a| a.unwrap().vma).collect();
        assert_eq!(vmas[0], vmas[3]);
        assert_ne!(vmas[3], vmas[4]);
        assert_ne!(vmas[4], vmas[5]);
        assert_ne!(vmas[0], vmas[5], "the pieces either side are VMAs of their own");
        l.prepare_anon(2, &mut fresh);
        assert!(l.at(0).unwrap().anon.is_some());
        assert!(l.at(5).unwrap().anon.is_none(), "a write elsewhere gives page 5's VMA no anon_vma");
        // Protection back to rw: all three pieces merge, and page 5 shares the anon_vma.
        l.change(4..5, |a| a.prot = Prot::Rw, &mut fresh, Semantics::default());
        assert_eq!(l.at(5).unwrap().anon, l.at(0).unwrap().anon);
        assert_eq!(l.at(5).unwrap().vma, l.at(0).unwrap().vma);
    }

    #[test]
    fn a_faulted_piece_merges_into_an_unfaulted_one_only_from_6_16() {
        // Seed 3, run 613: rx in the middle, a write on the left, then all rx.
        for (sem, merged) in [
            (Semantics::default(), false),
            (Semantics { merge_faulted_into_unfaulted: true, ..Semantics::default() }, true),
        ] {
            let mut fresh = counter();
            let mut l = Layout::new(4, 1, 0);
            l.change(2..3, |a| a.prot = Prot::Rx, &mut fresh, sem);
            l.prepare_anon(1, &mut fresh);
            l.change(0..4, |a| a.prot = Prot::Rx, &mut fresh, sem);
            assert_eq!(l.at(3).unwrap().anon.is_some(), merged, "{sem:?}");
            assert_eq!(l.at(2).unwrap().vma, l.at(3).unwrap().vma, "the unfaulted pieces merge");
        }
    }

    #[test]
    fn a_change_over_several_vmas_merges_each_into_its_left_as_it_goes() {
        // Seed 2027, run 818 on 6.12: [2,3) r unfaulted, [3,4) r faulted; madvise over
        // the whole map changes [2,3) first, while [3,4) still lacks the flag, then
        // [3,4), which may not merge into an unfaulted left neighbour before 6.16.
        for (sem, merged) in [
            (Semantics::default(), false),
            (Semantics { merge_faulted_into_unfaulted: true, ..Semantics::default() }, true),
        ] {
            let mut fresh = counter();
            let mut l = Layout::new(6, 1, 0);
            l.change(2..3, |a| a.prot = Prot::R, &mut fresh, sem);
            l.prepare_anon(5, &mut fresh);
            l.change(2..4, |a| a.prot = Prot::R, &mut fresh, sem);
            assert_eq!(l.at(2).unwrap().vma == l.at(3).unwrap().vma, merged, "{sem:?}: after mprotect");
            l.change(0..6, |a| a.flags |= WIPEONFORK, &mut fresh, sem);
            assert_eq!(l.at(2).unwrap().vma == l.at(3).unwrap().vma, merged, "{sem:?}");
        }
    }

    #[test]
    fn a_range_moved_away_and_back_merges_with_its_old_vma() {
        let mut fresh = counter();
        let mut l = Layout::new(6, 1, 0);
        l.prepare_anon(0, &mut fresh);
        let piece = l.split_off(2..4, &mut fresh);
        assert_ne!(piece.at(0).unwrap().vma, 1, "a piece moved away is a VMA of its own");
        assert_eq!(piece.at(0).unwrap().anon, l.at(0).unwrap().anon, "and keeps its anon_vma");
        l.unmap(2..4, &mut fresh);
        assert_ne!(l.at(0).unwrap().vma, l.at(5).unwrap().vma, "the hole splits the VMA");
        l.put(2, &piece, Semantics::default());
        let vmas: Vec<u64> = l.0.iter().map(|a| a.unwrap().vma).collect();
        assert!(vmas.iter().all(|v| *v == vmas[0]), "back in place, all three merge: {vmas:?}");
    }

    #[test]
    fn fork_drops_dontfork_and_wipes_wipeonfork() {
        let mut fresh = counter();
        let mut l = Layout::new(3, 1, 0);
        l.prepare_anon(0, &mut fresh);
        l.change(1..2, |a| a.flags |= DONTFORK, &mut fresh, Semantics::default());
        l.change(2..3, |a| a.flags |= WIPEONFORK, &mut fresh, Semantics::default());
        let c = l.forked(&mut fresh);
        assert!(c.at(0).unwrap().anon.is_some() && c.at(0).unwrap().chained);
        assert!(c.at(1).is_none());
        assert!(c.at(2).unwrap().anon.is_none());
    }
}
