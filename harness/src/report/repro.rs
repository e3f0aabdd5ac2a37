//! `rmapcheck repro --c`: a scenario as one self-contained C program, for a kernel
//! developer who will not install rmapcheck. The program is a fixed runtime
//! (`repro/runtime.c`) and generated tables: the steps, each with its arguments resolved
//! as the runner resolves them, and at every `check`/`findpage` step the model's
//! prediction for every slot (which frame it shares, what bytes it holds). The runtime
//! plays the steps in a process tree sequenced over pipes, doing for each what the
//! guest agent does, and checks what userspace sees: pagemap PFNs against the predicted
//! sharing, the page bytes, PM_MMAP_EXCLUSIVE, kpagecount, the rmap walk by migration
//! (for O1 findings), and splats in /dev/kmsg. It prints `FAIL: <what>` and exits 1,
//! `PASS` and 0, `SETUP: <why>` and 2.
//!
//! Architecture invariant: generation is pure (steps and model to text); it never boots
//! a guest or runs a compiler.

use crate::check::model::{Frame, Model};
use crate::check::problem::Errno;
use crate::scenario::request::{Request, Target};
use crate::scenario::{
    self, span, Advice, Backing, PinKind, Prot, RemoteKind, Scenario, Share, Step, UffdMode, FIRST_PROC,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;

const RUNTIME: &str = include_str!("repro/runtime.c");
const TABLES_MARK: &str = "/* GENERATED TABLES */\n";

/// What the header comment says about the finding the program reproduces.
#[derive(Debug, Clone, Default)]
pub struct About {
    /// The finding's title (`O2: pagemap flags pfn exclusive ...`).
    pub title: Option<String>,
    /// The problems the failing run reported, one per line.
    pub problems: Vec<String>,
    /// The kernel it was found on (`7.2 (7.2.13+deb14-arm64, gcc-16, 4k pages)`).
    pub found_on: Option<String>,
    /// The page size the program is generated for (counts relative to the PMD).
    pub page_size: u64,
    /// The finding is an O1 miss: check the rmap walk by migration too.
    pub o1: bool,
}

impl About {
    /// What a finding folder (fuzz/triage.rs `save`) or a scenario file says about
    /// itself: the folder's title, its report's "What is wrong" lines and the kernel
    /// of its summary; an O1 title or known bug asks for the walk check.
    pub fn of_finding(path: &std::path::Path, s: &Scenario) -> About {
        let read = |name: &str| std::fs::read_to_string(path.join(name)).ok().filter(|_| path.is_dir());
        let title = read("title.txt").map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        let found_on = read("summary.txt")
            .and_then(|t| t.split(" | ").find_map(|part| part.strip_prefix("kernel ").map(str::to_string)));
        let problems = read("report.txt")
            .map(|r| {
                r.lines()
                    .skip_while(|l| *l != "== What is wrong ==")
                    .skip(1)
                    .take_while(|l| !l.starts_with("== "))
                    .filter(|l| !l.trim().is_empty())
                    .take(20)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let o1 = title.as_deref().is_some_and(|t| t.starts_with("O1"))
            || s.known_bug.as_ref().is_some_and(|b| b.check == "O1");
        About { title, problems, found_on, page_size: 0, o1 }
    }
}

/// A scenario the C runtime cannot play.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Error(pub String);

/// The C source that reproduces `s`.
pub fn c_source(s: &Scenario, about: &About) -> Result<String, Error> {
    let page_size = if about.page_size == 0 { scenario::count::DEFAULT_PAGE_SIZE } else { about.page_size };
    let s = s.for_page_size(page_size).map_err(Error)?;
    let names = Names::of(&s);
    let steps = step_rows(&s, &names)?;
    // VMA merging changed in 6.16 (Semantics): predict for both, and let the program
    // pick by the kernel it runs on.
    let old = predictions(&s, &names, "6.1", page_size);
    let new = predictions(&s, &names, "6.16", page_size);
    let mut tables = String::new();
    let w = &mut tables;
    let _ = writeln!(w, "#define BUILT_PAGE_SIZE {page_size}");
    let _ = writeln!(w, "#define NPROCS {}", names.procs.len());
    let _ = writeln!(w, "#define NMAPS {}", names.maps.len().max(1));
    let _ = writeln!(w, "#define NSTEPS {}", steps.len());
    let _ = writeln!(w, "#define O1_CHECK {}", about.o1 as u8);
    let _ = writeln!(w, "#define HUGETLB_POOL {}\n", rmapcheck_core::ops::HUGETLB_POOL);
    let list = |v: &[String]| v.iter().map(|n| c_string(n)).collect::<Vec<_>>().join(", ");
    let _ = writeln!(w, "static const char *const proc_name[NPROCS] = {{ {} }};", list(&names.procs));
    let maps = if names.maps.is_empty() { vec![String::new()] } else { names.maps.clone() };
    let _ = writeln!(w, "static const char *const map_name[NMAPS] = {{ {} }};\n", list(&maps));
    let _ = writeln!(w, "static const struct mthp mthp[] = {{");
    for m in &s.mthp {
        let mode = |m: Option<scenario::MthpMode>| m.map(|m| c_string(m.wire())).unwrap_or_else(|| "NULL".into());
        let kb = m.pages.map(|p| p * page_size / 1024).unwrap_or(0);
        let _ = writeln!(w, "\t{{ {kb}, {}, {} }},", mode(m.anon), mode(m.shmem));
    }
    let _ = writeln!(w, "\t{{ 0, NULL, NULL }},\n}};\n");
    let _ = writeln!(w, "static const struct step steps[NSTEPS] = {{");
    for row in &steps {
        let _ = writeln!(w, "\t{row},");
    }
    let _ = writeln!(w, "}};\n");
    slot_table(w, "slots_old", "NSLOTS_OLD", &old.slots);
    if new.slots == old.slots {
        let _ = writeln!(w, "#define slots_616 slots_old\n#define NSLOTS_616 NSLOTS_OLD");
    } else {
        slot_table(w, "slots_616", "NSLOTS_616", &new.slots);
    }
    sigbus_table(w, "sigbus_old", &old.sigbus);
    if new.sigbus == old.sigbus {
        let _ = writeln!(w, "#define sigbus_616 sigbus_old\n");
    } else {
        sigbus_table(w, "sigbus_616", &new.sigbus);
    }
    uffd_table(w, "uffd_old", &old.uffd);
    if new.uffd == old.uffd {
        let _ = writeln!(w, "#define uffd_616 uffd_old\n");
    } else {
        uffd_table(w, "uffd_616", &new.uffd);
    }
    let (head, body) = RUNTIME.split_once(TABLES_MARK).expect("runtime.c has the tables mark");
    let sigbus = [&old, &new].iter().any(|p| p.sigbus.iter().any(|a| a.stop.is_some() && !a.uffd));
    let uffd = s.steps.iter().any(|step| matches!(step, Step::Uffd(_)));
    Ok(format!("{}{head}{tables}{body}", header(&s, about, page_size, sigbus, uffd)))
}

/// Process labels and map names, numbered in order of appearance (p0 first).
struct Names {
    procs: Vec<String>,
    maps: Vec<String>,
}

impl Names {
    fn of(s: &Scenario) -> Names {
        let mut n = Names { procs: vec![FIRST_PROC.to_string()], maps: Vec::new() };
        for step in &s.steps {
            match step {
                Step::Fork(f) if !n.procs.contains(&f.child) => n.procs.push(f.child.clone()),
                Step::Mmap(m) if !n.maps.contains(&m.name) => n.maps.push(m.name.clone()),
                // A moved range becomes a map of its own.
                Step::Mremap(scenario::Mremap { as_: Some(a), .. }) if !n.maps.contains(a) => n.maps.push(a.clone()),
                _ => {}
            }
        }
        n
    }

    fn proc(&self, label: &str) -> usize {
        self.procs.iter().position(|p| p == label).unwrap_or(0)
    }

    fn map(&self, name: &str) -> usize {
        self.maps.iter().position(|m| m == name).unwrap_or(0)
    }
}

/// One `struct step` initializer per step, its ranges resolved as the runner does.
fn step_rows(s: &Scenario, names: &Names) -> Result<Vec<String>, Error> {
    let mut sizes: BTreeMap<(String, String), u64> = BTreeMap::new();
    let size = |sizes: &BTreeMap<(String, String), u64>, p: &str, m: &str| {
        sizes.get(&(p.to_string(), m.to_string())).copied().unwrap_or(0)
    };
    let mut rows = Vec::new();
    // Placements resolve against the maps as they are before each step, as the runner's.
    let mut world = scenario::World::new();
    for (i, step) in s.steps.iter().enumerate() {
        let n = i + 1;
        // Placements are resolved as the runner resolves them (the typed core's request).
        let request = Request::from_step(step, &world, n);
        let place = match &request {
            // (flag, place_map, place) of `struct step`.
            Some(Request::Mmap { at: Some((map, offset)), .. }) => Some(("F_AT", names.map(map) as i64, *offset)),
            Some(Request::Mmap { align: Some(a), .. }) => Some(("F_ALIGN", -1, *a)),
            _ => None,
        };
        let _ = world.apply(step);
        // The runtime has no block filesystem: the writeback steps need the agent's.
        let writeback = match step {
            Step::Mmap(m) => m.backing == Backing::Ext4,
            Step::Msync(_) | Step::Fsync(_) | Step::Sync(_) | Step::DropCaches(_) => true,
            _ => false,
        };
        if writeback {
            return Err(Error(format!(
                "step {n} ({}): writeback (ext4 maps, msync, fsync, sync, drop_caches) is not in the C runtime",
                step.op()
            )));
        }
        let text = c_string(&scenario::step_yaml(step));
        // A placed mmap's or mremap's fields after its text: where it goes.
        let mut tail = place.map(|(_, map, offset)| format!(", {map}, {offset}")).unwrap_or_default();
        // A range step's pages as the runner sends them (World-resolved counts).
        let (first, pages) = request.as_ref().and_then(Request::pages).map_or((0, 0), |p| (p.page, p.count));
        // op, proc, map, arg, page, count, flags
        let (op, proc, map, arg, page, count, flags): (&str, &str, &str, String, u64, u64, Vec<&str>) = match step {
            Step::Mmap(m) => {
                let mut f = Vec::new();
                if m.share == Share::Shared {
                    f.push("F_SHARED");
                }
                if m.locked {
                    f.push("F_LOCKED");
                }
                match m.huge {
                    Some(true) => f.push("F_HUGE"),
                    Some(false) => f.push("F_NOHUGE"),
                    None => {}
                }
                let backing = match m.backing {
                    Backing::Anon => "B_ANON",
                    Backing::DevZero => "B_DEVZERO",
                    Backing::Memfd => "B_MEMFD",
                    Backing::File => "B_FILE",
                    Backing::Hugetlb => "B_HUGETLB",
                    Backing::Hugetlbfs => "B_HUGETLBFS",
                    Backing::Ext4 => unreachable!("refused above"),
                };
                if let Some((flag, ..)) = place {
                    f.push(flag);
                }
                ("OP_MMAP", &m.proc, &m.name, backing.into(), 0, m.pages, f)
            }
            Step::Munmap(r) => {
                let (page, count) = match r.page {
                    Some(p) => (p, r.pages.unwrap_or(1)),
                    None => (0, r.pages.unwrap_or(size(&sizes, &r.proc, &r.map))),
                };
                ("OP_MUNMAP", &r.proc, &r.map, "0".into(), page, count, vec![])
            }
            Step::Mprotect(x) => {
                let count = x.pages.unwrap_or(size(&sizes, &x.proc, &x.map).saturating_sub(x.page));
                let prot = match x.prot {
                    Prot::None => "PROT_NONE",
                    Prot::R => "PROT_READ",
                    Prot::Rw => "PROT_READ | PROT_WRITE",
                    Prot::Rx => "PROT_READ | PROT_EXEC",
                    Prot::Rwx => "PROT_READ | PROT_WRITE | PROT_EXEC",
                };
                ("OP_MPROTECT", &x.proc, &x.map, prot.into(), x.page, count, vec![])
            }
            Step::Mremap(x) => {
                let Some(Request::Mremap { pages, move_, dontunmap, range, to, .. }) = &request else {
                    return Err(Error(format!("step {n} (mremap): a step the runner would not send")));
                };
                let mut f = Vec::new();
                if *move_ {
                    f.push("F_MOVE");
                }
                if *dontunmap {
                    f.push("F_DONTUNMAP");
                }
                f.extend(to.iter().flat_map(mremap_flags));
                // arg: the map the moved pages become, or rejoin (F_INTO).
                let result = x.result_name().or(to.as_ref().map(|t| t.map.as_str())).unwrap_or(&x.map);
                if x.placed() {
                    // place_map, place (where it goes; -1: a fresh place), and how many
                    // pages of the map move (0: all of it).
                    let (to_map, to) = to.as_ref().map_or((-1, 0), |t| (names.map(&t.map) as i64, t.offset));
                    tail = format!(", {to_map}, {to}, {}", range.map_or(0, |(_, count)| count));
                }
                let page = range.map_or(0, |(page, _)| page);
                ("OP_MREMAP", &x.proc, &x.map, names.map(result).to_string(), page, *pages, f)
            }
            Step::Madvise(x) => {
                let count = x.pages.unwrap_or(size(&sizes, &x.proc, &x.map).saturating_sub(x.page));
                ("OP_MADVISE", &x.proc, &x.map, advice(x.advice).into(), x.page, count, vec![])
            }
            Step::Write(a) => {
                let f = if a.value.is_none() { vec!["F_TAG"] } else { vec![] };
                let value = crate::check::model::write_value(a, n);
                ("OP_WRITE", &a.proc, &a.map, format!("0x{value:02x}"), a.page, a.pages, f)
            }
            Step::Read(a) => ("OP_READ", &a.proc, &a.map, "0".into(), a.page, a.pages, vec![]),
            Step::Poke(r) => ("OP_POKE", &r.proc, &r.map, "0".into(), r.page, 1, vec![]),
            Step::Uffd(_) | Step::UffdCopy(_) | Step::UffdZeropage(_) | Step::UffdMove(_) | Step::UffdWp(_) => {
                // The agent's uffd op: a whole map registered, or a range filled,
                // moved (to place_map at place) or write-protected.
                match &request {
                    Some(Request::UffdRegister { proc, name, mode }) => {
                        ("OP_UFFD_REGISTER", proc, name, uffd_mode(*mode).into(), 0, 0, vec![])
                    }
                    Some(Request::UffdCopy { pages: p, value, tag }) => {
                        let f = if *tag { vec!["F_TAG"] } else { vec![] };
                        ("OP_UFFD_COPY", &p.proc, &p.name, format!("0x{value:02x}"), p.page, p.count, f)
                    }
                    Some(Request::UffdZeropage(p)) => {
                        ("OP_UFFD_ZEROPAGE", &p.proc, &p.name, "0".into(), p.page, p.count, vec![])
                    }
                    Some(Request::UffdMove { pages: p, to, at }) => {
                        tail = format!(", {}, {at}", names.map(to));
                        ("OP_UFFD_MOVE", &p.proc, &p.name, "0".into(), p.page, p.count, vec![])
                    }
                    Some(Request::UffdWp(p, on)) => {
                        ("OP_UFFD_WP", &p.proc, &p.name, (*on as u8).to_string(), p.page, p.count, vec![])
                    }
                    _ => return Err(Error(format!("step {n} ({}): a step the runner would not send", step.op()))),
                }
            }
            Step::Pin(x) => ("OP_PIN", &x.proc, &x.map, pin_kind(x.kind).into(), first, pages, vec![]),
            Step::Unpin(x) => ("OP_UNPIN", &x.proc, "", pin_kind(x.kind).into(), 0, 0, vec![]),
            Step::Remote(x) => {
                let Some(Request::Remote { value, tag, word, .. }) = &request else {
                    return Err(Error(format!("step {n} (remote): a step the runner would not send")));
                };
                // word: the byte writev fills the pages with, or the word ptrace pokes.
                let (kind, word) = match x.kind {
                    RemoteKind::Readv => ("R_READV", 0),
                    RemoteKind::Writev => ("R_WRITEV", u64::from(*value)),
                    RemoteKind::Ptrace => ("R_PTRACE", *word),
                };
                tail = format!(", -1, 0, 0, 0x{word:x}");
                let f = if *tag && x.kind == RemoteKind::Writev { vec!["F_TAG"] } else { vec![] };
                ("OP_REMOTE", &x.proc, &x.map, kind.into(), first, pages, f)
            }
            Step::Fork(f) => ("OP_FORK", &f.proc, "", names.proc(&f.child).to_string(), 0, 0, vec![]),
            Step::Exit(p) => ("OP_EXIT", &p.proc, "", "0".into(), 0, 0, vec![]),
            Step::Findpage(r) => ("OP_FINDPAGE", &r.proc, &r.map, "0".into(), r.page, 1, vec![]),
            // The module's VMA listing: nothing a program can do or see from userspace.
            Step::Findtask(p) => ("OP_NOP", &p.proc, "", "0".into(), 0, 0, vec![]),
            Step::Check(_) => ("OP_CHECK", FIRST_PROC, "", "0".into(), 0, 0, vec![]),
            Step::Ksm(k) => ("OP_KSM", FIRST_PROC, "", "0".into(), 0, k.timeout_ms.unwrap_or(2000), vec![]),
            Step::Split(r) => {
                let (page, count) = span(r.page, r.pages, size(&sizes, &r.proc, &r.map));
                ("OP_SPLIT", &r.proc, &r.map, "0".into(), page, count, vec![])
            }
            Step::Migrate(x) => {
                let (page, count) = span(x.page, x.pages, size(&sizes, &x.proc, &x.map));
                let node = x.node.map(|n| n.to_string()).unwrap_or_else(|| "-1".into());
                ("OP_MIGRATE", &x.proc, &x.map, node, page, count, vec![])
            }
            Step::Compact(_) => ("OP_COMPACT", FIRST_PROC, "", "0".into(), 0, 0, vec![]),
            Step::Reclaim(r) => {
                let pages = r.pages.unwrap_or(scenario::MAX_RECLAIM_PAGES);
                ("OP_RECLAIM", FIRST_PROC, "", "0".into(), 0, pages, vec![])
            }
            Step::Mlock(x) => {
                let (page, count) = span(x.page, x.pages, size(&sizes, &x.proc, &x.map));
                let flags = if x.onfault { "MLOCK_ONFAULT" } else { "0" };
                ("OP_MLOCK", &x.proc, &x.map, flags.into(), page, count, vec![])
            }
            Step::Munlock(r) => {
                let (page, count) = span(r.page, r.pages, size(&sizes, &r.proc, &r.map));
                ("OP_MUNLOCK", &r.proc, &r.map, "0".into(), page, count, vec![])
            }
            Step::Mlockall(x) => {
                let mut f: Vec<&str> = Vec::new();
                for (on, name) in [(x.current, "MCL_CURRENT"), (x.future, "MCL_FUTURE"), (x.onfault, "MCL_ONFAULT")] {
                    if on {
                        f.push(name);
                    }
                }
                if f.is_empty() {
                    return Err(Error(format!("step {n} (mlockall): neither current nor future")));
                }
                ("OP_MLOCKALL", &x.proc, "", f.join(" | "), 0, 0, vec![])
            }
            Step::Munlockall(p) => ("OP_MUNLOCKALL", &p.proc, "", "0".into(), 0, 0, vec![]),
            Step::Truncate(x) => ("OP_TRUNCATE", &x.proc, &x.map, "0".into(), 0, x.pages, vec![]),
            Step::Punch(r) => ("OP_PUNCH", &r.proc, &r.map, "0".into(), first, pages, vec![]),
            Step::Msync(_) | Step::Fsync(_) | Step::Sync(_) | Step::DropCaches(_) => unreachable!("refused above"),
        };
        let map = if map.is_empty() { "-1".to_string() } else { names.map(map).to_string() };
        let flags = if flags.is_empty() { "0".to_string() } else { flags.join(" | ") };
        rows.push(format!("{{ {op}, {}, {map}, {arg}, {page}, {count}, {flags}, {text}{tail} }}", names.proc(proc)));
        track_sizes(&mut sizes, step);
    }
    Ok(rows)
}

/// The flags of an mremap's place: over what is mapped there, back into its map.
fn mremap_flags(t: &Target) -> impl Iterator<Item = &'static str> {
    let over = if t.over { Some("F_OVER") } else { None };
    let into = if t.into { Some("F_INTO") } else { None };
    std::iter::once("F_TO").chain(over).chain(into)
}

/// The agent's register modes: MISSING, WP or both.
fn uffd_mode(m: UffdMode) -> &'static str {
    match m {
        UffdMode::Missing => "UFFD_MISSING",
        UffdMode::Wp => "UFFD_WP",
        UffdMode::Both => "UFFD_MISSING | UFFD_WP",
    }
}

fn pin_kind(k: PinKind) -> &'static str {
    match k {
        PinKind::Uring => "PIN_URING",
        PinKind::Vmsplice => "PIN_VMSPLICE",
    }
}

