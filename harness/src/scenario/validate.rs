//! The validation pass: walks the steps in order with a symbolic view of which processes
//! live and which pages each mapping has, and reports every problem with its path.

use super::*;
use std::collections::{BTreeMap, BTreeSet};

/// No mapping may be larger than this many pages (64 MiB on 16k kernels, two THPs);
/// it also keeps one pagemap reply line under the protocol's 64 KiB.
pub const MAX_PAGES: u64 = 4096;
/// No scenario may have more steps or processes than these.
pub const MAX_STEPS: usize = 10_000;
pub const MAX_PROCS: usize = 64;
pub const MAX_MAPS: usize = 64;

#[derive(Clone)]
struct MapState {
    /// Whether each page is still mapped (munmap can punch holes).
    present: Vec<bool>,
    dontfork: bool,
}

#[derive(Default)]
struct State {
    live: BTreeMap<String, BTreeMap<String, MapState>>,
    exited: BTreeMap<String, String>,
    ever: BTreeSet<String>,
    /// `(proc, map, page)` of every findpage, for the expect block.
    findpages: Vec<(String, String, u64)>,
    findtasks: BTreeSet<String>,
}

type Problems = Vec<(String, String)>;

/// Process and mapping labels travel to the agent, which allows 31 characters.
fn valid_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= 31 && valid_label_chars(s)
}

