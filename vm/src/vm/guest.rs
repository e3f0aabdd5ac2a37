//! One booted guest: a QEMU guard plus the protocol channel, with every kernel log record
//! it has forwarded, and faults classified by cause.

use crate::check::dmesg::{self, Record};
use crate::image::kernel::Kernel;
use crate::vm::protocol::{Channel, ChannelError, Reply};
use crate::vm::qemu::{self, Qemu};
use crate::wire::Fields;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// TCG is slow and the machine is shared: every deadline is a base time times this.
/// `RMAPCHECK_TIMEOUT_SCALE` raises it on slower hosts.
pub fn timeout_scale() -> f64 {
    std::env::var("RMAPCHECK_TIMEOUT_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0)
}

pub fn scaled(base: Duration) -> Duration {
    base.mul_f64(timeout_scale())
}

/// Base deadline for boot to READY (measured 1.5-2.4 s; leave room for a loaded host).
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// Base deadline for one request.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request still waits once the console shows a fatal splat.
pub const FATAL_GRACE: Duration = Duration::from_secs(2);

/// Why a guest stopped being usable.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("boot failed: {why}\n--- console tail ---\n{console}")]
    Boot { why: String, console: String },
    #[error("the guest died during '{op}' ({status}){panic}\n--- console tail ---\n{console}")]
    Died { op: String, status: String, panic: String, splat: Option<Box<dmesg::Splat>>, console: String },
    #[error("the guest hung: {detail}\n--- console tail ---\n{console}")]
    Hang { detail: String, splat: Option<Box<dmesg::Splat>>, console: String },
    #[error("protocol: {0}")]
    Protocol(String),
}

impl Fault {
    /// The first splat on the console of a guest that died or hung: the kernel's own
    /// account of what went wrong (an Oops, a BUG, a WARN before a panic).
    pub fn splat(&self) -> Option<&dmesg::Splat> {
        match self {
            Fault::Died { splat, .. } | Fault::Hang { splat, .. } => splat.as_deref(),
            _ => None,
        }
    }

    /// A one-word cause for reports: boot, panic, died, hang, protocol.
    pub fn cause(&self) -> &'static str {
        match self {
            Fault::Boot { .. } => "boot",
            Fault::Died { panic, .. } if !panic.is_empty() => "panic",
            Fault::Died { .. } => "died",
            Fault::Hang { .. } => "hang",
            Fault::Protocol(_) => "protocol",
        }
    }
}

/// What the agent said at READY (pure data, so outcomes in the core can start from it).
pub use crate::check::outcome::Info;

/// What [`Guest::on_reply`] calls: the op, its arguments and the reply.
pub type OnReply = Box<dyn FnMut(&str, &str, &Reply) + Send>;

/// How many recent kernel log records a guest keeps for inspection.
pub const KMSG_KEPT: usize = 20_000;

pub struct Guest {
    qemu: Qemu,
    chan: Channel,
    pub info: Info,
    /// Seconds from spawn to READY.
    pub boot_secs: f64,
    /// The most recent kernel log records forwarded (at most [`KMSG_KEPT`]).
    pub kmsg: VecDeque<Record>,
    /// Every splat seen since boot. Kept apart from `kmsg` so that trimming the log for
    /// long campaigns never loses a splat.
    splats: SplatLog,
    /// The console log's directory; kept after the guest is gone.
    pub workdir: PathBuf,
    /// Freshness, the taint baseline and coverage collection (`vm::agent` keeps them).
    pub books: Books,
    /// Count and total wall time of the requests sent, per op, for profiling.
    pub op_times: BTreeMap<String, (u32, Duration)>,
    /// Runs on this guest collect KCOV coverage (set by the pool; turned off when the
    /// kernel turns out to have no KCOV).
    pub coverage: bool,
    /// Every request and its reply go here too (a transcript, `RMAPCHECK_RECORD`).
    on_reply: Option<OnReply>,
}

/// Requests that leave the workload (processes, maps, settings) as it was.
const LEAVE_WORKLOAD: [&str; 5] = ["cov", "tainted", "sysinfo", "ping", "kpage"];

impl Guest {
    /// Boot `kernel` with `initrd` and wait for READY.
    pub fn boot(kernel: &Kernel, initrd: &Path, workdir: &Path) -> Result<Guest, Fault> {
        let config = qemu::Config::new(&kernel.image, initrd, workdir);
        let mut guest = Self::start(&kernel.key, &config)?;
        guest.info.compiler = kernel.compiler();
        Ok(guest)
    }

