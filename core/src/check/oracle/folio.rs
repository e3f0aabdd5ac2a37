//! Large folios: the agent's `folio` read, which finds every PTE and PMD of every live
//! workload process (its whole address space, not only the named maps) that maps any
//! page of one folio, and the checks that need it: O1 over the folio's whole range, and
//! O2's exact counts under each kernel's mapcount semantics.

use super::{parse_hex as hex, Problem, Truth};
use crate::check::dmesg::{AtLevel, PageLine, Walk};
use crate::check::model::Slot;
use crate::check::problem::{FolioMaps, FolioMiss, ProblemKind};
use crate::wire::Fields;
use std::collections::{BTreeMap, BTreeSet};

/// kpageflags bits (include/uapi/linux/kernel-page-flags.h).
const KPF_COMPOUND_HEAD: u64 = 1 << 15;
const KPF_COMPOUND_TAIL: u64 = 1 << 16;

/// Pages a PMD maps: a page of PTEs (8 bytes each) is page_size / 8 entries.
pub fn pmd_pages(page_size: u64) -> u64 {
    page_size / 8
}

/// One VMA of one live process that maps pages of the folio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolioVma {
    pub label: String,
    pub pid: u32,
    pub start: u64,
    pub end: u64,
    /// `(address, index of the page in the folio)`, in address order.
    pub pages: Vec<(u64, u64)>,
    /// From smaps, for a PMD-sized folio mapped whole here: the PMDs that map memory
    /// in this VMA, and the PMD-sized runs pagemap shows in it (of any folio).
    pub pmd: Option<(u64, u64)>,
}

/// Ground truth for one folio, from outside the module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolioTruth {
    pub head: u64,
    pub nr: u64,
    pub page_size: u64,
    pub vmas: Vec<FolioVma>,
    /// /proc/kpagecount of every page of the folio.
    pub kpagecount: Vec<i64>,
    /// /proc/kpageflags of the head, the last page and the page after the folio.
    pub kpageflags: [u64; 3],
}

/// How a VMA maps the folio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Pte,
    Pmd,
    /// smaps counts PMDs in this VMA, but fewer than the PMD-sized runs in it, so it
    /// cannot say which run is the PMD.
    Unknown,
}

/// `v*n,v,...` runs, expanded.
fn parse_counts(s: &str) -> Result<Vec<i64>, String> {
    let mut out = Vec::new();
    for run in s.split(',') {
        let (v, n) = run.split_once('*').unwrap_or((run, "1"));
        let v: i64 = v.parse().map_err(|_| format!("bad count '{run}'"))?;
        let n: usize = n.parse().map_err(|_| format!("bad run '{run}'"))?;
        out.extend(std::iter::repeat_n(v, n));
    }
    Ok(out)
}

impl FolioTruth {
    /// Build from a `folio` reply: its fields and `D` lines.
    pub fn from_reply(fields: &Fields, data: &[Fields], head: u64, nr: u64, page_size: u64) -> Result<Self, String> {
        let kpagecount = parse_counts(fields.get("kpc").ok_or("folio reply without kpc")?)?;
        if kpagecount.len() as u64 != nr {
            return Err(format!("folio reply has {} kpagecounts for {nr} pages", kpagecount.len()));
        }
        let kpf: Vec<u64> = fields.get("kpf").ok_or("folio reply without kpf")?.split(',').filter_map(hex).collect();
        let kpageflags = <[u64; 3]>::try_from(kpf).map_err(|_| "folio reply: bad kpf".to_string())?;
        let mut vmas = Vec::new();
        for d in data {
            let get = |k: &str| d.get(k).ok_or_else(|| format!("folio line without {k}: {d:?}"));
            let mut pages = Vec::new();
            for run in get("at")?.split(',') {
                let bad = || format!("bad run '{run}' in {d:?}");
                let (addr, rest) = run.split_once(':').ok_or_else(bad)?;
                let (idx, n) = rest.split_once('*').unwrap_or((rest, "1"));
                let (addr, idx, n): (u64, u64, u64) =
                    (hex(addr).ok_or_else(bad)?, idx.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
                pages.extend((0..n).map(|i| (addr + i * page_size, idx + i)));
            }
            let pmd = match (d.get("pmd"), d.get("cand")) {
                (Some(k), Some(c)) => Some((k.parse().map_err(|_| "bad pmd")?, c.parse().map_err(|_| "bad cand")?)),
                _ => None,
            };
            vmas.push(FolioVma {
                label: get("proc")?.clone(),
                pid: get("pid")?.parse().map_err(|_| format!("bad pid in {d:?}"))?,
                start: hex(get("start")?).ok_or("bad start")?,
                end: hex(get("end")?).ok_or("bad end")?,
                pages,
                pmd,
            });
        }
        Ok(FolioTruth { head, nr, page_size, vmas, kpagecount, kpageflags })
    }

    /// Whether `v` maps the folio whole from a PMD-aligned address, and there where.
    fn whole_at(&self, v: &FolioVma) -> Option<u64> {
        let size = self.nr * self.page_size;
        let (addr, idx) = *v.pages.iter().find(|(a, i)| *i == 0 && a % size == 0)?;
        let whole = (0..self.nr).all(|i| v.pages.contains(&(addr + i * self.page_size, idx + i)));
        whole.then_some(addr)
    }

    fn level(&self, v: &FolioVma) -> Level {
        match (v.pmd, self.whole_at(v)) {
            (Some((0, _)), _) | (None, _) | (_, None) => Level::Pte,
            (Some((k, cand)), Some(_)) if k == cand => Level::Pmd,
            _ => Level::Unknown,
        }
    }

    /// Every `(pid, address)` at which a page of the folio is mapped.
    fn mapped(&self) -> BTreeSet<(u32, u64)> {
        self.vmas.iter().flat_map(|v| v.pages.iter().map(|(a, _)| (v.pid, *a))).collect()
    }
}

/// What the truth says each count must be.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Counts {
    /// Per page: the PTEs that map it plus the PMDs that map the folio.
    per_page: Vec<i64>,
    /// Every PTE and every PMD that maps any page.
    total: i64,
    /// PMDs (the kernel's entire mapcount).
    entire: i64,
}

