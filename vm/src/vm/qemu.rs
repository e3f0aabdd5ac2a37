//! Owns every QEMU process: its command line, its console log, and its lifetime.
//!
//! Architecture invariant: no QEMU outlives its [`Qemu`] guard. Dropping the guard kills
//! and reaps the process; when a signal makes the harness quit (`crate::signal`), every
//! live QEMU is killed first ([`kill_all`] is its quit hook).

use crate::exec;
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The fast settings measured in the design: a CPU without slow pointer auth, no KASLR
/// and no mitigations (syscalls ~10x cheaper under TCG).
pub const DEFAULT_CPU: &str = "neoverse-n1";
/// `log_buf_len`: a walk of a page that 512 processes map prints 512 lines, more than
/// a tinyconfig kernel's 128 KiB log holds until the agent drains it.
pub const BASE_APPEND: &str = "console=ttyAMA0 quiet panic=-1 nokaslr mitigations=off rdinit=/init log_buf_len=8M";
pub const PORT_NAME: &str = "rmapcheck.0";
pub const PROGRAM: &str = "qemu-system-aarch64";
/// Guests get this many NUMA nodes, memory split evenly, every CPU on node 0, so the
/// `migrate` step has somewhere to move a page (as the kernel's mm/rmap selftest does).
pub const NUMA_NODES: u32 = 2;

/// How to start one guest.
#[derive(Debug, Clone)]
pub struct Config {
    pub image: PathBuf,
    pub initrd: PathBuf,
    pub memory_mb: u32,
    pub cpus: u32,
    pub cpu: String,
    pub extra_append: String,
    /// Where the console log and sockets go.
    pub workdir: PathBuf,
    /// Resume from a saved state instead of booting (`-incoming`).
    pub incoming: Option<PathBuf>,
    /// Text that starts the console log, e.g. the boot log of the guest a restored one
    /// was saved from; QEMU appends to it.
    pub console_preamble: Option<PathBuf>,
    /// Start a gdb stub on this local port (`--gdb`).
    pub gdb_port: Option<u16>,
}

impl Config {
    pub fn new(image: &Path, initrd: &Path, workdir: &Path) -> Config {
        Config {
            image: image.to_path_buf(),
            initrd: initrd.to_path_buf(),
            memory_mb: 512,
            cpus: 1,
            cpu: DEFAULT_CPU.to_string(),
            extra_append: String::new(),
            workdir: workdir.to_path_buf(),
            incoming: None,
            console_preamble: None,
            gdb_port: None,
        }
    }

    pub fn console_log(&self) -> PathBuf {
        self.workdir.join("console.log")
    }
    pub fn port_socket(&self) -> PathBuf {
        self.socket("port.sock")
    }
    pub fn qmp_socket(&self) -> PathBuf {
        self.socket("qmp.sock")
    }
    /// A socket in the workdir, or in the temp dir under a name derived from the
    /// workdir when the path would pass the 108-byte limit of a Unix socket address.
    fn socket(&self, name: &str) -> PathBuf {
        let path = self.workdir.join(name);
        if path.as_os_str().len() < 100 {
            return path;
        }
        let key = crate::cache::Key::new().part("workdir", self.workdir.as_os_str().as_encoded_bytes()).short();
        std::env::temp_dir().join(format!("rmapcheck-{key}-{name}"))
    }
    pub fn stderr_log(&self) -> PathBuf {
        self.workdir.join("qemu.stderr")
    }
    /// The exact command line as a script, so a person can boot this guest by hand.
    pub fn script(&self) -> PathBuf {
        self.workdir.join("qemu.sh")
    }