fn advice(a: Advice) -> &'static str {
    match a {
        Advice::Dontneed => "MADV_DONTNEED",
        Advice::Dontfork => "MADV_DONTFORK",
        Advice::Dofork => "MADV_DOFORK",
        Advice::Wipeonfork => "MADV_WIPEONFORK",
        Advice::Keeponfork => "MADV_KEEPONFORK",
        Advice::Mergeable => "MADV_MERGEABLE",
        Advice::Unmergeable => "MADV_UNMERGEABLE",
        Advice::Hugepage => "MADV_HUGEPAGE",
        Advice::Nohugepage => "MADV_NOHUGEPAGE",
        Advice::Collapse => "MADV_COLLAPSE",
        Advice::Pageout => "MADV_PAGEOUT",
        Advice::Cold => "MADV_COLD",
        Advice::Free => "MADV_FREE",
        Advice::Remove => "MADV_REMOVE",
    }
}

/// One predicted slot at a check step (see `struct slot` in runtime.c).
#[derive(Debug, Clone, PartialEq, Eq)]
struct SlotRow {
    step: usize,
    proc: usize,
    map: usize,
    page: u64,
    judge: bool,
    /// > 0: the frame it shares with its group; 0: nothing mapped; -1: not predicted.
    group: i64,
    value: u8,
    tag: Option<u64>,
    may_be_zero: bool,
    /// ksmd gave it an rmap_item at the last `ksm` step (a mergeable VMA's page).
    ksm_item: bool,
}

