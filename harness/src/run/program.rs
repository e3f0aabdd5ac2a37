//! Runs a standalone program (a C reproducer) in a guest of its own: built for arm64,
//! shipped in the initramfs, started by the agent's `exec`, and judged by its exit
//! code and the kernel log. The program needs nothing of rmapcheck's; this only gives
//! it a kernel of the matrix to run on.

use crate::check::dmesg::Splat;
use crate::image::kernel::{FetchProgress, Kernel};
use crate::image::{guest_build, prepare};
use crate::vm::guest::Guest;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the program lies in the guest.
const GUEST_PATH: &str = "/repro";

/// How a reproducer's run ended, by its own exit-code convention (0 pass, 1 fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    /// Anything else: it could not set its scene up, crashed, or ran out of time.
    DidNotRun,
}

/// What one run of a program in a guest gave.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProgramRun {
    pub kernel: String,
    pub release: String,
    pub verdict: Verdict,
    /// The exit code, or `None` when a signal ended it.
    pub status: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// What it printed on stdout and stderr.
    pub output: String,
    /// Splats the kernel logged while it ran.
    pub splats: Vec<String>,
}

impl ProgramRun {
    /// One line for a person: the verdict, and why when it did not run.
    pub fn summary(&self) -> String {
        let how = match (self.status, self.signal, self.timed_out) {
            (_, _, true) => "ran out of time".to_string(),
            (Some(c), _, _) => format!("exited {c}"),
            (None, Some(s), _) => format!("was killed by signal {s}"),
            (None, None, _) => "ended without a status".to_string(),
        };
        let verdict = match self.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::DidNotRun => "DID NOT RUN",
        };
        format!("{verdict} on {} ({}): the program {how}", self.kernel, self.release)
    }
}

/// Build `source` for arm64, boot `kernel` with it in the initramfs, run it for at most
/// `timeout`, and power the guest off. The guest's console and QEMU files stay in
/// `workdir`.
pub fn run_c(
    kernel: Kernel,
    source: &Path,
    workdir: &Path,
    timeout: Duration,
    progress: &dyn FetchProgress,
) -> Result<ProgramRun> {
    progress.step(&format!("compiling {}", source.display()));
    let program = guest_build::static_program(source)?;
    let name = GUEST_PATH.trim_start_matches('/').to_string();
    let programs: Vec<(String, PathBuf)> = vec![(name, program)];
    let prepared = prepare::prepare_with_programs(kernel, &programs, progress)?;
    progress.step(&format!("{}: booting", prepared.kernel.key));
    let mut guest = Guest::boot(&prepared.kernel, &prepared.initrd, workdir)?;
    let mark = guest.kmsg_mark();
    let args = format!("path={GUEST_PATH} timeout_ms={}", timeout.as_millis());
    progress.step(&format!("{}: running {}", prepared.kernel.key, source.display()));
    // The agent kills the program at the deadline; give the reply a little beyond it.
    let reply = guest.request_within("exec", &args, timeout + Duration::from_secs(30))?;
    let splats: Vec<String> = guest.splats_since(mark).iter().map(|s: &Splat| s.line.clone()).collect();
    let release = guest.info.release.clone();
    guest.shutdown();
    if !reply.ok {
        bail!("the agent could not run the program: {:?}", reply.fields);
    }
    let mut bytes = Vec::new();
    for d in &reply.data {
        if let Some(hex) = d.get("out") {
            bytes.extend(hex::decode(hex).context("the agent's exec output is not hex")?);
        }
    }
    let number = |k: &str| reply.get(k).and_then(|v| v.parse::<i32>().ok());
    let (status, signal, timed_out) = (number("status"), number("signal"), reply.get("timed_out") == Some("1"));
    let verdict = match (status, timed_out) {
        (Some(0), false) => Verdict::Pass,
        (Some(1), false) => Verdict::Fail,
        _ => Verdict::DidNotRun,
    };
    Ok(ProgramRun {
        kernel: prepared.kernel.key.clone(),
        release,
        verdict,
        status,
        signal,
        timed_out,
        output: String::from_utf8_lossy(&bytes).into_owned(),
        splats,
    })
}