    /// The full argument list (without the program name).
    pub fn args(&self) -> Vec<String> {
        let mut append = BASE_APPEND.to_string();
        if !self.extra_append.is_empty() {
            append = format!("{append} {}", self.extra_append);
        }
        let mut args: Vec<String> = vec![
            "-M".into(),
            "virt".into(),
            "-cpu".into(),
            fast_cpu(&self.cpu),
            "-m".into(),
            self.memory_mb.to_string(),
            "-smp".into(),
            self.cpus.to_string(),
            "-nic".into(),
            "none".into(),
            "-no-reboot".into(),
            "-display".into(),
            "none".into(),
            "-monitor".into(),
            "none".into(),
            "-chardev".into(),
            format!("file,id=console,path={},append=on", self.console_log().display()),
            "-serial".into(),
            "chardev:console".into(),
            "-kernel".into(),
            self.image.display().to_string(),
            "-initrd".into(),
            self.initrd.display().to_string(),
            "-append".into(),
            append,
            "-device".into(),
            "virtio-serial-pci".into(),
            "-chardev".into(),
            format!("socket,id=port0,path={},server=on,wait=off", self.port_socket().display()),
            "-device".into(),
            format!("virtserialport,chardev=port0,name={PORT_NAME}"),
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", self.qmp_socket().display()),
            "-global".into(),
            "migration.store-global-state=off".into(),
        ];
        args.extend(numa_args(self.memory_mb, self.cpus));
        if let Some(port) = self.gdb_port {
            args.push("-gdb".into());
            args.push(format!("tcp:127.0.0.1:{port}"));
        }
        if let Some(state) = &self.incoming {
            args.push("-incoming".into());
            args.push(format!("exec:cat {}", state.display()));
        }
        args
    }
}

/// `-numa` nodes backed by RAM objects (QEMU 5.1+ refuses `-numa node,mem=`).
fn numa_args(memory_mb: u32, cpus: u32) -> Vec<String> {
    let mut args = Vec::new();
    let each = memory_mb / NUMA_NODES;
    for n in 0..NUMA_NODES {
        // The first node takes the remainder, so the nodes add up to `-m`.
        let size = if n == 0 { memory_mb - each * (NUMA_NODES - 1) } else { each };
        args.push("-object".into());
        args.push(format!("memory-backend-ram,id=node{n},size={size}M"));
        args.push("-numa".into());
        let cpus = if n == 0 { format!(",cpus=0-{}", cpus.max(1) - 1) } else { String::new() };
        args.push(format!("node,nodeid={n},memdev=node{n}{cpus}"));
    }
    args
}

/// A local TCP port that is free now, for a gdb stub: the kernel picks it for a socket
/// bound to port 0, which is closed again before QEMU binds it.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// The command that attaches gdb to a guest's stub; `vmlinux` gives it symbols.
pub fn gdb_command(vmlinux: Option<&Path>, port: u16) -> String {
    let file = vmlinux.map(|v| format!("{} ", shell_quote(&v.display().to_string()))).unwrap_or_default();
    format!("gdb-multiarch {file}-ex 'target remote :{port}'")
}

/// `-cpu max` emulates pointer authentication slowly under TCG (boot 6.7 s against
/// 1.2-1.8 s); the implementation-defined algorithm keeps it fast.
fn fast_cpu(cpu: &str) -> String {
    if cpu == "max" {
        "max,pauth-impdef=on".to_string()
    } else {
        cpu.to_string()
    }
}

static LIVE: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

fn live() -> std::sync::MutexGuard<'static, BTreeSet<u32>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Kill every QEMU this process started and has not reaped yet.
pub fn kill_all() {
    for pid in live().iter() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid as i32), nix::sys::signal::Signal::SIGKILL);
    }
}

/// `arg` quoted for a POSIX shell where it needs it.
pub fn shell_quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./:=,+-@%".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// The command line of `config` as a runnable script: the same flags, paths and sockets.
pub fn script_text(config: &Config) -> String {
    let args: Vec<String> = config.args().iter().map(|a| shell_quote(a)).collect();
    format!(
        "#!/bin/sh\n# The guest's exact QEMU command line. Its console goes to console.log; talk to the\n\
         # agent with: socat - UNIX-CONNECT:port.sock (one request per line, docs/PROTOCOL.md).\n\
         exec {PROGRAM} \\\n  {}\n",
        args.join(" \\\n  ")
    )
}

