//! The kernel matrix: the manifest under images/, its lock file, and fetching a kernel's
//! packages into the cache. The result of this module is a [`Kernel`]: an Image and the
//! build tree its modules are built against.

use crate::cache;
use crate::exec;
use crate::image::apt::{Apt, Archive, Freshness};
use crate::image::kconfig::Kconfig;
use crate::image::kernel::{FetchProgress, Kernel};
use crate::image::{self, source_build};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

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
    /// The suite whose build root builds modules when the host lacks the kernel's gcc
    /// major; `suite` when absent.
    #[serde(default)]
    pub toolchain_suite: Option<String>,
    pub abi: String,
    /// uname -r (debian kind; a source kernel's comes from its built tree).
    #[serde(default)]
    pub release: Option<String>,
    pub page_size: u64,
    /// The Image inside the extracted packages (debian kind).
    #[serde(default)]
    pub image: Option<String>,
    pub packages: Vec<String>,
    /// Config fragments under images/, merged onto tinyconfig (source kind).
    #[serde(default)]
    pub config: Vec<String>,
    /// Source patches under images/, applied with `patch -p1` right after extraction
    /// (source kind), in order. Like the fragments, they are part of the build's key.
    #[serde(default)]
    pub patches: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// Debian's binary packages: an Image and headers.
    Debian,
    /// Built from Debian's linux-source-V tarball with the config fragments.
    Source,
}

impl Entry {
    /// The suite whose build root builds this kernel's modules.
    pub fn toolchain_suite(&self) -> &str {
        self.toolchain_suite.as_deref().unwrap_or(&self.suite)
    }

    /// Check the fields that depend on `kind`; one message per problem.
    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.packages.is_empty() {
            out.push("`packages` is empty".to_string());
        }
        if ![4096, 16384, 65536].contains(&self.page_size) {
            out.push(format!("page_size {} is not 4096, 16384 or 65536", self.page_size));
        }
        if let Err(e) = regex::Regex::new(&self.abi) {
            out.push(format!("bad `abi` regex: {e}"));
        }
        match self.kind {
            EntryKind::Debian => {
                for (field, set) in [("release", self.release.is_some()), ("image", self.image.is_some())] {
                    if !set {
                        out.push(format!("kind = \"debian\" needs `{field}`"));
                    }
                }
                if !self.config.is_empty() {
                    out.push("`config` fragments are for kind = \"source\"".into());
                }
                if !self.patches.is_empty() {
                    out.push("`patches` are for kind = \"source\"".into());
                }
            }
            EntryKind::Source => {
                if self.config.is_empty() {
                    out.push("kind = \"source\" needs `config` fragments".into());
                }
                if self.packages.len() != 1 {
                    out.push("kind = \"source\" takes one package, the linux-source tarball".into());
                }
                if self.release.is_some() || self.image.is_some() {
                    out.push("a source kernel's `release` and `image` come from its build".into());
                }
            }
        }
        out
    }
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
    /// uname -r; for a source kernel, the upstream version of its tarball.
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

impl Manifest {
    pub fn load() -> Result<Manifest> {
        Self::load_from(&image::images_dir().join("kernels.toml"))
    }

