//! userfaultfd: registrations, write-protected PTEs, and the pages UFFDIO_COPY,
//! ZEROPAGE and MOVE put in place. The worker's userfaultfd has UFFD_FEATURE_SIGBUS,
//! so a fault handle_userfault() (fs/userfaultfd.c) would report is SIGBUS instead.

use super::layout::LOCKED;
use super::{Attrs, Bytes, Frame, Model, Reason, Slot};
use crate::scenario::request::write_value;
use crate::scenario::{Prot, Step, UffdMode};

pub const EEXIST: i32 = 17;
pub const ENOENT: i32 = 2;
pub const EBUSY: i32 = 16;
pub const EINVAL: i32 = 22;

/// What a UFFDIO_COPY, ZEROPAGE or MOVE did: the pages it filled or moved before it
/// stopped, and the errno it stopped with (`None`: it did them all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UffdResult {
    pub done: u64,
    pub errno: Option<i32>,
}

impl Model {
    fn registered(&self, proc: &str, map: &str) -> Option<UffdMode> {
        self.uffd.get(&(proc.to_string(), map.to_string())).copied()
    }

    /// Whether an access to a slot faults into handle_userfault(): a fault on a page
    /// nothing maps in a missing-mode map (do_anonymous_page() asks
    /// userfaultfd_missing() for reads and writes alike), or a write to a page
    /// `uffd_wp` protected in a wp-mode map (do_wp_page(): userfaultfd_pte_wp()).
    /// UFFDIO_WRITEPROTECT marks present PTEs only: an anon map without
    /// UFFD_FEATURE_WP_UNPOPULATED gets no marker where nothing is mapped.
    pub(super) fn uffd_faults(&self, slot: &Slot, write: bool) -> bool {
        let Some(mode) = self.registered(&slot.0, &slot.1) else { return false };
        match self.frame(&slot.0, &slot.1, slot.2) {
            None => mode.missing(),
            Some(_) => write && mode.wp() && self.uffd_wp.contains(slot),
        }
    }

    /// Whether the model cannot say how a userfaultfd step or an access to a registered
    /// map goes: a slot it cannot predict (THP, mTHP, KSM, swap) may be mapped or not,
    /// large or shared.
    pub fn uffd_unsure(&self, proc: &str, map: &str, page: u64, count: u64) -> bool {
        (page..page + count).any(|p| self.unpredictable.contains_key(&(proc.to_string(), map.to_string(), p)))
    }

    /// What a UFFDIO_COPY, ZEROPAGE or MOVE step will do; `None` for other steps.
    /// mfill_atomic_install_pte() refuses a present destination (-EEXIST);
    /// move_pages_ptes() refuses a present destination (-EEXIST), a source hole
    /// (-ENOENT, without UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES) and a source folio that is
    /// not PageAnonExclusive or maybe pinned (-EBUSY); the zero page moves as it is.
    pub fn uffd_result(&self, step: &Step) -> Option<UffdResult> {
        if let Step::UffdMove(x) = step {
            if !self.movable_areas(&x.proc, &x.map, x.page, &x.to.map, x.to.page, x.pages) {
                return Some(UffdResult { done: 0, errno: Some(EINVAL) });
            }
        }
        let (proc, map, page, pages) = match step {
            Step::UffdCopy(a) => (&a.proc, &a.map, a.page, a.pages),
            Step::UffdZeropage(x) => (&x.proc, &x.map, x.page, x.pages),
            Step::UffdMove(x) => (&x.proc, &x.to.map, x.to.page, x.pages),
            _ => return None,
        };
        for i in 0..pages {
            let stop = if self.frame(proc, map, page + i).is_some() {
                Some(EEXIST)
            } else if let Step::UffdMove(x) = step {
                match self.frame(&x.proc, &x.map, x.page + i) {
                    None => Some(ENOENT),
                    Some(f @ Frame::Anon(id)) if self.not_exclusive.contains(&id) || self.pinned(f) => Some(EBUSY),
                    Some(Frame::Object(..)) => Some(EBUSY),
                    Some(_) => None,
                }
            } else {
                None
            };
            if stop.is_some() {
                return Some(UffdResult { done: i, errno: stop });
            }
        }
        Some(UffdResult { done: pages, errno: None })
    }

