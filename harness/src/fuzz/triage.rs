//! Failure identity and records: the normalised title that deduplicates failures, and
//! the folder each unique failure gets under `--out`.

use crate::cache;
use crate::check::dmesg;
use crate::check::oracle::{Check, Problem};
use crate::check::outcome::Outcome;
use crate::vm::guest::Fault;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The checks that make a fuzz run fail, most severe first. Expectations are not among
/// them: generated scenarios have none.
const FAILING: [Check; 8] =
    [Check::O3, Check::O1, Check::O2, Check::O5, Check::O4, Check::O6, Check::Module, Check::Step];

/// Every failure title of an outcome, most severe first, without repeats.
pub fn titles(o: &Outcome) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for check in FAILING {
        if check == Check::O3 {
            out.extend(o.splats.iter().map(|s| format!("O3: {}", s.title)));
            // Taint with no splat lines (they were lost, or the kernel printed none)
            // is a failure of its own.
            if o.splats.is_empty() {
                out.extend(o.problems.iter().filter(|p| p.check == Check::O3).map(Problem::title));
            }
            continue;
        }
        out.extend(o.problems.iter().filter(|p| p.check == check).map(Problem::title));
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|t| seen.insert(t.clone()));
    out
}

/// The title of a guest fault: the first splat on its console (an Oops, a BUG, a WARN),
/// else the panic line, else only how it failed (hang, died).
pub fn fault_title(f: &Fault) -> String {
    if let Some(splat) = f.splat() {
        return format!("O3: {}", splat.title);
    }
    match f {
        Fault::Died { panic, .. } if !panic.is_empty() => {
            format!("O3: {}", dmesg::normalise_title(panic.trim_start_matches(": ")))
        }
        other => format!("guest {}", other.cause()),
    }
}

/// A file-name-safe form of a title, at most 60 characters, plus a short hash so two
/// titles never share a folder.
pub fn folder_name(title: &str) -> String {
    let mut slug = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= 60 {
            break;
        }
    }
    let hash = cache::Key::new().part("title", title).short();
    format!("{}-{}", slug.trim_matches('-'), &hash[..8.min(hash.len())])
}

/// The kernel options a report of an rmap finding states, in this order.
const MM_OPTIONS: &[&str] = &[
    "ARM64_4K_PAGES",
    "ARM64_16K_PAGES",
    "TRANSPARENT_HUGEPAGE",
    "TRANSPARENT_HUGEPAGE_ALWAYS",
    "TRANSPARENT_HUGEPAGE_MADVISE",
    "PAGE_MAPCOUNT",
    "NO_PAGE_MAPCOUNT",
    "MM_ID",
    "KSM",
    "MIGRATION",
    "NUMA",
    "SWAP",
    "DEBUG_VM",
    "PAGE_TABLE_CHECK",
    "PAGE_TABLE_CHECK_ENFORCED",
    "KASAN",
    "KCOV",
];

/// The mm options of a kernel's config, as .config lines (`# ... is not set` for the
/// ones it lacks).
pub fn mm_config(config: &crate::image::kconfig::Kconfig) -> Vec<String> {
    MM_OPTIONS
        .iter()
        .map(|o| match config.get(&format!("CONFIG_{o}")) {
            Some(v) if v != "n" => format!("CONFIG_{o}={v}"),
            _ => format!("# CONFIG_{o} is not set"),
        })
        .collect()
}

/// What a finding's report.txt is made of.
pub struct ReportParts<'a> {
    pub title: &'a str,
    /// `6.12 (6.12.117+deb12-arm64, gcc-12, 4k pages)`.
    pub kernel: String,
    /// Module parameters the campaign set (a planted bug), empty for none.
    pub module_params: String,
    /// The failing run's problems, notes and decoded stacks.
    pub failure: String,
    pub shrunk_yaml: &'a str,
    /// How shrinking went (`shrunk 60 -> 5 steps in 40 re-runs`).
    pub shrinking: &'a str,
    pub replay: &'a str,
    pub step: &'a str,
    pub config: Vec<String>,
    /// The failing run in full, as the text report has it.
    pub full_report: String,
}

