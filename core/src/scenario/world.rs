//! The symbolic world a scenario's steps make: which processes live and which ever
//! lived, and the named maps of each with their size and holes. [`World::apply`] is the
//! one place that knows each step's effect on names, processes and sizes, and its
//! limits; the validator, the generator and the runner all play steps through it.

use super::*;
use crate::ops;
use std::collections::{BTreeMap, BTreeSet};

mod hugetlb;
mod uffd;
pub use hugetlb::{HugeMap, HUGETLB_POOL};

/// No mapping may be larger than this many pages (64 MiB on 16k kernels, two THPs);
/// it also keeps one pagemap reply line under the protocol's 64 KiB.
pub const MAX_PAGES: u64 = 4096;
/// No scenario may have more steps than this.
pub const MAX_STEPS: usize = 10_000;
/// The fork cap, the one rule for processes: a scenario makes at most this many
/// processes in all, p0 and the exited ones included (a label is never used twice).
/// So at most this many live at once, which the agent's table holds.
pub const MAX_PROCS: usize = 64;
/// Named maps per process.
pub const MAX_MAPS: usize = 64;
/// A `reclaim` step asks for at most this many pages, and for this many without
/// `pages`: more than any guest has, so reclaim takes all it can (every page the world
/// could map).
pub const MAX_RECLAIM_PAGES: u64 = MAX_PROCS as u64 * MAX_MAPS as u64 * MAX_PAGES;
/// A `pin` or `remote` step reaches at most this many pages (a vmsplice pipe holds one
/// buffer per page).
pub const MAX_PIN_PAGES: u64 = 64;
/// Pins of one kind a process holds at once (each an io_uring or a pipe of its own).
pub const MAX_PINS: usize = 8;

const _: () = assert!(MAX_PROCS <= ops::AGENT_MAX_PROCS);
const _: () = assert!(MAX_MAPS <= ops::AGENT_MAX_MAPS);
const _: () = assert!(MAX_PAGES <= ops::MAX_MAP_PAGES && MAX_PAGES <= ops::MAX_IO_PAGES);

/// One named map of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Map {
    /// Whether each page is still mapped (munmap can punch holes).
    present: Vec<bool>,
    /// MADV_DONTFORK: a fork leaves it behind.
    dontfork: bool,
    /// A range moved out of another map (`mremap ... as:`): that map, and the pages
    /// it came from, for `to: { back: true }`.
    origin: Option<(String, u64, u64)>,
    /// Where it lies as far as the steps say: pages from the start of a group of maps
    /// placed relative to each other (a fresh map starts a group of its own).
    spot: Spot,
    /// It maps a file the steps can truncate and punch: a memfd or a file.
    file: bool,
    /// MAP_SHARED (MADV_REMOVE needs it).
    shared: bool,
    /// Hugetlb memory: its pages come from the pool a huge page at a time.
    hugetlb: Option<HugeMap>,
    /// A file is behind it that fsync can name (memfd, file, ext4).
    synced_file: bool,
    /// Private anonymous memory (backing anon): what userfaultfd registers here.
    anon_private: bool,
    /// Registered with the process's userfaultfd (fork does not pass it on).
    uffd: Option<UffdMode>,
}

/// A map's place: `offset` pages from the start of group `group`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Spot {
    group: u64,
    offset: i64,
}

impl Map {
    /// Its size in pages, holes included.
    pub fn pages(&self) -> u64 {
        self.present.len() as u64
    }

    /// Whether no page of it was unmapped.
    pub fn whole(&self) -> bool {
        self.present.iter().all(|p| *p)
    }

    /// The map and pages a range moved out with `as:` came from.
    pub fn origin(&self) -> Option<(&str, u64, u64)> {
        self.origin.as_ref().map(|(m, p, n)| (m.as_str(), *p, *n))
    }

    fn fresh(pages: u64, group: u64) -> Map {
        Map {
            present: vec![true; pages as usize],
            dontfork: false,
            origin: None,
            spot: Spot { group, offset: 0 },
            file: false,
            shared: false,
            hugetlb: None,
            synced_file: false,
            anon_private: false,
            uffd: None,
        }
    }

    /// Whether it maps a memfd or a file, which `truncate` and `punch` change.
    pub fn is_file(&self) -> bool {
        self.file
    }

    /// Whether it is MAP_SHARED.
    pub fn is_shared(&self) -> bool {
        self.shared
    }
}

/// Alignments further than this from a PMD boundary are refused: the PMD of the
/// smallest page size (4 KiB) has 512 pages.
pub const MAX_ALIGN: i64 = 511;
/// A gap between placed maps: at most one such PMD.
pub const MAX_GAP: u64 = 512;

