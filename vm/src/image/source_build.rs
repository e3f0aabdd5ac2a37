//! Kernels built from Debian's linux-source-V tarball: `tinyconfig` plus the config
//! fragments under images/, built with the host's cross gcc-12 (`make Image
//! modules_prepare`). The build tree stays in the cache, keyed by the tarball and the
//! fragments, so a change to one file in it rebuilds in minutes; modules build against
//! the tree as they would against headers.

use crate::cache;
use crate::exec::{self, Cmd};
use crate::image::kconfig::Kconfig;
use crate::image::kernel::FetchProgress;
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// The host compiler that builds source kernels (and, so, their modules).
const GCC: &str = "aarch64-linux-gnu-gcc-12";
const CROSS: &str = "aarch64-linux-gnu-";

/// A configured and built kernel tree.
#[derive(Debug, Clone)]
pub struct Tree {
    pub dir: PathBuf,
    pub image: PathBuf,
    pub release: String,
}

/// Written after a successful build; sources newer than it mean the tree changed.
const BUILT: &str = ".rmapcheck-built";

/// What a source kernel is made of besides its tarball: config fragments and source
/// patches, each a file under images/ as (name, contents).
#[derive(Debug, Clone, Default)]
pub struct Recipe {
    pub fragments: Vec<(String, String)>,
    pub patches: Vec<(String, String)>,
}

/// The cache entry of `key` built from `deb` (whose file name holds its sha256) with
/// `recipe`. A recipe without patches keys as it did before patches existed.
fn entry_dir(key: &str, deb: &Path, recipe: &Recipe) -> Result<PathBuf> {
    let mut k = cache::Key::new().part("tarball", deb.file_name().unwrap_or_default().as_encoded_bytes());
    for (name, text) in &recipe.fragments {
        k = k.part(name, text);
    }
    for (name, text) in &recipe.patches {
        k = k.part(&format!("patch {name}"), text);
    }
    Ok(cache::subdir("source")?.join(format!("{key}-{}", k.short())))
}

fn tree_of(dir: &Path) -> Result<Tree> {
    let tree = dir.join("linux");
    let release_path = tree.join("include/config/kernel.release");
    let release = fs::read_to_string(&release_path).with_context(|| format!("reading {}", release_path.display()))?;
    Ok(Tree { image: tree.join("arch/arm64/boot/Image"), release: release.trim().to_string(), dir: tree })
}

/// The tree, if it was built before (it may have changed since; `build` checks that).
pub fn built(key: &str, deb: &Path, recipe: &Recipe) -> Result<Option<Tree>> {
    let dir = entry_dir(key, deb, recipe)?;
    if !dir.join("linux").join(BUILT).exists() {
        return Ok(None);
    }
    tree_of(&dir).map(Some)
}

/// Extract (and patch), configure and build `key`'s tree as needed. Each stage is redone
/// only when it did not finish before; the build itself reruns when any source file
/// changed. A patch that fails to apply leaves the stage unfinished, so the next try
/// extracts a clean tree again.
pub fn build(key: &str, deb: &Path, recipe: &Recipe, progress: &dyn FetchProgress) -> Result<Tree> {
    let dir = entry_dir(key, deb, recipe)?;
    let _guard = cache::lock(&dir)?;
    let tree = dir.join("linux");
    if !dir.join(".extracted").exists() {
        progress.step(&format!("{key}: extracting the kernel source"));
        extract(deb, &dir).with_context(|| format!("extracting {}", deb.display()))?;
        for (name, _) in &recipe.patches {
            progress.step(&format!("{key}: applying {name}"));
            patch(&tree, &crate::image::images_dir().join(name), false).with_context(|| format!("kernel {key}"))?;
        }
        fs::write(dir.join(".extracted"), "")?;
    }
    let fragments = &recipe.fragments;
    if !dir.join(".configured").exists() {
        progress.step(&format!("{key}: configuring (tinyconfig + {})", names(fragments)));
        configure(&tree, fragments).with_context(|| format!("configuring {key}"))?;
        fs::write(dir.join(".configured"), "")?;
    }
    if let Some(why) = stale(&tree)? {
        progress.step(&format!("{key}: building Image and modules_prepare ({why}); a cold build takes minutes"));
        let started = Instant::now();
        make_logged(key, &tree, &["Image", "modules_prepare"], progress)?;
        fs::write(tree.join(BUILT), "")?;
        progress.step(&format!("{key}: built in {:.0} s", started.elapsed().as_secs_f64()));
    }
    tree_of(&dir)
}

/// Rebuild a configured tree in place (Image and what modules build against); only what
/// changed is recompiled. For trees outside the cache, such as the mutants' copy.
pub fn rebuild(key: &str, tree: &Path, progress: &dyn FetchProgress) -> Result<()> {
    progress.step(&format!("{key}: building Image and modules_prepare"));
    make_logged(key, tree, &["Image", "modules_prepare"], progress)?;
    fs::write(tree.join(BUILT), "")?;
    Ok(())
}

