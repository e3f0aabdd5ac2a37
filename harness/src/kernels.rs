//! The kernel matrix: the manifest under images/, its lock file, and fetching a kernel's
//! packages into the cache. The result of this module is a [`Kernel`]: an Image and the
//! build tree its modules are built against.

use crate::apt::{Apt, Archive};
use crate::cache;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// images/kernels.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub default: String,
    pub kernels: BTreeMap<String, Entry>,
}

/// One key of the manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub kind: EntryKind,
    pub about: String,
    pub archive: Archive,
    pub suite: String,
    pub abi: String,
    pub release: String,
    pub page_size: u64,
    pub image: String,
    pub packages: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    Debian,
}

/// images/kernels.lock: what each key resolved to.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Lock {
    #[serde(default)]
    pub kernels: BTreeMap<String, Locked>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Locked {
    pub abi: String,
    pub release: String,
    pub packages: Vec<LockedPackage>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct LockedPackage {
    pub name: String,
    pub arch: String,
    pub version: String,
    pub sha256: String,
}

/// A kernel ready to boot and to build modules against.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub key: String,
    pub release: String,
    pub page_size: u64,
    pub image: PathBuf,
    /// The tree `make -C` builds modules against (headers or a built source tree).
    pub build_dir: PathBuf,
    /// Where the kernel's own modules live, if it has a modules tree.
    pub modules_dir: Option<PathBuf>,
}

impl Kernel {
    /// The kernel's .config.
    pub fn config(&self) -> Result<String> {
        let path = self.build_dir.join(".config");
        fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    }
}

/// The project's images/ directory.
pub fn images_dir() -> PathBuf {
    crate::project_root().join("images")
}

impl Manifest {
    pub fn load() -> Result<Manifest> {
        Self::load_from(&images_dir().join("kernels.toml"))
    }

    pub fn load_from(path: &Path) -> Result<Manifest> {
        let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let manifest: Manifest = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if !manifest.kernels.contains_key(&manifest.default) {
            bail!("{}: default kernel '{}' is not a key", path.display(), manifest.default);
        }
        Ok(manifest)
    }

    /// The entry for `key`, or an error that lists the known keys.
    pub fn entry(&self, key: &str) -> Result<&Entry> {
        self.kernels.get(key).with_context(|| {
            let keys: Vec<_> = self.kernels.keys().map(String::as_str).collect();
            format!("unknown kernel '{key}' (known: {})", keys.join(", "))
        })
    }

    /// The keys tagged `tag`, in manifest order.
    pub fn tagged(&self, tag: &str) -> Vec<String> {
        self.kernels.iter().filter(|(_, e)| e.tags.iter().any(|t| t == tag)).map(|(k, _)| k.clone()).collect()
    }
}

impl Lock {
    pub fn path() -> PathBuf {
        images_dir().join("kernels.lock")
    }

    pub fn load() -> Result<Lock> {
        let path = Self::path();
        match fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Lock::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn save(&self) -> Result<()> {
        let text = format!(
            "# Written by `rmapcheck kernels fetch|update`: the resolved packages of each key.\n{}",
            toml::to_string_pretty(self)?
        );
        cache::write_atomic(&Self::path(), text.as_bytes())
    }
}

fn expand(template: &str, abi: &str, release: &str) -> String {
    template.replace("{abi}", abi).replace("{release}", release)
}

/// Split `name:arch`; `all` packages are fetched by plain name.
fn split_arch(spec: &str) -> (&str, &str) {
    spec.rsplit_once(':').unwrap_or((spec, "all"))
}

fn apt_name(name: &str, arch: &str) -> String {
    if arch == "all" {
        name.to_string()
    } else {
        format!("{name}:{arch}")
    }
}

/// Order ABI strings like `6.12.117+deb12` by their numbers.
fn version_numbers(abi: &str) -> Vec<u64> {
    abi.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).filter_map(|s| s.parse().ok()).collect()
}

/// Pick the newest ABI among package names that match the entry's first package.
pub fn newest_abi(entry: &Entry, names: &[String]) -> Result<String> {
    let (first, _) = split_arch(&entry.packages[0]);
    let pattern = format!("^{}$", regex::escape(first).replace(&regex::escape("{abi}"), &format!("({})", entry.abi)));
    let re = regex::Regex::new(&pattern).context("bad abi regex in the manifest")?;
    names
        .iter()
        .filter_map(|n| re.captures(n).map(|c| c[1].to_string()))
        .max_by_key(|abi| version_numbers(abi))
        .with_context(|| format!("no package matches {pattern} in {}", entry.suite))
}