/// Why a step cannot be played here: each problem with the key of the step it is about
/// (`proc`, `map`, `page`, ...), so the validator can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepError(pub Vec<(&'static str, String)>);

/// The processes and maps the steps so far made.
#[derive(Debug, Clone)]
pub struct World {
    live: BTreeMap<String, BTreeMap<String, Map>>,
    /// Exited processes, with the number of the step that ended each.
    exited: BTreeMap<String, usize>,
    ever: BTreeSet<String>,
    /// Steps applied so far.
    steps: usize,
    /// Groups of placed maps handed out so far.
    groups: u64,
    /// Ranges that moved away and back: process, map, first page, count.
    returned: Vec<(String, String, u64, u64)>,
    /// Per process: the ranges a whole-map MREMAP_DONTUNMAP left mapped without a
    /// name (where, pages), so a place there counts as taken.
    unnamed: BTreeMap<String, Vec<(Spot, u64)>>,
    /// Per process and kind: the pins it holds (a fork's child holds none).
    pins: BTreeMap<(String, PinKind), usize>,
    /// Pages of one huge page (of the default size, the PMD's) on the page size the
    /// steps are for.
    huge_pages: u64,
}

impl Default for World {
    fn default() -> World {
        World::new()
    }
}

/// Process and mapping labels travel to the agent, which takes 31 characters.
pub(crate) fn valid_label(s: &str) -> bool {
    !s.is_empty() && s.len() < ops::NAME_LEN && valid_label_chars(s)
}