fn write_script(config: &Config) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(config.script(), script_text(config))?;
    std::fs::set_permissions(config.script(), std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Start `expression` from one thread that lives as long as the process. QEMU gets
/// PR_SET_PDEATHSIG, so even a SIGKILLed harness leaves no guest behind; the signal fires
/// when the *thread* that forked exits, and pooled guests outlive the threads that use
/// them, so every QEMU is forked from this one thread.
fn spawn_from_long_lived_thread(expression: duct::Expression) -> std::io::Result<duct::Handle> {
    type Job = (duct::Expression, std::sync::mpsc::Sender<std::io::Result<duct::Handle>>);
    static SPAWNER: OnceLock<Mutex<std::sync::mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        // Whoever starts a guest, a signal that ends the process ends the guest first.
        crate::signal::on_quit(kill_all);
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("qemu-spawner".into())
            .spawn(move || {
                for (expression, reply) in rx {
                    let _ = reply.send(expression.start());
                }
            })
            .expect("a thread to start guests from");
        Mutex::new(tx)
    });
    let (reply, result) = std::sync::mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((expression, reply))
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    result.recv().map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

/// A running QEMU. Dropping it kills and reaps the process.
pub struct Qemu {
    handle: duct::Handle,
    pid: u32,
    pub config: Config,
}

