//! hugetlb maps in the world: what a step may do to one (whole huge pages of the
//! default size, the PMD size; no THP, KSM or mremap steps; migration moves a whole
//! huge page, wherever in it the range begins), and the pool
//! budget: the guest reserves [`HUGETLB_POOL`] huge pages at boot, and no scenario may
//! need more, across forks too.
//!
//! The budget is a bound the kernel cannot exceed, not a prediction: a private map
//! reserves its huge pages at mmap, a fork's copy may COW each of them once, and a
//! shared map's file holds its pages (and its reservation) while any map of it lives.
//! So the pages a scenario may have in use or reserved are at most the huge pages of
//! every live private map plus those of every live shared file.

use super::*;

/// Huge pages the guest agent reserves at boot (guest/agent/agent.h).
pub const HUGETLB_POOL: u64 = ops::HUGETLB_POOL;

/// A map of hugetlb memory: MAP_HUGETLB or a file on hugetlbfs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HugeMap {
    pub shared: bool,
    /// The file (or, private, the map) it was made as: fork copies share it.
    pub object: u64,
}

impl Backing {
    /// Whether a map of this backing is hugetlb memory.
    pub fn hugetlb(self) -> bool {
        matches!(self, Backing::Hugetlb | Backing::Hugetlbfs)
    }
}

impl World {
    /// Why `step` cannot be played on the hugetlb map it names, if it names one.
    pub(super) fn hugetlb_refusal(&self, step: &Step, out: &mut Vec<(&'static str, String)>) {
        let huge = self.huge_pages;
        if let Step::Mmap(m) = step {
            if !m.backing.hugetlb() {
                return;
            }
            if m.pages % huge != 0 {
                out.push((
                    "pages",
                    format!("a hugetlb map is whole huge pages: {} is not a multiple of pmd ({huge} pages)", m.pages),
                ));
            }
            if m.huge.is_some() {
                out.push(("huge", "huge: is THP advice; a hugetlb map is huge pages already".into()));
            }
            if m.locked {
                out.push(("locked", "MAP_LOCKED on a hugetlb map is not modelled".into()));
            }
            if m.at.is_some() {
                out.push(("at", "a hugetlb map starts on a huge page: it cannot be placed with at:".into()));
            }
            if m.align.is_some() {
                out.push(("align", "a hugetlb map starts on a huge page: it cannot be aligned".into()));
            }
            return;
        }
        if let Step::Mremap(x) = step {
            if let Some(Ok(Anchor::Over(target, _))) = x.to.as_ref().map(Place::anchor) {
                if self.map(&x.proc, target).is_some_and(|m| m.hugetlb.is_some()) {
                    out.push(("to.over", format!("'{target}' is a hugetlb map: mremap cannot apply to it")));
                }
            }
        }
        let (Some(proc), Some(name)) = (step.proc(), step.map()) else { return };
        let Some(m) = self.map(proc, name).filter(|m| m.hugetlb.is_some()) else { return };
        let refuse = |what: &str| format!("'{name}' is a hugetlb map: {what} cannot apply to it");
        let aligned = || {
            let (page, count) = step.pages_in(m.pages()).unwrap_or((0, 0));
            page % huge == 0 && count % huge == 0
        };
        let whole = "on a hugetlb map takes whole huge pages: page and pages must be multiples of pmd";
        match step {
            Step::Munmap(_) | Step::Mprotect(_) if !aligned() => out.push(("page", format!("{} {whole}", step.op()))),
            Step::Madvise(x) if !matches!(x.advice, Advice::Dontfork | Advice::Dofork) => {
                out.push(("advice", refuse(&format!("madvise {}", x.advice.wire()))))
            }
            Step::Madvise(_) if !aligned() => out.push(("page", format!("madvise {whole}"))),
            Step::Mremap(_) | Step::Split(_) | Step::Mlock(_) | Step::Munlock(_) => {
                out.push(("map", refuse(step.op())))
            }
            _ => {}
        }
    }

    /// The most huge pages the live maps can have in use or reserved (see the top).
    pub fn hugetlb_footprint(&self) -> u64 {
        let huge = self.huge_pages;
        let mut files = BTreeMap::new();
        let mut private = 0;
        for m in self.live.values().flat_map(BTreeMap::values) {
            match m.hugetlb {
                Some(h) if h.shared => {
                    files.insert(h.object, m.pages() / huge);
                }
                Some(_) => {
                    private += m.present.chunks(huge as usize).filter(|c| c.iter().any(|p| *p)).count() as u64;
                }
                None => {}
            }
        }
        private + files.values().sum::<u64>()
    }

    /// After a step that made hugetlb maps (mmap, fork): the pool must hold them.
    pub(super) fn hugetlb_budget(&self, key: &'static str, out: &mut Vec<(&'static str, String)>) {
        let need = self.hugetlb_footprint();
        if need > HUGETLB_POOL {
            out.push((
                key,
                format!(
                    "the live hugetlb maps may need {need} huge pages (a fork's copy may COW each), \
                     more than the {HUGETLB_POOL} the guest reserves"
                ),
            ));
        }
    }
}