/// What the model predicts on one kernel semantics.
struct Predictions {
    /// Every slot at every check and findpage step.
    slots: Vec<SlotRow>,
    /// The reads and writes that get SIGBUS, or that the model cannot say of.
    sigbus: Vec<Access>,
    /// What each UFFDIO_COPY, ZEROPAGE and MOVE does.
    uffd: Vec<UffdRow>,
}

/// A read or write whose SIGBUS is its result (the runner's `Model::access_stop`):
/// past the end of the file under its map, or where userfaultfd would have to answer
/// the fault (UFFD_FEATURE_SIGBUS).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Access {
    step: usize,
    /// The page it stops at; `None`: it does not fault.
    stop: Option<u64>,
    /// The stop is userfaultfd's, not the file's end.
    uffd: bool,
    /// A registered map's page the model cannot follow (THP, KSM, swap): a surprise
    /// voids the model, as in the runner.
    unsure: bool,
}

/// What a UFFDIO_COPY, ZEROPAGE or MOVE step does (`Model::uffd_result`): `done`
/// pages, then `errno` (0: all done).
#[derive(Debug, Clone, PartialEq, Eq)]
struct UffdRow {
    step: usize,
    done: u64,
    errno: i32,
    /// Pages the model cannot follow: a different result voids it instead.
    unsure: bool,
    /// A move's maps are VMAs the model is certain of (else an EINVAL refusal voids
    /// the model instead of failing).
    certain: bool,
}

