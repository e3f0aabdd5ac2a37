//! Saved guests: boot once to READY, save the whole VM with QEMU migration to a file,
//! and start later guests from that file in a fraction of a boot.
//!
//! A state file is only valid for the exact QEMU command line (devices, memory, CPU,
//! kernel arguments), the same kernel Image and initramfs, and the same QEMU binary, so
//! the cache key covers all of them. Paths that differ per guest (its workdir: console
//! log and sockets) are not part of the saved state and are left out of the key.
//!
//! A restored guest resumes inside the agent's idle read loop, right after READY, with
//! no request sent yet. The host connects afresh and pings; that ping drains the boot log
//! just as a cold guest's first request does. Every guest restored from one file then
//! has the same pids, and without help the same kernel random state; [`restore`] reseeds
//! the guest's CRNG from the host so restored guests do not share random numbers.

use crate::cache;
use crate::exec;
use crate::vm::guest::{self, Fault, Guest, Info};
use crate::vm::qemu::{self, Config};
use crate::wire::parse_fields;
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

const STATE: &str = "state";
const READY: &str = "ready";
const CONSOLE: &str = "console.log";
/// Base deadline for writing the state file (measured: 0.4 s for 60 MB).
const SAVE_TIMEOUT: Duration = Duration::from_secs(60);

/// A cached state file and what the guest said at READY before it was saved.
#[derive(Debug, Clone)]
pub struct Saved {
    pub dir: PathBuf,
    pub info: Info,
    /// Seconds the cold boot plus the save took, when this call made the state file.
    pub made_in: Option<f64>,
}

impl Saved {
    pub fn state(&self) -> PathBuf {
        self.dir.join(STATE)
    }

    /// The console log up to READY of the guest that was saved.
    pub fn console(&self) -> PathBuf {
        self.dir.join(CONSOLE)
    }

    /// The state file's size in bytes.
    pub fn size(&self) -> u64 {
        fs::metadata(self.state()).map(|m| m.len()).unwrap_or(0)
    }
}

/// Size and modification time: cheap, and enough for files in the content-keyed cache.
fn identity(path: &Path) -> Result<String> {
    let meta = fs::metadata(path).with_context(|| format!("reading the metadata of {}", path.display()))?;
    let mtime = meta.modified()?.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    Ok(format!("{} {} {mtime}", path.display(), meta.len()))
}

/// The cache key of the saved state of a guest started with `config`.
pub fn cache_key(config: &Config) -> Result<String> {
    let mut neutral = config.clone();
    neutral.workdir = PathBuf::from("/guest");
    neutral.incoming = None;
    neutral.console_preamble = None;
    let qemu = exec::which(qemu::PROGRAM).context("qemu-system-aarch64 is missing")?;
    Ok(cache::Key::new()
        .part("args", neutral.args().join("\0"))
        .part("image", identity(&config.image)?)
        .part("initrd", cache::sha256_file(&config.initrd)?)
        .part("qemu", identity(&qemu)?)
        .short())
}

/// The saved state for guests started like `template` (its workdir is ignored), made with
/// a cold boot and a save the first time.
pub fn ensure(key: &str, template: &Config) -> Result<Saved> {
    let dir = cache::subdir("vmstate")?.join(format!("{key}-{}", cache_key(template)?));
    let mut made_in = None;
    let dir = cache::ensure_dir(&dir, |tmp| {
        let started = Instant::now();
        let mut config = template.clone();
        config.workdir = tmp.join("boot");
        config.incoming = None;
        let g = Guest::start(key, &config)?;
        save(g, tmp)?;
        fs::remove_dir_all(tmp.join("boot")).ok();
        made_in = Some(started.elapsed().as_secs_f64());
        Ok(())
    })?;
    let ready =
        fs::read_to_string(dir.join(READY)).with_context(|| format!("reading {}", dir.join(READY).display()))?;
    let info = guest::ready_info(key, &parse_fields(&ready)).map_err(anyhow::Error::msg)?;
    Ok(Saved { dir, info, made_in })
}

/// Save `g` into `dir` (the state file plus its READY facts) and kill it. The guest must
/// not have been sent any request: restored guests start where it stood.
pub fn save(g: Guest, dir: &Path) -> Result<()> {
    if g.requests_sent() != 0 {
        bail!("only a guest fresh at READY can be saved ({} requests were sent)", g.requests_sent());
    }
    let info = &g.info;
    let ready = format!("page_size={} release={} module={}\n", info.page_size, info.release, info.module_loaded as u8);
    cache::write_atomic(&dir.join(READY), ready.as_bytes())?;
    let mut qmp = crate::vm::qmp::Qmp::connect(&g.config().qmp_socket(), guest::scaled(Duration::from_secs(10)))?;
    qmp.save_to(&dir.join(STATE), guest::scaled(SAVE_TIMEOUT)).context("saving the guest")?;
    // Restored guests start their console log with this one's boot log.
    fs::copy(g.console_log(), dir.join(CONSOLE)).context("keeping the boot console log")?;
    // Dropping the guard kills the paused source.
    drop(g);
    Ok(())
}

/// Start a guest from `saved` in `workdir`, with the same command line as `template`.
pub fn restore(saved: &Saved, template: &Config, workdir: &Path) -> Result<Guest, Fault> {
    let started = Instant::now();
    let mut config = template.clone();
    config.workdir = workdir.to_path_buf();
    config.incoming = Some(saved.state());
    config.console_preamble = Some(saved.console());
    let mut g = Guest::resume(&config, saved.info.clone())?;
    let seed: [u8; 32] = rand::random();
    let reply = g.request("seed", &format!("hex={}", hex::encode(seed)))?;
    if !reply.ok {
        return Err(Fault::Protocol(format!("reseeding the restored guest failed: {:?}", reply.fields)));
    }
    g.boot_secs = started.elapsed().as_secs_f64();
    Ok(g)
}
