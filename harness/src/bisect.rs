//! `rmapcheck bisect`: the commit that introduced a finding, by `git bisect` over the
//! user's kernel tree. The tree is configured once (tinyconfig plus a source key's
//! fragments, as that key's kernels are), and each step builds the checked-out commit
//! incrementally, boots it, and replays the finding. A step is bad when the finding
//! fails with the title it has on the bad commit, good when it passes, and skipped
//! when the build fails or the run fails some other way: another bug's failure would
//! mislead the search (syzbot's rule).
//!
//! Architecture invariant: the tree is left as it was found. The bisection is reset
//! whatever happens, and a tree with uncommitted changes or a bisection of its own in
//! progress is refused.

use crate::error::Error;
use crate::exec::Cmd;
use crate::fuzz::triage;
use crate::image::kernel::{FetchProgress, Kernel};
use crate::image::kernels::{self, Manifest};
use crate::image::{prepare, source_build};
use crate::run::pool::Pool;
use crate::scenario::Loaded;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct Options {
    pub tree: PathBuf,
    pub good: String,
    pub bad: String,
    pub finding: Loaded,
    /// The source key whose config fragments configure an unconfigured tree.
    pub config_key: String,
    pub workroot: PathBuf,
    /// Builds allowed in all, the one of the bad commit included.
    pub max_builds: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Good,
    Bad,
    Skip,
}

impl Verdict {
    fn word(self) -> &'static str {
        match self {
            Verdict::Good => "good",
            Verdict::Bad => "bad",
            Verdict::Skip => "skip",
        }
    }
}

/// One tested commit.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub commit: String,
    pub subject: String,
    pub verdict: Verdict,
    pub build_secs: f64,
    /// What the run found, or why it was skipped.
    pub why: String,
}

/// The result: the first bad commit, or why there is none.
#[derive(Debug, Clone, Serialize)]
pub struct Bisection {
    /// The finding's title on the bad commit.
    pub title: String,
    /// `<id> <subject>` of the first bad commit.
    pub first_bad: Option<String>,
    pub builds: usize,
    pub secs: f64,
    pub steps: Vec<Step>,
    /// `git bisect log`.
    pub log: String,
    /// Why no first bad commit was named.
    pub unresolved: Option<String>,
}

impl Bisection {
    pub fn text(&self) -> String {
        let mut out = format!("finding: {}\n", self.title);
        for s in &self.steps {
            out.push_str(&format!(
                "  {} {:<4} built in {:>4.0} s  {}  ({})\n",
                &s.commit[..12.min(s.commit.len())],
                s.verdict.word(),
                s.build_secs,
                s.subject,
                s.why
            ));
        }
        match (&self.first_bad, &self.unresolved) {
            (Some(c), _) => out.push_str(&format!("first bad commit: {c}\n")),
            (None, Some(why)) => out.push_str(&format!("no first bad commit: {why}\n")),
            (None, None) => out.push_str("no first bad commit\n"),
        }
        out.push_str(&format!("{} builds in {:.0} s\n", self.builds, self.secs));
        out
    }
}

fn git(tree: &Path) -> Cmd {
    let mut cmd = Cmd::new("git");
    cmd.arg("-C").arg(tree);
    cmd
}

fn rev(tree: &Path, what: &str) -> Result<String> {
    let out = git(tree)
        .args(["rev-parse", "--verify", "--quiet"])
        .arg(format!("{what}^{{commit}}"))
        .run(&format!("git rev-parse {what} (is {} a git tree, and {what} a commit in it?)", tree.display()))?;
    Ok(out.trim().to_string())
}

