//! `vm::finding::<name>::<kernel>`: each real kernel bug in docs/FINDINGS.md has a
//! standalone C reproducer (docs/findings/<name>.c). Built for arm64 and run in a guest
//! by the agent's `exec`, it must fail exactly on the kernels that have the bug (its
//! scenario's `known_bug.on`, plus kernels older than the rule it checks) and pass on
//! every other one: no finding may rest on a reproducer that fails everywhere or
//! nowhere. `vm::finding::<name>::generated::<kernel>` does the same with the program
//! `rmapcheck repro --c` writes from the scenario.

use super::Pools;
use libtest_mimic::{Failed, Trial};
use rmapcheck::check::oracle;
use rmapcheck::report::repro;
use rmapcheck::run::program::{self, Verdict};
use rmapcheck::scenario;
use std::time::Duration;

/// A finding: its C reproducer, its regression scenario, and which kernels have the bug
/// besides those its `known_bug` names, as a rule over the release.
struct Finding {
    name: &'static str,
    scenario: &'static str,
    /// Kernels that fail the reproducer for a reason older than the bug (and that the
    /// oracle already excuses), by release.
    older_limit: fn(&str) -> bool,
}

const FINDINGS: &[Finding] = &[Finding {
    name: "pagemap-pmd-exclusive",
    scenario: "pagemap_pmd_thp_exclusive_per_page",
    // Before 6.10 every page of a PMD-mapped THP took the head page's bit.
    older_limit: |release| !oracle::exclusive_is_per_page(release),
}];

pub fn trials(key: &str, pools: fn() -> &'static Pools) -> Vec<Trial> {
    let mut out = Vec::new();
    for f in FINDINGS {
        for generated in [false, true] {
            let key = key.to_string();
            let name = if generated { format!("{}::generated", f.name) } else { f.name.to_string() };
            out.push(Trial::test(format!("vm::finding::{name}::{key}"), move || {
                let pool = pools().get(&key)?;
                let root = rmapcheck::project_root();
                let file = root.join("scenarios").join(format!("{}.yaml", f.scenario));
                let loaded = scenario::load(&file).map_err(|e| Failed::from(e.to_string()))?;
                let known = loaded.scenario.known_bug.as_ref().ok_or("the scenario has no known_bug")?;
                let kernel = pool.prepared.kernel.clone();
                let workdir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                    .join(format!("finding-{name}-{key}-{}", std::process::id()));
                // The generated program judges PM_MMAP_EXCLUSIVE only where the kernel
                // means it per page (the oracle's rule), so older kernels pass it.
                let want_fail = known.on.contains(&key) || (!generated && (f.older_limit)(&kernel.release));
                let source = if generated {
                    let about = repro::About { page_size: kernel.page_size, ..repro::About::default() };
                    let text = repro::c_source(&loaded.scenario, &about).map_err(|e| e.to_string())?;
                    std::fs::create_dir_all(&workdir).map_err(|e| e.to_string())?;
                    let path = workdir.join("repro.c");
                    std::fs::write(&path, text).map_err(|e| e.to_string())?;
                    path
                } else {
                    root.join("docs/findings").join(format!("{}.c", f.name))
                };
                let run = program::run_c(kernel, &source, &workdir, Duration::from_secs(120), &())
                    .map_err(|e| format!("{e:#}"))?;
                let want = if want_fail { Verdict::Fail } else { Verdict::Pass };
                if run.verdict != want {
                    return Err(format!("{}, want {want:?}\n{}", run.summary(), run.output).into());
                }
                if !run.splats.is_empty() {
                    return Err(format!("kernel splats while it ran: {:?}", run.splats).into());
                }
                Ok(())
            }));
        }
    }
    out
}