/// The model's predictions, on a kernel of `release`'s VMA semantics and `page_size`
/// pages.
fn predictions(s: &Scenario, names: &Names, release: &str, page_size: u64) -> Predictions {
    let mut sigbus = Vec::new();
    let mut uffd = Vec::new();
    // Which maps are registered, as the runner's World knows it.
    let mut world = scenario::World::new();
    let mut model = Model::for_release(release).with_mthp(&s.mthp).with_page_size(page_size);
    let mut sizes: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut rows = Vec::new();
    // The slots ksmd scanned at the last ksm step, as the runner records its items.
    let mut ksm_items: std::collections::BTreeSet<(String, String, u64)> = Default::default();
    for (i, step) in s.steps.iter().enumerate() {
        if let Step::Ksm(_) = step {
            ksm_items = sizes
                .iter()
                .flat_map(|((p, m), len)| (0..*len).map(move |page| (p.clone(), m.clone(), page)))
                .filter(|(p, m, page)| model.frame(p, m, *page).is_some() && model.mergeable(p, m, *page))
                .collect();
        }
        let judged: Option<(&str, &str, u64)> = match step {
            Step::Check(_) => None,
            Step::Findpage(r) => Some((&r.proc, &r.map, r.page)),
            _ => {
                if let Step::Write(a) | Step::Read(a) = step {
                    let stop = model.access_stop(&a.proc, &a.map, a.page, a.pages, matches!(step, Step::Write(_)));
                    let uffd = stop.is_some() && stop != model.sigbus_at(&a.proc, &a.map, a.page, a.pages);
                    let unsure = world.uffd_mode(&a.proc, &a.map).is_some()
                        && model.uffd_unsure(&a.proc, &a.map, a.page, a.pages);
                    if stop.is_some() || unsure {
                        sigbus.push(Access { step: i, stop, uffd, unsure });
                    }
                }
                uffd.extend(uffd_prediction(&model, i, step));
                track_sizes(&mut sizes, step);
                model.apply(step);
                let _ = world.apply(step);
                continue;
            }
        };
        let mut groups: BTreeMap<Frame, i64> = BTreeMap::new();
        let procs: Vec<String> = model.procs().cloned().collect();
        for proc in &procs {
            for ((_, map), len) in sizes.iter().filter(|((p, _), _)| p == proc) {
                for page in 0..*len {
                    let Some(bytes) = model.contents(proc, map, page) else { continue };
                    let slot = (proc.clone(), map.clone(), page);
                    let predictable = !model.unpredictable.contains_key(&slot) && !model.paged_out.contains(&slot);
                    let group = match model.frame(proc, map, page) {
                        _ if !predictable => -1,
                        None => 0,
                        Some(Frame::Zero) => -1,
                        Some(f) => {
                            let next = groups.len() as i64 + 1;
                            *groups.entry(f).or_insert(next)
                        }
                    };
                    let judge = judged.is_none_or(|(p, m, g)| p == proc && m == map && g == page);
                    let ksm_item = ksm_items.contains(&slot);
                    rows.push(SlotRow {
                        step: i,
                        proc: names.proc(proc),
                        map: names.map(map),
                        page,
                        judge,
                        group,
                        value: bytes.value,
                        tag: bytes.tag,
                        may_be_zero: bytes.may_be_zero,
                        ksm_item,
                    });
                }
            }
        }
        model.apply(step);
        let _ = world.apply(step);
    }
    Predictions { slots: rows, sigbus, uffd }
}

