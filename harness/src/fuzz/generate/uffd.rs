//! The userfaultfd steps the generator makes (`Op::Uffd`): register a whole private
//! anon map, then fill (UFFDIO_COPY, ZEROPAGE), move (UFFDIO_MOVE) or write-protect
//! ranges of it. Reads and writes in a registered map may then get SIGBUS (a missing
//! page, a protected one): the step's result, which the model predicts.

use super::{writable, Gen, MapState, PageState};
use crate::scenario::{Access, Backing, Share, Step, Uffd, UffdMode, UffdMove, UffdRange, UffdTo, UffdWp};
use rand::seq::SliceRandom;
use rand::Rng;

/// Pages one userfaultfd step fills or moves at most.
const MAX_UFFD_PAGES: u64 = 8;

impl MapState {
    /// What userfaultfd takes here: private anon memory, one VMA (a move must lie
    /// inside one), unlocked (a move needs both sides alike), all writable.
    fn uffd_ready(&self) -> bool {
        self.backing == Backing::Anon
            && self.share == Share::Private
            && self.one_vma
            && !self.locked
            && self.all_present()
            && self.pages.iter().all(|p| writable(p.prot))
    }
}

impl Gen<'_> {
    pub(super) fn uffd(&mut self) -> Option<Step> {
        let fillable = |p: &PageState| p.present && writable(p.prot);
        let registered = self.pick_map(|m| m.uffd.is_some() && m.pages.iter().any(fillable));
        let Some((pi, map)) = registered.filter(|_| self.rng.gen_bool(0.85)) else {
            let (pi, map) = self.pick_map(|m| m.uffd.is_none() && m.uffd_ready())?;
            let mode = *[UffdMode::Missing, UffdMode::Wp, UffdMode::Both].choose(&mut self.rng).expect("not empty");
            self.map_mut(pi, &map).uffd = Some(mode);
            return Some(Step::Uffd(Uffd { proc: self.procs[pi].label.clone(), map, mode }));
        };
        let proc = self.procs[pi].label.clone();
        let (page, pages) = self.pick_range(pi, &map, fillable)?;
        let pages = pages.min(MAX_UFFD_PAGES);
        let dst = self.procs[pi].maps[&map].clone();
        let wp = dst.uffd.is_some_and(UffdMode::wp);
        Some(match self.rng.gen_range(0..4) {
            0 => Step::UffdCopy(Access { proc, map, page, pages, value: None }),
            1 => Step::UffdZeropage(UffdRange { proc, map, page, pages }),
            2 if wp => Step::UffdWp(UffdWp { proc, map, page, pages, on: self.rng.gen_bool(0.7) }),
            _ if dst.uffd_ready() => {
                // From a map of the same process, maybe the destination itself.
                let sources: Vec<String> = self.procs[pi]
                    .maps
                    .iter()
                    .filter(|(_, m)| m.uffd_ready() && m.pages.len() as u64 >= pages)
                    .map(|(n, _)| n.clone())
                    .collect();
                let from = sources.choose(&mut self.rng)?.clone();
                let from_len = self.procs[pi].maps[&from].pages.len() as u64;
                let src = self.rng.gen_range(0..=from_len - pages);
                if from == map && src < page + pages && page < src + pages {
                    return None;
                }
                Step::UffdMove(UffdMove { proc, map: from, page: src, pages, to: UffdTo { map, page } })
            }
            _ => Step::UffdCopy(Access { proc, map, page, pages, value: None }),
        })
    }
}