/// report.txt in the order a kernel developer reads a report: what broke on which
/// kernel, the reproducer and how to run it, the config, then the whole run.
pub fn upstream_report(p: &ReportParts) -> String {
    let mut out = format!(
        "{}

kernel: {}
",
        p.title, p.kernel
    );
    if !p.module_params.is_empty() {
        out.push_str(&format!(
            "module parameters (a planted bug): {}
",
            p.module_params
        ));
    }
    out.push_str(&format!(
        "
== What is wrong ==
{}",
        p.failure
    ));
    out.push_str(&format!(
        "
== Reproducer (rmapcheck scenario; {}) ==
{}",
        p.shrinking, p.shrunk_yaml
    ));
    out.push_str(&format!(
        "
== How to run it ==
{}
{}
console.log in this folder holds the guest's whole console; full.yaml the run \
         as generated.
",
        p.replay, p.step
    ));
    if !p.config.is_empty() {
        out.push_str(&format!(
            "
== Kernel config (the mm options) ==
{}
",
            p.config.join("\n")
        ));
    }
    out.push_str(&format!(
        "
== The failing run in full ==
{}",
        p.full_report
    ));
    out
}

/// What goes into one failure's folder.
pub struct Record<'a> {
    pub title: &'a str,
    pub summary: &'a str,
    pub full_yaml: &'a str,
    pub shrunk_yaml: &'a str,
    /// The report of the failing run, as text.
    pub report: &'a str,
    pub console_log: &'a Path,
    /// The shrunk scenario as a C program (`report::repro`), empty when it has none.
    pub repro_c: &'a str,
}

