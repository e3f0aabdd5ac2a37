//! `rmapcheck mutants`: rmapcheck's own bug-finding power, measured by planting bugs.
//! Each patch under images/mutants/ injects one known kind of rmap or mapcount bug into
//! the debug kernel's source. For each, the kernel is rebuilt incrementally in a copy of
//! the cached tree, the scenario suite runs on it, then a fuzz campaign, each until it
//! finds the bug; the verdict says which found it, by which check, and how fast. The
//! finding's C reproducer then runs on the mutant kernel and on the clean one (`repro`).
//!
//! Architecture invariant: the cached tree of the debug kernel is never patched; only
//! its copy is, and a patch left applied by an interrupted run is reverted first.

pub mod hunks;
pub mod repro;

use crate::cache;
use crate::check::outcome::Status;
use crate::error::Error;
use crate::exec::Cmd;
use crate::fuzz::campaign::{self, Limit};
use crate::fuzz::triage;
use crate::fuzz::GenConfig;
use crate::image::kernel::{FetchProgress, Kernel};
use crate::image::kernels::Manifest;
use crate::image::{prepare, source_build};
pub use crate::report::mutants::{summary, text, Found, Verdict};
use crate::run::pool::{self, Pool};
use crate::scenario::Loaded;
use crate::signal;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The kernel the mutants patch by default: the debug kernel, whose DEBUG_VM turns
/// damage into splats.
pub const BASE: &str = "6.12-debug";

/// One planted bug: a patch and the sentence that says what it breaks.
#[derive(Debug, Clone)]
pub struct Mutant {
    pub name: String,
    pub about: String,
    pub patch: PathBuf,
}

/// The mutants in `dir`, by name. A patch of images/mutants starts with
/// `rmapcheck mutant: <about>`; a user's patch (`mutants --patches`, say a fix
/// reverted with `git format-patch`) may instead say what it is in its `Subject:`.
pub fn load(dir: &Path) -> Result<Vec<Mutant>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "patch") {
            continue;
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        out.push(parse(&path, &text)?);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn parse(path: &Path, text: &str) -> Result<Mutant> {
    let header = text.lines().next().and_then(|l| l.strip_prefix("rmapcheck mutant: "));
    // git format-patch: `Subject: [PATCH] mm/rmap: ...`, the bracket dropped.
    let subject = || {
        let line = text.lines().take_while(|l| !l.starts_with("---")).find_map(|l| l.strip_prefix("Subject: "))?;
        Some(line.split_once("] ").map_or(line, |(_, s)| s))
    };
    let Some(about) = header.or_else(subject) else {
        bail!(
            "{}:1: a mutant patch starts with 'rmapcheck mutant: <what it breaks>' (or, from git \
             format-patch, has a Subject: line)",
            path.display()
        );
    };
    if !text.contains("\n--- a/") {
        bail!("{}: no unified diff (--- a/...)", path.display());
    }
    let name = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
    Ok(Mutant { name, about: about.trim().to_string(), patch: path.to_path_buf() })
}

/// What a mutants run reports while it works.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Building { name: String },
    Searching { name: String, how: String },
    Judged(Verdict),
    Guest(pool::Event),
    Fuzz(campaign::Event),
}

#[derive(Debug, Clone)]
pub struct Options {
    /// The folder of patches: images/mutants, or a user's own.
    pub patches: PathBuf,
    /// The kernel built from source that the patches go into.
    pub kernel: String,
    /// Patches to run by name; all when empty.
    pub only: Vec<String>,
    /// How long the fuzz campaign may look for each mutant.
    pub fuzz_for: Duration,
    pub seed: u64,
    /// Where reproducers and `mutants.json` go.
    pub out: PathBuf,
    /// Guests' workdirs.
    pub workroot: PathBuf,
}

