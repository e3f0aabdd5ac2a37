//! Readies a kernel for booting: fetch it, build the agent and its module, and pack the
//! initramfs. Each part is cached, so a warm call costs milliseconds.

use crate::image::kernel::{FetchProgress, Kernel};
use crate::image::kernels::{self, Manifest};
use crate::image::{blockfs, guest_build, initramfs};
use anyhow::{Context, Result};
use std::path::PathBuf;

/// A kernel and the initramfs to boot it with.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub kernel: Kernel,
    pub initrd: PathBuf,
}

/// A kernel to run on: a manifest key, or the user's own build (an ad-hoc entry that goes
/// through the same preparation).
#[derive(Debug, Clone)]
pub enum Target {
    Key(String),
    Custom(Kernel),
}

impl Target {
    pub fn key(&self) -> &str {
        match self {
            Target::Key(k) => k,
            Target::Custom(k) => &k.key,
        }
    }
}

pub fn prepare_target(manifest: &Manifest, target: &Target, progress: &dyn FetchProgress) -> Result<Prepared> {
    match target {
        Target::Key(key) => prepare(manifest, key, progress),
        Target::Custom(kernel) => prepare_kernel(kernel.clone(), progress),
    }
}

pub fn prepare(manifest: &Manifest, key: &str, progress: &dyn FetchProgress) -> Result<Prepared> {
    let kernel = kernels::fetch(manifest, key, progress).with_context(|| format!("fetching kernel {key}"))?;
    prepare_kernel(kernel, progress)
}

/// Build the guest side for an already available kernel.
pub fn prepare_kernel(kernel: Kernel, progress: &dyn FetchProgress) -> Result<Prepared> {
    prepare_with_programs(kernel, &[], progress)
}

/// [`prepare_kernel`], with `programs` (name in /, host path) in the initramfs for the
/// agent's `exec`.
pub fn prepare_with_programs(
    kernel: Kernel,
    programs: &[(String, PathBuf)],
    progress: &dyn FetchProgress,
) -> Result<Prepared> {
    progress.step(&format!("{}: building the agent", kernel.key));
    let agent = guest_build::agent().context("building the agent")?;
    progress.step(&format!("{}: building rmapcheck.ko", kernel.key));
    let module =
        guest_build::module(&kernel, progress).with_context(|| format!("building rmapcheck.ko for {}", kernel.key))?;
    let preload = guest_build::needed_modules(&kernel)?;
    let blockfs = blockfs::image().context("making the ext4 image")?;
    let contents =
        initramfs::Contents { agent: &agent, module: &module, preload: &preload, programs, blockfs: &blockfs };
    let initrd = initramfs::build(&contents).context("packing the initramfs")?;
    Ok(Prepared { kernel, initrd })
}
