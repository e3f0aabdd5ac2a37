//! The `repro` column of `rmapcheck mutants`: the finding's generated C reproducer
//! (`report::repro`), built for arm64 and run on the mutant kernel and on the clean
//! kernel the mutant was patched from. A reproducer earns its keep when it fails (or
//! crashes) the mutant and passes the clean kernel; one that passes the mutant marks a
//! check the C runtime lacks.

use crate::image::kernel::{FetchProgress, Kernel};
use crate::report::mutants::{Found, Repro, ReproRun, ReproVerdict};
use crate::report::repro::{self, About};
use crate::run::program::{self, ProgramRun};
use crate::scenario;
use crate::vm::guest::Fault;
use anyhow::{Context, Result};
use std::path::Path;
use std::time::Duration;

/// How long the program may run in each guest (the boot is on top).
const TIMEOUT: Duration = Duration::from_secs(240);

/// Write the repro.c of the fuzz finding (else, or when the C runtime cannot play it,
/// the suite's) to `dir`, and run it on `mutant` and on `clean`. `None` when nothing
/// found the mutant.
pub fn check(
    suite: Option<&Found>,
    fuzz: Option<&Found>,
    mutant: &Kernel,
    clean: &Kernel,
    dir: &Path,
    progress: &dyn FetchProgress,
) -> Option<Repro> {
    // The fuzzer's finding is shrunk, so its program is the short one; unless it shrank
    // to no memory at all (the splat came from the guest agent's own unmapping, which
    // every run does), when only the suite's scenario holds a trigger a program can play.
    let fuzz = fuzz.filter(|f| maps_memory(f) || suite.is_none());
    let source = dir.join("repro.c");
    let (from, written) = write_playable(fuzz, suite, mutant.page_size, &source)?;
    let (mutant, clean) = match written {
        Ok(()) => {
            let run =
                |kernel: &Kernel, side: &str| run_on(kernel, &source, &dir.join(format!("repro-{side}")), progress);
            (run(mutant, "mutant"), run(clean, "clean"))
        }
        // A scenario the C runtime cannot play is a gap of its own, shown on both sides.
        Err(e) => {
            let why = ReproRun { verdict: ReproVerdict::DidNotRun, detail: format!("{e:#}") };
            (why.clone(), why)
        }
    };
    Some(Repro { source: source.display().to_string(), from: from.to_string(), mutant, clean })
}

/// Write the program of the fuzz finding, else of the suite's: a finding with a step the
/// C runtime lacks (an ext4 map, say) gives way to the suite's scenario, which may have
/// none. Which one was written, or, when neither can be played, the first's reason.
fn write_playable(
    fuzz: Option<&Found>,
    suite: Option<&Found>,
    page_size: u64,
    out: &Path,
) -> Option<(&'static str, Result<()>)> {
    let mut tries = fuzz
        .map(|f| ("fuzz", f))
        .into_iter()
        .chain(suite.map(|f| ("suite", f)))
        .map(|(from, found)| (from, write(found, page_size, out)));
    let first = tries.next()?;
    Some(if first.1.is_ok() { first } else { tries.find(|(_, w)| w.is_ok()).unwrap_or(first) })
}

/// Whether the scenario of `found` maps anything (a finding can shrink to `check: all`).
fn maps_memory(found: &Found) -> bool {
    scenario::load(Path::new(&found.replay))
        .map(|l| l.scenario.steps.iter().any(|s| matches!(s, scenario::Step::Mmap(_))))
        .unwrap_or(true)
}

/// The C program of the scenario that replays `found`, for `page_size`.
fn write(found: &Found, page_size: u64, out: &Path) -> Result<()> {
    let yaml = Path::new(&found.replay);
    let loaded = scenario::load(yaml).map_err(|e| anyhow::anyhow!("{}: {e}", yaml.display()))?;
    // A fuzz finding's folder says more about itself (title, problems, kernel).
    let finding = if yaml.ends_with("shrunk.yaml") { yaml.parent().unwrap_or(yaml) } else { yaml };
    let about = About::of_finding(finding, &loaded.scenario);
    let about = About {
        title: about.title.or_else(|| Some(found.title.clone())),
        o1: about.o1 || found.title.starts_with("O1"),
        page_size,
        ..about
    };
    let text = repro::c_source(&loaded.scenario, &about).map_err(|e| anyhow::anyhow!("{}: {e}", yaml.display()))?;
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))
}

/// One run, as the column tells it: a guest that died while the program ran is the
/// bug reproduced as a crash; any other error is a program that did not run.
fn run_on(kernel: &Kernel, source: &Path, workdir: &Path, progress: &dyn FetchProgress) -> ReproRun {
    match program::run_c(kernel.clone(), source, workdir, TIMEOUT, progress) {
        Ok(run) => {
            // What it printed, notes included, stays beside the guest's console.
            let _ = std::fs::write(workdir.join("output.txt"), &run.output);
            judged(&run)
        }
        Err(e) => match e.downcast_ref::<Fault>() {
            Some(f @ (Fault::Died { .. } | Fault::Hang { .. })) => ReproRun {
                verdict: ReproVerdict::Crash,
                detail: f.splat().map_or_else(|| format!("the guest {}", f.cause()), |s| s.line.clone()),
            },
            _ => ReproRun {
                verdict: ReproVerdict::DidNotRun,
                detail: format!("{e:#}").lines().next().unwrap_or_default().to_string(),
            },
        },
    }
}