/// The model's result of a UFFDIO_COPY, ZEROPAGE or MOVE step, judged as the runner's
/// `uffd` judges it.
fn uffd_prediction(model: &Model, i: usize, step: &Step) -> Option<UffdRow> {
    let predicted = model.uffd_result(step)?;
    let certain_vmas =
        |proc: &str, maps: [&str; 2]| maps.iter().all(|m| model.vmas(proc, m).is_some_and(|v| v.merges_certain));
    let (unsure, certain) = match step {
        Step::UffdMove(x) => (
            model.uffd_unsure(&x.proc, &x.map, x.page, x.pages)
                || model.uffd_unsure(&x.proc, &x.to.map, x.to.page, x.pages),
            certain_vmas(&x.proc, [&x.map, &x.to.map]),
        ),
        Step::UffdCopy(a) => (model.uffd_unsure(&a.proc, &a.map, a.page, a.pages), true),
        Step::UffdZeropage(x) => (model.uffd_unsure(&x.proc, &x.map, x.page, x.pages), true),
        _ => return None,
    };
    Some(UffdRow { step: i, done: predicted.done, errno: predicted.errno.unwrap_or(0), unsure, certain })
}

/// The map sizes the runner keeps (mmap and mremap set them, fork copies them). A
/// moved range sizes the map it becomes; a move back, none.
fn track_sizes(sizes: &mut BTreeMap<(String, String), u64>, step: &Step) {
    match step {
        Step::Mmap(m) => {
            sizes.insert((m.proc.clone(), m.name.clone()), m.pages);
        }
        Step::Mremap(x) => {
            if let Some(name) = x.result_name() {
                sizes.insert((x.proc.clone(), name.to_string()), x.new_size());
            }
        }
        Step::Fork(f) => {
            let inherited: Vec<_> =
                sizes.iter().filter(|((p, _), _)| *p == f.proc).map(|((_, m), s)| (m.clone(), *s)).collect();
            for (m, s) in inherited {
                sizes.insert((f.child.clone(), m), s);
            }
        }
        _ => {}
    }
}