fn valid_label_chars(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl State {
    fn proc(&mut self, name: &str, at: &str, out: &mut Problems) -> Option<&mut BTreeMap<String, MapState>> {
        if let Some(line) = self.exited.get(name) {
            out.push((at.into(), format!("process '{name}' has exited (at step {line})")));
            return None;
        }
        if !self.live.contains_key(name) {
            out.push((at.into(), format!("unknown process '{name}'")));
            return None;
        }
        self.live.get_mut(name)
    }

    /// The map `map` of `proc`, with its path for errors.
    fn map(&mut self, proc: &str, map: &str, base: &str, out: &mut Problems) -> Option<&mut MapState> {
        let procs = self.proc(proc, &format!("{base}.proc"), out)?;
        match procs.get_mut(map) {
            Some(m) => Some(m),
            None => {
                out.push((format!("{base}.map"), format!("unknown mapping '{map}' in process '{proc}'")));
                None
            }
        }
    }
}

/// Check that `[page, page+count)` lies in the map and is mapped.
fn check_range(m: &MapState, page: u64, count: u64, base: &str, name: &str, out: &mut Problems) -> bool {
    let len = m.present.len() as u64;
    if count == 0 {
        out.push((format!("{base}.pages"), "a range of 0 pages".into()));
        return false;
    }
    if page >= len || page.saturating_add(count) > len {
        out.push((
            format!("{base}.page"),
            format!("pages {page}..{} are out of range: '{name}' has {len} pages", page.saturating_add(count)),
        ));
        return false;
    }
    if let Some(hole) = (page..page + count).find(|&p| !m.present[p as usize]) {
        out.push((format!("{base}.page"), format!("page {hole} of '{name}' was unmapped")));
        return false;
    }
    true
}

/// Every problem in `s`, as `(yaml path, message)`.
pub fn validate(s: &Scenario) -> Problems {
    let mut out = Problems::new();
    let name_ok = !s.name.is_empty() && s.name.len() <= 64 && valid_label_chars(&s.name);
    if !name_ok {
        out.push(("name".into(), format!("bad name '{}': use 1-64 of [A-Za-z0-9_.-]", s.name)));
    }
    if s.about.trim().is_empty() {
        out.push(("about".into(), "about must say what the scenario exercises".into()));
    }
    if s.steps.is_empty() {
        out.push(("steps".into(), "a scenario needs at least one step".into()));
    }
    if s.steps.len() > MAX_STEPS {
        out.push(("steps".into(), format!("{} steps is more than {MAX_STEPS}", s.steps.len())));
        return out;
    }
    let mut st = State::default();
    st.live.insert(FIRST_PROC.into(), BTreeMap::new());
    st.ever.insert(FIRST_PROC.into());
    for (i, step) in s.steps.iter().enumerate() {
        let base = format!("steps.{i}.{}", step.op());
        step_problems(&mut st, step, i + 1, &base, &mut out);
    }
    for (i, m) in s.mthp.iter().enumerate() {
        mthp_problems(m, &format!("mthp.{i}"), &mut out);
    }
    for (i, e) in s.expect.iter().enumerate() {
        expect_problems(&st, e, &format!("expect.{i}"), &mut out);
    }
    if let Some(kb) = &s.known_bug {
        known_bug_problems(kb, &mut out);
    }
    out
}

/// The checks a known bug can name: the oracles whose failure is the kernel's.
const KNOWN_BUG_CHECKS: [&str; 5] = ["O1", "O2", "O3", "O4", "O5"];

fn known_bug_problems(kb: &crate::scenario::KnownBug, out: &mut Problems) {
    if !valid_label(&kb.finding) {
        out.push(("known_bug.finding".into(), format!("bad finding name '{}'", kb.finding)));
    }
    if kb.on.is_empty() {
        out.push(("known_bug.on".into(), "a known bug names the kernel keys that have it".into()));
    }
    if !KNOWN_BUG_CHECKS.contains(&kb.check.as_str()) {
        out.push((
            "known_bug.check".into(),
            format!("unknown check '{}': one of {}", kb.check, KNOWN_BUG_CHECKS.join(", ")),
        ));
    }
    if kb.says.trim().is_empty() {
        out.push(("known_bug.says".into(), "say what text its problems contain".into()));
    }
}

fn step_problems(st: &mut State, step: &Step, number: usize, base: &str, out: &mut Problems) {
    match step {
        Step::Mmap(m) => {
            if !valid_label(&m.name) {
                out.push((format!("{base}.name"), format!("bad mapping name '{}'", m.name)));
            }
            if m.pages == 0 || m.pages > MAX_PAGES {
                out.push((format!("{base}.pages"), format!("{} pages is out of range 1..={MAX_PAGES}", m.pages)));
                return;
            }
            if m.backing == Backing::DevZero && m.share == Share::Private && m.huge == Some(true) {
                out.push((
                    format!("{base}.huge"),
                    "a private /dev/zero mapping is plain anon; use backing: anon".into(),
                ));
            }
            let Some(procs) = st.proc(&m.proc, &format!("{base}.proc"), out) else { return };
            if procs.contains_key(&m.name) {
                out.push((format!("{base}.name"), format!("duplicate mapping '{}' in process '{}'", m.name, m.proc)));
                return;
            }
            if procs.len() >= MAX_MAPS {
                out.push((format!("{base}.name"), format!("more than {MAX_MAPS} mappings")));
                return;
            }
            procs.insert(m.name.clone(), MapState { present: vec![true; m.pages as usize], dontfork: false });
        }
        Step::Munmap(r) => {
            let Some(m) = st.map(&r.proc, &r.map, base, out) else { return };
            let (page, count) = match r.page {
                Some(p) => (p, r.pages.unwrap_or(1)),
                None => (0, r.pages.unwrap_or(m.present.len() as u64)),
            };
            if !check_range(m, page, count, base, &r.map, out) {
                return;
            }
            for p in page..page + count {
                m.present[p as usize] = false;
            }
            if m.present.iter().all(|p| !p) {
                st.live.get_mut(&r.proc).map(|procs| procs.remove(&r.map));
            }
        }
        Step::Mprotect(x) => {
            let Some(m) = st.map(&x.proc, &x.map, base, out) else { return };
            let count = x.pages.unwrap_or((m.present.len() as u64).saturating_sub(x.page));
            check_range(m, x.page, count, base, &x.map, out);
        }
        Step::Madvise(x) => {
            let Some(m) = st.map(&x.proc, &x.map, base, out) else { return };
            let count = x.pages.unwrap_or((m.present.len() as u64).saturating_sub(x.page));
            if check_range(m, x.page, count, base, &x.map, out) {
                match x.advice {
                    Advice::Dontfork => m.dontfork = true,
                    Advice::Dofork => m.dontfork = false,
                    _ => {}
                }
            }
        }
        Step::Mremap(x) => {
            if x.pages == 0 || x.pages > MAX_PAGES {
                out.push((format!("{base}.pages"), format!("{} pages is out of range 1..={MAX_PAGES}", x.pages)));
                return;
            }
            let Some(m) = st.map(&x.proc, &x.map, base, out) else { return };
            if m.present.iter().any(|p| !p) {
                out.push((
                    format!("{base}.map"),
                    format!("'{}' has unmapped holes; mremap needs one whole VMA", x.map),
                ));
                return;
            }
            if x.dontunmap && x.pages as usize != m.present.len() {
                out.push((format!("{base}.pages"), "MREMAP_DONTUNMAP cannot change the size".into()));
                return;
            }
            m.present = vec![true; x.pages as usize];
        }
        Step::Write(a) | Step::Read(a) => {
            let Some(m) = st.map(&a.proc, &a.map, base, out) else { return };
            check_range(m, a.page, a.pages, base, &a.map, out);
        }
        Step::Findpage(r) => {
            let Some(m) = st.map(&r.proc, &r.map, base, out) else { return };
            if check_range(m, r.page, 1, base, &r.map, out) {
                st.findpages.push((r.proc.clone(), r.map.clone(), r.page));
            }
        }
        Step::Poke(r) => {
            let Some(m) = st.map(&r.proc, &r.map, base, out) else { return };
            check_range(m, r.page, 1, base, &r.map, out);
        }
        Step::Fork(f) => {
            if !valid_label(&f.child) {
                out.push((format!("{base}.child"), format!("bad process label '{}'", f.child)));
                return;
            }
            if st.ever.contains(&f.child) {
                out.push((format!("{base}.child"), format!("duplicate process '{}'", f.child)));
                return;
            }
            if st.ever.len() >= MAX_PROCS {
                out.push((format!("{base}.child"), format!("more than {MAX_PROCS} processes")));
                return;
            }
            let Some(procs) = st.proc(&f.proc, &format!("{base}.proc"), out) else { return };
            let inherited = procs.iter().filter(|(_, m)| !m.dontfork).map(|(k, v)| (k.clone(), v.clone())).collect();
            st.live.insert(f.child.clone(), inherited);
            st.ever.insert(f.child.clone());
        }
        Step::Exit(p) => {
            if st.proc(&p.proc, &format!("{base}.proc"), out).is_some() {
                st.live.remove(&p.proc);
                st.exited.insert(p.proc.clone(), number.to_string());
            }
        }
        Step::Findtask(p) => {
            if st.proc(&p.proc, &format!("{base}.proc"), out).is_some() {
                st.findtasks.insert(p.proc.clone());
            }
        }
        Step::Check(_) | Step::Compact(_) => {}
        Step::Split(Range { proc, map, page, pages }) | Step::Munlock(Range { proc, map, page, pages }) => {
            let Some(m) = st.map(proc, map, base, out) else { return };
            let (first, count) = span(*page, *pages, m.present.len() as u64);
            check_range(m, first, count, base, map, out);
        }
        Step::Migrate(x) => {
            let Some(m) = st.map(&x.proc, &x.map, base, out) else { return };
            let (first, count) = span(x.page, x.pages, m.present.len() as u64);
            check_range(m, first, count, base, &x.map, out);
            if x.node.is_some_and(|n| n > 63) {
                out.push((format!("{base}.node"), "node must be 0..=63".into()));
            }
        }
        Step::Mlock(x) => {
            let Some(m) = st.map(&x.proc, &x.map, base, out) else { return };
            let (first, count) = span(x.page, x.pages, m.present.len() as u64);
            check_range(m, first, count, base, &x.map, out);
        }
        Step::Mlockall(Mlockall { proc, current, future, .. }) => {
            st.proc(proc, &format!("{base}.proc"), out);
            if !current && !future {
                out.push((format!("{base}.current"), "mlockall needs current or future".into()));
            }
        }
        Step::Munlockall(p) => {
            st.proc(&p.proc, &format!("{base}.proc"), out);
        }
        Step::Ksm(k) => {
            if k.timeout_ms.is_some_and(|t| t == 0 || t > 60_000) {
                out.push((format!("{base}.timeout_ms"), "timeout_ms must be 1..=60000".into()));
            }
        }
    }
}

fn mthp_problems(m: &Mthp, base: &str, out: &mut Problems) {
    if let Some(n) = m.pages {
        if n < 2 || !n.is_power_of_two() || n > MAX_PAGES {
            out.push((format!("{base}.pages"), format!("{n} pages is not a folio size (a power of two, 2..=pmd)")));
        }
    }
    if m.anon.is_none() && m.shmem.is_none() {
        out.push((base.into(), "an mthp setting needs anon or shmem".into()));
    }
    if m.anon.is_some_and(|a| matches!(a, MthpMode::WithinSize | MthpMode::Advise)) {
        out.push((format!("{base}.anon"), "anon takes always, madvise, never or inherit".into()));
    }
    if m.shmem.is_some_and(|a| a == MthpMode::Madvise) {
        out.push((format!("{base}.shmem"), "shmem takes always, within-size, advise, never or inherit".into()));
    }
}

fn expect_problems(st: &State, e: &Expect, base: &str, out: &mut Problems) {
    let known = |label: &String| st.ever.contains(label);
    let mut facts: Vec<&Facts> = vec![&e.facts];
    if let Some(alts) = &e.any_of {
        if alts.is_empty() {
            out.push((format!("{base}.any_of"), "any_of needs at least one alternative".into()));
        }
        facts.extend(alts.iter());
    }
    for f in &facts {
        for (key, list) in [("mapped_by", &f.mapped_by), ("visited_not_mapped", &f.visited_not_mapped)] {
            for label in list.iter().flatten() {
                if !known(label) {
                    out.push((format!("{base}.{key}"), format!("unknown process '{label}'")));
                }
            }
        }
        if let Some(kind) = &f.kind {
            if !["anon", "file", "shmem", "ksm", "zero", "none"].contains(&kind.as_str()) {
                out.push((
                    format!("{base}.kind"),
                    format!("unknown kind '{kind}' (anon, file, shmem, ksm, zero, none)"),
                ));
            }
        }
    }
    match (&e.findpage, &e.findtask) {
        (Some(at), None) => {
            let Some((map, page)) = parse_page_ref(at) else {
                out.push((format!("{base}.findpage"), format!("'{at}' is not of the form map[page]")));
                return;
            };
            let hit = st
                .findpages
                .iter()
                .any(|(p, m, i)| m == map && *i == page && e.proc.as_ref().is_none_or(|want| want == p));
            if !hit {
                out.push((
                    format!("{base}.findpage"),
                    format!(
                        "no findpage step walks {at}{}",
                        e.proc.as_ref().map(|p| format!(" in '{p}'")).unwrap_or_default()
                    ),
                ));
            }
            if facts.iter().any(|f| f.vmas.is_some()) {
                out.push((format!("{base}.vmas"), "vmas belongs to a findtask expectation".into()));
            }
        }
        (None, Some(proc)) => {
            if !st.findtasks.contains(proc) {
                out.push((format!("{base}.findtask"), format!("no findtask step lists '{proc}'")));
            }
        }
        _ => out.push((base.into(), "an expectation names exactly one of findpage or findtask".into())),
    }
}
