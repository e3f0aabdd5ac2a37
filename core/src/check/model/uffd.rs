//! userfaultfd: registrations, write-protected PTEs, and the pages UFFDIO_COPY,
//! ZEROPAGE and MOVE put in place. The worker's userfaultfd has UFFD_FEATURE_SIGBUS,
//! so a fault handle_userfault() (fs/userfaultfd.c) would report is SIGBUS instead.

use super::{Bytes, Frame, Model, Reason, Slot};
use crate::scenario::request::write_value;
use crate::scenario::{Step, UffdMode};

pub const EEXIST: i32 = 17;
pub const ENOENT: i32 = 2;
pub const EBUSY: i32 = 16;

/// What a UFFDIO_COPY, ZEROPAGE or MOVE did: the pages it filled or moved before it
/// stopped, and the errno it stopped with (`None`: it did them all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UffdResult {
    pub done: u64,
    pub errno: Option<i32>,
}

impl std::fmt::Display for UffdResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.errno {
            None => write!(f, "{} page(s)", self.done),
            Some(e) => write!(f, "{} page(s), then {}", self.done, crate::check::problem::Errno(e).name()),
        }
    }
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