/// A C flags expression: the names that are set, or 0.
fn c_flags(flags: &[(bool, &str)]) -> String {
    let set: Vec<&str> = flags.iter().filter(|(on, _)| *on).map(|(_, name)| *name).collect();
    if set.is_empty() {
        "0".to_string()
    } else {
        set.join(" | ")
    }
}

fn slot_table(w: &mut String, name: &str, count: &str, rows: &[SlotRow]) {
    let _ = writeln!(w, "/* step, proc, map, flags, value, group, page, tag */");
    let _ = writeln!(w, "static const struct slot {name}[] = {{");
    for r in rows {
        let flags = c_flags(&[
            (r.judge, "S_JUDGE"),
            (r.tag.is_some(), "S_TAGGED"),
            (r.may_be_zero, "S_MAY_BE_ZERO"),
            (r.ksm_item, "S_KSM_ITEM"),
        ]);
        let _ = writeln!(
            w,
            "\t{{ {}, {}, {}, {flags}, 0x{:02x}, {}, {}, {} }},",
            r.step,
            r.proc,
            r.map,
            r.value,
            r.group,
            r.page,
            r.tag.unwrap_or(0)
        );
    }
    // An empty initializer is not C: a terminator keeps the array valid.
    let _ = writeln!(w, "\t{{ 0xffff, 0, 0, 0, 0, -1, 0, 0 }},\n}};");
    let _ = writeln!(w, "#define {count} {}\n", rows.len());
}

