//! rmapcheck's machines: what runs outside the harness process.
//!
//! - shared infrastructure: `cache`, `exec` (every external command), `log`, `signal`;
//! - `image`: kernels (fetched or built), the agent and module builds, the initramfs;
//! - `coverage`: kernel PCs to source lines, and which lines KCOV can reach;
//! - `vm`: `qemu`, `protocol`, one `guest`, the `Agent` trait, and saved guests.
//!
//! It uses the core (`rmapcheck-core`), re-exported here under its module names, and
//! never the drivers above it (`rmapcheck`). See ARCHITECTURE.md.

pub use rmapcheck_core::{check, ops, scenario, wire};

pub mod cache;
pub mod coverage;
pub mod exec;
pub mod image;
pub mod log;
pub mod signal;
pub mod vm;

use std::path::PathBuf;

/// The project checkout: `$RMAPCHECK_ROOT`, else the workspace this crate was built in.
pub fn project_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("RMAPCHECK_ROOT") {
        return PathBuf::from(dir);
    }
    let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.parent().unwrap_or(crate_dir).to_path_buf()
}
