//! Build roots for kernels whose gcc major the host lacks (gcc-16 for Debian's 7.x on a
//! Debian 12 host): a minimal root of the kernel's own suite made by mmdebstrap, with
//! that suite's cross compiler. One compressed root is cached per suite and gcc major;
//! a kernel's headers are unpacked into it, and the module is built by `make` inside a
//! chroot, where the headers select their own compiler.
//!
//! As root this uses `mmdebstrap --mode=root` and `chroot`; otherwise
//! `--mode=unshare` and `unshare --map-root-user` around the same steps.

use crate::cache;
use crate::exec::{self, Cmd};
use crate::image::apt::{self, Archive};
use crate::image::kernel::FetchProgress;
use anyhow::{Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// An extracted build root.
pub struct Root {
    pub dir: PathBuf,
    pub suite: String,
    pub gcc_major: u32,
}

fn is_root() -> bool {
    // /proc/self belongs to the effective uid.
    fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// `program` run as root: directly when we are, else in a user namespace that maps us
/// to root (enough to own files in the root and to chroot into it).
fn as_root() -> &'static [&'static str] {
    if is_root() {
        &[]
    } else {
        &["unshare", "--map-root-user", "--mount", "--"]
    }
}

fn privileged(program: &str) -> Cmd {
    Cmd::prefixed(as_root(), program)
}

/// The packages a root needs to build an out-of-tree arm64 module with gcc-`major`.
pub fn root_packages(major: u32) -> String {
    format!("gcc-{major}-aarch64-linux-gnu,make,bc,dwarves,kmod")
}

/// The root for `suite` with gcc-`major`, built (about 30 s, 300 MB) and extracted on
/// first use.
pub fn root(suite: &str, major: u32, progress: &dyn FetchProgress) -> Result<Root> {
    let roots = cache::subdir("roots")?;
    let name = format!("{suite}-gcc{major}");
    let tarball = roots.join(format!("{name}.tar.zst"));
    if !tarball.exists() {
        let _guard = cache::lock(&tarball)?;
        if !tarball.exists() {
            progress.step(&format!("building a {suite} root with gcc-{major} (mmdebstrap, about half a minute)"));
            bootstrap(suite, major, &tarball).with_context(|| format!("building the {name} build root"))?;
        }
    }
    let dir = roots.join(&name);
    cache::ensure_dir(&dir, |tmp| {
        progress.step(&format!("extracting the {name} build root"));
        let rootfs = tmp.join("rootfs");
        fs::create_dir_all(&rootfs)?;
        // Device nodes need real root; make runs without them.
        let mut tar = privileged("tar");
        tar.arg("--zstd").arg("-xf").arg(&tarball).arg("-C").arg(&rootfs).arg("--exclude=./dev/*");
        tar.run("extracting the build root")?;
        Ok(())
    })?;
    Ok(Root { dir: dir.join("rootfs"), suite: suite.to_string(), gcc_major: major })
}

fn bootstrap(suite: &str, major: u32, tarball: &Path) -> Result<()> {
    let mirror = apt::host_mirror(Archive::Debian)?;
    let tmp = tarball.with_extension("partial.tar.zst");
    let mut cmd = Cmd::new("mmdebstrap");
    cmd.arg(if is_root() { "--mode=root" } else { "--mode=unshare" })
        .arg("--variant=essential")
        .arg(format!("--include={}", root_packages(major)))
        .arg("--aptopt=Acquire::Check-Valid-Until \"false\"")
        .arg(format!("--keyring={KEYRING}"))
        .arg(suite)
        .arg(&tmp)
        .arg(format!("deb {mirror} {suite} main"));
    if let Err(e) = cmd.run("mmdebstrap") {
        let _ = fs::remove_file(&tmp);
        exec::require("mmdebstrap", "run scripts/setup")?;
        return Err(e);
    }
    fs::rename(&tmp, tarball)?;
    Ok(())
}

impl Root {
    /// Unpack a kernel's headers and kbuild packages into the root (once per set).
    pub fn install_headers(&self, release: &str, debs: &[PathBuf]) -> Result<()> {
        let mut key = cache::Key::new();
        for d in debs {
            key = key.part("deb", d.file_name().unwrap_or_default().as_encoded_bytes());
        }
        let marker = self.dir.join(".rmapcheck").join(format!("headers-{release}-{}", key.short()));
        if marker.exists() {
            return Ok(());
        }
        let _guard = cache::lock(&marker)?;
        if marker.exists() {
            return Ok(());
        }
        for deb in debs {
            exec::extract_deb(deb, &self.dir, as_root())?;
        }
        fs::write(&marker, "")?;
        Ok(())
    }

    /// Build the module whose sources are in `src` against `release`'s headers inside
    /// the root; returns the built .ko's bytes.
    pub fn build_module(&self, release: &str, src: &Path, module: &str) -> Result<Vec<u8>> {
        let builds = self.dir.join("build");
        fs::create_dir_all(&builds)?;
        let work = tempfile::Builder::new().prefix("mod-").tempdir_in(&builds)?;
        for entry in fs::read_dir(src)? {
            let path = entry?.path();
            if path.is_file() {
                fs::copy(&path, work.path().join(path.file_name().unwrap_or_default()))?;
            }
        }
        let inside = Path::new("/build").join(work.path().file_name().unwrap_or_default());
        // The headers' .kernelvariables set ARCH, CROSS_COMPILE and CC themselves.
        let mut cmd = privileged("chroot");
        cmd.arg(&self.dir)
            .arg("make")
            .arg("-C")
            .arg(format!("/usr/src/linux-headers-{release}"))
            .arg(format!("M={}", inside.display()))
            .arg("KBUILD_MODPOST_WARN=1")
            .arg("modules")
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LC_ALL", "C");
        cmd.run(&format!("building {module} in the {}-gcc{} root", self.suite, self.gcc_major))?;
        let ko = work.path().join(module);
        fs::read(&ko).with_context(|| format!("reading {}", ko.display()))
    }
}
