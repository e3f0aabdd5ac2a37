//! hugetlb maps in the model: a fault or a COW takes a whole huge page (the default
//! size, the PMD's), never the zero page and never fault-around.
//!
//! - A shared map's pages are its file's: every process that touches the huge page maps
//!   the same one, and fork copies no PTE of it (the VMA has no anon_vma).
//! - A private map's fault, read or write, allocates a zeroed huge page of its own: the
//!   file is fresh, so its pages are never in the page cache, and hugetlb has no zero
//!   page. Fork shares it (copy_hugetlb_page_range) once the VMA has an anon_vma.
//! - A write to a private huge page that another process maps copies the whole huge page
//!   (hugetlb_wp), with the bytes of every page of it; the last mapper reuses it.

use super::*;

impl Model {
    /// A read (`bytes` is `None`) or write of `page` of a hugetlb map. `false` when the
    /// map is not hugetlb memory, so the caller touches it as any other.
    pub(super) fn touch_hugetlb(&mut self, proc: &str, name: &str, page: u64, bytes: Option<&Bytes>) -> bool {
        let huge = self.huge_pages;
        let Some(m) = self.procs.get(proc).and_then(|maps| maps.get(name)) else { return false };
        if !m.backing.hugetlb() || huge == 0 {
            return false;
        }
        let first = page / huge * huge;
        let range = first..(first + huge).min(m.pages.len() as u64);
        let current = m.pages.get(page as usize).copied().flatten();
        let (share, object, pgoff) = (m.share, m.object, m.pgoff);
        let (frames, why): (Vec<Frame>, Reason) = match (share, current, bytes.is_some()) {
            (Share::Shared, _, _) => {
                let obj = object.unwrap_or(0);
                (range.clone().map(|p| Frame::Object(obj, pgoff + p)).collect(), Reason::Shared)
            }
            (Share::Private, Some(Frame::Anon(id)), true) if self.holders(Frame::Anon(id)) > 1 => {
                let old: Vec<Option<Frame>> = range.clone().map(|p| m.pages[p as usize]).collect();
                let new: Vec<Frame> = range.clone().map(|_| Frame::Anon(self.fresh())).collect();
                for (o, n) in old.iter().zip(&new) {
                    if let Some(b) = o.and_then(|o| self.contents.get(&o).cloned()) {
                        self.contents.insert(*n, b);
                    }
                }
                (new, Reason::Cow)
            }
            (Share::Private, Some(Frame::Anon(_)), true) => (Vec::new(), Reason::Reuse),
            (Share::Private, Some(_), _) => (Vec::new(), Reason::Read),
            (Share::Private, None, _) => {
                (range.clone().map(|_| Frame::Anon(self.fresh())).collect(), Reason::HugetlbFault)
            }
        };
        let mut fresh = self.ids();
        let m = self.procs.get_mut(proc).and_then(|maps| maps.get_mut(name)).expect("checked above");
        for (p, f) in range.clone().zip(&frames) {
            if m.pages[p as usize].is_none() || why == Reason::Cow {
                m.pages[p as usize] = Some(*f);
            }
            if share == Share::Private {
                m.layout.prepare_anon(p as usize, &mut fresh);
            }
        }
        self.next_id = fresh();
        for (p, f) in range.clone().zip(&frames) {
            if let Frame::Anon(id) = f {
                self.origins.entry(*id).or_insert_with(|| proc.to_string());
            }
            self.note(proc, name, p, why);
        }
        if frames.is_empty() {
            self.note(proc, name, page, why);
        }
        if let (Some(b), Some(f)) = (bytes, self.procs[proc][name].pages[page as usize]) {
            self.contents.insert(f, b.clone());
        }
        true
    }
}
