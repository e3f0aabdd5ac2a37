//! How a workload process failed a request: it hung in the kernel (named by its kernel
//! stack) or died (named by its signal and what the kernel logged about it). The agent
//! answers such a request with `msg=worker-hung` or `msg=worker-died` and the raw facts
//! (docs/PROTOCOL.md); this turns them into the stable words of a finding's title.
//!
//! Architecture invariant: pure values; no I/O.

use crate::check::dmesg;
use crate::check::problem::ProblemKind;
use crate::wire::Fields;

/// Frames that only say the task sleeps or was switched out, not where it waits.
const SCHEDULER: &[&str] = &[
    "__switch_to",
    "__schedule",
    "schedule",
    "schedule_timeout",
    "schedule_preempt_disabled",
    "preempt_schedule",
    "preempt_schedule_irq",
    "preempt_schedule_common",
    "io_schedule",
    "io_schedule_timeout",
    "cpu_switch_to",
    "ret_from_fork",
];

/// The function of one stack frame as /proc/PID/stack (`[<0>] handle_userfault+0x4d0/0x6c8`)
/// or a sysrq dump (` handle_userfault+0x4d0/0x6c8`, `[<ffff..>] name+0x..`) prints it:
/// the name without offset, module or address. `None` for a line that is no frame.
pub fn frame_function(line: &str) -> Option<&str> {
    let mut t = line.trim();
    if t.starts_with("[<") {
        t = t.split_once("] ")?.1.trim_start();
    }
    let name = t.split(['+', ' ']).next()?;
    let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    (ok && t[name.len()..].starts_with("+0x")).then_some(name)
}

/// The functions of a kernel stack, innermost first, without the scheduler's frames.
pub fn stack_functions<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    lines.into_iter().filter_map(frame_function).filter(|f| !SCHEDULER.contains(f)).map(String::from).collect()
}

/// The stack of task `pid` in a sysrq-t (or -w) dump on the kernel log: the frames after
/// its `task:... pid:N ...` line, up to the next task.
pub fn sysrq_stack<'a>(log: impl IntoIterator<Item = &'a str>, pid: u32) -> Vec<String> {
    let header = |l: &str| l.trim_start().starts_with("task:");
    // `pid:125   tgid:` (6.12) or `pid:  125 ppid:` (6.1).
    let ours = |l: &str| {
        l.match_indices(" pid:").any(|(at, _)| l[at + 5..].split_whitespace().next() == Some(&pid.to_string()))
    };
    let mut lines = log.into_iter().skip_while(|l| !(header(l) && ours(l)));
    if lines.next().is_none() {
        return Vec::new();
    }
    stack_functions(lines.take_while(|l| !header(l)))
}

/// A signal's name (arm64 numbers), `signal N` for one this table lacks.
pub fn signal_name(n: i32) -> String {
    const NAMES: [&str; 16] = [
        "", "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGKILL", "SIGUSR1",
        "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM",
    ];
    match n {
        1..=15 => NAMES[n as usize].to_string(),
        n => format!("signal {n}"),
    }
}

/// What the kernel logged about task `pid` as it died (an unhandled fault, the OOM
/// killer's kill), with numbers and addresses taken out: `init[#]: unhandled level #
/// translation fault (#) at #, esr #, in init[#]`.
pub fn death_line<'a>(log: impl IntoIterator<Item = &'a str>, pid: u32) -> Option<String> {
    let named = [format!("[{pid}]"), format!("process {pid} "), format!("pid {pid} ")];
    let line = log.into_iter().find(|l| named.iter().any(|n| l.contains(n.as_str())))?;
    // An address of hex letters alone ("in init[bcdc,...]") has no digit for the
    // title's number rule to see; inside the brackets every hex word is an address.
    static ADDRESS: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let address = ADDRESS.get_or_init(|| regex::Regex::new(r"([\[,+])[0-9a-f]+\b").unwrap());
    Some(address.replace_all(&dmesg::normalise_title(line), "${1}#").into_owned())
}

/// How a worker died, in a title's words: the signal, else the exit status, and what
/// the kernel said.
pub fn how_it_died(signal: Option<i32>, status: Option<i32>, said: Option<&str>) -> String {
    let mut how = match (signal, status) {
        (Some(s), _) => signal_name(s),
        (None, Some(s)) => format!("exit status {s}"),
        (None, None) => "an unknown cause".to_string(),
    };
    if let Some(said) = said {
        how.push_str(&format!(" ({said})"));
    }
    how
}

/// The problem of step `n` (op `op`) whose refusal says its worker hung or died
/// (`msg=worker-hung`, `msg=worker-died`), from the refusal's fields and the kernel log
/// records that came with it; `None` for any other refusal.
pub fn problem(n: usize, op: &str, fields: &Fields, log: &[String]) -> Option<ProblemKind> {
    let pid: Option<u32> = fields.get("pid").and_then(|p| p.parse().ok());
    let log = || log.iter().map(String::as_str);
    match fields.get("msg").map(String::as_str) {
        Some("worker-hung") => {
            let mut frames = stack_functions(fields.get("stack").map(|s| s.split(',')).into_iter().flatten());
            if let (true, Some(pid)) = (frames.is_empty(), pid) {
                frames = sysrq_stack(log(), pid);
            }
            if let (true, Some(wchan)) = (frames.is_empty(), fields.get("wchan")) {
                frames = vec![wchan.clone()];
            }
            Some(ProblemKind::WorkerHung { n, op: op.to_string(), frames })
        }
        Some("worker-died") => {
            let number = |k: &str| fields.get(k).and_then(|v| v.parse().ok());
            let said = pid.and_then(|pid| death_line(log(), pid));
            let how = how_it_died(number("signal"), number("status"), said.as_deref());
            Some(ProblemKind::WorkerDied { n, op: op.to_string(), how })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