/// A VMA of unknown level counts as the walk says it is mapped there.
fn counts(folio: &FolioTruth, walk: &Walk) -> Counts {
    let mut per_page = vec![0; folio.nr as usize];
    let (mut total, mut entire) = (0, 0);
    for v in &folio.vmas {
        for (_, idx) in &v.pages {
            if let Some(c) = per_page.get_mut(*idx as usize) {
                *c += 1;
            }
        }
        let pmd = match folio.level(v) {
            Level::Pte => false,
            Level::Pmd => true,
            Level::Unknown => {
                let at = folio.whole_at(v);
                walk.vmas
                    .iter()
                    .any(|w| w.pid == v.pid && w.at.iter().any(|m| m.level == AtLevel::Pmd && Some(m.addr) == at))
            }
        };
        if pmd {
            entire += 1;
            total += 1 + v.pages.len() as i64 - folio.nr as i64;
        } else {
            total += v.pages.len() as i64;
        }
    }
    Counts { per_page, total, entire }
}

/// What the module's `mapcount=` and `pagemapcount=` and /proc/kpagecount of every page
/// must be for a large folio, by the semantics the module names (`mcsem=`). `None` for
/// semantics this oracle does not know.
struct Want {
    mapcount: i64,
    page_mapcount: Option<i64>,
    kpagecount: Vec<i64>,
}

fn want(mcsem: &str, c: &Counts, nr: u64, idx: usize) -> Option<Want> {
    let page = c.per_page.get(idx).copied().unwrap_or(0);
    Some(match mcsem {
        // Until 6.9 (6.1 here): page_mapcount() is the page's own _mapcount + 1 plus the
        // compound (PMD) mapcount; there is no folio total. kpagecount is the same count
        // for each page.
        "page_mapcount" => Want { mapcount: page, page_mapcount: Some(page), kpagecount: c.per_page.clone() },
        // 6.10 added _large_mapcount: folio_mapcount() counts every PTE and PMD that
        // maps any page. kpagecount stays per page (6.11: folio_precise_page_mapcount()).
        "folio_mapcount" => Want { mapcount: c.total, page_mapcount: None, kpagecount: c.per_page.clone() },
        // 6.15+ with CONFIG_PAGE_MAPCOUNT: as 6.10, and the module gives the per-page
        // count too.
        "folio_mapcount+page_mapcount" => {
            Want { mapcount: c.total, page_mapcount: Some(page), kpagecount: c.per_page.clone() }
        }
        // 6.15+ with CONFIG_NO_PAGE_MAPCOUNT: no per-page count; kpagecount gives
        // folio_average_page_mapcount(): the PTE mappings averaged over the pages
        // (rounded to nearest), plus the PMDs, at least 1 while anything maps it.
        "folio_mapcount:no_page_mapcount" => {
            let avg = if c.total <= 0 {
                0
            } else if c.total <= c.entire {
                c.entire
            } else {
                (((c.total - c.entire) + nr as i64 / 2) / nr as i64 + c.entire).max(1)
            };
            Want { mapcount: c.total, page_mapcount: None, kpagecount: vec![avg; nr as usize] }
        }
        _ => return None,
    })
}