pub fn apt_for(entry: &Entry) -> Result<Apt> {
    Apt::new(&cache::subdir("apt")?, entry.archive, &[entry.suite.as_str()])
}

/// Resolve the newest packages of `entry` from the mirror.
pub fn resolve(entry: &Entry) -> Result<Locked> {
    let apt = apt_for(entry)?;
    apt.update(true)?;
    let (first, _) = split_arch(&entry.packages[0]);
    let prefix = first.split("{abi}").next().unwrap_or(first);
    let abi = newest_abi(entry, &apt.pkgnames(prefix)?)?;
    let release = expand(&entry.release, &abi, "");
    let mut packages = Vec::new();
    for spec in &entry.packages {
        let (name, arch) = split_arch(spec);
        let name = expand(name, &abi, &release);
        let (version, sha256) = apt.candidate(&apt_name(&name, arch))?;
        packages.push(LockedPackage { name, arch: arch.to_string(), version, sha256 });
    }
    Ok(Locked { abi, release, packages })
}

/// Progress of a fetch, for the CLI to show.
pub trait FetchProgress {
    fn step(&self, what: &str);
}

impl FetchProgress for () {
    fn step(&self, _: &str) {}
}

/// Make `key` ready: resolve it if the lock lacks it, download and verify its packages,
/// and extract them into the cache. A kernel already in the cache costs no network.
pub fn fetch(manifest: &Manifest, key: &str, progress: &dyn FetchProgress) -> Result<Kernel> {
    let entry = manifest.entry(key)?;
    let mut lock = Lock::load()?;
    let locked = match lock.kernels.get(key) {
        Some(l) => l.clone(),
        None => {
            progress.step(&format!("{key}: resolving the newest {} in {}", entry.abi, entry.suite));
            let l = resolve(entry)?;
            lock.kernels.insert(key.to_string(), l.clone());
            lock.save()?;
            l
        }
    };
    let dir = kernel_dir(key, &locked)?;
    cache::ensure_dir(&dir, |tmp| {
        let apt = apt_for(entry)?;
        apt.update(false)?;
        let debs = cache::subdir("debs")?;
        let root = tmp.join("root");
        fs::create_dir_all(&root)?;
        for pkg in &locked.packages {
            progress.step(&format!("{key}: fetching {} {}", pkg.name, pkg.version));
            let deb = fetch_deb(&apt, pkg, &debs)?;
            progress.step(&format!("{key}: extracting {}", pkg.name));
            extract_deb(&deb, &root)?;
        }
        point_headers_into(&root, &locked.release)?;
        Ok(())
    })?;
    kernel_from_dir(key, entry, &locked, &dir)
}

fn kernel_dir(key: &str, locked: &Locked) -> Result<PathBuf> {
    let lock_text = toml::to_string(locked)?;
    let hash = cache::Key::new().part("lock", lock_text).short();
    Ok(cache::subdir("kernels")?.join(format!("{key}-{}-{hash}", locked.release)))
}

/// The cached kernel for `key`, if it was fetched before (never touches the network).
pub fn cached(manifest: &Manifest, key: &str) -> Result<Option<Kernel>> {
    let entry = manifest.entry(key)?;
    let lock = Lock::load()?;
    let Some(locked) = lock.kernels.get(key) else { return Ok(None) };
    let dir = kernel_dir(key, locked)?;
    if !cache::is_complete(&dir) {
        return Ok(None);
    }
    kernel_from_dir(key, entry, locked, &dir).map(Some)
}

fn kernel_from_dir(key: &str, entry: &Entry, locked: &Locked, dir: &Path) -> Result<Kernel> {
    let root = dir.join("root");
    let image = root.join(expand(&entry.image, &locked.abi, &locked.release));
    let build_dir = root.join("usr/src").join(format!("linux-headers-{}", locked.release));
    let modules_dir =
        ["lib/modules", "usr/lib/modules"].iter().map(|m| root.join(m).join(&locked.release)).find(|p| p.exists());
    for path in [&image, &build_dir] {
        if !path.exists() {
            bail!("kernel {key}: {} is missing from the extracted packages", path.display());
        }
    }
    Ok(Kernel {
        key: key.to_string(),
        release: locked.release.clone(),
        page_size: entry.page_size,
        image,
        build_dir,
        modules_dir,
    })
}