    /// move_pages() refuses (-EINVAL) a source or destination range that is not
    /// inside one VMA, and validate_move_areas() two VMAs whose protection or
    /// VM_LOCKED differ, or a source that is not writable.
    fn movable_areas(&self, proc: &str, src: &str, from: u64, dst: &str, to: u64, pages: u64) -> bool {
        let one_vma = |map: &str, first: u64| {
            let layout = &self.procs.get(proc)?.get(map)?.layout;
            let a = layout.at(first as usize)?;
            (first..first + pages).all(|p| layout.at(p as usize).is_some_and(|b| b.vma == a.vma)).then_some(a)
        };
        let (Some(s), Some(d)) = (one_vma(src, from), one_vma(dst, to)) else { return false };
        let locked = |a: Attrs| a.flags & LOCKED != 0;
        s.prot == d.prot && locked(s) == locked(d) && matches!(s.prot, Prot::Rw | Prot::Rwx)
    }

    pub(super) fn apply_uffd(&mut self, step: &Step) {
        let done = self.uffd_result(step).map_or(0, |r| r.done);
        match step {
            Step::Uffd(x) => {
                self.uffd.insert((x.proc.clone(), x.map.clone()), x.mode);
            }
            // mfill_atomic_pte_copy(): a new folio with the bytes, mapped exclusive
            // (folio_add_new_anon_rmap(RMAP_EXCLUSIVE)).
            Step::UffdCopy(a) => {
                let value = write_value(a, self.step);
                for p in a.page..a.page + done {
                    let id = self.fresh();
                    let bytes = Bytes {
                        value,
                        tag: a.value.is_none().then_some(p),
                        may_be_zero: false,
                        rest_may_be_zero: false,
                        by: Some((a.proc.clone(), self.step)),
                    };
                    self.contents.insert(Frame::Anon(id), bytes);
                    self.origins.insert(id, a.proc.clone());
                    self.place(&a.proc, &a.map, p, Frame::Anon(id), Reason::UffdCopy);
                }
            }
            // mfill_atomic_pte_zeropage(): the zero page, read-only.
            Step::UffdZeropage(x) => {
                for p in x.page..x.page + done {
                    self.place(&x.proc, &x.map, p, Frame::Zero, Reason::UffdZeropage);
                }
            }
            // move_present_pte(): the folio leaves the source PTE for the destination's,
            // its anon_vma and index follow (folio_move_anon_rmap()).
            Step::UffdMove(x) => {
                for i in 0..done {
                    let Some(frame) = self.frame(&x.proc, &x.map, x.page + i) else { continue };
                    if let Some(m) = self.procs.get_mut(&x.proc).and_then(|maps| maps.get_mut(&x.map)) {
                        m.pages[(x.page + i) as usize] = None;
                    }
                    let wp = self.uffd_wp.remove(&(x.proc.clone(), x.map.clone(), x.page + i));
                    self.place(&x.proc, &x.to.map, x.to.page + i, frame, Reason::UffdMove);
                    // move_present_pte() keeps the PTE's uffd-wp bit.
                    if wp {
                        self.uffd_wp.insert((x.proc.clone(), x.to.map.clone(), x.to.page + i));
                    }
                }
            }
            // uffd_wp_range(): present PTEs get (or lose) the uffd-wp bit.
            Step::UffdWp(x) => {
                for p in x.page..x.page + x.pages {
                    let slot = (x.proc.clone(), x.map.clone(), p);
                    if !x.on {
                        self.uffd_wp.remove(&slot);
                    } else if self.frame(&x.proc, &x.map, p).is_some() {
                        self.uffd_wp.insert(slot);
                    }
                }
            }
            _ => {}
        }
    }

    /// A frame into a slot that held nothing, the VMA given an anon_vma first
    /// (mfill_atomic() and move_pages() call anon_vma_prepare()).
    fn place(&mut self, proc: &str, map: &str, page: u64, frame: Frame, why: Reason) {
        let mut fresh = self.ids();
        if let Some(m) = self.procs.get_mut(proc).and_then(|maps| maps.get_mut(map)) {
            m.layout.prepare_anon(page as usize, &mut fresh);
            m.pages[page as usize] = Some(frame);
        }
        self.next_id = fresh();
        self.note(proc, map, page, why);
    }