/// Judge every mutant (or those `opts.only` names) with `scenarios`, saving
/// `mutants.json` after each; a signal (`crate::signal`) ends it early with the verdicts
/// so far.
pub fn run(
    manifest: &Manifest,
    scenarios: &[Loaded],
    opts: &Options,
    events: &(dyn Fn(Event) + Sync),
    progress: &dyn FetchProgress,
) -> Result<Vec<Verdict>> {
    let mut mutants = load(&opts.patches)?;
    if !opts.only.is_empty() {
        for name in &opts.only {
            if !mutants.iter().any(|m| &m.name == name) {
                let why = format!("no mutant named '{name}' in {}", opts.patches.display());
                return Err(Error::bad_input(why).into());
            }
        }
        mutants.retain(|m| opts.only.contains(&m.name));
    }
    let base = prepare::prepare(manifest, &opts.kernel, progress)?;
    let tree = copy_tree(&base.kernel.build_dir, progress)?;
    // One run at a time patches and builds a copy: a second would build the first's
    // mutant, or break its build.
    let _tree_held = match cache::try_lock(&tree)? {
        Some(held) => held,
        None => {
            progress.step("mutants: waiting for another mutants run to finish with the tree");
            cache::lock(&tree)?
        }
    };
    revert_leftover(&tree)?;
    refuse_unrecorded_plants(&tree)?;
    let mut verdicts = Vec::new();
    for m in &mutants {
        if signal::requested().is_some() {
            break;
        }
        events(Event::Building { name: m.name.clone() });
        let v = judge(m, &tree, &base.kernel, scenarios, opts, events, progress);
        // The copy goes back to the clean source whatever happened.
        revert(&tree, m)?;
        let v = v.unwrap_or_else(|e| Verdict {
            name: m.name.clone(),
            about: m.about.clone(),
            build_secs: 0.0,
            suite: None,
            fuzz: None,
            error: Some(format!("{e:#}")),
            repro: None,
        });
        events(Event::Judged(v.clone()));
        verdicts.push(v);
        let json = serde_json::to_string_pretty(&verdicts)?;
        cache::write_atomic(&opts.out.join("mutants.json"), json.as_bytes())?;
    }
    Ok(verdicts)
}

/// Patch, build and search one mutant.
fn judge(
    m: &Mutant,
    tree: &Path,
    clean: &Kernel,
    scenarios: &[Loaded],
    opts: &Options,
    events: &(dyn Fn(Event) + Sync),
    progress: &dyn FetchProgress,
) -> Result<Verdict> {
    std::fs::write(tree.join(APPLIED), m.patch.display().to_string())?;
    source_build::patch(tree, &m.patch, false)?;
    let key = format!("{}+{}", opts.kernel, m.name);
    let started = Instant::now();
    source_build::rebuild(&key, tree, progress)?;
    let build_secs = started.elapsed().as_secs_f64();
    let image = tree.join("arch/arm64/boot/Image");
    let kernel = Kernel::custom(&image, tree, Some(&key))?;
    let prepared = prepare::prepare_kernel(kernel.clone(), progress)?;

    events(Event::Searching { name: m.name.clone(), how: "scenario suite".into() });
    let workroot = opts.workroot.join(&m.name);
    let suite = {
        let pool =
            Pool::new(prepared.clone(), workroot.join("suite")).with_events(Box::new(|e| events(Event::Guest(e))));
        let started = Instant::now();
        let mut found = None;
        for l in scenarios {
            if signal::requested().is_some() {
                break;
            }
            let played = pool.play(l);
            let title = match &played.fault {
                Some(f) => Some(triage::fault_title(f)),
                None if played.outcome.status != Status::Pass => triage::titles(&played.outcome)
                    .into_iter()
                    .next()
                    .or_else(|| played.outcome.problems.first().map(|p| p.title())),
                None => None,
            };
            if let Some(title) = title {
                let replay = l.path.display().to_string();
                found = Some(Found { title, secs: started.elapsed().as_secs_f64(), replay });
                break;
            }
        }
        pool.shutdown();
        found
    };

    events(Event::Searching { name: m.name.clone(), how: format!("fuzz for up to {:?}", opts.fuzz_for) });
    let fuzz_out = opts.out.join(&m.name);
    let fopts = campaign::Options {
        seed: opts.seed,
        limit: Limit::Duration(opts.fuzz_for),
        jobs: 1,
        out: fuzz_out,
        gen: GenConfig::default(),
        module_params: Vec::new(),
        kernel_args: format!("--kernel-image {} --kernel-build {}", image.display(), tree.display()),
        shrink_budget: 100,
        workroot: workroot.join("fuzz"),
        gdb: None,
        corpus: Vec::new(),
        shard: Default::default(),
        coverage: false,
        unguided: false,
        // A planted bug must never be taken for a known one: none is excused.
        known_bugs: Vec::new(),
        // The first saved finding is all a verdict needs.
        stop_at_first_finding: true,
    };
    let started = Instant::now();
    let found_at: std::sync::Mutex<Option<f64>> = std::sync::Mutex::new(None);
    let summary = campaign::run(&prepared, &fopts, &|e| {
        if let campaign::Event::Found { .. } = &e {
            found_at.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(started.elapsed().as_secs_f64());
        }
        events(Event::Fuzz(e));
    });
    let secs = found_at.into_inner().unwrap_or_else(|p| p.into_inner());
    // A campaign that cannot even boot a guest (a mutant that kills init) is the
    // fuzzer's error; what the suite found still stands.
    let (fuzz, error) = match summary {
        Ok(summary) => {
            let found = summary.found.first().map(|f| Found {
                title: f.title.clone(),
                secs: secs.unwrap_or(summary.last.elapsed.as_secs_f64()),
                replay: f.folder.as_ref().map(|d| d.join("shrunk.yaml").display().to_string()).unwrap_or_default(),
            });
            (found, None)
        }
        Err(e) if suite.is_some() => (None, Some(format!("fuzz: {e:#}"))),
        Err(e) => return Err(e),
    };
    if suite.is_some() || fuzz.is_some() {
        let how = format!("running the finding's repro.c on the mutant and on {}", clean.key);
        events(Event::Searching { name: m.name.clone(), how });
    }
    // The tree's Image is this mutant's only until the next build: run it now.
    let repro = repro::check(suite.as_ref(), fuzz.as_ref(), &kernel, clean, &opts.out.join(&m.name), progress);
    Ok(Verdict { name: m.name.clone(), about: m.about.clone(), build_secs, suite, fuzz, error, repro })
}

