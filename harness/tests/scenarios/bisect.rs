//! `vm::bisect_synthetic::6.12-debug`: `rmapcheck bisect` names a planted commit in a
//! synthetic history. A copy of the cached 6.12-debug tree gets a git history (mm/
//! only, so it stays small): a base commit, then ten benign commits with a mutant from
//! images/mutants/ as the sixth of eleven. Bisecting the finding that catches it
//! between base and tip must name the mutant's commit within ceil(log2 11) + 1 = 5
//! builds (the bad commit's included). Only where 6.12-debug is among the kernels.

use super::Pools;
use libtest_mimic::{Failed, Trial};
use rmapcheck::bisect;
use rmapcheck::image::kernels::Manifest;
use rmapcheck::scenario;
use std::path::Path;
use std::process::Command;

pub const KEY: &str = "6.12-debug";
const MUTANT: &str = "file-walk-skips-second-shared";
/// The scenario that catches it (a shared file page mapped by parent and child).
const FINDING: &str = "file_shared_fork";
/// Files the benign commits touch, in turn.
const BENIGN: [&str; 3] = ["mm/memory.c", "mm/huge_memory.c", "mm/rmap.c"];
const MAX_BUILDS: usize = 5;

fn sh(dir: &Path, program: &str, args: &[&str]) -> Result<(), Failed> {
    let out = Command::new(program).current_dir(dir).args(args).output().map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{program} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

pub fn trial(pools: fn() -> &'static Pools) -> Trial {
    Trial::test(format!("vm::bisect_synthetic::{KEY}"), move || {
        let pool = pools().get(KEY)?;
        let root = rmapcheck::project_root();
        let tmp = tempfile::Builder::new()
            .prefix("bisect-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .map_err(|e| e.to_string())?;
        let tree = tmp.path().join("linux");
        sh(tmp.path(), "cp", &["-a", &pool.prepared.kernel.build_dir.display().to_string(), "linux"])?;
        sh(&tree, "git", &["init", "-q"])?;
        // Only mm/ is history; the rest of the tree (and the build's stamps) is not.
        // Debian's linux-source ignores its whole top level (its packaging keeps only
        // debian/): drop those two lines, or nothing could be tracked.
        let ignore = tree.join(".gitignore");
        let kept: String = std::fs::read_to_string(&ignore)
            .map_err(|e| e.to_string())?
            .lines()
            .filter(|l| *l != "/*" && *l != "!/debian/")
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&ignore, kept).map_err(|e| e.to_string())?;
        std::fs::write(tree.join(".git/info/exclude"), "/*\n!/mm/\n").map_err(|e| e.to_string())?;
        let commit = |msg: &str| {
            sh(&tree, "git", &["add", "-A"])?;
            sh(
                &tree,
                "git",
                &["-c", "user.name=rmapcheck", "-c", "user.email=tests@invalid", "commit", "-q", "-m", msg],
            )
        };
        commit("base: the cached 6.12-debug tree")?;
        for i in 1..=11 {
            if i == 6 {
                let patch = root.join("images/mutants").join(format!("{MUTANT}.patch"));
                sh(&tree, "patch", &["-p1", "-s", "-i", &patch.display().to_string()])?;
                commit("mm/rmap: planted: the file walk skips every shared mapping after the first")?;
            } else {
                let file = tree.join(BENIGN[i % BENIGN.len()]);
                let mut text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
                text.push_str(&format!("/* benign change {i} */\n"));
                std::fs::write(&file, text).map_err(|e| e.to_string())?;
                commit(&format!("mm: benign change {i}"))?;
            }
        }
        let manifest = Manifest::load().map_err(|e| format!("{e:#}"))?;
        let finding = scenario::load(&root.join("scenarios").join(format!("{FINDING}.yaml")))
            .map_err(|e| Failed::from(e.to_string()))?;
        let opts = bisect::Options {
            tree: tree.clone(),
            good: "HEAD~11".into(),
            bad: "HEAD".into(),
            finding,
            config_key: KEY.into(),
            workroot: tmp.path().join("guests"),
            max_builds: MAX_BUILDS + 3,
        };
        let result = bisect::run(&manifest, &opts, &(), &|_| {}).map_err(|e| format!("{e:#}"))?;
        let first = result.first_bad.clone().unwrap_or_default();
        if !first.contains("planted") || result.builds > MAX_BUILDS {
            return Err(format!("want the planted commit within {MAX_BUILDS} builds:\n{}", result.text()).into());
        }
        eprintln!("{}", result.text());
        Ok(())
    })
}
