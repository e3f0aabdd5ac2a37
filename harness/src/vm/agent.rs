//! What the runner needs from a guest's agent, as a trait: a booted [`Guest`] is one,
//! and the scripted fake (`vm::fake`, tests only) is another, so the runner, the pool
//! and the fuzzer can be tested on the host without a VM.

use crate::check::dmesg::Splat;
use crate::vm::guest::{Fault, Guest, Info};
use crate::vm::protocol::{Coverage, Reply};

pub trait Agent {
    /// What the agent said at READY.
    fn info(&self) -> &Info;

    /// Send one request with the default deadline; kernel log records in the reply are
    /// kept (see `splats_since`).
    fn request(&mut self, op: &str, args: &str) -> Result<Reply, Fault>;

    /// Requests sent so far (and ids reserved).
    fn requests_sent(&self) -> u64;

    /// `n` request ids for the walks of one `findpages` request; returns the first.
    fn reserve_ids(&mut self, n: u64) -> u64;

    /// Whether the workload is as a `reset` left it: one p0, no maps, default settings.
    fn is_fresh(&self) -> bool;

    /// The next kmsg sequence number, to mark the start of a scenario.
    fn kmsg_mark(&self) -> u64;

    /// Every splat seen on the forwarded log since record `seq`.
    fn splats_since(&self, seq: u64) -> Vec<Splat>;

    /// Record the taint flags that later scenarios are judged against (once per guest).
    fn mark_taint_baseline(&mut self) -> Result<(), Fault>;

    /// Taint flags gained since the baseline, as the kernel's letters.
    fn new_taint(&mut self) -> Result<String, Fault>;

    /// Runs on this guest collect KCOV coverage.
    fn collects_coverage(&self) -> bool;

    /// Turn the agent's coverage collection on when this guest collects; whether it is on.
    fn start_coverage(&mut self) -> Result<bool, Fault>;

    /// The PCs collected since the last `start_coverage` or `take_coverage`.
    fn take_coverage(&mut self) -> Result<Coverage, Fault>;
}

impl Agent for Guest {
    fn info(&self) -> &Info {
        &self.info
    }
    fn request(&mut self, op: &str, args: &str) -> Result<Reply, Fault> {
        Guest::request(self, op, args)
    }
    fn requests_sent(&self) -> u64 {
        Guest::requests_sent(self)
    }
    fn reserve_ids(&mut self, n: u64) -> u64 {
        Guest::reserve_ids(self, n)
    }
    fn is_fresh(&self) -> bool {
        Guest::is_fresh(self)
    }
    fn kmsg_mark(&self) -> u64 {
        Guest::kmsg_mark(self)
    }
    fn splats_since(&self, seq: u64) -> Vec<Splat> {
        Guest::splats_since(self, seq)
    }
    fn mark_taint_baseline(&mut self) -> Result<(), Fault> {
        Guest::mark_taint_baseline(self)
    }
    fn new_taint(&mut self) -> Result<String, Fault> {
        Guest::new_taint(self)
    }
    fn collects_coverage(&self) -> bool {
        self.coverage
    }
    fn start_coverage(&mut self) -> Result<bool, Fault> {
        Guest::start_coverage(self)
    }
    fn take_coverage(&mut self) -> Result<Coverage, Fault> {
        Guest::take_coverage(self)
    }
}