    /// Start QEMU with `config` and wait for READY.
    pub fn start(key: &str, config: &qemu::Config) -> Result<Guest, Fault> {
        let started = Instant::now();
        let qemu = Qemu::spawn(config).map_err(|e| Fault::Boot { why: format!("{e:#}"), console: String::new() })?;
        let deadline = started + scaled(BOOT_TIMEOUT);
        let mut chan = Channel::connect(&config.port_socket(), deadline, || qemu.exited().is_none())
            .map_err(|e| boot_fault(&qemu, format!("cannot connect to the port: {e}")))?;
        let fields = loop {
            // Short slices so a dead QEMU is noticed at once, not at the deadline.
            let slice = (Instant::now() + Duration::from_millis(200)).min(deadline);
            match chan.wait_ready(slice) {
                Ok(f) => break f,
                Err(ChannelError::Timeout { .. }) if Instant::now() < deadline && qemu.exited().is_none() => continue,
                Err(e) => return Err(boot_fault(&qemu, format!("no READY: {e}"))),
            }
        };
        let info = ready_info(key, &fields).map_err(|why| boot_fault(&qemu, why))?;
        Ok(Guest::new(config, qemu, chan, info, started.elapsed().as_secs_f64()))
    }

    fn new(config: &qemu::Config, qemu: Qemu, chan: Channel, info: Info, boot_secs: f64) -> Guest {
        Guest {
            boot_secs,
            workdir: config.workdir.clone(),
            qemu,
            chan,
            info,
            kmsg: VecDeque::new(),
            splats: SplatLog::default(),
            books: Books::default(),
            op_times: BTreeMap::new(),
            coverage: false,
            on_reply: None,
        }
    }

    /// Start a QEMU that resumes a saved guest (`config.incoming` is set) and wait until
    /// the agent answers a ping. The READY line was said before the save, so `info` comes
    /// from the caller. The ping also drains the boot log, as a cold guest's first request
    /// does, so restored and cold guests keep the same log history.
    pub fn resume(config: &qemu::Config, info: Info) -> Result<Guest, Fault> {
        let started = Instant::now();
        let qemu = Qemu::spawn(config).map_err(|e| Fault::Boot { why: format!("{e:#}"), console: String::new() })?;
        let deadline = started + scaled(BOOT_TIMEOUT);
        let chan = Channel::connect(&config.port_socket(), deadline, || qemu.exited().is_none())
            .map_err(|e| boot_fault(&qemu, format!("cannot connect to the restored port: {e}")))?;
        let mut g = Guest::new(config, qemu, chan, info, 0.0);
        // Anything but the reply to this ping is stale and goes to the channel's stray.
        match g.request_within("ping", "", deadline.saturating_duration_since(Instant::now())) {
            Ok(ping) if ping.ok => {}
            Ok(ping) => return Err(boot_fault(&g.qemu, format!("the restored agent refused ping: {:?}", ping.fields))),
            Err(f) => return Err(boot_fault(&g.qemu, format!("no answer after restore ({})", f.cause()))),
        }
        g.boot_secs = started.elapsed().as_secs_f64();
        Ok(g)
    }

    pub fn pid(&self) -> u32 {
        self.qemu.pid()
    }

    pub fn config(&self) -> &qemu::Config {
        &self.qemu.config
    }

    /// `n` request ids for the walks of one `findpages` request; returns the first.
    pub fn reserve_ids(&mut self, n: u64) -> u64 {
        self.chan.reserve_ids(n)
    }

    /// Requests sent so far; a saved guest must have sent none (see `snapshot`).
    pub fn requests_sent(&self) -> u64 {
        self.chan.next_id() - 1
    }

    pub fn console(&self) -> String {
        self.qemu.console()
    }

    pub fn console_log(&self) -> PathBuf {
        self.qemu.config.console_log()
    }

    /// Send one request with the default deadline.
    pub fn request(&mut self, op: &str, args: &str) -> Result<Reply, Fault> {
        self.request_within(op, args, scaled(STEP_TIMEOUT))
    }

