//! `vm::kcov_coverage::6.12-debug`: a run that collects coverage on the KCOV kernel comes
//! back with PCs that the kernel's vmlinux maps into mm/rmap.c and mm/memory.c: the
//! fork (anon_vma_fork), the child's copy-on-write, and the module's walk (rmap_walk,
//! run in the agent's context). Only with 6.12-debug in RMAPCHECK_KERNELS; elsewhere the
//! trial is ignored, with the reason and the command that runs it.
//!
//! `vm::kcov_remote_ksmd::6.12-debug`: a KSM run's coverage also holds what ksmd did
//! (kcov-remote.patch, traced through the agent's remote KCOV handle): PCs in functions
//! only ksmd runs, which the agent's own processes never reach.

use super::Pools;
use libtest_mimic::{Completion, Failed, Trial};
use rmapcheck::check::outcome::Status;
use rmapcheck::image::symbols::{self, Symbols};
use rmapcheck::run::runner;
use rmapcheck::scenario;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

pub const KEY: &str = "6.12-debug";
const ADDR2LINE: &str = "aarch64-linux-gnu-addr2line";

/// The trial `vm::<what>::6.12-debug`, or an ignored one with the command that runs it.
fn on_kcov_kernel(
    what: &'static str,
    keys: &[String],
    test: impl FnOnce() -> Result<(), Failed> + Send + 'static,
) -> Trial {
    let name = format!("vm::{what}::{KEY}");
    if !keys.iter().any(|k| k == KEY) {
        return Trial::ignorable_test(name, move || {
            Ok(Completion::ignored_with(format!(
                "needs the KCOV kernel: RMAPCHECK_KERNELS={KEY} cargo test --test scenarios -- vm::{what}"
            )))
        });
    }
    Trial::test(name, test)
}

pub fn trial(keys: &[String], pools: fn() -> &'static Pools) -> Trial {
    on_kcov_kernel("kcov_coverage", keys, move || {
        let pool = pools().get(KEY)?;
        let vmlinux = match symbols::find(&pool.prepared.kernel, None) {
            Symbols::Vmlinux(p) => p,
            Symbols::Missing(why) => return Err(why.into()),
        };
        let file = rmapcheck::project_root().join("scenarios/seed_mmap_fork.yaml");
        let loaded = scenario::load(&file).map_err(|e| Failed::from(e.to_string()))?;
        let mut g = pool.take().map_err(|f| Failed::from(f.to_string()))?;
        g.coverage = true;
        let first = runner::run(&mut g, &loaded).map_err(|f| Failed::from(f.to_string()))?;
        let again = runner::run(&mut g, &loaded).map_err(|f| Failed::from(f.to_string()))?;
        g.coverage = false;
        let off = runner::run(&mut g, &loaded).map_err(|f| Failed::from(f.to_string()))?;
        pool.give(g);
        for o in [&first, &again, &off] {
            if o.status != Status::Pass {
                return Err(format!("{} on {KEY}: {:?}: {:?}", o.scenario, o.status, o.problems).into());
            }
        }
        let pcs = &first.coverage;
        if !pcs.windows(2).all(|w| w[0] < w[1]) {
            return Err("coverage is not sorted and unique".into());
        }
        if !off.coverage.is_empty() {
            return Err(format!("a run without coverage brought {} PCs", off.coverage.len()).into());
        }
        // The same steps reach nearly the same code; a second run that came back empty
        // would mean the set was not collected again after the first `cov`.
        if again.coverage.len() < pcs.len() / 2 {
            return Err(format!("second run: {} PCs, first: {}", again.coverage.len(), pcs.len()).into());
        }
        let lines = addr2line(&vmlinux, pcs)?;
        // Paths are absolute in the build tree (`<tree>/mm/rmap.c`, `<tree>/./include/..`).
        let tree = format!("{}/", vmlinux.parent().unwrap_or(Path::new("")).display());
        let mut files: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, at) in &lines {
            let path = at.split(':').next().unwrap_or("");
            *files.entry(path.strip_prefix(tree.as_str()).unwrap_or(path).trim_start_matches("./")).or_default() += 1;
        }
        let mm: Vec<String> =
            files.iter().filter(|(f, _)| f.starts_with("mm/")).map(|(f, n)| format!("{f} {n}")).collect();
        eprintln!("{} PCs; in mm/: {}", pcs.len(), mm.join(", "));
        let mut wrong = Vec::new();
        for f in ["mm/rmap.c", "mm/memory.c"] {
            if files.get(f).copied().unwrap_or(0) == 0 {
                wrong.push(format!("no PC maps into {f}"));
            }
        }
        for f in ["anon_vma_fork", "rmap_walk", "wp_page_copy"] {
            // `rmap_walk` also matches rmap_walk_anon and rmap_walk_file, and gcc's
            // clones (`wp_page_copy.isra.0`).
            if !lines.iter().any(|(func, _)| func.starts_with(f)) {
                wrong.push(format!("no PC in {f}"));
            }
        }
        // Only mm/ is instrumented (KCOV_INSTRUMENT_ALL=n), and the headers inlined there.
        if let Some(bad) = files.keys().find(|f| !f.starts_with("mm/") && !f.contains("include/") && **f != "??") {
            wrong.push(format!("a PC outside mm/ and its headers: {bad}"));
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(wrong.join("\n").into())
        }
    })
}