pub(crate) fn valid_label_chars(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl Step {
    /// The pages `(first, count)` a step names in its map of `len` pages (`mremap`: the
    /// whole map it moves); `None` for steps that name no pages of a map.
    pub fn pages_in(&self, len: u64) -> Option<(u64, u64)> {
        Some(match self {
            Step::Munmap(r) | Step::Split(r) | Step::Munlock(r) | Step::Punch(r) => span(r.page, r.pages, len),
            Step::Migrate(x) => span(x.page, x.pages, len),
            Step::Mlock(x) => span(x.page, x.pages, len),
            Step::Mprotect(x) => (x.page, x.pages.unwrap_or(len.saturating_sub(x.page))),
            Step::Madvise(x) => (x.page, x.pages.unwrap_or(len.saturating_sub(x.page))),
            Step::Write(a) | Step::Read(a) => (a.page, a.pages),
            Step::Findpage(r) | Step::Poke(r) => (r.page, 1),
            Step::Pin(x) => (x.page, x.pages),
            Step::Remote(x) => (x.page, x.pages),
            Step::Mremap(x) => x.source(len),
            Step::Msync(x) => span(x.page, x.pages, len),
            Step::Fsync(x) => (x.page.unwrap_or(0), 1),
            Step::UffdCopy(a) => (a.page, a.pages),
            Step::UffdZeropage(x) => (x.page, x.pages),
            Step::UffdMove(x) => (x.page, x.pages),
            Step::UffdWp(x) => (x.page, x.pages),
            _ => return None,
        })
    }
}

impl World {
    /// The world at the start of a scenario: `p0` alone, without maps, for the page
    /// size counts are resolved for on this thread (`count::with_page_size`).
    pub fn new() -> World {
        World::for_page_size(count::page_size())
    }

    /// The world at the start of a scenario on a kernel with `page_size` pages.
    pub fn for_page_size(page_size: u64) -> World {
        World {
            live: BTreeMap::from([(FIRST_PROC.to_string(), BTreeMap::new())]),
            exited: BTreeMap::new(),
            ever: BTreeSet::from([FIRST_PROC.to_string()]),
            steps: 0,
            groups: 0,
            returned: Vec::new(),
            unnamed: BTreeMap::new(),
            pins: BTreeMap::new(),
            huge_pages: count::pmd_pages(page_size),
        }
    }

    /// The live processes, by label.
    pub fn live(&self) -> impl Iterator<Item = &str> {
        self.live.keys().map(String::as_str)
    }

    /// Whether a process of this label ever lived.
    pub fn ever(&self, proc: &str) -> bool {
        self.ever.contains(proc)
    }

    /// How many processes the steps made, p0 and exited ones included.
    pub fn made(&self) -> usize {
        self.ever.len()
    }

    /// Ranges that moved away and back into their map: process, map, first page, count.
    pub fn moved_back(&self) -> impl Iterator<Item = (&str, &str, u64, u64)> {
        self.returned.iter().map(|(p, m, first, n)| (p.as_str(), m.as_str(), *first, *n))
    }

    /// Whether `proc` holds a pin of `kind` (`unpin` needs one).
    pub fn holds_pin(&self, proc: &str, kind: PinKind) -> bool {
        self.pins.contains_key(&(proc.to_string(), kind))
    }

    /// A live process's map.
    pub fn map(&self, proc: &str, map: &str) -> Option<&Map> {
        self.live.get(proc)?.get(map)
    }

    /// The size of a live process's map in pages, 0 when there is none.
    pub fn size(&self, proc: &str, map: &str) -> u64 {
        self.map(proc, map).map_or(0, Map::pages)
    }

    /// Play one step. An error names every problem; the world then holds what the step
    /// would still have made (a map with a bad name is made, so later steps that use
    /// it are judged on their own).
    pub fn apply(&mut self, step: &Step) -> Result<(), StepError> {
        self.steps += 1;
        let mut out = Vec::new();
        self.play(step, &mut out);
        if out.is_empty() {
            Ok(())
        } else {
            Err(StepError(out))
        }
    }

    fn proc_mut(&mut self, name: &str, out: &mut Vec<(&'static str, String)>) -> Option<&mut BTreeMap<String, Map>> {
        if let Some(step) = self.exited.get(name) {
            out.push(("proc", format!("process '{name}' has exited (at step {step})")));
            return None;
        }
        if !self.live.contains_key(name) {
            out.push(("proc", format!("unknown process '{name}'")));
            return None;
        }
        self.live.get_mut(name)
    }

    fn map_mut(&mut self, proc: &str, map: &str, out: &mut Vec<(&'static str, String)>) -> Option<&mut Map> {
        let maps = self.proc_mut(proc, out)?;
        let found = maps.get_mut(map);
        if found.is_none() {
            out.push(("map", format!("unknown mapping '{map}' in process '{proc}'")));
        }
        found
    }

    /// The map a step names with the range it names checked: in the map and mapped.
    fn range_mut(&mut self, step: &Step, out: &mut Vec<(&'static str, String)>) -> Option<&mut Map> {
        let (proc, name) = (step.proc()?, step.map()?);
        let m = self.map_mut(proc, name, out)?;
        let (page, count) = step.pages_in(m.pages())?;
        let len = m.pages();
        if count == 0 {
            out.push(("pages", "a range of 0 pages".into()));
            return None;
        }
        if page >= len || page.saturating_add(count) > len {
            let end = page.saturating_add(count);
            out.push(("page", format!("pages {page}..{end} are out of range: '{name}' has {len} pages")));
            return None;
        }
        if let Some(hole) = (page..page + count).find(|&p| !m.present[p as usize]) {
            out.push(("page", format!("page {hole} of '{name}' was unmapped")));
            return None;
        }
        Some(m)
    }

    fn new_spot(&mut self) -> Spot {
        self.groups += 1;
        Spot { group: self.groups, offset: 0 }
    }

    /// The live map of `proc` with a present page in `pages` pages from `spot`, if any.
    fn taken(&self, proc: &str, spot: Spot, pages: u64) -> Option<&str> {
        self.taken_but(proc, spot, pages, None)
    }

    /// [`World::taken`], leaving out map `but`.
    fn taken_but(&self, proc: &str, spot: Spot, pages: u64, but: Option<&str>) -> Option<&str> {
        let (lo, hi) = (spot.offset, spot.offset + pages as i64);
        let unnamed = self
            .unnamed
            .get(proc)
            .into_iter()
            .flatten()
            .any(|(at, n)| at.group == spot.group && at.offset < hi && lo < at.offset + *n as i64);
        if unnamed {
            return Some("the range a DONTUNMAP left");
        }
        self.live.get(proc)?.iter().find_map(|(name, m)| {
            let hit = Some(name.as_str()) != but
                && m.spot.group == spot.group
                && m.present.iter().enumerate().any(|(i, p)| *p && (lo..hi).contains(&(m.spot.offset + i as i64)));
            hit.then_some(name.as_str())
        })
    }

    /// Where `anchor` puts a range of `pages` pages in `proc`; `key` is the place's key
    /// in the step (`at`, `to`). `None` (with a problem) when it names no live map.
    fn anchored(
        &self,
        proc: &str,
        anchor: Anchor,
        pages: u64,
        key: (&'static str, &'static str, &'static str),
        out: &mut Vec<(&'static str, String)>,
    ) -> Option<Spot> {
        let (name, at_key) = match anchor {
            Anchor::After(m, _) => (m, key.0),
            Anchor::Before(m, _) => (m, key.1),
            Anchor::Over(m, _) => (m, key.2),
            Anchor::Back => return None,
        };
        let Some(m) = self.map(proc, name) else {
            out.push((at_key, format!("unknown mapping '{name}' in process '{proc}'")));
            return None;
        };
        let gap = match anchor {
            Anchor::After(_, gap) | Anchor::Before(_, gap) => gap,
            _ => 0,
        };
        if gap > MAX_GAP {
            out.push((at_key, format!("a gap of {gap} pages is more than {MAX_GAP}")));
            return None;
        }
        let offset = match anchor {
            Anchor::After(..) => m.spot.offset + (m.pages() + gap) as i64,
            Anchor::Before(..) => m.spot.offset - (pages + gap) as i64,
            Anchor::Over(_, page) => m.spot.offset + page as i64,
            Anchor::Back => unreachable!("returned above"),
        };
        Some(Spot { group: m.spot.group, offset })
    }

    /// The place of a new map with `at:` or `align:`, checked: `None` for a fresh place.
    fn mmap_spot(&mut self, m: &Mmap, out: &mut Vec<(&'static str, String)>) -> Option<Spot> {
        if let Some(a) = m.align {
            if a.0.abs() > MAX_ALIGN {
                out.push(("align", format!("{a} is further than {MAX_ALIGN} pages from a PMD boundary")));
            }
            if m.at.is_some() {
                out.push(("align", "a map placed with at: cannot be aligned too".into()));
            }
        }
        let anchor = match m.at.as_ref()?.anchor() {
            Ok(a @ (Anchor::After(..) | Anchor::Before(..))) => a,
            Ok(_) => {
                out.push(("at", "mmap lands after or before a map; over and back are for mremap".into()));
                return None;
            }
            Err(e) => {
                out.push(("at", e));
                return None;
            }
        };
        let spot = self.anchored(&m.proc, anchor, m.pages, ("at.after", "at.before", "at"), out)?;
        if let Some(other) = self.taken(&m.proc, spot, m.pages) {
            out.push(("at", format!("the range is taken: '{other}' is mapped there")));
            return None;
        }
        Some(spot)
    }

    /// `mremap` with a sub-range, a name or a place (`page`, `as`, `to`).
    fn remap(&mut self, x: &Mremap, out: &mut Vec<(&'static str, String)>) {
        let new = x.new_size();
        if new == 0 || new > MAX_PAGES {
            let key = if x.new_pages.is_some() { "new_pages" } else { "pages" };
            out.push((key, format!("{new} pages is out of range 1..={MAX_PAGES}")));
            return;
        }
        if x.new_pages.is_some() && x.page.is_none() {
            out.push(("new_pages", "new_pages goes with page (pages is the new size of a whole map)".into()));
        }
        let anchor = match x.to.as_ref().map(Place::anchor).transpose() {
            Ok(a) => a,
            Err(e) => return out.push(("to", e)),
        };
        if anchor.is_some() && x.move_ {
            out.push(("move", "to: already moves it".into()));
        }
        let back = anchor == Some(Anchor::Back);
        let Some(m) = self.map_mut(&x.proc, &x.map, out) else { return };
        let (len, src) = (m.pages(), m.clone());
        let (first, count) = x.source(len);
        match x.page {
            Some(_) if count == 0 => return out.push(("pages", "a range of 0 pages".into())),
            Some(_) if first >= len || first + count > len => {
                return out.push((
                    "page",
                    format!("pages {first}..{} are out of range: '{}' has {len} pages", first + count, x.map),
                ))
            }
            _ => {}
        }
        if let Some(hole) = (first..first + count).find(|&p| !src.present[p as usize]) {
            return out.push(("page", format!("page {hole} of '{}' was unmapped; mremap moves one VMA", x.map)));
        }
        if x.dontunmap && new != count {
            out.push(("pages", "MREMAP_DONTUNMAP cannot change the size".into()));
        }
        let moves = anchor.is_some() || x.move_ || x.dontunmap;
        if x.page.is_some() && !moves {
            out.push(("page", "a range moves: give to: or move: true".into()));
        }
        let origin = if back {
            if x.page.is_some() || x.as_.is_some() {
                out.push(("to.back", "back moves a whole map made by as: into the map it came from".into()));
            }
            match src.origin() {
                None => {
                    out.push(("to.back", format!("'{}' never moved out of another map (mremap ... as:)", x.map)));
                    None
                }
                Some((from, page, n)) if self.map(&x.proc, from).is_none() => {
                    out.push(("to.back", format!("'{from}', where pages {page}..{} came from, is gone", page + n)));
                    None
                }
                Some((from, page, n)) => {
                    if new != n {
                        out.push(("pages", format!("back needs the {n} pages that moved out, not {new}")));
                    }
                    Some((from.to_string(), page, n))
                }
            }
        } else {
            None
        };
        if x.page.is_some() && !back {
            match x.as_.as_deref() {
                None => out.push(("as", "a moved range becomes a map of its own: name it with as:".into())),
                Some(name) if !valid_label(name) => out.push(("as", format!("bad mapping name '{name}'"))),
                Some(name) if self.map(&x.proc, name).is_some() => {
                    out.push(("as", format!("duplicate mapping '{name}' in process '{}'", x.proc)))
                }
                Some(_) if self.live[&x.proc].len() >= MAX_MAPS => {
                    out.push(("as", format!("more than {MAX_MAPS} mappings")))
                }
                Some(_) => {}
            }
        } else if x.as_.is_some() && !back {
            out.push(("as", "as names a moved range: give page".into()));
        }
        // The model replaces the pages of the one map it names: over or back may not
        // reach another map's.
        let dest = match anchor {
            Some(Anchor::Back) => origin.as_ref().and_then(|(from, page, _)| {
                let m = self.map(&x.proc, from)?;
                let spot = Spot { offset: m.spot.offset + *page as i64, ..m.spot };
                if let Some(other) = self.taken_but(&x.proc, spot, new, Some(from)) {
                    out.push(("to.back", format!("'{other}' is mapped where the range came from")));
                }
                Some(spot)
            }),
            Some(a) => {
                let Some(spot) = self.anchored(&x.proc, a, new, ("to.after", "to.before", "to.over"), out) else {
                    return;
                };
                if let Anchor::Over(target, page) = a {
                    let size = self.size(&x.proc, target);
                    if page + new > size {
                        out.push((
                            "to.page",
                            format!("pages {page}..{} are out of range: '{target}' has {size} pages", page + new),
                        ));
                    }
                }
                let own = Spot { offset: src.spot.offset + first as i64, ..src.spot };
                let overlaps = own.group == spot.group
                    && spot.offset < own.offset + count as i64
                    && own.offset < spot.offset + new as i64;
                let but = match a {
                    Anchor::Over(target, _) => Some(target),
                    _ => None,
                };
                if overlaps {
                    out.push(("to", "the new place overlaps the range that moves".into()));
                } else if let Some(other) = self.taken_but(&x.proc, spot, new, but) {
                    out.push(("to", format!("the range is taken: '{other}' is mapped there")));
                }
                Some(spot)
            }
            None => None,
        };
        if !out.is_empty() {
            return;
        }
        if x.page.is_none() && x.dontunmap {
            self.unnamed.entry(x.proc.clone()).or_default().push((src.spot, len));
        }
        let maps = self.live.get_mut(&x.proc).expect("checked above");
        // The source range leaves its map (DONTUNMAP leaves it mapped, but a whole
        // map's name follows the move).
        if x.page.is_none() {
            maps.remove(&x.map);
        } else if !x.dontunmap {
            let m = maps.get_mut(&x.map).expect("checked above");
            m.present[first as usize..(first + count) as usize].fill(false);
            if m.present.iter().all(|p| !p) {
                maps.remove(&x.map);
            }
        }
        if let Some(Anchor::Over(target, page)) = anchor {
            if let Some(m) = maps.get_mut(target) {
                let end = (page + new).min(m.pages());
                m.present[page as usize..end as usize].fill(false);
                if m.present.iter().all(|p| !p) {
                    maps.remove(target);
                }
            }
        }
        if let Some((from, page, n)) = origin {
            let m = maps.get_mut(&from).expect("checked above");
            m.present[page as usize..(page + n) as usize].fill(true);
            self.returned.push((x.proc.clone(), from, page, n));
            return;
        }
        let spot = match dest {
            Some(spot) => spot,
            None => self.new_spot(),
        };
        let origin = match x.page {
            Some(_) => Some((x.map.clone(), first, count)),
            None => src.origin.clone(),
        };
        let map = Map { present: vec![true; new as usize], origin, spot, ..src };
        let name = x.result_name().expect("not back").to_string();
        self.live.get_mut(&x.proc).expect("checked above").insert(name, map);
    }

    fn play(&mut self, step: &Step, out: &mut Vec<(&'static str, String)>) {
        self.hugetlb_refusal(step, out);
        self.uffd_refusal(step, out);
        if !out.is_empty() {
            return;
        }
        match step {
            Step::Mmap(m) => {
                if !valid_label(&m.name) {
                    out.push(("name", format!("bad mapping name '{}'", m.name)));
                }
                if m.pages == 0 || m.pages > MAX_PAGES {
                    out.push(("pages", format!("{} pages is out of range 1..={MAX_PAGES}", m.pages)));
                    return;
                }
                if m.backing == Backing::DevZero && m.share == Share::Private && m.huge == Some(true) {
                    out.push(("huge", "a private /dev/zero mapping is plain anon; use backing: anon".into()));
                }
                let Some(maps) = self.proc_mut(&m.proc, out) else { return };
                if maps.contains_key(&m.name) {
                    out.push(("name", format!("duplicate mapping '{}' in process '{}'", m.name, m.proc)));
                    return;
                }
                if maps.len() >= MAX_MAPS {
                    out.push(("name", format!("more than {MAX_MAPS} mappings")));
                    return;
                }
                let spot = self.mmap_spot(m, out);
                let mut map = Map::fresh(m.pages, 0);
                map.spot = spot.unwrap_or_else(|| self.new_spot());
                map.file = matches!(m.backing, Backing::Memfd | Backing::File);
                map.shared = m.share == Share::Shared;
                map.hugetlb = m
                    .backing
                    .hugetlb()
                    .then_some(HugeMap { shared: m.share == Share::Shared, object: self.steps as u64 });
                map.synced_file = matches!(m.backing, Backing::Memfd | Backing::File | Backing::Ext4);
                map.anon_private = m.backing == Backing::Anon && m.share == Share::Private;
                self.live.get_mut(&m.proc).expect("checked above").insert(m.name.clone(), map);
                self.hugetlb_budget("pages", out);
            }
            Step::Munmap(r) => {
                let Some(m) = self.range_mut(step, out) else { return };
                let (page, count) = step.pages_in(m.pages()).expect("munmap names pages");
                for p in page..page + count {
                    m.present[p as usize] = false;
                }
                if m.present.iter().all(|p| !p) {
                    self.live.get_mut(&r.proc).map(|maps| maps.remove(&r.map));
                }
            }
            Step::Madvise(x) => {
                let Some(m) = self.range_mut(step, out) else { return };
                match x.advice {
                    Advice::Dontfork => m.dontfork = true,
                    Advice::Dofork => m.dontfork = false,
                    Advice::Remove if !m.shared => {
                        out.push(("advice", "MADV_REMOVE needs a shared mapping (EACCES)".into()));
                    }
                    _ => {}
                }
            }
            Step::Truncate(x) => {
                let Some(m) = self.map_mut(&x.proc, &x.map, out) else { return };
                if !m.file {
                    out.push(("map", format!("'{}' maps no file: truncate needs backing memfd or file", x.map)));
                }
                if x.pages > MAX_PAGES {
                    out.push(("pages", format!("{} pages is out of range 0..={MAX_PAGES}", x.pages)));
                }
            }
            Step::Punch(r) => {
                let Some(m) = self.range_mut(step, out) else { return };
                if !m.file {
                    out.push(("map", format!("'{}' maps no file: punch needs backing memfd or file", r.map)));
                }
            }
            Step::Mremap(x) if x.placed() => self.remap(x, out),
            Step::Mremap(x) => {
                if x.pages == 0 || x.pages > MAX_PAGES {
                    out.push(("pages", format!("{} pages is out of range 1..={MAX_PAGES}", x.pages)));
                    return;
                }
                let Some(m) = self.map_mut(&x.proc, &x.map, out) else { return };
                if !m.whole() {
                    out.push(("map", format!("'{}' has unmapped holes; mremap needs one whole VMA", x.map)));
                    return;
                }
                if x.dontunmap && x.pages != m.pages() {
                    out.push(("pages", "MREMAP_DONTUNMAP cannot change the size".into()));
                    return;
                }
                let (spot, old) = (m.spot, m.pages());
                // Growing into a neighbour the steps placed there makes the kernel move it.
                let blocked = x.pages > old
                    && self.taken(&x.proc, Spot { offset: spot.offset + old as i64, ..spot }, x.pages - old).is_some();
                if x.dontunmap {
                    self.unnamed.entry(x.proc.clone()).or_default().push((spot, old));
                }
                let spot = if x.move_ || x.dontunmap || blocked { self.new_spot() } else { spot };
                let m = self.live.get_mut(&x.proc).and_then(|maps| maps.get_mut(&x.map)).expect("checked above");
                m.present = vec![true; x.pages as usize];
                m.spot = spot;
            }
            Step::Mprotect(_)
            | Step::Write(_)
            | Step::Read(_)
            | Step::Findpage(_)
            | Step::Poke(_)
            | Step::Split(_)
            | Step::Munlock(_)
            | Step::Mlock(_) => {
                self.range_mut(step, out);
            }
            Step::Migrate(x) => {
                self.range_mut(step, out);
                if x.node.is_some_and(|n| n > 63) {
                    out.push(("node", "node must be 0..=63".into()));
                }
            }
            Step::Fork(f) => {
                if !valid_label(&f.child) {
                    out.push(("child", format!("bad process label '{}'", f.child)));
                    return;
                }
                if self.ever.contains(&f.child) {
                    out.push(("child", format!("duplicate process '{}'", f.child)));
                    return;
                }
                if self.ever.len() >= MAX_PROCS {
                    out.push(("child", format!("more than {MAX_PROCS} processes")));
                    return;
                }
                let Some(maps) = self.proc_mut(&f.proc, out) else { return };
                // Without UFFD_FEATURE_EVENT_FORK the child's VMAs lose the registration
                // (dup_userfaultfd()).
                let inherited = maps
                    .iter()
                    .filter(|(_, m)| !m.dontfork)
                    .map(|(k, v)| (k.clone(), Map { uffd: None, ..v.clone() }))
                    .collect();
                self.live.insert(f.child.clone(), inherited);
                if let Some(unnamed) = self.unnamed.get(&f.proc).cloned() {
                    self.unnamed.insert(f.child.clone(), unnamed);
                }
                self.ever.insert(f.child.clone());
                self.hugetlb_budget("child", out);
            }
            Step::Exit(p) => {
                if self.proc_mut(&p.proc, out).is_some() {
                    self.live.remove(&p.proc);
                    self.unnamed.remove(&p.proc);
                    self.pins.retain(|(proc, _), _| *proc != p.proc);
                    self.exited.insert(p.proc.clone(), self.steps);
                }
            }
            Step::Findtask(p) | Step::Munlockall(p) => {
                self.proc_mut(&p.proc, out);
            }
            Step::Mlockall(Mlockall { proc, current, future, .. }) => {
                self.proc_mut(proc, out);
                if !current && !future {
                    out.push(("current", "mlockall needs current or future".into()));
                }
            }
            Step::Ksm(k) => {
                if k.timeout_ms.is_some_and(|t| t == 0 || t > 60_000) {
                    out.push(("timeout_ms", "timeout_ms must be 1..=60000".into()));
                }
            }
            Step::Reclaim(r) => {
                if r.pages.is_some_and(|p| p == 0 || p > MAX_RECLAIM_PAGES) {
                    out.push(("pages", format!("pages must be 1..={MAX_RECLAIM_PAGES}")));
                }
            }
            Step::Pin(x) => {
                self.range_mut(step, out);
                if x.pages > MAX_PIN_PAGES {
                    out.push(("pages", format!("a pin takes at most {MAX_PIN_PAGES} pages")));
                }
                let held = self.pins.entry((x.proc.clone(), x.kind)).or_default();
                if *held >= MAX_PINS {
                    out.push(("kind", format!("more than {MAX_PINS} {} pins in process '{}'", x.kind.wire(), x.proc)));
                } else {
                    *held += 1;
                }
            }
            Step::Unpin(x) => {
                if self.proc_mut(&x.proc, out).is_some() && self.pins.remove(&(x.proc.clone(), x.kind)).is_none() {
                    out.push(("kind", format!("process '{}' holds no {} pin", x.proc, x.kind.wire())));
                }
            }
            Step::Remote(x) => {
                self.range_mut(step, out);
                if x.pages > MAX_PIN_PAGES {
                    out.push(("pages", format!("a remote access takes at most {MAX_PIN_PAGES} pages")));
                }
                if x.value.is_some() && x.kind != RemoteKind::Writev {
                    out.push(("value", format!("value is for writev; {} writes no bytes of its own", x.kind.wire())));
                }
            }
            Step::Check(_) | Step::Compact(_) => {}
            Step::Msync(_) => {
                self.range_mut(step, out);
            }
            Step::Fsync(_) => {
                if self.range_mut(step, out).is_some_and(|m| !m.synced_file) {
                    out.push(("map", "fsync needs a map with a file behind it (memfd, file, ext4)".into()));
                }
            }
            Step::Sync(_) | Step::DropCaches(_) => {}
            Step::Uffd(_) | Step::UffdCopy(_) | Step::UffdZeropage(_) | Step::UffdMove(_) | Step::UffdWp(_) => {
                self.play_uffd(step, out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(yaml: &str) -> Vec<Step> {
        serde_yaml::with::singleton_map_recursive::deserialize(serde_yaml::Deserializer::from_str(yaml)).unwrap()
    }

    #[test]
    fn a_fork_inherits_sizes_but_not_dontfork_maps() {
        let mut w = World::new();
        for s in steps(
            "- mmap: {name: a, pages: 4, backing: anon, share: private}\n\
             - mmap: {name: b, pages: 2, backing: anon, share: private}\n\
             - madvise: {map: b, advice: dontfork}\n\
             - mremap: {map: a, pages: 6}\n\
             - fork: {child: c1}\n",
        ) {
            w.apply(&s).unwrap();
        }
        assert_eq!(w.size("c1", "a"), 6);
        assert_eq!(w.map("c1", "b"), None);
        assert_eq!(w.size("p0", "b"), 2);
    }

    #[test]
    fn a_range_moves_away_as_a_map_of_its_own_and_back_into_its_hole() {
        let mut w = World::new();
        for s in steps(
            "- mmap: {name: a, pages: 8, backing: anon, share: private}\n\
             - mremap: {map: a, page: 2, pages: 3, as: a2, to: {after: a, gap: 1}}\n",
        ) {
            w.apply(&s).unwrap();
        }
        assert_eq!(w.size("p0", "a2"), 3);
        assert_eq!(w.map("p0", "a2").unwrap().origin(), Some(("a", 2, 3)));
        let err = w.apply(&steps("- read: {map: a, page: 3}")[0]).unwrap_err();
        assert_eq!(err, StepError(vec![("page", "page 3 of 'a' was unmapped".into())]));
        // Right after a2 is taken by nothing; right after a is a2, one page further.
        let err = w.apply(&steps("- mmap: {name: b, pages: 2, backing: anon, share: private, at: {after: a}}")[0]);
        assert_eq!(err, Err(StepError(vec![("at", "the range is taken: 'a2' is mapped there".into())])));
        w.apply(&steps("- mremap: {map: a2, pages: 3, to: {back: true}}")[0]).unwrap();
        assert!(w.map("p0", "a").unwrap().whole());
        assert_eq!(w.map("p0", "a2"), None);
        assert_eq!(w.moved_back().collect::<Vec<_>>(), vec![("p0", "a", 2, 3)]);
    }

    #[test]
    fn over_replaces_only_the_map_it_names() {
        let mut w = World::new();
        for s in steps(
            "- mmap: {name: a, pages: 4, backing: anon, share: private}\n\
             - mmap: {name: b, pages: 4, backing: anon, share: private}\n\
             - mremap: {map: b, page: 0, pages: 2, as: b2, to: {over: a, page: 0}}\n",
        ) {
            w.apply(&s).unwrap();
        }
        assert!(!w.map("p0", "a").unwrap().present[0]);
        let err = w.apply(&steps("- mremap: {map: b, page: 2, pages: 1, as: b3, to: {over: a, page: 1}}")[0]);
        assert_eq!(err, Err(StepError(vec![("to", "the range is taken: 'b2' is mapped there".into())])));
    }

    #[test]
    fn the_fork_cap_counts_exited_processes() {
        let mut w = World::new();
        for i in 1..MAX_PROCS {
            w.apply(&steps(&format!("- fork: {{child: c{i}}}"))[0]).unwrap();
            w.apply(&steps(&format!("- exit: {{proc: c{i}}}"))[0]).unwrap();
        }
        assert_eq!(w.made(), MAX_PROCS);
        assert_eq!(w.live().count(), 1);
        let err = w.apply(&steps("- fork: {child: late}")[0]).unwrap_err();
        assert_eq!(err, StepError(vec![("child", format!("more than {MAX_PROCS} processes"))]));
    }

    #[test]
    fn a_whole_munmap_frees_the_name_and_a_step_after_exit_says_when() {
        let mut w = World::new();
        for s in steps(
            "- mmap: {name: a, pages: 2, backing: anon, share: private}\n\
             - munmap: {map: a, page: 0}\n\
             - fork: {child: c1}\n\
             - exit: {proc: c1}\n",
        ) {
            w.apply(&s).unwrap();
        }
        assert_eq!(w.size("p0", "a"), 2);
        let err = w.apply(&steps("- read: {map: a, page: 0}")[0]).unwrap_err();
        assert_eq!(err, StepError(vec![("page", "page 0 of 'a' was unmapped".into())]));
        w.apply(&steps("- munmap: {map: a, page: 1}")[0]).unwrap();
        assert_eq!(w.map("p0", "a"), None);
        let err = w.apply(&steps("- findtask: {proc: c1}")[0]).unwrap_err();
        assert_eq!(err, StepError(vec![("proc", "process 'c1' has exited (at step 4)".into())]));
    }

    #[test]
    fn reclaim_asks_for_everything_by_default_and_refuses_zero() {
        let mut w = World::new();
        let reclaim = &steps("- reclaim: {}")[0];
        let wire = request::Request::from_step(reclaim, &w, 1).unwrap().wire();
        assert_eq!((wire.op.name(), wire.args()), ("reclaim", format!("pages={MAX_RECLAIM_PAGES}")));
        w.apply(reclaim).unwrap();
        let err = w.apply(&steps("- reclaim: {pages: 0}")[0]).unwrap_err();
        assert_eq!(err, StepError(vec![("pages", format!("pages must be 1..={MAX_RECLAIM_PAGES}"))]));
        assert!(w.apply(&steps("- reclaim: {pages: pmd}")[0]).is_ok());
    }
}