    /// Send one request; kernel log records in the reply are parsed and kept.
    pub fn request_within(&mut self, op: &str, args: &str, timeout: Duration) -> Result<Reply, Fault> {
        let sent = Instant::now();
        tracing::debug!(qemu = self.qemu.pid(), op, args, "request");
        // A kernel that Oopsed or panicked rarely answers again: stop waiting soon after
        // the console says so, so a crash costs seconds, not a whole deadline.
        let qemu = &self.qemu;
        let from = qemu.console_len();
        let mut fatal_at: Option<Instant> = None;
        let give_up = || {
            if fatal_at.is_none() {
                let console = qemu.console_since(from);
                let lines = console.lines().map(dmesg::strip_console_stamp);
                if dmesg::splats(lines).iter().any(|s| s.kind.is_fatal()) {
                    fatal_at = Some(Instant::now());
                }
            }
            fatal_at.is_some_and(|t| t.elapsed() >= scaled(FATAL_GRACE))
        };
        let result = self.chan.request_watching(op, args, timeout, give_up);
        self.books.after(op, result.as_ref().ok());
        if let (Some(hook), Ok(reply)) = (&mut self.on_reply, &result) {
            hook(op, args, reply);
        }
        let t = self.op_times.entry(op.to_string()).or_default();
        t.0 += 1;
        t.1 += sent.elapsed();
        match result {
            Ok(reply) => {
                tracing::debug!(
                    qemu = self.qemu.pid(),
                    op,
                    ok = reply.ok,
                    ms = sent.elapsed().as_secs_f64() * 1e3,
                    "reply {:?}",
                    reply.fields
                );
                for record in reply.kmsg.iter().filter_map(|k| dmesg::parse_record(k)) {
                    self.keep(record);
                }
                Ok(reply)
            }
            Err(e) => {
                let fault = self.classify(op, e);
                tracing::warn!(qemu = self.qemu.pid(), op, cause = fault.cause(), "guest fault: {fault}");
                Err(fault)
            }
        }
    }

    /// Set rmapcheck.ko parameters (`misreport=1` for the fuzzer's self-test). They
    /// last until the guest is gone; `reset` does not touch them.
    pub fn set_module_params(&mut self, params: &[(String, String)]) -> Result<(), Fault> {
        for (param, value) in params {
            let reply = self.request("modparam", &format!("param={param} value={value}"))?;
            if !reply.ok {
                return Err(Fault::Protocol(format!(
                    "cannot set module parameter {param}={value}: errno {}",
                    reply.errno().unwrap_or(0)
                )));
            }
        }
        Ok(())
    }

    /// Call `hook` with every request that gets a reply from now on (`None`: stop).
    pub fn on_reply(&mut self, hook: Option<OnReply>) {
        self.on_reply = hook;
    }

    /// Send a request that is expected to kill or hang the guest (fault injection).
    pub fn send_only(&mut self, op: &str) -> Result<(), Fault> {
        self.chan.send_only(op).map_err(|e| Fault::Protocol(e.to_string()))
    }

    /// Turn a channel error into the cause a person needs: died (with the panic line if
    /// the console has one), hung, or a protocol problem.
    fn classify(&self, op: &str, err: ChannelError) -> Fault {
        // QEMU exits right after a panic with -no-reboot; give it a moment to do so.
        let exited = self.qemu.exited().is_some() || self.qemu.wait_exit(Duration::from_millis(500));
        let console = self.qemu.console_tail(40);
        let whole = self.qemu.console();
        let lines = || whole.lines().map(dmesg::strip_console_stamp);
        let splat = dmesg::splats(lines()).into_iter().next().map(Box::new);
        if exited {
            let panic = lines().find(|l| l.contains("Kernel panic")).map(|l| format!(": {l}")).unwrap_or_default();
            let status = self.qemu.exited().unwrap_or_default();
            return Fault::Died { op: op.into(), status, panic, splat, console };
        }
        match err {
            ChannelError::Timeout { op, secs } => {
                Fault::Hang { detail: format!("no answer to '{op}' in {secs:.1} s"), splat, console }
            }
            other => Fault::Protocol(other.to_string()),
        }
    }

    /// Note one forwarded record: its splat, if any, for good; the record itself only
    /// among the most recent, so a fuzz campaign of hours stays in bounded memory.
    fn keep(&mut self, record: Record) {
        self.splats.note(&record);
        if self.kmsg.len() == KMSG_KEPT {
            self.kmsg.pop_front();
        }
        self.kmsg.push_back(record);
    }

    /// Every splat seen on the forwarded log since record `seq`.
    pub fn splats_since(&self, seq: u64) -> Vec<dmesg::Splat> {
        self.splats.since(seq)
    }

    /// The next kmsg sequence number, to mark the start of a scenario.
    pub fn kmsg_mark(&self) -> u64 {
        self.splats.next_seq
    }