/// Functions only ksmd runs: the agent's processes reach KSM through madvise, which
/// registers mms, but never scan or merge.
const KSMD_ONLY: [&str; 3] = ["ksm_do_scan", "scan_get_next_rmap_item", "cmp_and_merge_page"];

pub fn remote_trial(keys: &[String], pools: fn() -> &'static Pools) -> Trial {
    on_kcov_kernel("kcov_remote_ksmd", keys, move || {
        let pool = pools().get(KEY)?;
        let vmlinux = match symbols::find(&pool.prepared.kernel, None) {
            Symbols::Vmlinux(p) => p,
            Symbols::Missing(why) => return Err(why.into()),
        };
        let file = rmapcheck::project_root().join("scenarios/ksm_three_processes_cow.yaml");
        let loaded = scenario::load(&file).map_err(|e| Failed::from(e.to_string()))?;
        let mut g = pool.take().map_err(|f| Failed::from(f.to_string()))?;
        g.coverage = true;
        let run = runner::run(&mut g, &loaded).map_err(|f| Failed::from(f.to_string()));
        g.coverage = false;
        pool.give(g);
        let run = run?;
        if run.status != Status::Pass {
            return Err(format!("{} on {KEY}: {:?}: {:?}", run.scenario, run.status, run.problems).into());
        }
        let lines = addr2line(&vmlinux, &run.coverage)?;
        let missing: Vec<&str> =
            KSMD_ONLY.into_iter().filter(|f| !lines.iter().any(|(func, _)| func.starts_with(f))).collect();
        let ksm = lines.iter().filter(|(_, at)| at.contains("mm/ksm.c")).count();
        eprintln!("{} PCs, {ksm} in mm/ksm.c", run.coverage.len());
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("no PC of ksmd in {} ({ksm} PCs in mm/ksm.c)", missing.join(", ")).into())
        }
    })
}

/// (function, file:line) of each PC, by binutils' addr2line. A KCOV PC is the return
/// address of the call to __sanitizer_cov_trace_pc; the call itself is 4 bytes earlier
/// on arm64, and that is the line it stands for.
fn addr2line(vmlinux: &Path, pcs: &[u64]) -> Result<Vec<(String, String)>, Failed> {
    let mut child = Command::new(ADDR2LINE)
        .args(["-f", "-e"])
        .arg(vmlinux)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{ADDR2LINE}: {e} (scripts/setup installs binutils-aarch64-linux-gnu)"))?;
    let input: String = pcs.iter().map(|pc| format!("{:x}\n", pc - 4)).collect();
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    writer.join().map_err(|_| "writer panicked")?.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() != 2 * pcs.len() {
        return Err(format!("{ADDR2LINE} gave {} lines for {} PCs", lines.len(), pcs.len()).into());
    }
    Ok(lines.chunks(2).map(|c| (c[0].to_string(), c[1].to_string())).collect())
}