impl Qemu {
    pub fn spawn(config: &Config) -> Result<Qemu> {
        std::fs::create_dir_all(&config.workdir)?;
        for stale in [config.port_socket(), config.qmp_socket()] {
            let _ = std::fs::remove_file(stale);
        }
        // QEMU appends to the console log: start it empty or with the preamble.
        let preamble = match &config.console_preamble {
            Some(p) => std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
            None => Vec::new(),
        };
        std::fs::write(config.console_log(), preamble)
            .with_context(|| format!("writing {}", config.console_log().display()))?;
        let program = PROGRAM;
        exec::require(program, "run: apt-get install qemu-system-arm")?;
        write_script(config).with_context(|| format!("writing {}", config.script().display()))?;
        let mut guard = live();
        // setpriv (util-linux) gives QEMU a parent-death signal, then execs it in place.
        let mut args: Vec<String> = vec!["--pdeathsig".into(), "KILL".into(), "--".into(), program.into()];
        args.extend(config.args());
        let expression =
            duct::cmd("setpriv", args).stdin_null().stdout_null().stderr_path(config.stderr_log()).unchecked();
        let handle = spawn_from_long_lived_thread(expression).context("starting qemu-system-aarch64")?;
        let pid = *handle.pids().first().context("qemu has no pid")?;
        guard.insert(pid);
        drop(guard);
        tracing::info!(pid, workdir = %config.workdir.display(), "qemu started");
        tracing::debug!(script = %config.script().display(), "qemu command line: {}", config.args().join(" "));
        Ok(Qemu { handle, pid, config: config.clone() })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The exit status if QEMU has ended. A reaped pid leaves the live set under the
    /// same lock, so the signal path never kills a recycled pid.
    pub fn exited(&self) -> Option<String> {
        let mut live = live();
        let status = match self.handle.try_wait() {
            Ok(Some(out)) => Some(format!("{}", out.status)),
            Ok(None) => None,
            Err(e) => Some(format!("wait failed: {e}")),
        };
        if status.is_some() {
            live.remove(&self.pid);
        }
        status
    }

    /// Wait up to `timeout` for QEMU to exit by itself.
    pub fn wait_exit(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self.exited().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// QEMU's stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.config.stderr_log()).unwrap_or_default()
    }

    /// The last `lines` lines of the guest console.
    pub fn console_tail(&self, lines: usize) -> String {
        let text = String::from_utf8_lossy(&std::fs::read(self.config.console_log()).unwrap_or_default()).into_owned();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The console log's length in bytes now, to read what comes after it.
    pub fn console_len(&self) -> u64 {
        std::fs::metadata(self.config.console_log()).map(|m| m.len()).unwrap_or(0)
    }

    /// The console from byte `from` on.
    pub fn console_since(&self, from: u64) -> String {
        use std::io::{Read, Seek, SeekFrom};
        let mut text = Vec::new();
        if let Ok(mut f) = std::fs::File::open(self.config.console_log()) {
            if f.seek(SeekFrom::Start(from)).is_ok() {
                let _ = f.read_to_end(&mut text);
            }
        }
        String::from_utf8_lossy(&text).into_owned()
    }

    pub fn console(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.config.console_log()).unwrap_or_default()).into_owned()
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        for socket in [self.config.port_socket(), self.config.qmp_socket()] {
            if !socket.starts_with(&self.config.workdir) {
                let _ = std::fs::remove_file(socket);
            }
        }
        // duct's kill() sends SIGKILL and reaps; holding the live lock across it means
        // kill_all never signals the pid after it was reaped (and maybe reused).
        let mut live = live();
        let _ = self.handle.kill();
        live.remove(&self.pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_uses_the_fast_flags() {
        let c = Config::new(Path::new("/k/Image"), Path::new("/k/initrd"), Path::new("/w"));
        let args = c.args().join(" ");
        for want in [
            "-cpu neoverse-n1",
            "nokaslr",
            "mitigations=off",
            "-nic none",
            "-no-reboot",
            "name=rmapcheck.0",
            "path=/w/console.log,append=on",
        ] {
            assert!(args.contains(want), "missing {want} in {args}");
        }
        let mut max = c.clone();
        max.cpu = "max".into();
        assert!(max.args().join(" ").contains("-cpu max,pauth-impdef=on"), "slow pointer auth under TCG");
        assert!(!args.contains("-gdb"));
        let mut gdb = c.clone();
        gdb.gdb_port = Some(1234);
        assert!(gdb.args().join(" ").contains("-gdb tcp:127.0.0.1:1234"));
        assert_eq!(gdb_command(None, 1234), "gdb-multiarch -ex 'target remote :1234'");
        assert_eq!(gdb_command(Some(Path::new("/t/vmlinux")), 9), "gdb-multiarch /t/vmlinux -ex 'target remote :9'");
    }

    #[test]
    fn sockets_of_a_deep_workdir_stay_within_the_unix_path_limit() {
        let short = Config::new(Path::new("/k/Image"), Path::new("/k/initrd"), Path::new("/w"));
        assert_eq!(short.port_socket(), Path::new("/w/port.sock"));
        let deep = Path::new("/runs").join("d".repeat(120));
        let c = Config::new(Path::new("/k/Image"), Path::new("/k/initrd"), &deep);
        let (port, qmp) = (c.port_socket(), c.qmp_socket());
        assert!(port.as_os_str().len() < 108 && qmp.as_os_str().len() < 108, "{port:?}");
        assert_ne!(port, qmp);
        let other = Config::new(Path::new("/k/Image"), Path::new("/k/initrd"), &deep.join("x"));
        assert_ne!(port, other.port_socket(), "two guests share a socket");
    }

    #[test]
    fn the_script_quotes_what_a_shell_would_split() {
        assert_eq!(shell_quote("-nic"), "-nic");
        assert_eq!(shell_quote("console=ttyAMA0 quiet"), "'console=ttyAMA0 quiet'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        let c = Config::new(Path::new("/k/Image"), Path::new("/k/initrd"), Path::new("/w d"));
        let script = script_text(&c);
        assert!(script.starts_with("#!/bin/sh\n"));
        assert!(script.contains("exec qemu-system-aarch64 \\\n"));
        assert!(script.contains("'file,id=console,path=/w d/console.log,append=on'"), "{script}");
        assert!(script.contains(&format!("'{BASE_APPEND}'")), "{script}");
    }
}