    pub fn load_from(path: &Path) -> Result<Manifest> {
        let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parse and check a manifest; errors start with `origin` (its file name).
    pub fn parse(text: &str, origin: &str) -> Result<Manifest> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        if !manifest.kernels.contains_key(&manifest.default) {
            bail!("{origin}: default kernel '{}' is not a key", manifest.default);
        }
        let problems: Vec<String> = manifest
            .kernels
            .iter()
            .flat_map(|(key, e)| e.problems().into_iter().map(move |p| format!("{origin}: kernel {key}: {p}")))
            .collect();
        if !problems.is_empty() {
            bail!("{}", problems.join("\n"));
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

    /// Check that every key in `keys` exists; the error lists the known ones.
    pub fn check_keys(&self, keys: &[String]) -> Result<()> {
        keys.iter().try_for_each(|k| self.entry(k).map(drop))
    }

    /// The keys tagged `tag`, in manifest order.
    pub fn tagged(&self, tag: &str) -> Vec<String> {
        self.kernels.iter().filter(|(_, e)| e.tags.iter().any(|t| t == tag)).map(|(k, _)| k.clone()).collect()
    }
}

impl Lock {
    pub fn path() -> PathBuf {
        image::images_dir().join("kernels.lock")
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

/// The upstream version in a Debian package version: `6.12.117-1~deb12u1` gives
/// `6.12.117`, `7.3~rc7-1~exp1` gives `7.3-rc7`.
pub fn upstream_version(version: &str) -> String {
    let no_epoch = version.split_once(':').map_or(version, |(_, v)| v);
    let upstream = no_epoch.rsplit_once('-').map_or(no_epoch, |(u, _)| u);
    upstream.replace('~', "-")
}

/// Resolve the newest packages of `entry` from the mirror. `apt` has fresh lists.
fn resolve_with(apt: &Apt, entry: &Entry) -> Result<Locked> {
    let (first, _) = split_arch(&entry.packages[0]);
    let prefix = first.split("{abi}").next().unwrap_or(first);
    let abi = newest_abi(entry, &apt.pkgnames(prefix)?)?;
    let release = expand(entry.release.as_deref().unwrap_or(""), &abi, "");
    let mut packages = Vec::new();
    for spec in &entry.packages {
        let (name, arch) = split_arch(spec);
        let name = expand(name, &abi, &release);
        let (version, sha256) = apt.candidate(&apt_name(&name, arch))?;
        packages.push(LockedPackage { name, arch: arch.to_string(), version, sha256 });
    }
    let release = match entry.kind {
        EntryKind::Debian => release,
        EntryKind::Source => upstream_version(&packages[0].version),
    };
    Ok(Locked { abi, release, packages })
}

/// Resolve the newest packages of `entry` from the mirror.
pub fn resolve(entry: &Entry) -> Result<Locked> {
    let apt = apt_for(entry)?;
    apt.update(Freshness::Now)?;
    resolve_with(&apt, entry)
}

/// The series of an ABI: its first two numbers (`7.2.13+deb14` is `7.2`).
fn series(abi: &str) -> String {
    version_numbers(abi).iter().take(2).map(u64::to_string).collect::<Vec<_>>().join(".")
}

/// One line saying how `key` changed between two resolutions, naming a new series
/// plainly (the key's name may no longer say what it holds).
pub fn describe_change(key: &str, entry: &Entry, old: Option<&Locked>, new: &Locked) -> String {
    let version = |l: &Locked| l.packages.first().map(|p| p.version.clone()).unwrap_or_default();
    match old {
        None => format!("{key}: resolved to {} ({})", new.release, version(new)),
        Some(old) if old == new => format!("{key}: unchanged at {} ({})", new.release, version(new)),
        Some(old) if series(&old.abi) != series(&new.abi) => format!(
            "{key}: {} moved from {} to {}: a new series ({} to {}); key '{key}' now names {}",
            entry.suite,
            old.release,
            new.release,
            series(&old.abi),
            series(&new.abi),
            series(&new.abi)
        ),
        Some(old) => format!("{key}: {} ({}) → {} ({})", old.release, version(old), new.release, version(new)),
    }
}

/// Re-resolve `keys` against the mirror, rewrite the lock, and say what changed.
pub fn update(manifest: &Manifest, keys: &[String], progress: &dyn FetchProgress) -> Result<Vec<String>> {
    let mut lock = Lock::load()?;
    let mut refreshed = std::collections::BTreeSet::new();
    let mut changes = Vec::new();
    for key in keys {
        let entry = manifest.entry(key)?;
        let apt = apt_for(entry)?;
        // One `apt-get update` per suite, however many keys share it.
        if refreshed.insert(format!("{:?} {}", entry.archive, entry.suite)) {
            progress.step(&format!("updating the package lists of {}", entry.suite));
            apt.update(Freshness::Now)?;
        }
        let new = resolve_with(&apt, entry).with_context(|| format!("resolving kernel {key}"))?;
        changes.push(describe_change(key, entry, lock.kernels.get(key), &new));
        lock.kernels.insert(key.clone(), new);
    }
    lock.save()?;
    Ok(changes)
}

/// Make `key` ready: resolve it if the lock lacks it, download and verify its packages,
/// and extract (or, for a source kernel, build) them into the cache. A kernel already in
/// the cache costs no network. A pin the mirror no longer serves moves on (see
/// [`fetch_packages`]).
pub fn fetch(manifest: &Manifest, key: &str, progress: &dyn FetchProgress) -> Result<Kernel> {
    let entry = manifest.entry(key)?;
    let (locked, debs) = fetch_packages(manifest, key, progress)?;
    match entry.kind {
        EntryKind::Debian => fetch_debian(key, entry, &locked, debs, progress),
        EntryKind::Source => {
            let tree = source_build::build(key, &debs[0], &recipe(entry)?, progress)?;
            source_kernel(key, entry, tree)
        }
    }
}

/// Whether a pin the mirror no longer serves is an error rather than a move: `--locked`,
/// or `RMAPCHECK_LOCKED=1`.
static STRICT_PINS: AtomicBool = AtomicBool::new(false);

pub fn set_strict_pins(strict: bool) {
    STRICT_PINS.store(strict, Ordering::Relaxed);
}

fn strict_pins() -> bool {
    STRICT_PINS.load(Ordering::Relaxed) || std::env::var("RMAPCHECK_LOCKED").is_ok_and(|v| v == "1")
}

/// A kernel that cannot be prepared from the mirror, named so that the error reads on
/// its own: which key, which package, and why.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error(
        "kernel {key}: {package} {version} is no longer served by {suite}, and pins are strict \
         (--locked or RMAPCHECK_LOCKED=1); run `rmapcheck kernels update {key}` to move the pin"
    )]
    Gone { key: String, package: String, version: String, suite: String },
    #[error("kernel {key}: {package} {version} is no longer served by {suite}, and nothing replaces it: {cause:#}")]
    NoReplacement { key: String, package: String, version: String, suite: String, cause: anyhow::Error },
}

/// Resolve `key` if the lock lacks it, then download (or find in the cache) and verify
/// every package of its pin. A pin whose packages are all cached costs no network.
/// Otherwise the lists are read fresh, and a pinned version the mirror no longer serves
/// (Debian keeps only the newest) is replaced by the newest that matches the key, as
/// `kernels update` would; apt verifies it against the signed index like any other. The
/// lock records the move, and a note names both versions. With strict pins that is a
/// [`PinError::Gone`] instead.
pub fn fetch_packages(manifest: &Manifest, key: &str, progress: &dyn FetchProgress) -> Result<(Locked, Vec<PathBuf>)> {
    let entry = manifest.entry(key)?;
    let locked = locked_or_resolve(key, entry, progress)?;
    let debs = cache::subdir("debs")?;
    let cached: Option<Vec<PathBuf>> =
        locked.packages.iter().map(|p| cached_deb(p, &debs)).collect::<Result<Vec<_>>>()?.into_iter().collect();
    if let Some(paths) = cached {
        return Ok((locked, paths));
    }
    let apt = apt_for(entry)?;
    progress.step(&format!("{key}: reading the package lists of {}", entry.suite));
    apt.update(Freshness::ThisRun).with_context(|| format!("kernel {key}: reading the lists of {}", entry.suite))?;
    let locked = match first_gone(&apt, &locked)? {
        None => locked,
        Some(gone) => {
            let gone_error = |cause| PinError::NoReplacement {
                key: key.to_string(),
                package: gone.name.clone(),
                version: gone.version.clone(),
                suite: entry.suite.clone(),
                cause,
            };
            if strict_pins() {
                return Err(PinError::Gone {
                    key: key.to_string(),
                    package: gone.name.clone(),
                    version: gone.version.clone(),
                    suite: entry.suite.clone(),
                }
                .into());
            }
            let new = resolve_with(&apt, entry).map_err(gone_error)?;
            record(key, &new)?;
            progress.note(&format!(
                "{key}: {} {} is no longer served by {}; the pin moves to {}, as `kernels update {key}` would \
                 (images/kernels.lock updated; --locked keeps pins strict)",
                gone.name,
                gone.version,
                entry.suite,
                pin_summary(&new)
            ));
            new
        }
    };
    let mut out = Vec::new();
    for pkg in &locked.packages {
        match cached_deb(pkg, &debs)? {
            Some(path) => out.push(path),
            None => {
                progress.step(&format!("{key}: fetching {} {}", pkg.name, pkg.version));
                out.push(fetch_deb(&apt, pkg, &debs).with_context(|| format!("kernel {key}"))?);
            }
        }
    }
    Ok((locked, out))
}

/// The first package of `locked` that the lists no longer hold at its pinned version.
fn first_gone(apt: &Apt, locked: &Locked) -> Result<Option<LockedPackage>> {
    for pkg in &locked.packages {
        if !apt.serves(&apt_name(&pkg.name, &pkg.arch), &pkg.version)? {
            return Ok(Some(pkg.clone()));
        }
    }
    Ok(None)
}

/// A pin in a few words: `6.1.0-56-arm64 (6.1.192-3)`.
pub fn pin_summary(locked: &Locked) -> String {
    let version = locked.packages.first().map(|p| p.version.as_str()).unwrap_or("?");
    format!("{} ({version})", locked.release)
}

fn locked_or_resolve(key: &str, entry: &Entry, progress: &dyn FetchProgress) -> Result<Locked> {
    if let Some(l) = Lock::load()?.kernels.get(key) {
        return Ok(l.clone());
    }
    progress.step(&format!("{key}: resolving the newest {} in {}", entry.abi, entry.suite));
    let l = resolve(entry).with_context(|| format!("kernel {key}: resolving the newest {}", entry.abi))?;
    record(key, &l)?;
    Ok(l)
}

/// Write `key`'s pin into the lock. Other processes may have written other keys
/// meanwhile, so reload it under the cache's lock first.
fn record(key: &str, locked: &Locked) -> Result<()> {
    let _guard = cache::lock(&cache::subdir("locks")?.join("kernels"))?;
    let mut lock = Lock::load()?;
    lock.kernels.insert(key.to_string(), locked.clone());
    lock.save()
}

/// The entry's config fragments and patches, read from images/.
pub fn recipe(entry: &Entry) -> Result<source_build::Recipe> {
    let read = |names: &[String]| -> Result<Vec<(String, String)>> {
        names
            .iter()
            .map(|name| {
                let path = image::images_dir().join(name);
                let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                Ok((name.clone(), text))
            })
            .collect()
    };
    Ok(source_build::Recipe { fragments: read(&entry.config)?, patches: read(&entry.patches)? })
}

fn fetch_debian(
    key: &str,
    entry: &Entry,
    locked: &Locked,
    debs: Vec<PathBuf>,
    progress: &dyn FetchProgress,
) -> Result<Kernel> {
    let dir = kernel_dir(key, locked)?;
    cache::ensure_dir(&dir, |tmp| {
        let root = tmp.join("root");
        fs::create_dir_all(&root)?;
        for (pkg, deb) in locked.packages.iter().zip(&debs) {
            // Warm runs trust a cached .deb by its name; extraction re-verifies it.
            let deb = if cache::sha256_file(deb)? == pkg.sha256 {
                deb.clone()
            } else {
                progress.step(&format!("{key}: cached {} is damaged; fetching it again", pkg.name));
                let apt = apt_for(entry)?;
                apt.update(Freshness::ThisRun)?;
                fetch_deb(&apt, pkg, &cache::subdir("debs")?)?
            };
            progress.step(&format!("{key}: extracting {}", pkg.name));
            exec::extract_deb(&deb, &root, &[])?;
        }
        point_headers_into(&root, &locked.release)?;
        Ok(())
    })?;
    kernel_from_dir(key, entry, locked, &dir, debs)
}

fn kernel_dir(key: &str, locked: &Locked) -> Result<PathBuf> {
    let lock_text = toml::to_string(locked)?;
    let hash = cache::Key::new().part("lock", lock_text).short();
    Ok(cache::subdir("kernels")?.join(format!("{key}-{}-{hash}", locked.release)))
}

/// The cached kernel for `key`, if it was fetched (or built) before. Never touches the
/// network and never builds.
pub fn cached(manifest: &Manifest, key: &str) -> Result<Option<Kernel>> {
    let entry = manifest.entry(key)?;
    let lock = Lock::load()?;
    let Some(locked) = lock.kernels.get(key) else { return Ok(None) };
    let debs = cache::subdir("debs")?;
    let mut paths = Vec::new();
    for pkg in &locked.packages {
        match cached_deb(pkg, &debs)? {
            Some(p) => paths.push(p),
            None => return Ok(None),
        }
    }
    match entry.kind {
        EntryKind::Debian => {
            let dir = kernel_dir(key, locked)?;
            if !cache::is_complete(&dir) {
                return Ok(None);
            }
            kernel_from_dir(key, entry, locked, &dir, paths).map(Some)
        }
        EntryKind::Source => match source_build::built(key, &paths[0], &recipe(entry)?)? {
            Some(tree) => source_kernel(key, entry, tree).map(Some),
            None => Ok(None),
        },
    }
}

fn source_kernel(key: &str, entry: &Entry, tree: source_build::Tree) -> Result<Kernel> {
    let gcc_major = Kconfig::read(&tree.dir.join(".config"))?.gcc_major().with_context(|| format!("kernel {key}"))?;
    Ok(Kernel {
        key: key.to_string(),
        release: tree.release,
        page_size: entry.page_size,
        image: tree.image,
        build_dir: tree.dir,
        modules_dir: None,
        gcc_major,
        toolchain_suite: None,
        header_debs: Vec::new(),
    })
}

fn kernel_from_dir(key: &str, entry: &Entry, locked: &Locked, dir: &Path, debs: Vec<PathBuf>) -> Result<Kernel> {
    let root = dir.join("root");
    let image = root.join(expand(entry.image.as_deref().unwrap_or(""), &locked.abi, &locked.release));
    let build_dir = root.join("usr/src").join(format!("linux-headers-{}", locked.release));
    let modules_dir =
        ["lib/modules", "usr/lib/modules"].iter().map(|m| root.join(m).join(&locked.release)).find(|p| p.exists());
    for path in [&image, &build_dir] {
        if !path.exists() {
            bail!("kernel {key}: {} is missing from the extracted packages", path.display());
        }
    }
    let config = Kconfig::read(&build_dir.join(".config"))
        .with_context(|| format!("kernel {key}: reading the headers' .config"))?;
    let gcc_major = config.gcc_major().with_context(|| format!("kernel {key}"))?;
    // Only the headers and kbuild go into a build root; the Image and modules do not.
    let header_debs = locked
        .packages
        .iter()
        .zip(debs)
        .filter(|(p, _)| p.name.starts_with("linux-headers-") || p.name.starts_with("linux-kbuild-"))
        .map(|(_, d)| d)
        .collect();
    Ok(Kernel {
        key: key.to_string(),
        release: locked.release.clone(),
        page_size: entry.page_size,
        image,
        build_dir,
        modules_dir,
        gcc_major,
        toolchain_suite: Some(entry.toolchain_suite().to_string()),
        header_debs,
    })
}

fn deb_path(pkg: &LockedPackage, debs: &Path) -> PathBuf {
    debs.join(format!("{}_{}.deb", pkg.name, pkg.sha256))
}

/// The package's .deb if the cache has it. A complete file was verified before it was
/// renamed into place, so its name (which holds the sha256) is trusted.
fn cached_deb(pkg: &LockedPackage, debs: &Path) -> Result<Option<PathBuf>> {
    let path = deb_path(pkg, debs);
    Ok(path.is_file().then_some(path))
}

/// Download one package into the shared .deb cache, verified against the lock.
pub fn fetch_deb(apt: &Apt, pkg: &LockedPackage, debs: &Path) -> Result<PathBuf> {
    let path = deb_path(pkg, debs);
    let _guard = cache::lock(&path)?;
    if path.is_file() {
        if cache::sha256_file(&path)? == pkg.sha256 {
            return Ok(path);
        }
        // Damaged after it was verified (disk, or a hand edit): fetch it again.
        fs::remove_file(&path)?;
    }
    let tmp = tempfile::tempdir_in(debs)?;
    let deb = apt
        .download(&apt_name(&pkg.name, &pkg.arch), &pkg.version, tmp.path())
        .with_context(|| format!("downloading {} {}", pkg.name, pkg.version))?;
    let got = cache::sha256_file(&deb)?;
    if got != pkg.sha256 {
        bail!("{}: sha256 {got} does not match the lock's {}", pkg.name, pkg.sha256);
    }
    fs::rename(&deb, &path)?;
    Ok(path)
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

    fn manifest() -> Manifest {
        Manifest::parse(include_str!("../../../images/kernels.toml"), "kernels.toml").unwrap()
    }

    fn entry() -> Entry {
        manifest().kernels["6.12"].clone()
    }

    #[test]
    fn the_manifest_has_the_matrix() {
        let m = manifest();
        let keys: Vec<_> = m.kernels.keys().map(String::as_str).collect();
        for key in ["6.1", "6.12", "6.12-16k", "7.2", "7.2-16k", "7.3", "6.12-debug", "7.2-debug"] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
        assert_eq!(m.tagged("default"), ["6.1", "6.12", "6.12-16k", "6.12-debug", "7.2", "7.2-16k", "7.2-nomapcount"]);
        assert_eq!(m.tagged("nightly").len(), m.kernels.len());
        assert_eq!(m.kernels["7.2-16k"].page_size, 16384);
        assert_eq!(m.kernels["7.3"].toolchain_suite(), "sid");
        assert_eq!(m.kernels["7.2"].toolchain_suite(), "sid");
    }

    #[test]
    fn kind_specific_fields_are_checked() {
        let text = r#"
            default = "a"
            [kernels.a]
            kind = "source"
            about = ""
            archive = "debian"
            suite = "sid"
            abi = '('
            page_size = 8192
            image = "Image"
            packages = ["x:all", "y:all"]
            [kernels.b]
            kind = "debian"
            about = ""
            archive = "debian"
            suite = "sid"
            abi = '\d+'
            page_size = 4096
            packages = ["linux-image-{abi}:arm64"]
            config = ["debug.config"]
            patches = ["kcov-mm.patch"]
        "#;
        let err = Manifest::parse(text, "m.toml").unwrap_err().to_string();
        for want in [
            "m.toml: kernel a: page_size 8192",
            "m.toml: kernel a: bad `abi` regex",
            "m.toml: kernel a: kind = \"source\" needs `config`",
            "m.toml: kernel a: kind = \"source\" takes one package",
            "m.toml: kernel a: a source kernel's `release` and `image`",
            "m.toml: kernel b: kind = \"debian\" needs `release`",
            "m.toml: kernel b: kind = \"debian\" needs `image`",
            "m.toml: kernel b: `config` fragments are for",
            "m.toml: kernel b: `patches` are for",
        ] {
            assert!(err.contains(want), "missing '{want}' in:\n{err}");
        }
        let unknown = text.replace("kind = \"debian\"", "kind = \"debian\"\nflavour = \"x\"");
        let err = Manifest::parse(&unknown, "m.toml").unwrap_err().to_string();
        assert!(err.starts_with("m.toml: ") && err.contains("flavour"), "{err}");
    }

    #[test]
    fn the_lock_round_trips() {
        let text = include_str!("../../../images/kernels.lock");
        let lock: Lock = toml::from_str(text).unwrap();
        let again: Lock = toml::from_str(&toml::to_string_pretty(&lock).unwrap()).unwrap();
        assert_eq!(lock.kernels, again.kernels);
        for (key, l) in &lock.kernels {
            assert!(manifest().kernels.contains_key(key), "lock has unknown key {key}");
            assert!(l.packages.iter().all(|p| p.sha256.len() == 64), "{key}: bad sha256");
        }
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
    fn abi_resolution_per_packaging() {
        let m = manifest();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let sid = names(&[
            "linux-binary-unsigned-7.2.9+deb14-arm64",
            "linux-binary-unsigned-7.2.13+deb14-arm64",
            "linux-binary-unsigned-7.2.13+deb14-arm64-16k",
            "linux-binary-unsigned-7.2.13+deb14-rt-arm64",
        ]);
        assert_eq!(newest_abi(&m.kernels["7.2"], &sid).unwrap(), "7.2.13+deb14");
        assert_eq!(newest_abi(&m.kernels["7.2-16k"], &sid).unwrap(), "7.2.13+deb14");
        let exp = names(&["linux-binary-unsigned-7.3-arm64", "linux-binary-unsigned-7.3-arm64-16k"]);
        assert_eq!(newest_abi(&m.kernels["7.3"], &exp).unwrap(), "7.3");
        let bookworm = names(&[
            "linux-image-6.1.0-9-arm64-unsigned",
            "linux-image-6.1.0-56-arm64-unsigned",
            "linux-image-6.1.0-56-rt-arm64-unsigned",
        ]);
        assert_eq!(newest_abi(&m.kernels["6.1"], &bookworm).unwrap(), "6.1.0-56");
        let sources = names(&["linux-source-6.1", "linux-source-6.12"]);
        assert_eq!(newest_abi(&m.kernels["6.12-debug"], &sources).unwrap(), "6.12");
        assert!(newest_abi(&m.kernels["7.2"], &bookworm).is_err());
    }

    #[test]
    fn upstream_versions() {
        assert_eq!(upstream_version("6.12.117-1~deb12u1"), "6.12.117");
        assert_eq!(upstream_version("7.3~rc7-1~exp1"), "7.3-rc7");
        assert_eq!(upstream_version("1:2.0-3"), "2.0");
    }

    #[test]
    fn update_names_a_new_series_plainly() {
        let m = manifest();
        let locked = |abi: &str, version: &str| Locked {
            abi: abi.into(),
            release: format!("{abi}-arm64"),
            packages: vec![LockedPackage {
                name: format!("linux-binary-unsigned-{abi}-arm64"),
                arch: "arm64".into(),
                version: version.into(),
                sha256: "0".repeat(64),
            }],
        };
        let e = &m.kernels["7.2"];
        let a = locked("7.2.13+deb14", "7.2.13-1");
        let b = locked("7.2.14+deb14", "7.2.14-1");
        let c = locked("7.3.1+deb14", "7.3.1-1");
        assert_eq!(describe_change("7.2", e, Some(&a), &a), "7.2: unchanged at 7.2.13+deb14-arm64 (7.2.13-1)");
        assert_eq!(
            describe_change("7.2", e, Some(&a), &b),
            "7.2: 7.2.13+deb14-arm64 (7.2.13-1) → 7.2.14+deb14-arm64 (7.2.14-1)"
        );
        assert_eq!(
            describe_change("7.2", e, Some(&a), &c),
            "7.2: sid moved from 7.2.13+deb14-arm64 to 7.3.1+deb14-arm64: a new series (7.2 to 7.3); \
             key '7.2' now names 7.3"
        );
        assert_eq!(describe_change("7.2", e, None, &a), "7.2: resolved to 7.2.13+deb14-arm64 (7.2.13-1)");
    }

    #[test]
    fn unknown_key_lists_the_known_ones() {
        let err = manifest().entry("5.4").unwrap_err().to_string();
        assert!(err.contains("unknown kernel '5.4'") && err.contains("6.12"), "{err}");
    }
}
