//! SIGINT, SIGTERM and SIGKILL to a running `rmapcheck run`, `rmapcheck fuzz` or this
//! test binary must leave no QEMU behind within 2 s. A caught signal (SIGINT, SIGTERM)
//! ends the process with exit status 128 + the signal number, as a shell reports a
//! process the signal killed; SIGKILL cannot be caught and kills it.

use super::Pools;
use libtest_mimic::{Failed, Trial};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Pids of the qemu-system processes whose parent is `parent`.
fn qemu_children(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // stat: pid (comm) state ppid ...
        let Some((comm_part, rest)) = stat.rsplit_once(") ") else { continue };
        let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
        if comm_part.contains("qemu-system") && ppid == Some(parent) {
            out.push(pid);
        }
    }
    out
}

fn gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
}

/// Start `cmd`, wait for its QEMU and for `ready`, send `sig`, and check everything is
/// gone in 2 s and the child ended as [`ended_by`] says.
fn interrupt(mut cmd: Command, sig: Signal, ready: impl Fn() -> bool) -> Result<(), Failed> {
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().map_err(|e| e.to_string())?;
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(120);
    let qemus = loop {
        let q = qemu_children(pid);
        if !q.is_empty() && ready() {
            break q;
        }
        if Instant::now() > deadline || child.try_wait().map_err(|e| e.to_string())?.is_some() {
            let _ = child.kill();
            return Err("no QEMU appeared under the child".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    kill(Pid::from_raw(pid as i32), sig).map_err(|e| e.to_string())?;
    let sent = Instant::now();
    let mut status = None;
    while sent.elapsed() < Duration::from_secs(2) {
        status = status.or(child.try_wait().map_err(|e| e.to_string())?);
        if let Some(status) = status.filter(|_| qemus.iter().all(|q| gone(*q))) {
            return ended_by(status, sig);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    for q in &qemus {
        let _ = kill(Pid::from_raw(*q as i32), Signal::SIGKILL);
    }
    Err(format!("after {sig:?}, the child or its QEMU {qemus:?} outlived 2 s").into())
}

/// A caught signal exits 128 + its number; SIGKILL kills the process.
fn ended_by(status: ExitStatus, sig: Signal) -> Result<(), Failed> {
    let (ended, want) = match sig {
        Signal::SIGKILL => (status.signal() == Some(sig as i32), "death by SIGKILL".to_string()),
        _ => (status.code() == Some(128 + sig as i32), format!("exit status {}", 128 + sig as i32)),
    };
    if ended {
        Ok(())
    } else {
        Err(format!("after {sig:?}, the child ended with {status}; want {want}").into())
    }
}

pub fn trials(key: &str, pools: fn() -> &'static Pools) -> Vec<Trial> {
    let mut out = Vec::new();
    // SIGKILL cannot be caught: QEMU's parent-death signal must end it.
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGKILL] {
        let k = key.to_string();
        out.push(Trial::test(format!("vm::signal_run_{}::{k}", sig.as_str().to_lowercase()), move || {
            // Make sure the kernel is prepared, so the child boots at once.
            pools().get(&k)?;
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let saved = dir.path().join("results.json");
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_rmapcheck"));
            cmd.args(["run", "--kernel", &k])
                .arg(rmapcheck::project_root().join("scenarios"))
                .arg("--results")
                .arg(&saved);
            // Interrupt once some results are on disk; they must survive the signal.
            interrupt(cmd, sig, || saved.exists())?;
            let partial = rmapcheck::report::results::read(&saved).map_err(|e| format!("{e:#}"))?;
            if partial.is_empty() {
                return Err("the partial results file is empty".into());
            }
            Ok(())
        }));
        let k = key.to_string();
        out.push(Trial::test(format!("vm::signal_test_binary_{}::{k}", sig.as_str().to_lowercase()), move || {
            pools().get(&k)?;
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let mut cmd = Command::new(exe);
            cmd.args(["--exact", &format!("seed_mmap_fork::{k}")]).env("RMAPCHECK_KERNELS", &k);
            interrupt(cmd, sig, || true)
        }));
    }
    let k = key.to_string();
    out.push(Trial::test(format!("vm::signal_fuzz_sigint::{k}"), move || {
        pools().get(&k)?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let findings = dir.path().to_path_buf();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rmapcheck"));
        cmd.args(["fuzz", "--kernel", &k, "--seed", "3", "--duration", "5m", "--module-param", "misreport=1"])
            .arg("--out")
            .arg(&findings);
        // Interrupt once the planted bug has been found and saved.
        let saved = || failure_dirs(&findings).iter().any(|d| d.join("summary.txt").exists());
        interrupt(cmd, Signal::SIGINT, saved)?;
        let dirs = failure_dirs(&findings);
        let complete =
            dirs.iter().all(|d| ["summary.txt", "shrunk.yaml", "full.yaml"].iter().all(|f| d.join(f).exists()));
        if dirs.is_empty() || !complete {
            return Err(format!("findings after SIGINT are missing or partial: {dirs:?}").into());
        }
        Ok(())
    }));
    out
}

/// The failure folders a fuzz campaign has saved under `out`.
fn failure_dirs(out: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(out)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        // `corpus/` holds the runs that reached new coverage, not failures.
        .filter(|p| p.is_dir() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.') || n == "corpus"))
        .collect()
}