    /// Stop or continue the guest's CPUs (QMP `stop`, `cont`): a failure is held for gdb.
    pub fn set_running(&self, running: bool) -> anyhow::Result<()> {
        let mut qmp = crate::vm::qmp::Qmp::connect(&self.config().qmp_socket(), Duration::from_secs(5))?;
        qmp.execute(if running { "cont" } else { "stop" }, serde_json::json!({}))?;
        Ok(())
    }

    /// Power off politely, then make sure QEMU is gone.
    pub fn shutdown(mut self) {
        let _ = self.chan.request("poweroff", "", Duration::from_secs(2));
        self.qemu.wait_exit(Duration::from_secs(2));
    }
}

/// Every splat in a forwarded kernel log, with its record's sequence number.
#[derive(Debug, Default)]
pub struct SplatLog {
    splats: Vec<(u64, dmesg::Splat)>,
    /// The last splat's report goes on: the records that follow it add to its trace.
    trace_open: bool,
    /// The sequence number the next record will have.
    pub next_seq: u64,
}

impl SplatLog {
    /// Note one record: a splat starts, or the open one's trace goes on.
    pub fn note(&mut self, record: &Record) {
        let last = self.splats.last_mut().map(|(_, s)| s);
        if let Some(splat) = dmesg::feed(&mut self.trace_open, last, &record.text) {
            self.splats.push((record.seq, splat));
        }
        self.next_seq = self.next_seq.max(record.seq + 1);
    }

    /// Every splat since record `seq`.
    pub fn since(&self, seq: u64) -> Vec<dmesg::Splat> {
        self.splats.iter().filter(|(s, _)| *s >= seq).map(|(_, splat)| splat.clone()).collect()
    }
}

/// What the host keeps about a guest's workload and kernel between requests, by the
/// same rules for a real guest and a fake (`vm::agent` reads and writes it).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Books {
    /// No request since the last successful `reset` touched the workload.
    pub fresh: bool,
    /// /proc/sys/kernel/tainted before the first scenario (loading our module taints
    /// "O"); taken lazily, because a guest is saved for restore before any request.
    pub taint_baseline: Option<u64>,
    /// The agent collects coverage: processes it starts get a trace buffer.
    pub collecting: bool,
}

impl Books {
    /// Note that `op` got `reply` (`None`: no reply): the workload is fresh after a
    /// good `reset`, and stays so only through requests that leave it as it was.
    pub fn after(&mut self, op: &str, reply: Option<&Reply>) {
        self.fresh = match reply {
            Some(reply) if op == "reset" => reply.ok,
            _ => self.fresh && LEAVE_WORKLOAD.contains(&op),
        };
    }
}

/// The flags a `tainted` reply gives.
pub fn taint_value(reply: &Reply) -> Result<u64, Fault> {
    reply
        .get("value")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Fault::Protocol(format!("bad tainted reply: {:?}", reply.fields)))
}

/// The kernel's taint letters for the bits of `flags` (kernel/panic.c order).
pub fn taint_letters(flags: u64) -> String {
    const LETTERS: &[u8] = b"PFSRMBUDAWCIOELKXTN";
    LETTERS.iter().enumerate().filter(|(bit, _)| flags & (1 << bit) != 0).map(|(_, l)| *l as char).collect()
}

/// A boot failure with QEMU's exit status and stderr when it is gone.
fn boot_fault(qemu: &Qemu, why: String) -> Fault {
    Fault::Boot {
        why: match qemu.exited() {
            Some(status) => format!("{why}; qemu exited ({status}): {}", qemu.stderr().trim()),
            None => why,
        },
        console: qemu.console_tail(40),
    }
}

pub fn ready_info(key: &str, f: &Fields) -> Result<Info, String> {
    let page_size = f.get("page_size").and_then(|p| p.parse().ok()).ok_or("READY without page_size")?;
    Ok(Info {
        key: key.to_string(),
        release: f.get("release").cloned().unwrap_or_default(),
        page_size,
        module_loaded: f.get("module").is_some_and(|m| m == "1"),
        compiler: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taint_letters_follow_the_kernel() {
        // O (out-of-tree module) and E (unsigned) are what loading rmapcheck.ko sets.
        assert_eq!(taint_letters((1 << 12) | (1 << 13)), "OE");
        assert_eq!(taint_letters(1 << 9), "W");
        assert_eq!(taint_letters((1 << 5) | (1 << 7)), "BD");
        assert_eq!(taint_letters(0), "");
    }
}
