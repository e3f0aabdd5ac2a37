//! Builds what runs inside the guest: the agent (a static /init) and rmapcheck.ko,
//! the latter with the same compiler major that built the kernel.

use crate::cache;
use crate::exec::{self, have, Cmd};
use crate::image::kconfig::Kconfig;
use crate::image::kernel::{FetchProgress, Kernel};
use crate::image::toolchain;
use anyhow::{anyhow, bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

const CROSS: &str = "aarch64-linux-gnu-";

/// The host cross compiler of exactly `major`, or an error saying why there is none.
/// There is no fallback: a module built by another major can crash the kernel at load.
pub fn cross_gcc(major: u32, kernel: &str) -> Result<String> {
    let gcc = format!("{CROSS}gcc-{major}");
    if have(&gcc) {
        return Ok(gcc);
    }
    bail!(
        "kernel {kernel} was built with gcc-{major}, and this host has no {gcc}; \
         refusing to build rmapcheck.ko with another compiler (a mismatched module can \
         crash the kernel at load)"
    )
}

fn guest_dir() -> PathBuf {
    crate::project_root().join("guest")
}

/// Build the static agent, cached by its sources.
pub fn agent() -> Result<PathBuf> {
    let src = guest_dir().join("agent");
    let key = cache::Key::new().tree(&src)?.short();
    let dir = cache::subdir("agent")?.join(key);
    cache::ensure_dir(&dir, |tmp| {
        let gcc = format!("{CROSS}gcc");
        exec::require(&gcc, "run: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross")?;
        // guest/agent/Makefile is the one recipe (sources, flags); it writes only to O=.
        Cmd::new("make")
            .arg("-C")
            .arg(&src)
            .arg(format!("O={}", tmp.display()))
            .arg(format!("CC={gcc}"))
            .run("building the agent")?;
        Ok(())
    })?;
    Ok(dir.join("init"))
}

/// A failure to compile a user's program: the fault of its source, not of the machine.
#[derive(Debug, thiserror::Error)]
#[error("{path}: does not compile for arm64:\n{errors}")]
pub struct CompileError {
    pub path: String,
    pub errors: String,
}

/// Build a static arm64 program (a C reproducer) from one C file, cached by its text.
pub fn static_program(source: &Path) -> Result<PathBuf> {
    let text = fs::read(source).with_context(|| format!("reading {}", source.display()))?;
    let key = cache::Key::new().part("source", &text).short();
    let dir = cache::subdir("programs")?.join(key);
    let gcc = format!("{CROSS}gcc");
    cache::ensure_dir(&dir, |tmp| {
        exec::require(&gcc, "run: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross")?;
        let mut cmd = Cmd::new(&gcc);
        cmd.args(["-static", "-O2", "-Wall", "-o"]).arg(tmp.join("program")).arg(source);
        cmd.run("compiling").map_err(|e| match e.downcast::<exec::Error>() {
            Ok(exec::Error::Failed { tail, .. }) => {
                CompileError { path: source.display().to_string(), errors: tail }.into()
            }
            Ok(other) => other.into(),
            Err(e) => e,
        })?;
        Ok(())
    })?;
    Ok(dir.join("program"))
}

/// Where a module for a kernel gets built.
#[derive(Debug, PartialEq, Eq)]
pub enum Toolchain {
    /// The host's cross gcc of the kernel's major.
    Host(String),
    /// A build root of this suite (see `toolchain`).
    Root(String),
}

/// Choose the toolchain for a kernel built by gcc-`major`: the host's cross gcc of that
/// major, else a build root of `suite` when the kernel has headers packages to put in
/// one. Otherwise refuse, with `cross_gcc`'s error: never another major.
pub fn choose_toolchain(host: Result<String>, suite: Option<&str>, has_headers: bool) -> Result<Toolchain> {
    match (host, suite) {
        (Ok(gcc), _) => Ok(Toolchain::Host(gcc)),
        (Err(_), Some(suite)) if has_headers => Ok(Toolchain::Root(suite.to_string())),
        (Err(refusal), _) => Err(anyhow!("{refusal}; no build root applies (one needs the kernel's Debian headers)")),
    }
}

/// Build rmapcheck.ko for `kernel`, cached by the module sources and the kernel.
pub fn module(kernel: &Kernel, progress: &dyn FetchProgress) -> Result<PathBuf> {
    let src = guest_dir().join("module");
    let config = kernel.config()?;
    let major = kernel.gcc_major;
    let image = fs::metadata(&kernel.image).with_context(|| format!("reading {}", kernel.image.display()))?;
    let key = cache::Key::new()
        .tree(&src)?
        .part("release", &kernel.release)
        .part("config", config.text())
        .part("build", kernel.build_dir.to_string_lossy().as_bytes())
        // A rebuilt source tree keeps its config; its Image changes.
        .part("image", format!("{} {:?}", image.len(), image.modified().ok()))
        .short();
    let dir = cache::subdir("modules")?.join(format!("{}-{key}", kernel.key));
    cache::ensure_dir(&dir, |tmp| {
        let host = cross_gcc(major, &kernel.key);
        let toolchain = choose_toolchain(host, kernel.toolchain_suite.as_deref(), !kernel.header_debs.is_empty())?;
        let ko = match toolchain {
            Toolchain::Host(gcc) => build_on_host(kernel, &src, &gcc, tmp)?,
            Toolchain::Root(suite) => {
                let root = toolchain::root(&suite, major, progress)?;
                root.install_headers(&kernel.release, &kernel.header_debs)?;
                progress.step(&format!("{}: building rmapcheck.ko in the {suite}-gcc{major} root", kernel.key));
                root.build_module(&kernel.release, &src, "rmapcheck.ko")?
            }
        };
        verify_module(&ko, &kernel.release, major, &config)?;
        fs::write(tmp.join("rmapcheck.ko"), ko)?;
        Ok(())
    })?;
    Ok(dir.join("rmapcheck.ko"))
}

fn build_on_host(kernel: &Kernel, src: &Path, gcc: &str, tmp: &Path) -> Result<Vec<u8>> {
    let build = tmp.join("build");
    fs::create_dir_all(&build)?;
    for entry in fs::read_dir(src)? {
        let path = entry?.path();
        if path.is_file() {
            fs::copy(&path, build.join(path.file_name().unwrap()))?;
        }
    }
    let mut cmd = Cmd::new("make");
    cmd.arg("-C")
        .arg(&kernel.build_dir)
        .arg(format!("M={}", build.display()))
        .arg("ARCH=arm64")
        .arg(format!("CROSS_COMPILE={CROSS}"))
        .arg(format!("CC={gcc}"))
        .arg("KBUILD_MODPOST_WARN=1");
    if !have("pahole") {
        cmd.arg("CONFIG_DEBUG_INFO_BTF_MODULES=");
    }
    cmd.arg("modules");
    cmd.run(&format!("building rmapcheck.ko for {}", kernel.key))?;
    let ko = fs::read(build.join("rmapcheck.ko"))?;
    fs::remove_dir_all(&build)?;
    Ok(ko)
}

/// Check a built module: vermagic names the kernel's release, the .comment names the
/// expected gcc major, and ftrace's patchable entries are there when the kernel's config
/// has dynamic ftrace (a tinyconfig kernel has none).
pub fn verify_module(ko: &[u8], release: &str, major: u32, config: &Kconfig) -> Result<()> {
    let text = String::from_utf8_lossy(ko);
    let vermagic =
        text.split('\0').find_map(|s| s.strip_prefix("vermagic=")).context("rmapcheck.ko has no vermagic")?;
    if vermagic.split_whitespace().next() != Some(release) {
        bail!("rmapcheck.ko has vermagic '{vermagic}', not for {release}");
    }
    let gcc = text.split('\0').find(|s| s.starts_with("GCC: ")).context("rmapcheck.ko has no GCC .comment")?;
    let built = gcc.split_whitespace().last().unwrap_or("");
    if !built.starts_with(&format!("{major}.")) {
        bail!("rmapcheck.ko was built by '{gcc}', not gcc-{major}");
    }
    let ftrace = config.is("CONFIG_DYNAMIC_FTRACE", "y");
    if ftrace && !text.contains("__patchable_function_entries") {
        bail!("rmapcheck.ko lacks __patchable_function_entries; ftrace would reject it");
    }
    Ok(())
}

/// The kernel's own modules (paths relative to its modules dir) that the guest loads at
/// boot, in load order: the virtio transport the agent talks over, zram for the swap
/// device, and ext4 for the block filesystem (image::blockfs). Empty when they are built
/// in.
pub fn needed_modules(kernel: &Kernel) -> Result<Vec<PathBuf>> {
    let config = kernel.config()?;
    let is_module = |opt: &str| config.is(&format!("CONFIG_{opt}"), "m");
    // Order matters: the PCI transport before the console that rides on it.
    let wanted = [
        ("VIRTIO_PCI_LIB", "virtio_pci_modern_dev"),
        ("VIRTIO_PCI_LIB_LEGACY", "virtio_pci_legacy_dev"),
        ("VIRTIO_PCI", "virtio_pci"),
        ("VIRTIO_CONSOLE", "virtio_console"),
        // The swap device (agent: zram0), after what zram links against.
        ("ZSMALLOC", "zsmalloc"),
        ("LZ4_COMPRESS", "lz4_compress"),
        ("LZ4HC_COMPRESS", "lz4hc_compress"),
        ("ZRAM", "zram"),
        // The block filesystem on zram1 (image::blockfs), after what ext4 links against.
        ("CRC16", "crc16"),
        // 6.x ext4's mount asks the crypto API for crc32c, and the guest has no
        // modprobe. 7.x's ext4 calls the crc32c library: no crc32c_generic there.
        ("CRYPTO_CRC32C", "crc32c_generic"),
        ("FS_MBCACHE", "mbcache"),
        ("JBD2", "jbd2"),
        ("EXT4_FS", "ext4"),
    ];
    let mut out = Vec::new();
    for (opt, name) in wanted {
        if !is_module(opt) {
            continue;
        }
        let dir = kernel
            .modules_dir
            .as_ref()
            .with_context(|| format!("kernel {} builds {name} as a module but has no modules tree", kernel.key))?;
        match find_module(dir, name) {
            Ok(path) => out.push(path),
            Err(_) if name == "crc32c_generic" => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn find_module(dir: &Path, name: &str) -> Result<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f == format!("{name}.ko") || f.starts_with(&format!("{name}.ko.")))
            {
                return Ok(path);
            }
        }
    }
    bail!("module {name} not found under {}", dir.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_compiler_it_does_not_have() {
        let err = cross_gcc(99, "test-kernel").unwrap_err().to_string();
        assert!(err.contains("gcc-99") && err.contains("refusing"), "{err}");
    }

    #[test]
    fn verify_module_checks_vermagic_and_compiler() {
        let ko = b"\0vermagic=6.12.117+deb12-arm64 SMP preempt mod_unload aarch64\0GCC: (Debian 12.2.0-14) 12.2.0\0__patchable_function_entries\0";
        let ftrace = &Kconfig::parse("CONFIG_DYNAMIC_FTRACE=y\n");
        verify_module(ko, "6.12.117+deb12-arm64", 12, ftrace).unwrap();
        assert!(verify_module(ko, "6.1.0-30-arm64", 12, ftrace).is_err());
        assert!(verify_module(ko, "6.12.117+deb12-arm64", 14, ftrace).is_err());
        let plain = b"\0vermagic=6.12.117 SMP mod_unload aarch64\0GCC: (Debian 12.2.0-14) 12.2.0\0";
        assert!(verify_module(plain, "6.12.117", 12, ftrace).is_err(), "ftrace kernel, no patchable entries");
        verify_module(plain, "6.12.117", 12, &Kconfig::parse("# CONFIG_FTRACE is not set\n")).unwrap();
    }

    #[test]
    fn toolchain_is_the_hosts_or_a_root_never_another_compiler() {
        let host = || cross_gcc(99, "k");
        assert_eq!(choose_toolchain(Ok("gcc-12".into()), Some("sid"), true).unwrap(), Toolchain::Host("gcc-12".into()));
        assert_eq!(choose_toolchain(host(), Some("sid"), true).unwrap(), Toolchain::Root("sid".into()));
        // A user's tree has no headers packages: refuse, naming the compiler.
        let err = format!("{:#}", choose_toolchain(host(), Some("sid"), false).unwrap_err());
        assert!(err.contains("gcc-99") && err.contains("refusing"), "{err}");
        let err = format!("{:#}", choose_toolchain(host(), None, true).unwrap_err());
        assert!(err.contains("refusing"), "{err}");
    }
}