fn sigbus_table(w: &mut String, name: &str, rows: &[Access]) {
    let _ = writeln!(w, "/* step, page, flags */\nstatic const struct sigbus {name}[] = {{");
    for r in rows {
        let flags = c_flags(&[(r.stop.is_some(), "SB_EXPECT"), (r.uffd, "SB_UFFD"), (r.unsure, "SB_UNSURE")]);
        let _ = writeln!(w, "\t{{ {}, {}, {flags} }},", r.step, r.stop.unwrap_or(0));
    }
    let _ = writeln!(w, "\t{{ 0xffff, 0, 0 }},\n}};\n");
}

fn uffd_table(w: &mut String, name: &str, rows: &[UffdRow]) {
    let _ = writeln!(w, "/* step, flags, errno, pages done */\nstatic const struct uffd_result {name}[] = {{");
    for r in rows {
        let flags = c_flags(&[(r.unsure, "UR_UNSURE"), (r.certain, "UR_CERTAIN")]);
        let name = Errno(r.errno).name();
        let errno = if name.starts_with('E') { name } else { r.errno.to_string() };
        let _ = writeln!(w, "\t{{ {}, {flags}, {errno}, {} }},", r.step, r.done);
    }
    let _ = writeln!(w, "\t{{ 0xffff, 0, 0, 0 }},\n}};\n");
}

