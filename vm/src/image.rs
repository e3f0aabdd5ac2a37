//! Layer `image`: everything a guest boots from. The manifest and lock name a kernel;
//! it is fetched or built into a [`kernel::Kernel`], the agent and rmapcheck.ko are built
//! for it, and both go into an initramfs.

pub mod apt;
pub mod blockfs;
pub mod guest_build;
pub mod initramfs;
pub mod kconfig;
pub mod kernel;
pub mod kernels;
pub mod prepare;
pub mod source_build;
pub mod symbols;
pub mod toolchain;

use std::path::PathBuf;

/// The project's images/ directory: the manifest, the lock and config fragments.
pub fn images_dir() -> PathBuf {
    crate::project_root().join("images")
}
