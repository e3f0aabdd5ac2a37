//! The writeback steps the generator makes (`Op::Writeback`), and its motif: a shared
//! ext4 page written back while two processes map it, then read back from disk.

use super::{Gen, PageState};
use crate::scenario::{Access, Advice, Backing, DropCaches, Fsync, Madvise, Mmap, Msync, Share, Step, SyncAll};
use rand::seq::SliceRandom;
use rand::Rng;

impl Gen<'_> {
    /// msync (mostly MS_SYNC) of a range, fsync of a map with a file, sync or drop_caches.
    pub(super) fn writeback(&mut self) -> Option<Step> {
        let present = |p: &PageState| p.present;
        match self.rng.gen_range(0..4) {
            0 => {
                let (pi, map) = self.pick_map(|m| m.pages.iter().any(|p| p.present))?;
                let (page, pages) = self.pick_range(pi, &map, present)?;
                let proc = self.procs[pi].label.clone();
                let async_ = self.rng.gen_bool(0.2);
                Some(Step::Msync(Msync { proc, map, page: Some(page), pages: Some(pages), async_ }))
            }
            1 => {
                let file = |b: Backing| matches!(b, Backing::Memfd | Backing::File | Backing::Ext4);
                let (pi, map) = self.pick_map(|m| file(m.backing) && m.pages.iter().any(|p| p.present))?;
                let (page, _) = self.pick_range(pi, &map, present)?;
                Some(Step::Fsync(Fsync { proc: self.procs[pi].label.clone(), map, page: Some(page) }))
            }
            2 => Some(Step::Sync(SyncAll {})),
            _ => Some(Step::DropCaches(DropCaches {})),
        }
    }

    /// A shared ext4 map written in one process, forked, one page written in the other,
    /// written back (two dirty mappers of that page), written again in the other,
    /// synced, unmapped in both, dropped from the page cache and read back: writeback
    /// cleans a page two processes map, and the read comes from disk.
    pub(super) fn writeback_motif(&mut self, out: &mut Vec<Step>, pi: usize, pages: u64) {
        let name = format!("m{}", self.next_map);
        let proc = self.procs[pi].label.clone();
        let mmap = Mmap {
            proc: proc.clone(),
            name: name.clone(),
            pages,
            backing: Backing::Ext4,
            share: Share::Shared,
            huge: None,
            locked: false,
            at: None,
            align: None,
        };
        self.play(out, Step::Mmap(mmap));
        let access = |proc: &str, page: u64, pages: u64| Access {
            proc: proc.into(),
            map: name.clone(),
            page,
            pages,
            value: None,
        };
        self.play(out, Step::Write(access(&proc, 0, pages)));
        let child = self.motif_fork(out, pi);
        let child = self.procs[child].label.clone();
        // Both processes hold a dirty PTE of `page` at the msync, so folio_mkclean()
        // must clean two mappers of it, not one.
        let page = self.rng.gen_range(0..pages);
        self.play(out, Step::Write(access(&child, page, 1)));
        let msync = Msync { proc: proc.clone(), map: name.clone(), page: None, pages: None, async_: false };
        self.play(out, Step::Msync(msync));
        self.play(out, Step::Write(access(&child, page, 1)));
        self.play(out, Step::Sync(SyncAll {}));
        for who in [&proc, &child] {
            let advice = Advice::Dontneed;
            self.play(
                out,
                Step::Madvise(Madvise { proc: who.clone(), map: name.clone(), page: 0, pages: Some(pages), advice }),
            );
        }
        self.play(out, Step::DropCaches(DropCaches {}));
        let reader = [&proc, &child].choose(&mut self.rng).map(|s| s.to_string()).expect("two");
        self.play(out, Step::Read(access(&reader, 0, pages)));
    }
}
