//! `--gdb`: a stub port for the guests of a pool, the command that attaches to it, and
//! holding a failed guest paused until the user lets it go.

use crate::image::kernels::{self, Manifest};
use crate::image::prepare::Prepared;
use crate::image::symbols::{self, Symbols};
use crate::vm::guest::Guest;
use crate::vm::qemu;
use anyhow::{Context, Result};

/// A free port for the stub, and the gdb command that attaches to it, said now (with a
/// note when the kernel has no symbols).
pub fn setup(prepared: &Prepared, manifest: &Manifest, say: &dyn Fn(String)) -> Result<u16> {
    let port = qemu::free_port().context("picking a port for the gdb stub")?;
    let kernel = &prepared.kernel;
    // Only Debian's kernels have a debug package; the archive lists are local.
    let apt = manifest
        .entry(&kernel.key)
        .ok()
        .filter(|e| e.kind == kernels::EntryKind::Debian)
        .and_then(|e| kernels::apt_for(e).ok());
    let symbols = symbols::find(kernel, apt.as_ref());
    let vmlinux = match &symbols {
        Symbols::Vmlinux(v) => Some(v.as_path()),
        Symbols::Missing(note) => {
            say(note.clone());
            None
        }
    };
    say(format!("{}: gdb stub on port {port}; attach with:\n  {}", kernel.key, qemu::gdb_command(vmlinux, port)));
    Ok(port)
}

/// Keep a failed guest paused and alive until the user presses Enter.
pub fn hold(g: &Guest, why: &str, say: &dyn Fn(String)) {
    if let Err(e) = g.set_running(false) {
        // QEMU is gone (a panic ends it): nothing is left to attach to.
        let console = g.console_log();
        say(format!("{why}: the guest cannot be paused ({e:#}); its console: {}", console.display()));
        return;
    }
    say(format!("{why}: the guest (QEMU pid {}) is paused for gdb; press Enter to let it go", g.pid()));
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    let _ = g.set_running(true);
}