fn judged(run: &ProgramRun) -> ReproRun {
    let said = |prefix: &str| run.output.lines().find(|l| l.starts_with(prefix)).map(str::to_string);
    match run.verdict {
        program::Verdict::Pass => ReproRun { verdict: ReproVerdict::Pass, detail: String::new() },
        program::Verdict::Fail => {
            ReproRun { verdict: ReproVerdict::Fail, detail: said("FAIL:").unwrap_or_else(|| run.summary()) }
        }
        program::Verdict::DidNotRun => ReproRun {
            verdict: ReproVerdict::DidNotRun,
            detail: said("SETUP:").map_or_else(|| run.summary(), |s| format!("{}: {s}", run.summary())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(verdict: program::Verdict, output: &str) -> ProgramRun {
        ProgramRun {
            kernel: "6.12-debug".into(),
            release: "6.12.0".into(),
            verdict,
            status: Some(match verdict {
                program::Verdict::Pass => 0,
                program::Verdict::Fail => 1,
                program::Verdict::DidNotRun => 2,
            }),
            signal: None,
            timed_out: false,
            output: output.into(),
            splats: Vec::new(),
        }
    }

    fn found(scenario: &str) -> Found {
        let replay = crate::project_root().join("scenarios").join(scenario).display().to_string();
        Found { title: "O3: kernel BUG at mm/gup.c:#!".into(), secs: 1.0, replay }
    }

    #[test]
    fn a_finding_the_c_runtime_cannot_play_gives_way_to_the_suites() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("repro.c");
        let (ext4, anon) = (found("wb_msync_shared_two_procs.yaml"), found("pin_readv_unshares_shared_anon.yaml"));
        let (from, written) = write_playable(Some(&ext4), Some(&anon), 4096, &out).unwrap();
        assert_eq!(from, "suite");
        written.unwrap();
        assert!(std::fs::read_to_string(&out).unwrap().contains("pin_readv_unshares_shared_anon"));
        // Alone, the unplayable finding says why.
        let (from, written) = write_playable(Some(&ext4), None, 4096, &out).unwrap();
        assert_eq!(from, "fuzz");
        assert!(format!("{:#}", written.unwrap_err()).contains("not in the C runtime"));
    }

    #[test]
    fn a_run_is_told_by_its_fail_or_setup_line() {
        let fail = judged(&run(program::Verdict::Fail, "step 3\nFAIL: c1 m[0]: pfn 0x4e not shared\n"));
        assert_eq!((fail.verdict, fail.detail.as_str()), (ReproVerdict::Fail, "FAIL: c1 m[0]: pfn 0x4e not shared"));
        let setup = judged(&run(program::Verdict::DidNotRun, "SETUP: no KSM\n"));
        assert_eq!(setup.verdict, ReproVerdict::DidNotRun);
        assert!(setup.detail.ends_with(": SETUP: no KSM"), "{}", setup.detail);
        assert_eq!(judged(&run(program::Verdict::Pass, "PASS\n")).detail, "");
    }

    /// A fuzz finding that shrank to no mapping (its trigger was the agent's own unmap)
    /// gives way to the suite's scenario, which plays one.
    #[test]
    fn a_finding_that_maps_nothing_gives_way_to_the_suite() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("shrunk.yaml");
        std::fs::write(&empty, "name: \"fuzz-s1-r0-shrunk\"\nabout: \"x\"\nsteps:\n  - check: all\n").unwrap();
        let suite_yaml = crate::project_root().join("scenarios/seed_mmap_fork.yaml");
        let fuzz = Found { title: "O3: BUG: Bad page state".into(), secs: 1.0, replay: empty.display().to_string() };
        let suite =
            Found { title: "O3: BUG: Bad page state".into(), secs: 2.0, replay: suite_yaml.display().to_string() };
        assert!(!maps_memory(&fuzz));
        assert!(maps_memory(&suite));
    }

    /// The fuzz finding's folder gives the program its title; the suite's scenario file
    /// takes the found title, and an O1 title asks for the walk check.
    #[test]
    fn the_program_of_a_suite_finding_checks_the_walk_for_an_o1_title() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = crate::project_root().join("scenarios/seed_mmap_fork.yaml");
        let found = Found { title: "O1: walk missed c1".into(), secs: 1.0, replay: yaml.display().to_string() };
        let out = dir.path().join("repro.c");
        write(&found, 4096, &out).unwrap();
        let text = std::fs::read_to_string(out).unwrap();
        assert!(text.contains("O1: walk missed c1"), "the header names the finding");
        assert!(text.contains("#define O1_CHECK 1"));
    }
}
