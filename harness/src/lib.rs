//! rmapcheck: boots arm64 kernels in QEMU, plays scenarios in a guest agent, walks the
//! rmap of user pages with a kernel module, and checks what it reports.
//!
//! The data flow, one module each:
//! `kernels` (`source_build`, `toolchain`) → `guest_build` → `initramfs` → `qemu` → `protocol` → `guest` → `runner`
//! → `dmesg` → `oracle`/`model` → `report`. See ARCHITECTURE.md.

pub mod apt;
pub mod bench;
pub mod cache;
pub mod dmesg;
pub mod fuzz;
pub mod guest;
pub mod guest_build;
pub mod html;
pub mod initramfs;
pub mod kernels;
pub mod log;
pub mod model;
pub mod oracle;
pub mod pool;
pub mod prepare;
pub mod progress;
pub mod protocol;
pub mod qemu;
pub mod qmp;
pub mod report;
pub mod results;
pub mod runner;
pub mod scenario;
pub mod snapshots;
pub mod source_build;
pub mod toolchain;
pub mod vmstate;

use std::path::PathBuf;

/// The project checkout: `$RMAPCHECK_ROOT`, else the workspace this crate was built in.
pub fn project_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("RMAPCHECK_ROOT") {
        return PathBuf::from(dir);
    }
    let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.parent().unwrap_or(crate_dir).to_path_buf()
}
