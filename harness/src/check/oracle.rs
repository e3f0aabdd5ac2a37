//! The oracle: checks what the module reports against ground truth taken from outside
//! it (the agent's /proc/PID/pagemap reads and /proc/kpagecount).
//!
//! - O1 forward = reverse: the slots whose pagemap PFN is the page's PFN are exactly the
//!   slots the rmap walk reports as mapping it.
//! - O2 mapcount: an order-0 page's mapcount is the number of mapping PTEs found, and
//!   /proc/kpagecount agrees.
//! - O3 no splat (checked by the runner over the whole scenario).
//!
//! Architecture invariant: the oracle is pure; it judges values, it does no I/O.

use crate::check::dmesg::{VmaState, Walk};
use crate::check::model::Slot;
use crate::wire::Fields;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Which check a problem comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Check {
    O1,
    O2,
    O3,
    O4,
    /// Page contents against the model.
    O5,
    /// The scenario's `expect:` block.
    Expect,
    /// A step the agent could not carry out.
    Step,
    /// The module said something that does not parse, or lost lines.
    Module,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub check: Check,
    pub message: String,
}

impl Problem {
    pub fn new(check: Check, message: impl Into<String>) -> Problem {
        Problem { check, message: message.into() }
    }
}

/// One mapping of one process as the agent's pagemap read saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapPages {
    pub name: String,
    pub addr: u64,
    pub pfns: Vec<Option<u64>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcPages {
    pub label: String,
    pub pid: u32,
    pub maps: Vec<MapPages>,
}

/// Ground truth: every named mapping of every live process, page by page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Truth {
    pub procs: Vec<ProcPages>,
    pub page_size: u64,
}

fn parse_hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