/// Names the patch applied to the copy, so an interrupted run can undo it.
const APPLIED: &str = ".rmapcheck-mutant";

/// A copy of the built tree for patching, made once per base tree.
fn copy_tree(base: &Path, progress: &dyn FetchProgress) -> Result<PathBuf> {
    let name = base.parent().and_then(|p| p.file_name()).unwrap_or_default().to_string_lossy().into_owned();
    let dir = cache::subdir("mutants")?.join(&name);
    cache::ensure_dir(&dir, |tmp| {
        progress.step(&format!("mutants: copying the {name} tree (once)"));
        Cmd::new("cp").arg("-a").arg(base).arg(tmp.join("linux")).run("copying the kernel tree")?;
        Ok(())
    })?;
    Ok(dir.join("linux"))
}

fn revert(tree: &Path, m: &Mutant) -> Result<()> {
    let marker = tree.join(APPLIED);
    if marker.exists() {
        // Only a patch that applied is reverted; one that failed left nothing behind.
        if source_build::is_applied(tree, &m.patch) {
            source_build::patch(tree, &m.patch, true)?;
        }
        std::fs::remove_file(marker)?;
    }
    Ok(())
}

/// Undo the patch an interrupted run left applied. The marker holds the patch's path
/// (or, from older runs, its name under images/mutants).
fn revert_leftover(tree: &Path) -> Result<()> {
    let Ok(name) = std::fs::read_to_string(tree.join(APPLIED)) else { return Ok(()) };
    let name = name.trim();
    let patch = if Path::new(name).is_absolute() {
        PathBuf::from(name)
    } else {
        crate::image::images_dir().join("mutants").join(format!("{name}.patch"))
    };
    let text = std::fs::read_to_string(&patch).with_context(|| format!("reading {}", patch.display()))?;
    revert(tree, &parse(&patch, &text)?)
}

