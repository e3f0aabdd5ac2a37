//! What the runner needs from a guest's agent, as a trait: a booted [`Guest`] is one,
//! and the scripted fake (`vm::fake`, tests only) is another, so the runner, the pool
//! and the fuzzer can be tested on the host without a VM. The bookkeeping built on
//! requests (freshness, the taint baseline, coverage) is written once, here.

use crate::check::dmesg::Splat;
use crate::vm::guest::{taint_letters, taint_value, Books, Fault, Guest, Info};
use crate::vm::protocol::{decode_coverage, Coverage, Reply};

pub trait Agent {
    /// What the agent said at READY.
    fn info(&self) -> &Info;

    /// Send one request with the default deadline. Kernel log records in the reply
    /// are kept (see `splats_since`), and `books` notes what the request did.
    fn request(&mut self, op: &str, args: &str) -> Result<Reply, Fault>;

    /// Requests sent so far (and ids reserved).
    fn requests_sent(&self) -> u64;

    /// `n` request ids for the walks of one `findpages` request; returns the first.
    fn reserve_ids(&mut self, n: u64) -> u64;

    /// The next kmsg sequence number, to mark the start of a scenario.
    fn kmsg_mark(&self) -> u64;

    /// Every splat seen on the forwarded log since record `seq`.
    fn splats_since(&self, seq: u64) -> Vec<Splat>;

    fn books(&self) -> &Books;
    fn books_mut(&mut self) -> &mut Books;

    /// Runs on this guest collect KCOV coverage.
    fn collects_coverage(&self) -> bool;
    /// Stop collecting (the kernel has no KCOV).
    fn no_coverage(&mut self);

    /// Whether the workload is as a `reset` left it: one p0, no maps, default settings.
    fn is_fresh(&self) -> bool {
        self.books().fresh
    }

    /// The kernel's taint flags now.
    fn tainted(&mut self) -> Result<u64, Fault> {
        taint_value(&self.request("tainted", "")?)
    }

    /// Record the taint flags that later scenarios are judged against (once per guest).
    fn mark_taint_baseline(&mut self) -> Result<(), Fault> {
        if self.books().taint_baseline.is_none() {
            let now = self.tainted()?;
            self.books_mut().taint_baseline = Some(now);
        }
        Ok(())
    }

    /// Taint flags gained since the baseline, as the kernel's letters (e.g. "W" for a WARN).
    fn new_taint(&mut self) -> Result<String, Fault> {
        self.mark_taint_baseline()?;
        let baseline = self.books().taint_baseline.unwrap_or(0);
        Ok(taint_letters(self.tainted()? & !baseline))
    }

    /// When this guest collects coverage: turn the agent's collection on (it is then on
    /// for every process made from now on) and forget what it collected so far.
    /// Returns whether collection is on; a kernel without KCOV turns it off.
    fn start_coverage(&mut self) -> Result<bool, Fault> {
        if !self.collects_coverage() {
            return Ok(false);
        }
        let reply = self.request("cov", "enable=1")?;
        if !reply.ok {
            tracing::info!(key = %self.info().key, errno = ?reply.errno(), "no KCOV on this kernel: coverage off");
            self.no_coverage();
        } else if !self.books().collecting {
            // The running p0 has no trace buffer: the next run needs a reset first.
            let books = self.books_mut();
            books.collecting = true;
            books.fresh = false;
        }
        Ok(self.collects_coverage())
    }

    /// The PCs collected since the last `start_coverage` or `take_coverage`.
    fn take_coverage(&mut self) -> Result<Coverage, Fault> {
        let reply = self.request("cov", "")?;
        if !reply.ok {
            return Err(Fault::Protocol(format!("cov failed: {:?}", reply.fields)));
        }
        decode_coverage(&reply).map_err(|e| Fault::Protocol(format!("bad cov reply: {e}")))
    }
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
    fn kmsg_mark(&self) -> u64 {
        Guest::kmsg_mark(self)
    }
    fn splats_since(&self, seq: u64) -> Vec<Splat> {
        Guest::splats_since(self, seq)
    }
    fn books(&self) -> &Books {
        &self.books
    }
    fn books_mut(&mut self) -> &mut Books {
        &mut self.books
    }
    fn collects_coverage(&self) -> bool {
        self.coverage
    }
    fn no_coverage(&mut self) {
        self.coverage = false;
    }
}