impl Truth {
    /// Build from the `D` lines of a `pagemap` reply.
    pub fn from_data(data: &[Fields], page_size: u64) -> Result<Truth, String> {
        let mut truth = Truth { procs: Vec::new(), page_size };
        for d in data {
            let get = |k: &str| d.get(k).ok_or_else(|| format!("pagemap line without {k}: {d:?}"));
            let label = get("proc")?.clone();
            let pid = get("pid")?.parse().map_err(|_| format!("bad pid in {d:?}"))?;
            let addr = parse_hex(get("addr")?).ok_or_else(|| format!("bad addr in {d:?}"))?;
            let pfns =
                get("pfns")?
                    .split(',')
                    .map(|p| {
                        if p == "-" {
                            Ok(None)
                        } else {
                            parse_hex(p).map(Some).ok_or_else(|| format!("bad pfn '{p}'"))
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
            let map = MapPages { name: get("name")?.clone(), addr, pfns };
            match truth.procs.iter_mut().find(|p| p.label == label) {
                Some(p) => p.maps.push(map),
                None => truth.procs.push(ProcPages { label, pid, maps: vec![map] }),
            }
        }
        Ok(truth)
    }

    pub fn label(&self, pid: u32) -> Option<&str> {
        self.procs.iter().find(|p| p.pid == pid).map(|p| p.label.as_str())
    }

    pub fn pid(&self, label: &str) -> Option<u32> {
        self.procs.iter().find(|p| p.label == label).map(|p| p.pid)
    }

    /// The slot at `addr` in process `pid`.
    pub fn locate(&self, pid: u32, addr: u64) -> Option<Slot> {
        let proc = self.procs.iter().find(|p| p.pid == pid)?;
        proc.maps.iter().find_map(|m| {
            let end = m.addr + m.pfns.len() as u64 * self.page_size;
            (addr >= m.addr && addr < end)
                .then(|| (proc.label.clone(), m.name.clone(), (addr - m.addr) / self.page_size))
        })
    }

    /// A label for `(pid, addr)` even outside the named mappings.
    pub fn describe(&self, pid: u32, addr: u64) -> String {
        match self.locate(pid, addr) {
            Some((p, m, i)) => format!("{p} {m}[{i}]"),
            None => format!(
                "{} 0x{addr:x} (outside every named mapping)",
                self.label(pid).map(str::to_string).unwrap_or(format!("pid {pid}"))
            ),
        }
    }

    /// Every slot whose pagemap PFN is `pfn`.
    pub fn holders(&self, pfn: u64) -> BTreeSet<Slot> {
        self.slots().into_iter().filter(|(_, f)| *f == pfn).map(|(s, _)| s).collect()
    }

    /// Every present slot and its PFN.
    pub fn slots(&self) -> Vec<(Slot, u64)> {
        let mut out = Vec::new();
        for p in &self.procs {
            for m in &p.maps {
                for (i, pfn) in m.pfns.iter().enumerate() {
                    if let Some(pfn) = pfn {
                        out.push(((p.label.clone(), m.name.clone(), i as u64), *pfn));
                    }
                }
            }
        }
        out
    }
}

pub fn slot_text(s: &Slot) -> String {
    format!("{} {}[{}]", s.0, s.1, s.2)
}

fn set_text(set: &BTreeSet<Slot>) -> String {
    if set.is_empty() {
        return "nothing".into();
    }
    set.iter().map(slot_text).collect::<Vec<_>>().join(", ")
}

/// O1 and O2 for one findpage walk of `slot`, whose pagemap PFN was `pfn`.
pub fn check_walk(walk: &Walk, truth: &Truth, slot: &Slot, pfn: Option<u64>, kpagecount: Option<i64>) -> Vec<Problem> {
    let mut out = Vec::new();
    let at = slot_text(slot);
    for bad in &walk.bad_lines {
        out.push(Problem::new(Check::Module, bad.to_string()));
    }
    let Some((rc, _, _)) = walk.end else {
        out.push(Problem::new(
            Check::Module,
            format!("findpage {at}: the module's lines for req={} are incomplete (no end line)", walk.req),
        ));
        return out;
    };
    let Some(page) = &walk.page else {
        if pfn.is_some() {
            out.push(Problem::new(
                Check::O1,
                format!(
                    "findpage {at}: pagemap has pfn 0x{:x} but the module found no page (rc={rc})",
                    pfn.unwrap_or(0)
                ),
            ));
        }
        return out;
    };
    match (page.kind.as_str(), pfn) {
        ("none", None) => return out,
        ("none", Some(p)) => {
            out.push(Problem::new(
                Check::O1,
                format!("findpage {at}: pagemap has pfn 0x{p:x} but the module says nothing is mapped"),
            ));
            return out;
        }
        (kind, None) => {
            out.push(Problem::new(
                Check::O1,
                format!("findpage {at}: the module found a {kind} page but pagemap says not present"),
            ));
            return out;
        }
        (_, Some(p)) if p != page.pfn => {
            out.push(Problem::new(
                Check::O1,
                format!("findpage {at}: the module walked pfn 0x{:x} but pagemap has 0x{p:x}", page.pfn),
            ));
            return out;
        }
        ("zero", _) => return out,
        _ => {}
    }
    // O1: forward (pagemap) = reverse (rmap walk).
    let mut reverse = BTreeSet::new();
    let mut strays = Vec::new();
    for v in walk.vmas.iter().filter(|v| v.state == VmaState::Mapped) {
        match v.addr.and_then(|a| truth.locate(v.pid, a)) {
            Some(s) => {
                reverse.insert(s);
            }
            None => strays.push(truth.describe(v.pid, v.addr.unwrap_or(0))),
        }
    }
    let forward = truth.holders(page.pfn);
    if forward != reverse || !strays.is_empty() {
        let missing: BTreeSet<_> = forward.difference(&reverse).cloned().collect();
        let extra: BTreeSet<_> = reverse.difference(&forward).cloned().collect();
        let mut msg = format!(
            "findpage {at}: pagemap maps pfn 0x{:x} at [{}] but the rmap walk found [{}]",
            page.pfn,
            set_text(&forward),
            set_text(&reverse)
        );
        if !missing.is_empty() {
            msg.push_str(&format!("; the walk missed {}", set_text(&missing)));
        }
        if !extra.is_empty() {
            msg.push_str(&format!("; the walk reported {} which pagemap does not", set_text(&extra)));
        }
        if !strays.is_empty() {
            msg.push_str(&format!("; mapped outside the named mappings: {}", strays.join(", ")));
        }
        out.push(Problem::new(Check::O1, msg));
    }
    // O2: mapcount.
    let mapped = walk.vmas.iter().filter(|v| v.state == VmaState::Mapped).count() as i64;
    if page.order == 0 && page.kind != "ksm" && page.mapcount != mapped {
        out.push(Problem::new(
            Check::O2,
            format!("findpage {at}: mapcount {} but the walk found {mapped} mapping PTEs", page.mapcount),
        ));
    }
    if page.order > 0 && page.mapcount < mapped {
        out.push(Problem::new(
            Check::O2,
            format!("findpage {at}: folio mapcount {} is below the {mapped} VMAs that map it", page.mapcount),
        ));
    }
    if let Some(kpc) = kpagecount {
        if page.order == 0 && kpc != page.mapcount {
            out.push(Problem::new(
                Check::O2,
                format!("findpage {at}: /proc/kpagecount says {kpc}, the module's mapcount {}", page.mapcount),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests;