/// A planted bug that no marker records (a patch applied by hand, or a revert that
/// failed) would be judged as part of every mutant built after it: refuse to start.
/// Each committed mutant marks its bug with a `/* mutant: */` comment in mm/.
fn refuse_unrecorded_plants(tree: &Path) -> Result<()> {
    let mm = tree.join("mm");
    let Ok(entries) = std::fs::read_dir(&mm) else { return Ok(()) };
    let mut found = Vec::new();
    for path in entries.flatten().map(|e| e.path()) {
        if !path.extension().is_some_and(|x| x == "c" || x == "h") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("/* mutant: ") {
                found.push(format!("{}:{}", path.strip_prefix(tree).unwrap_or(&path).display(), i + 1));
            }
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    found.sort();
    Err(Error::environment(anyhow::anyhow!(
        "the mutants' tree {} holds a planted bug that no run recorded ({}): revert it (patch -R -p1) or delete the tree",
        tree.display(),
        found.join(", ")
    ))
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn a_plant_no_run_recorded_stops_the_run_and_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("mm")).unwrap();
        std::fs::write(dir.path().join("mm/rmap.c"), "int a;\n").unwrap();
        refuse_unrecorded_plants(dir.path()).unwrap();
        std::fs::write(dir.path().join("mm/shmem.c"), "int b;\n\t/* mutant: even_cows=0 */\n").unwrap();
        let err = format!("{:#}", refuse_unrecorded_plants(dir.path()).unwrap_err());
        assert!(err.contains("mm/shmem.c:2") && err.contains("patch -R"), "{err}");
    }

    /// Every committed mutant says what it breaks, and plants one bug in mm/: its hunks
    /// are well formed, each names the function it changes and changes it, and one
    /// `/* mutant: */` comment marks the bug. (That each applies to the 6.12-debug
    /// tree, in the function it names, is `mutants::apply_to_their_tree::6.12-debug`.)
    #[test]
    fn every_committed_mutant_plants_one_bug_in_a_named_function() {
        let mutants = load(&crate::project_root().join("images/mutants")).unwrap();
        assert!(!mutants.is_empty());
        for m in &mutants {
            assert!(m.about.len() > 20 && m.about.contains(": "), "{}: '{}' says too little", m.name, m.about);
            let hunks = hunks::parse(&std::fs::read_to_string(&m.patch).unwrap()).unwrap();
            assert!(!hunks.is_empty(), "{}: no hunks", m.name);
            for h in &hunks {
                // A .h of mm/ too: vma_address() lives in mm/internal.h.
                let in_mm = h.file.starts_with("mm/") && (h.file.ends_with(".c") || h.file.ends_with(".h"));
                assert!(in_mm, "{}: changes {}", m.name, h.file);
                assert!(h.function().is_some(), "{}: the hunk at {}:{} names no function", m.name, h.file, h.old_start);
                let changes = h.lines.iter().filter(|l| !l.starts_with(' ')).count();
                assert!(changes > 0, "{}: the hunk at {}:{} changes nothing", m.name, h.file, h.old_start);
            }
            let marks = hunks.iter().flat_map(|h| h.added()).filter(|l| l.trim_start().starts_with("/* mutant: "));
            assert_eq!(marks.count(), 1, "{}: one '/* mutant: ... */' comment marks the bug", m.name);
        }
    }

    /// BENCHMARKS.md's tables of mutants runs (one per sitting) name, together, exactly
    /// the patches under images/mutants/, so a new mutant is measured and a removed one
    /// leaves the tables.
    #[test]
    fn the_benchmarks_tables_list_every_committed_mutant() {
        let root = crate::project_root();
        let committed: BTreeSet<String> =
            load(&root.join("images/mutants")).unwrap().into_iter().map(|m| m.name).collect();
        let text = std::fs::read_to_string(root.join("BENCHMARKS.md")).unwrap();
        let tables: Vec<&str> = text.split("| mutant | build |").skip(1).collect();
        assert!(!tables.is_empty(), "BENCHMARKS.md has a mutants table");
        let listed: BTreeSet<String> = tables
            .iter()
            .flat_map(|t| t.lines().skip(2).map_while(|l| l.strip_prefix("| ")))
            .map(|l| l.split([' ', '|']).next().unwrap_or_default().to_string())
            .collect();
        assert_eq!(listed, committed);
    }

    #[test]
    fn a_format_patch_says_what_it_is_in_its_subject() {
        let text = "From 1234 Mon Sep 17 00:00:00 2001\nFrom: A <a@invalid>\n\
                    Subject: [PATCH] Revert \"mm/rmap: fix the walk\"\n\n---\n mm/rmap.c | 2 +-\n\
                    --- a/mm/rmap.c\n+++ b/mm/rmap.c\n";
        let m = parse(Path::new("dir/0001-revert.patch"), text).unwrap();
        assert_eq!((m.name.as_str(), m.about.as_str()), ("0001-revert", "Revert \"mm/rmap: fix the walk\""));
    }

    #[test]
    fn a_patch_without_its_header_is_refused_with_its_file() {
        let e = parse(Path::new("x.patch"), "--- a/mm/rmap.c\n").unwrap_err().to_string();
        assert!(e.starts_with("x.patch:1: "), "{e}");
    }
}
