//! The harness's own log, through `tracing`: one file per command in its workdir, at the
//! level `RMAPCHECK_LOG` names (`info` unless set; `debug` adds every request and QEMU
//! command line). The terminal keeps its progress lines; the log is for afterwards.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use tracing_subscriber::EnvFilter;

/// Start logging to `dir/rmapcheck.log`; returns its path.
pub fn init(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("rmapcheck.log");
    let file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let filter = EnvFilter::try_from_env("RMAPCHECK_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_thread_names(true)
        .try_init()
        .map_err(|e| anyhow::anyhow!("starting the log: {e}"))?;
    Ok(path)
}