/// The header comment: what the program shows, where it was found, the steps.
fn header(s: &Scenario, about: &About, page_size: u64, sigbus: bool, uffd: bool) -> String {
    let mut out = String::from("// SPDX-License-Identifier: GPL-2.0\n/*\n");
    let mut line = |l: &str| {
        let l = l.replace("*/", "* /");
        out.push_str(if l.is_empty() { " *\n".to_string() } else { wrap(&l) }.as_str());
    };
    line(&format!("{}: {}", s.name, s.about));
    if let Some(t) = &about.title {
        line("");
        line(&format!("What it shows: {t}"));
    }
    for p in &about.problems {
        line(&format!("  {p}"));
    }
    if let Some(k) = &about.found_on {
        line(&format!("Found by rmapcheck on kernel {k}."));
    }
    if let Some(b) = &s.known_bug {
        line("");
        line(&format!(
            "A known kernel bug (docs/FINDINGS.md \"{}\"), expected on {}: {} \"{}\".",
            b.finding,
            b.on.join(", "),
            b.check,
            b.says
        ));
    }
    line("");
    line("The scenario (rmapcheck's YAML), played step by step: p0 and every");
    line("process it forks run the steps they own, sequenced over pipes by a");
    line("root orchestrator, which checks at each check/findpage step what");
    line("userspace sees against rmapcheck's model: sharing (pagemap PFNs),");
    line("page contents (/proc/PID/mem), PM_MMAP_EXCLUSIVE, /proc/kpagecount,");
    if about.o1 {
        line("the rmap walk (move_pages to another node, as kselftest mm/rmap.c),");
    }
    line("and any kernel splat in /dev/kmsg.");
    if sigbus {
        line("A read or write past a file's end must get SIGBUS (caught: the step's");
        line("result) at the page the model says, and no other access one.");
    }
    if uffd {
        line("userfaultfd as the agent uses it: no thread reads the fd;");
        line("UFFD_FEATURE_SIGBUS turns each fault it would report into SIGBUS, the");
        line("read's or write's result where the model says; UFFDIO_COPY, ZEROPAGE and");
        line("MOVE must do as many pages and stop with the errno the model says.");
    }
    line("");
    line("A write fills each page with one byte (the step's number + 1 unless it");
    line("gives a value) and, without a value, puts the page's index in its first");
    line("8 bytes; a huge: true map is PMD-aligned with MADV_HUGEPAGE.");
    line("");
    for (i, step) in s.steps.iter().enumerate() {
        line(&format!("  {:>3}. {}", i + 1, scenario::step_yaml(step)));
    }
    if !s.mthp.is_empty() {
        line(&format!("  (with {} per-size THP setting(s), applied at start)", s.mthp.len()));
    }
    if !s.expect.is_empty() {
        line("The scenario's expect: block is the module's view and is not checked here.");
    }
    line("");
    line(&format!("Generated by `rmapcheck repro --c` for {} KiB pages.", page_size / 1024));
    line("Build: gcc -static -O2 -o repro repro.c   (arm64, x86-64)");
    line("Run as root. It prints PASS and exits 0, or FAIL: <what> and exits 1;");
    line("SETUP: <why> and exit 2 when it cannot run here.");
    out.push_str(" */\n");
    out
}

/// A header comment line, wrapped at 80 columns with its indent kept.
fn wrap(l: &str) -> String {
    let indent: String = l.chars().take_while(|c| *c == ' ').collect();
    let mut out = String::new();
    let mut cur = String::new();
    for word in l.split_whitespace() {
        if !cur.is_empty() && 3 + cur.len() + 1 + word.len() > 80 {
            out.push_str(&format!(" * {cur}\n"));
            cur = format!("{indent}  ");
        } else if !cur.is_empty() && !cur.ends_with(' ') {
            cur.push(' ');
        } else if cur.is_empty() {
            cur.push_str(&indent);
        }
        cur.push_str(word);
    }
    out.push_str(&format!(" * {cur}\n"));
    out
}

/// A C string literal.
fn c_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "\\{b:03o}");
                }
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests;