fn subject(tree: &Path, commit: &str) -> String {
    git(tree)
        .args(["log", "-1", "--format=%s", commit])
        .run("git log")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Run the bisection. `say` hears each tested commit as it is judged.
pub fn run(
    manifest: &Manifest,
    opts: &Options,
    progress: &dyn FetchProgress,
    say: &dyn Fn(&Step),
) -> Result<Bisection> {
    let tree = &opts.tree;
    let good = rev(tree, &opts.good)?;
    let bad = rev(tree, &opts.bad)?;
    let dirty = git(tree).args(["status", "--porcelain", "--untracked-files=no"]).run("git status")?;
    if !dirty.trim().is_empty() {
        let why = format!("{} has uncommitted changes; commit or stash them first:\n{dirty}", tree.display());
        return Err(Error::bad_input(why).into());
    }
    if tree.join(".git/BISECT_START").exists() {
        let why = format!(
            "{} has a bisection in progress; end it with: git -C {} bisect reset",
            tree.display(),
            tree.display()
        );
        return Err(Error::bad_input(why).into());
    }
    if !tree.join(".config").exists() {
        let entry = manifest.entry(&opts.config_key)?;
        progress.step(&format!("configuring {} like {}", tree.display(), opts.config_key));
        source_build::configure(tree, &kernels::recipe(entry)?.fragments)?;
    }
    let started = Instant::now();
    let mut builds = 0;
    let mut steps = Vec::new();

    // The bad commit first: it must fail, and its title is what later steps look for.
    git(tree).args(["checkout", "-q", "--detach", &bad]).run("git checkout")?;
    builds += 1;
    let (at_bad, title) = test(opts, &bad, None, progress)?;
    say(&at_bad);
    steps.push(at_bad);
    let Some(title) = title else {
        let why = format!("{} does not fail on the bad commit {bad}: nothing to bisect", opts.finding.path.display());
        return Err(Error::bad_input(why).into());
    };

    git(tree).args(["bisect", "start", &bad, &good]).run("git bisect start")?;
    let result = walk(opts, &title, &mut builds, &mut steps, progress, say);
    let log = git(tree).args(["bisect", "log"]).run("git bisect log").unwrap_or_default();
    // Back to where the tree was, whatever happened.
    let reset = git(tree).args(["bisect", "reset"]).run("git bisect reset");
    let (first_bad, unresolved) = result?;
    reset?;
    Ok(Bisection { title, first_bad, builds, secs: started.elapsed().as_secs_f64(), steps, log, unresolved })
}

/// The bisection's steps, until git names the first bad commit or the builds run out.
fn walk(
    opts: &Options,
    title: &str,
    builds: &mut usize,
    steps: &mut Vec<Step>,
    progress: &dyn FetchProgress,
    say: &dyn Fn(&Step),
) -> Result<(Option<String>, Option<String>)> {
    let tree = &opts.tree;
    loop {
        if let Some(sig) = crate::signal::requested() {
            return Ok((None, Some(format!("stopped by signal {sig}"))));
        }
        if *builds >= opts.max_builds {
            return Ok((None, Some(format!("{} builds allowed, all used", opts.max_builds))));
        }
        let commit = rev(tree, "HEAD")?;
        *builds += 1;
        let (step, _) = test(opts, &commit, Some(title), progress)?;
        say(&step);
        let verdict = step.verdict;
        steps.push(step);
        let out = git(tree).args(["bisect", verdict.word()]).run("git bisect")?;
        if let Some(first) = out.lines().find(|l| l.ends_with("is the first bad commit")) {
            let id = first.split_whitespace().next().unwrap_or_default().to_string();
            return Ok((Some(format!("{id} {}", subject(tree, &id))), None));
        }
        if out.contains("only 'skip'ped commits left") {
            return Ok((None, Some(out.lines().next().unwrap_or_default().to_string())));
        }
    }
}

/// Build the checked-out `commit` and replay the finding on it. With `title` (a
/// bisection step), the verdict compares with it; without (the bad commit), the run's
/// own title comes back.
fn test(
    opts: &Options,
    commit: &str,
    title: Option<&str>,
    progress: &dyn FetchProgress,
) -> Result<(Step, Option<String>)> {
    let tree = &opts.tree;
    let short = &commit[..12.min(commit.len())];
    let key = format!("bisect@{short}");
    let subject = subject(tree, commit);
    let step = |verdict, build_secs, why: String| Step {
        commit: commit.to_string(),
        subject: subject.clone(),
        verdict,
        build_secs,
        why,
    };
    let started = Instant::now();
    let built = source_build::rebuild(&key, tree, progress)
        .and_then(|()| Kernel::custom(&tree.join("arch/arm64/boot/Image"), tree, Some(&key)))
        .and_then(|k| prepare::prepare_kernel(k, progress));
    let build_secs = started.elapsed().as_secs_f64();
    let prepared = match built {
        Ok(p) => p,
        Err(e) => {
            if title.is_none() {
                return Err(e).context(format!("building the bad commit {short}"));
            }
            let why = format!("the build failed: {}", format!("{e:#}").lines().next().unwrap_or_default());
            return Ok((step(Verdict::Skip, build_secs, why), None));
        }
    };
    let pool = Pool::new(prepared, opts.workroot.join(short));
    let played = pool.play(&opts.finding);
    pool.shutdown();
    let titles = match &played.fault {
        Some(f) => vec![triage::fault_title(f)],
        None => triage::titles(&played.outcome),
    };
    let first = titles.first().cloned();
    let (verdict, why) = match (title, &first) {
        (_, None) => (Verdict::Good, "passed".to_string()),
        (None, Some(t)) => (Verdict::Bad, t.clone()),
        (Some(want), Some(_)) if titles.iter().any(|t| t == want) => (Verdict::Bad, want.to_string()),
        (Some(_), Some(other)) => (Verdict::Skip, format!("failed otherwise: {other}")),
    };
    Ok((step(verdict, build_secs, why), first))
}
