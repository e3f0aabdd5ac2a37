//! The validation pass: plays the steps in order on a [`World`], and reports every
//! problem with its path.

use super::world::{valid_label, valid_label_chars, World};
use super::*;
use std::collections::BTreeSet;

/// What the expect block may refer to: the steps' processes, findpages and findtasks.
struct Seen {
    world: World,
    /// `(proc, map, page)` of every findpage, for the expect block.
    findpages: Vec<(String, String, u64)>,
    findtasks: BTreeSet<String>,
}

type Problems = Vec<(String, String)>;

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
    let mut st = Seen { world: World::new(), findpages: Vec::new(), findtasks: BTreeSet::new() };
    for (i, step) in s.steps.iter().enumerate() {
        let base = format!("steps.{i}.{}", step.op());
        match st.world.apply(step) {
            Ok(()) => match step {
                Step::Findpage(r) => st.findpages.push((r.proc.clone(), r.map.clone(), r.page)),
                Step::Findtask(p) => {
                    st.findtasks.insert(p.proc.clone());
                }
                _ => {}
            },
            Err(e) => out.extend(e.0.into_iter().map(|(key, msg)| (format!("{base}.{key}"), msg))),
        }
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

fn expect_problems(st: &Seen, e: &Expect, base: &str, out: &mut Problems) {
    let known = |label: &String| st.world.ever(label);
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