/// A developer's own kernel: its `Image` and the tree it was built in (which has the
/// `.config`, `include/config/kernel.release` and what `make M=` needs).
pub fn local(image: &Path, build_dir: &Path) -> Result<Kernel> {
    if !image.is_file() {
        bail!("kernel image {}: no such file", image.display());
    }
    let release_file = build_dir.join("include/config/kernel.release");
    let release = fs::read_to_string(&release_file)
        .with_context(|| format!("{}: not a built kernel tree (run make there first)", build_dir.display()))?
        .trim()
        .to_string();
    let config_path = build_dir.join(".config");
    let config = fs::read_to_string(&config_path).with_context(|| format!("reading {}", config_path.display()))?;
    Ok(Kernel {
        key: "local".into(),
        release,
        page_size: page_size_of(&config),
        image: image.to_path_buf(),
        build_dir: build_dir.to_path_buf(),
        // Virtio modules of a local tree sit next to their sources.
        modules_dir: Some(build_dir.to_path_buf()),
    })
}

/// The base page size an arm64 `.config` selects.
fn page_size_of(config: &str) -> u64 {
    let shift = config
        .lines()
        .find_map(|l| l.strip_prefix("CONFIG_ARM64_PAGE_SHIFT="))
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(12);
    1 << shift
}

/// Download one package into the shared .deb cache, verified against the lock.
pub fn fetch_deb(apt: &Apt, pkg: &LockedPackage, debs: &Path) -> Result<PathBuf> {
    let path = debs.join(format!("{}_{}.deb", pkg.name, pkg.sha256));
    if path.exists() && cache::sha256_file(&path)? == pkg.sha256 {
        return Ok(path);
    }
    let _guard = cache::lock(&path)?;
    let tmp = tempfile::tempdir_in(debs)?;
    let deb = apt.download(&apt_name(&pkg.name, &pkg.arch), &pkg.version, tmp.path()).with_context(|| {
        format!("{} {} may be gone from the mirror; run `rmapcheck kernels update`", pkg.name, pkg.version)
    })?;
    let got = cache::sha256_file(&deb)?;
    if got != pkg.sha256 {
        bail!("{}: sha256 {got} does not match the lock's {}", pkg.name, pkg.sha256);
    }
    fs::rename(&deb, &path)?;
    Ok(path)
}

fn extract_deb(deb: &Path, root: &Path) -> Result<()> {
    let status =
        std::process::Command::new("dpkg-deb").arg("-x").arg(deb).arg(root).status().context("running dpkg-deb")?;
    if !status.success() {
        bail!("dpkg-deb -x {} failed", deb.display());
    }
    Ok(())
}

/// Debian's arch headers include the -common Makefile by an absolute /usr/src path;
/// point it into the extracted root instead.
fn point_headers_into(root: &Path, release: &str) -> Result<()> {
    let makefile = root.join("usr/src").join(format!("linux-headers-{release}")).join("Makefile");
    let Ok(text) = fs::read_to_string(&makefile) else { return Ok(()) };
    // make -C runs in the headers dir, and the root is renamed after extraction, so the
    // sibling -common dir is named relative to it.
    let rel = text.replace("include /usr/src/", "include ../");
    fs::write(&makefile, rel)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        let m: Manifest = toml::from_str(include_str!("../../images/kernels.toml")).unwrap();
        m.kernels["6.12"].clone()
    }

    #[test]
    fn newest_abi_compares_numbers_not_text() {
        let names: Vec<String> = [
            "linux-image-6.12.99+deb12-arm64-unsigned",
            "linux-image-6.12.117+deb12-arm64-unsigned",
            "linux-image-6.12.117+deb12-arm64-16k-unsigned",
            "linux-image-6.12.117+deb12-cloud-arm64-unsigned",
        ]
        .map(String::from)
        .into();
        assert_eq!(newest_abi(&entry(), &names).unwrap(), "6.12.117+deb12");
    }

    #[test]
    fn page_size_comes_from_the_config() {
        assert_eq!(page_size_of("CONFIG_ARM64_PAGE_SHIFT=14\nCONFIG_X=y\n"), 16384);
        assert_eq!(page_size_of("CONFIG_X=y\n"), 4096);
    }

    #[test]
    fn unknown_key_lists_the_known_ones() {
        let m: Manifest = toml::from_str(include_str!("../../images/kernels.toml")).unwrap();
        let err = m.entry("5.4").unwrap_err().to_string();
        assert!(err.contains("unknown kernel '5.4'") && err.contains("6.12"), "{err}");
    }
}
