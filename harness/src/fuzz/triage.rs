//! Failure identity and records: the normalised title that deduplicates failures, and
//! the folder each unique failure gets under `--out`.

use crate::cache;
use crate::check::dmesg;
use crate::check::oracle::{Check, Problem};
use crate::check::outcome::Outcome;
use crate::vm::guest::Fault;
use anyhow::{Context, Result};
use regex::Regex;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The checks that make a fuzz run fail, most severe first. Expectations are not among
/// them: generated scenarios have none.
const FAILING: [Check; 7] = [Check::O3, Check::O1, Check::O2, Check::O5, Check::O4, Check::Module, Check::Step];

/// A problem's title: its check and its message with labels, addresses and numbers
/// stripped, so the same bug in another process or map gets the same title.
pub fn problem_title(p: &Problem) -> String {
    static RES: OnceLock<[Regex; 4]> = OnceLock::new();
    let res = RES.get_or_init(|| {
        [
            // `findpage p0 m3[2]: ` and `step 12 (mremap): ` name where, not what.
            Regex::new(r"^(findpage \S+ \S+|findtask \S+|step \d+ \((\w+)\)): ").unwrap(),
            // A slot, `c1.2 m3[4]`.
            Regex::new(r"[\w.-]+ [\w.-]+\[\d+\]").unwrap(),
            // Lists of slots.
            Regex::new(r"\[[^\[\]]*\]").unwrap(),
            Regex::new(r"\bpfn #").unwrap(),
        ]
    });
    let msg = res[0]
        .replace(&p.message, |c: &regex::Captures| c.get(2).map(|op| format!("{} ", op.as_str())).unwrap_or_default());
    let msg = res[1].replace_all(&msg, "SLOT");
    let msg = res[2].replace_all(&msg, "[..]");
    let msg = dmesg::normalise_title(&msg);
    let msg = res[3].replace_all(&msg, "pfn");
    format!("{:?}: {msg}", p.check)
}

/// Every failure title of an outcome, most severe first, without repeats.
pub fn titles(o: &Outcome) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for check in FAILING {
        if check == Check::O3 {
            out.extend(o.splats.iter().map(|s| format!("O3: {}", s.title)));
            // Taint with no splat lines (they were lost, or the kernel printed none)
            // is a failure of its own.
            if o.splats.is_empty() {
                out.extend(o.problems.iter().filter(|p| p.check == Check::O3).map(problem_title));
            }
            continue;
        }
        out.extend(o.problems.iter().filter(|p| p.check == check).map(problem_title));
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

    fn title(check: Check, msg: &str) -> String {
        problem_title(&Problem::new(check, msg))
    }

    #[test]
    fn titles_ignore_where_and_numbers_but_keep_what() {
        let a = title(
            Check::O1,
            "findpage p0 m3[2]: pagemap maps pfn 0x4a1c2 at [c1 m3[2], c2 m3[2], p0 m3[2]] but the rmap walk found [c1 m3[2], p0 m3[2]]; the walk missed c2 m3[2]",
        );
        let b = title(
            Check::O1,
            "findpage c4 m0[0]: pagemap maps pfn 0x51000 at [c4 m0[0], c5 m0[0], c6 m0[0], p0 m0[0]] but the rmap walk found [c4 m0[0], c5 m0[0], c6 m0[0]]; the walk missed p0 m0[0]",
        );
        assert_eq!(a, b);
        assert_eq!(a, "O1: pagemap maps pfn at [..] but the rmap walk found [..]; the walk missed SLOT");
        let extra = title(
            Check::O1,
            "findpage p0 m3[2]: pagemap maps pfn 0x4a1c2 at [p0 m3[2]] but the rmap walk found [c1 m3[2], p0 m3[2]]; the walk reported c1 m3[2] which pagemap does not",
        );
        assert_ne!(a, extra);
        assert_eq!(
            title(Check::O2, "findpage c1 m1[0]: mapcount 3 but the walk found 2 mapping PTEs"),
            "O2: mapcount # but the walk found # mapping PTEs"
        );
        let c1 = title(Check::O5, "p0 s[0]: the page holds mixed bytes (first 0x0404040404040404, digest 52cb8c9afa08e3cf) but the model expects 0x04 in every byte (written by p0 at step 4)");
        let c2 = title(Check::O5, "c2 m1[3]: the page holds mixed bytes (first 0x1111111111111111, digest 0a3c8c9afa08e3cf) but the model expects 0x11 in every byte (written by p0 at step 17)");
        assert_eq!(c1, c2, "O5 titles keep no values, digests or steps");
        let s1 = title(Check::Step, "step 12 (mremap): failed with errno 14 (mremap)");
        assert_eq!(s1, title(Check::Step, "step 3 (mremap): failed with errno 14 (mremap)"));
        assert!(s1.starts_with("Step: mremap "), "{s1}");
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