/// Write the folder `out/<folder_name(title)>` atomically: it appears whole or not at
/// all. An existing folder of the same title (an earlier campaign) is kept and the new
/// one gets a numbered name.
pub fn save(out: &Path, r: &Record) -> Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempdir_in(out)
        .with_context(|| format!("creating a temporary dir in {}", out.display()))?;
    let dir = tmp.path();
    let console = std::fs::read(r.console_log).unwrap_or_default();
    for (name, bytes) in [
        ("title.txt", format!("{}\n", r.title).into_bytes()),
        ("summary.txt", format!("{}\n", r.summary).into_bytes()),
        ("full.yaml", r.full_yaml.as_bytes().to_vec()),
        ("shrunk.yaml", r.shrunk_yaml.as_bytes().to_vec()),
        ("report.txt", r.report.as_bytes().to_vec()),
        ("console.log", console),
    ] {
        std::fs::write(dir.join(name), bytes).with_context(|| format!("writing {name} in {}", dir.display()))?;
    }
    if !r.repro_c.is_empty() {
        std::fs::write(dir.join("repro.c"), r.repro_c)
            .with_context(|| format!("writing repro.c in {}", dir.display()))?;
    }
    let base = folder_name(r.title);
    let mut target = out.join(&base);
    let mut n = 2;
    while target.exists() {
        target = out.join(format!("{base}-{n}"));
        n += 1;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, &target).with_context(|| format!("renaming into {}", target.display()))?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::check::contents::{Contents, Mismatch};
    use crate::check::model::{Bytes, Reason, Slot, Why};
    use crate::check::problem::{Errno, ProblemKind};

    fn slot(p: &str, m: &str, i: u64) -> Slot {
        (p.into(), m.into(), i)
    }

    fn title(kind: ProblemKind) -> String {
        Problem::new(kind).title()
    }

    /// An O1 miss: `missed` is whom the walk missed of `all`.
    fn o1(at: Slot, pfn: u64, all: &[Slot], missed: &[Slot], extra: &[Slot]) -> ProblemKind {
        ProblemKind::WalkMismatch {
            at,
            pfn,
            page_kind: "anon".into(),
            forward: all.to_vec(),
            reverse: all.iter().filter(|s| !missed.contains(s)).chain(extra).cloned().collect(),
            missing: missed.to_vec(),
            extra: extra.to_vec(),
            strays: Vec::new(),
            addresses: Default::default(),
        }
    }

    /// Dedup: one bucket for one kind whatever its pfns, slots and counts; another for
    /// another kind, or another op or errno.
    #[test]
    fn titles_ignore_where_and_numbers_but_keep_what() {
        let (c1, c2, p0) = (slot("c1", "m3", 2), slot("c2", "m3", 2), slot("p0", "m3", 2));
        let a = title(o1(p0.clone(), 0x4a1c2, &[c1.clone(), c2.clone(), p0.clone()], std::slice::from_ref(&c2), &[]));
        let (c4, c5, q0) = (slot("c4", "m0", 0), slot("c5", "m0", 0), slot("p0", "m0", 0));
        let b = title(o1(c4.clone(), 0x51000, &[c4.clone(), c5.clone(), q0.clone()], &[q0.clone(), c5], &[]));
        assert_eq!(a, b);
        assert_eq!(a, "O1: pagemap maps pfn at [..] but the rmap walk found [..]; the walk missed SLOT");
        let extra = title(o1(p0.clone(), 0x4a1c2, std::slice::from_ref(&p0), &[], std::slice::from_ref(&c1)));
        assert_ne!(a, extra);
        let mapcount = |mapcount, ptes| title(ProblemKind::Mapcount { at: c1.clone(), mapcount, ptes });
        assert_eq!(mapcount(3, 2), mapcount(5, 1));
        assert_eq!(mapcount(3, 2), "O2: mapcount # but the walk found # mapping PTEs");
        let o5 = |at: Slot, first: u64, value: u8, step: usize| {
            title(ProblemKind::Contents(Mismatch {
                slot: at,
                seen: Contents::Mixed { first, digest: first ^ 0xff },
                want: Bytes {
                    value,
                    tag: None,
                    may_be_zero: false,
                    rest_may_be_zero: false,
                    by: Some(("p0".into(), step)),
                },
            }))
        };
        assert_eq!(o5(slot("p0", "s", 0), 0x0404, 4, 4), o5(slot("c2", "m1", 3), 0x1111, 0x11, 17));
        let step = |n, op: &str, errno| {
            title(ProblemKind::StepFailed { n, op: op.into(), errno: Errno(errno), msg: op.into() })
        };
        assert_eq!(step(12, "mremap", 14), step(3, "mremap", 14));
        assert_eq!(step(12, "mremap", 14), "Step: mremap failed with EFAULT (mremap)");
        assert_ne!(step(12, "mremap", 14), step(12, "mremap", 12), "another errno is another failure");
        assert_ne!(step(12, "mremap", 14), step(12, "munmap", 14), "another op is another failure");
        // O4 by the model's reason, not the processes it names.
        let o4 = |at: Slot, reason, fork: Option<(&str, &str)>| {
            let fork = fork.map(|(c, p)| (c.to_string(), p.to_string()));
            title(ProblemKind::Sharing {
                at: at.clone(),
                expected: vec![at],
                why: Why { reason, fork },
                observed: Vec::new(),
            })
        };
        let forked = o4(slot("c1", "a", 0), Reason::Fork, Some(("c1", "p0")));
        assert_eq!(forked, o4(slot("c7", "b", 3), Reason::Fork, Some(("c7", "c2"))));
        assert_ne!(forked, o4(slot("c1", "a", 0), Reason::Cow, None));
        assert_eq!(
            forked,
            "O4: the model expects it shared by [..] (fork: a child shares its parent's private pages until a write), the kernel has [..]"
        );
    }

    /// The title is built from the kind's fields, never from its message: the same kind
    /// read back from results JSON as text (what a title from the message would see)
    /// gets its own title, and a live problem's title shares none of its message's values.
    #[test]
    fn titles_do_not_read_the_message() {
        let p = Problem::new(ProblemKind::SwapStillMapped {
            by: crate::check::problem::SwapOut::Pageout,
            pfn: 0x2a0,
            first: slot("p0", "a", 0),
            holder: slot("c1", "a", 0),
        });
        let saved: Problem = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
        assert_eq!(saved.message(), p.message());
        assert_ne!(saved.title(), p.title());
        assert_eq!(p.title(), "O1: pageout: pfn was swapped out for SLOT but SLOT still maps it");
    }

    /// O3 comes first, by its splat's title; taint alone is a failure of its own.
    #[test]
    fn an_outcomes_titles_are_most_severe_first_and_unique() {
        let json = serde_json::json!({
            "scenario": "s", "file": "scenarios/s.yaml", "kernel": "6.12", "release": "r", "page_size": 4096,
            "status": "fail", "findpages": [], "findtasks": [], "forks": [], "checks": [], "problems": [],
            "model_mismatches": [], "notes": [], "splats": [], "duration_ms": 1
        });
        let mut o: Outcome = serde_json::from_value(json).unwrap();
        let (c1, p0) = (slot("c1", "a", 0), slot("p0", "a", 0));
        for at in [c1.clone(), p0.clone()] {
            o.problems.push(Problem::new(o1(at, 0x10, &[c1.clone(), p0.clone()], std::slice::from_ref(&c1), &[])));
        }
        o.problems.push(Problem::new(ProblemKind::Tainted { flags: "W".into() }));
        assert_eq!(
            titles(&o),
            [
                "O3: the kernel is newly tainted: W",
                "O1: pagemap maps pfn at [..] but the rmap walk found [..]; the walk missed SLOT"
            ]
        );
    }

    #[test]
    fn a_report_reads_in_the_order_a_kernel_developer_reads_one() {
        let config =
            crate::image::kconfig::Kconfig::parse("CONFIG_KSM=y\nCONFIG_DEBUG_VM=y\n# CONFIG_KASAN is not set\n");
        let lines = mm_config(&config);
        assert!(lines.contains(&"CONFIG_KSM=y".to_string()) && lines.contains(&"CONFIG_DEBUG_VM=y".to_string()));
        assert!(lines.contains(&"# CONFIG_KASAN is not set".to_string()) && lines.len() == MM_OPTIONS.len());
        let text = upstream_report(&ReportParts {
            title: "O1: the walk missed SLOT",
            kernel: "6.12 (6.12.117, gcc-12, 4k pages)".into(),
            module_params: String::new(),
            failure: "problem O1: findpage p0 m0[3]: the walk missed c2 m0[3]\n".into(),
            shrunk_yaml: "steps:\n  - check: all\n",
            shrinking: "shrunk 60 -> 7 steps in 49 re-runs",
            replay: "rmapcheck run --kernel 6.12 shrunk.yaml",
            step: "rmapcheck replay --step --kernel 6.12 shrunk.yaml",
            config: lines,
            full_report: "FAIL fuzz-s7-r7 on 6.12\n".into(),
        });
        let order = [
            "O1: the walk",
            "kernel: 6.12",
            "== What is wrong",
            "missed c2",
            "== Reproducer",
            "steps:",
            "== How to run it",
            "rmapcheck run",
            "== Kernel config",
            "CONFIG_KSM=y",
            "== The failing run",
            "FAIL fuzz",
        ];
        let at: Vec<usize> =
            order.iter().map(|w| text.find(w).unwrap_or_else(|| panic!("{w} missing:\n{text}"))).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "out of order:\n{text}");
        assert!(!text.contains("module parameters"), "{text}");
    }

    #[test]
    fn folder_names_are_safe_and_distinct() {
        let a = folder_name("O1: pagemap maps pfn at [..] but the rmap walk found [..]; the walk missed SLOT");
        assert!(a.starts_with("o1-pagemap-maps-pfn-at-but-the-rmap"), "{a}");
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        assert_ne!(a, folder_name("O1: pagemap maps pfn at [..] but the rmap walk found [..]; the walk missed"));
    }

    #[test]
    fn save_is_atomic_and_keeps_older_records() {
        let out = tempfile::tempdir().unwrap();
        let console = out.path().join("c.log");
        std::fs::write(&console, "boot\n").unwrap();
        let r = Record {
            title: "O1: x",
            summary: "one line",
            full_yaml: "a",
            shrunk_yaml: "b",
            report: "r",
            console_log: &console,
            repro_c: "int main(void) { return 0; }\n",
        };
        let first = save(out.path(), &r).unwrap();
        let second = save(out.path(), &r).unwrap();
        assert_ne!(first, second);
        assert_eq!(std::fs::read_to_string(first.join("console.log")).unwrap(), "boot\n");
        assert_eq!(std::fs::read_to_string(second.join("shrunk.yaml")).unwrap(), "b");
        assert!(first.join("repro.c").is_file(), "a finding folder holds its C reproducer");
        let leftovers: Vec<_> = std::fs::read_dir(out.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