/// A short list of `(pid, addr)` as labels, at most five.
fn places(truth: &Truth, set: &BTreeSet<(u32, u64)>) -> String {
    let mut out: Vec<String> = set.iter().take(5).map(|(p, a)| truth.describe(*p, *a)).collect();
    if set.len() > 5 {
        out.push(format!("and {} more", set.len() - 5));
    }
    out.join(", ")
}

/// Runs of equal per-page counts, `v*n`, for messages.
fn runs(v: &[i64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let n = v[i..].iter().take_while(|x| **x == v[i]).count();
        out.push(if n > 1 { format!("{}*{n}", v[i]) } else { v[i].to_string() });
        i += n;
    }
    out.join(",")
}

/// O1 and O2 for a walk of a page of a large folio, against the folio's truth.
pub fn check_folio(walk: &Walk, page: &PageLine, folio: &FolioTruth, truth: &Truth, at: &Slot) -> Vec<Problem> {
    let mut out = Vec::new();
    let idx = page.pfn.wrapping_sub(folio.head) as usize;
    // The module's bounds of the folio against kpageflags.
    let [head, last, next] = folio.kpageflags;
    if head & KPF_COMPOUND_HEAD == 0 || last & KPF_COMPOUND_TAIL == 0 || next & KPF_COMPOUND_TAIL != 0 {
        out.push(Problem::new(ProblemKind::FolioBounds {
            at: at.clone(),
            nr: folio.nr,
            head: folio.head,
            kpageflags: folio.kpageflags,
        }));
        return out;
    }

    // O1 over the whole folio: every (process, address) that maps any page of it.
    let forward = folio.mapped();
    let mut reverse = BTreeSet::new();
    // Per walk VMA line: how many mappings it left out of `at=`, and where.
    let mut more: Vec<(u32, u64, u64, u32)> = Vec::new();
    for v in &walk.vmas {
        for m in &v.at {
            let pages = match m.level {
                AtLevel::Pmd => folio.nr,
                AtLevel::Pte => m.pages as u64,
            };
            reverse.extend((0..pages).map(|i| (v.pid, m.addr + i * folio.page_size)));
        }
        if v.at_more > 0 {
            more.push((v.pid, v.start, v.end, v.at_more));
        }
    }
    let extra: BTreeSet<_> = reverse.difference(&forward).copied().collect();
    let mut missed = BTreeSet::new();
    let mut unlisted: BTreeMap<usize, u32> = BTreeMap::new();
    for (pid, addr) in forward.difference(&reverse) {
        match more.iter().position(|(p, s, e, _)| p == pid && (*s..*e).contains(addr)) {
            Some(i) => *unlisted.entry(i).or_default() += 1,
            None => {
                missed.insert((*pid, *addr));
            }
        }
    }
    let mut why = Vec::new();
    if !missed.is_empty() {
        why.push(FolioMiss::Missed(places(truth, &missed)));
    }
    if !extra.is_empty() {
        why.push(FolioMiss::Reported(places(truth, &extra)));
    }
    for (i, (pid, start, _, n)) in more.iter().enumerate() {
        let got = unlisted.get(&i).copied().unwrap_or(0);
        if got != *n {
            why.push(FolioMiss::Unlisted { n: *n, place: truth.describe(*pid, *start), got });
        }
    }
    if !why.is_empty() {
        out.push(Problem::new(ProblemKind::FolioWalkMismatch {
            at: at.clone(),
            nr: folio.nr,
            head: folio.head,
            mapped: forward.len(),
            why,
        }));
    }

    // O2: exact counts under this kernel's semantics.
    let c = counts(folio, walk);
    let Some(want) = want(&page.mcsem, &c, folio.nr, idx) else {
        out.push(Problem::new(ProblemKind::UnknownMapcountSemantics { at: at.clone(), mcsem: page.mcsem.clone() }));
        return out;
    };
    let maps = FolioMaps { ptes: c.total - c.entire, pmds: c.entire };
    if page.mapcount != want.mapcount {
        out.push(Problem::new(ProblemKind::FolioMapcount {
            at: at.clone(),
            mapcount: page.mapcount,
            mcsem: page.mcsem.clone(),
            want: want.mapcount,
            maps,
            this_page: c.per_page.get(idx).copied().unwrap_or(0),
        }));
    }
    if let (Some(w), Some(got)) = (want.page_mapcount, page.page_mapcount) {
        if got != w {
            out.push(Problem::new(ProblemKind::PageMapcount { at: at.clone(), got, want: w, maps }));
        }
    }
    if folio.kpagecount != want.kpagecount {
        out.push(Problem::new(ProblemKind::FolioKpagecount {
            at: at.clone(),
            got: runs(&folio.kpagecount),
            want: runs(&want.kpagecount),
            mcsem: page.mcsem.clone(),
            maps,
        }));
    }
    out
}

#[cfg(test)]
mod tests;