/// Apply (or with `reverse`, revert) a unified diff to a tree, `patch -p1`. The one
/// place trees are patched: source kernels' patches and the mutants.
pub fn patch(tree: &Path, patch: &Path, reverse: bool) -> Result<()> {
    let mut cmd = Cmd::new("patch");
    cmd.dir(tree).args(["-p1", "--forward", "--no-backup-if-mismatch", "-i"]).arg(patch);
    if reverse {
        cmd.arg("-R");
    }
    cmd.run(&format!("patch {}{}", if reverse { "-R " } else { "" }, patch.display()))?;
    Ok(())
}

/// Whether `patch` is applied to `tree` (it reverts cleanly).
pub fn is_applied(tree: &Path, patch: &Path) -> bool {
    Cmd::new("patch").dir(tree).args(["-p1", "-R", "--dry-run", "-s", "-i"]).arg(patch).run("").is_ok()
}

fn names(fragments: &[(String, String)]) -> String {
    fragments.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(" + ")
}

/// Unpack the tarball that the linux-source deb carries into `dir/linux`.
fn extract(deb: &Path, dir: &Path) -> Result<()> {
    let unpacked = dir.join("deb");
    let tree = dir.join("linux");
    for d in [&unpacked, &tree] {
        if d.exists() {
            fs::remove_dir_all(d)?;
        }
        fs::create_dir_all(d)?;
    }
    exec::extract_deb(deb, &unpacked, &[])?;
    let src = unpacked.join("usr/src");
    let tarball = fs::read_dir(&src)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains(".tar")))
        .with_context(|| format!("no source tarball in {}", src.display()))?;
    Cmd::new("tar")
        .arg("-xf")
        .arg(&tarball)
        .arg("-C")
        .arg(&tree)
        .arg("--strip-components=1")
        .run("tar -x the kernel source")?;
    fs::remove_dir_all(&unpacked)?;
    Ok(())
}

fn make(tree: &Path) -> Cmd {
    let mut cmd = Cmd::new("make");
    cmd.dir(tree).arg("ARCH=arm64").arg(format!("CROSS_COMPILE={CROSS}")).arg(format!("CC={GCC}"));
    cmd
}

/// Configure `tree` as tinyconfig plus `fragments`; an option Kconfig drops is an error.
pub fn configure(tree: &Path, fragments: &[(String, String)]) -> Result<()> {
    exec::require(GCC, "run scripts/setup")?;
    make(tree).arg("tinyconfig").run("make tinyconfig")?;
    let mut merge = Cmd::new(tree.join("scripts/kconfig/merge_config.sh"));
    merge.dir(tree).env("ARCH", "arm64").env("CROSS_COMPILE", CROSS).args(["-m", ".config"]);
    for (name, _) in fragments {
        merge.arg(crate::image::images_dir().join(name));
    }
    merge.run("merge_config.sh")?;
    make(tree).arg("olddefconfig").run("make olddefconfig")?;
    let config = Kconfig::read(&tree.join(".config"))?;
    let lost: Vec<String> = fragments
        .iter()
        .flat_map(|(name, text)| config.lost(&Kconfig::parse(text)).into_iter().map(move |l| format!("{name}: {l}")))
        .collect();
    if !lost.is_empty() {
        // Kconfig drops what it cannot satisfy without a word; a debug kernel without
        // DEBUG_VM would pass silently, so refuse.
        bail!("the config lost options of its fragments:\n{}", lost.join("\n"));
    }
    Ok(())
}

/// Why the tree needs a build, or None when the Image is newer than every source file.
fn stale(tree: &Path) -> Result<Option<String>> {
    let stamp = match fs::metadata(tree.join(BUILT)).and_then(|m| m.modified()) {
        Ok(t) => t,
        Err(_) => return Ok(Some("not built yet".into())),
    };
    if !tree.join("arch/arm64/boot/Image").exists() {
        return Ok(Some("no Image".into()));
    }
    Ok(newer_file(tree, stamp)?.map(|p| format!("{} changed", p.strip_prefix(tree).unwrap_or(&p).display())))
}

/// A source file under `dir` modified after `than`. Build outputs are older than the
/// stamp, so they never count.
fn newer_file(dir: &Path, than: SystemTime) -> Result<Option<PathBuf>> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() && entry.metadata()?.modified()? > than {
                return Ok(Some(entry.path()));
            }
        }
    }
    Ok(None)
}

/// Run make in the tree, reporting progress every half minute and the tail of the log
/// on failure.
fn make_logged(key: &str, tree: &Path, targets: &[&str], progress: &dyn FetchProgress) -> Result<()> {
    let jobs = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let started = Instant::now();
    let mut last = started;
    let mut compiled = 0usize;
    make(tree).arg(format!("-j{jobs}")).args(targets).run_lines(
        &format!("make {} for {key}", targets.join(" ")),
        |line| {
            if line.trim_start().starts_with("CC ") {
                compiled += 1;
            }
            if last.elapsed() >= Duration::from_secs(30) {
                last = Instant::now();
                progress.step(&format!(
                    "{key}: still building: {compiled} files compiled in {:.0} s",
                    started.elapsed().as_secs_f64()
                ));
            }
        },
    )
}