    /// After any step: a uffd-wp bit lives on a present PTE (an anon map gets no marker
    /// when one is zapped: pte_install_uffd_wp_if_needed()), a registration on a map.
    pub(super) fn uffd_forget(&mut self) {
        let wp = std::mem::take(&mut self.uffd_wp);
        self.uffd_wp = wp.into_iter().filter(|s| self.frame(&s.0, &s.1, s.2).is_some()).collect();
        let reg = std::mem::take(&mut self.uffd);
        self.uffd =
            reg.into_iter().filter(|((p, m), _)| self.procs.get(p).is_some_and(|maps| maps.contains_key(m))).collect();
    }

    /// fork shares its anon pages: none is PageAnonExclusive any more, in either process,
    /// until a write reuses it (wp_can_reuse_anon_folio()).
    pub(super) fn forked_shares(&mut self, child: &str) {
        let ids: Vec<u64> = self
            .procs
            .get(child)
            .into_iter()
            .flat_map(|maps| maps.values())
            .flat_map(|m| m.pages.iter().flatten())
            .filter_map(|f| if let Frame::Anon(id) = f { Some(*id) } else { None })
            .collect();
        self.not_exclusive.extend(ids);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse;
    use std::path::Path;

    /// The model after all steps but the last, and the last step.
    fn before_last(yaml: &str) -> (Model, Step) {
        let s = parse(Path::new("t.yaml"), &format!("name: t\nabout: t\n{yaml}")).unwrap();
        let (last, rest) = s.steps.split_last().unwrap();
        let mut m = Model::new();
        for step in rest {
            m.apply(step);
        }
        (m, last.clone())
    }

    const MAPS: &str = "steps:
  - mmap: { name: src, pages: 4, backing: anon, share: private }
  - mmap: { name: dst, pages: 4, backing: anon, share: private }
  - uffd: { map: dst, mode: missing }
";

    #[test]
    fn a_missing_page_of_a_registered_map_faults_for_reads_and_writes() {
        let (mut m, copy) = before_last(&format!("{MAPS}  - uffd_copy: {{ map: dst, page: 0, pages: 2 }}\n"));
        assert_eq!(m.access_stop("p0", "dst", 0, 4, true), Some(0), "nothing mapped yet");
        m.apply(&copy);
        assert_eq!(m.access_stop("p0", "dst", 0, 4, false), Some(2));
        assert_eq!(m.access_stop("p0", "dst", 0, 2, true), None);
        assert_eq!(m.access_stop("p0", "src", 0, 4, true), None, "src is not registered");
        assert_eq!(m.why(&("p0".into(), "dst".into(), 1)).reason, Reason::UffdCopy);
    }

    #[test]
    fn a_fork_child_has_no_registration() {
        let (mut m, fork) = before_last(&format!("{MAPS}  - fork: {{ child: c1 }}\n"));
        m.apply(&fork);
        assert_eq!(m.access_stop("p0", "dst", 0, 1, false), Some(0));
        assert_eq!(m.access_stop("c1", "dst", 0, 1, false), None);
    }

    #[test]
    fn copy_and_zeropage_stop_at_a_mapped_page_with_eexist() {
        let yaml = format!(
            "{MAPS}  - uffd_zeropage: {{ map: dst, page: 1 }}\n  - uffd_copy: {{ map: dst, page: 0, pages: 3 }}\n"
        );
        let (mut m, copy) = before_last(&yaml);
        assert_eq!(m.uffd_result(&copy), Some(UffdResult { done: 1, errno: Some(EEXIST) }));
        m.apply(&copy);
        assert_eq!(m.frame("p0", "dst", 0).map(|f| matches!(f, Frame::Anon(_))), Some(true));
        assert_eq!(m.frame("p0", "dst", 1), Some(Frame::Zero));
        assert_eq!(m.frame("p0", "dst", 2), None, "not copied after the stop");
    }

    #[test]
    fn move_refuses_a_page_fork_shared_until_a_write_makes_it_exclusive() {
        let head = format!("{MAPS}  - write: {{ map: src, page: 0, pages: 2 }}\n  - fork: {{ child: c1 }}\n");
        let (m, mv) =
            before_last(&format!("{head}  - uffd_move: {{ map: src, page: 0, to: {{ map: dst, page: 0 }} }}\n"));
        assert_eq!(m.uffd_result(&mv), Some(UffdResult { done: 0, errno: Some(EBUSY) }));
        // The child's COW copy leaves the parent the only mapper, not an exclusive one.
        let cow = format!("{head}  - write: {{ proc: c1, map: src, page: 0 }}\n");
        let (m, mv) =
            before_last(&format!("{cow}  - uffd_move: {{ map: src, page: 0, to: {{ map: dst, page: 0 }} }}\n"));
        assert_eq!(m.uffd_result(&mv).unwrap().errno, Some(EBUSY));
        let reuse = format!("{cow}  - write: {{ map: src, page: 0 }}\n");
        let (mut m, mv) = before_last(&format!(
            "{reuse}  - uffd_move: {{ map: src, page: 0, pages: 2, to: {{ map: dst, page: 1 }} }}\n"
        ));
        assert_eq!(m.uffd_result(&mv), Some(UffdResult { done: 1, errno: Some(EBUSY) }));
        let frame = m.frame("p0", "src", 0);
        let bytes = m.contents("p0", "src", 0).cloned();
        m.apply(&mv);
        assert_eq!(m.frame("p0", "dst", 1), frame, "the destination maps the source's folio");
        assert_eq!(m.contents("p0", "dst", 1).cloned(), bytes, "with its bytes");
        assert_eq!(m.frame("p0", "src", 0), None);
        assert!(m.frame("p0", "src", 1).is_some(), "the shared page stays");
    }

    #[test]
    fn move_stops_at_a_source_hole_and_a_mapped_destination() {
        let (m, mv) =
            before_last(&format!("{MAPS}  - uffd_move: {{ map: src, page: 0, to: {{ map: dst, page: 0 }} }}\n"));
        assert_eq!(m.uffd_result(&mv).unwrap().errno, Some(ENOENT));
        let yaml = format!(
            "{MAPS}  - write: {{ map: src, page: 0 }}\n  - uffd_zeropage: {{ map: dst, page: 0 }}\n  - uffd_move: {{ map: src, page: 0, to: {{ map: dst, page: 0 }} }}\n"
        );
        let (m, mv) = before_last(&yaml);
        assert_eq!(m.uffd_result(&mv).unwrap().errno, Some(EEXIST));
    }

    #[test]
    fn a_write_protected_page_refuses_writes_not_reads_and_not_in_the_child() {
        let yaml = "steps:
  - mmap: { name: m, pages: 4, backing: anon, share: private }
  - write: { map: m, page: 0, pages: 2 }
  - uffd: { map: m, mode: wp }
  - uffd_wp: { map: m, page: 0, pages: 4, on: true }
  - fork: { child: c1 }
";
        let (mut m, fork) = before_last(yaml);
        m.apply(&fork);
        assert_eq!(m.access_stop("p0", "m", 0, 4, false), None, "reads are fine");
        assert_eq!(m.access_stop("p0", "m", 0, 4, true), Some(0));
        assert_eq!(m.access_stop("p0", "m", 2, 2, true), None, "no marker where nothing was mapped");
        assert_eq!(m.access_stop("c1", "m", 0, 2, true), None, "the child's PTEs lose the bit");
        let (mut m, off) = before_last(&format!("{yaml}  - uffd_wp: {{ map: m, page: 0, on: false }}\n"));
        m.apply(&off);
        assert_eq!(m.access_stop("p0", "m", 0, 4, true), Some(1));
    }

    #[test]
    fn dontneed_drops_the_wp_bit_and_leaves_the_page_missing() {
        let yaml = "steps:
  - mmap: { name: m, pages: 2, backing: anon, share: private }
  - write: { map: m, page: 0, pages: 2 }
  - uffd: { map: m, mode: both }
  - uffd_wp: { map: m, page: 0, pages: 2, on: true }
  - madvise: { map: m, page: 0, pages: 1, advice: dontneed }
";
        let (mut m, dontneed) = before_last(yaml);
        m.apply(&dontneed);
        assert!(!m.uffd_wp.contains(&("p0".into(), "m".into(), 0)));
        assert_eq!(m.access_stop("p0", "m", 0, 1, false), Some(0), "now missing");
        assert_eq!(m.access_stop("p0", "m", 1, 1, true), Some(1), "still protected");
    }
}
