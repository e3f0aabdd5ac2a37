//! A scripted fake agent for host-side tests: it expects the requests of its script in
//! order, answers each with the scripted reply (kernel log records included), and fails
//! the test at the first request it did not expect. A script is written by hand or is
//! a transcript a real guest recorded (`vm::transcript`), so a test can assert that the
//! runner sends what it sent to a real kernel, in the same order. A fake can also
//! answer by a rule once its script is done (`answering`), for the fuzzer's tests,
//! whose shrinker plays scenarios no script could foresee.

use crate::check::dmesg::{self, Splat};
use crate::vm::agent::Agent;
use crate::vm::guest::{Books, Fault, Info, SplatLog};
use crate::vm::protocol::Reply;
use crate::vm::transcript::{Start, Transcript};
use crate::wire::{parse_fields, Fields};
use std::collections::VecDeque;
use std::path::Path;

/// What the fake answers to one expected request.
#[derive(Debug)]
pub enum Answer {
    Reply(Reply),
    /// The guest fails during the request.
    Fault(Fault),
}

#[derive(Debug)]
struct Expected {
    op: String,
    args: String,
    answer: Answer,
}

/// Answers every request once the script is done.
pub type Rule = Box<dyn FnMut(&str, &str) -> Answer + Send>;

pub struct FakeAgent {
    info: Info,
    script: VecDeque<Expected>,
    rule: Option<Rule>,
    /// Every request sent, as `op args`, in order.
    pub sent: Vec<String>,
    next_id: u64,
    books: Books,
    pub coverage: bool,
    splats: SplatLog,
}

impl FakeAgent {
    /// A fake guest of `info`, fresh from a reset, with the taint baseline taken.
    pub fn new(info: Info) -> FakeAgent {
        let books = Books { fresh: true, taint_baseline: Some(0), collecting: false };
        let start = Start { info, next_id: 1, books, coverage: false };
        FakeAgent::starting(start)
    }

    /// A fake in the state a recording started from, with an empty script.
    pub fn starting(start: Start) -> FakeAgent {
        FakeAgent {
            info: start.info,
            script: VecDeque::new(),
            rule: None,
            sent: Vec::new(),
            next_id: start.next_id,
            books: start.books,
            coverage: start.coverage,
            splats: SplatLog::default(),
        }
    }

    /// A fake that plays back a recorded transcript.
    pub fn replaying(t: Transcript) -> FakeAgent {
        let mut fake = FakeAgent::starting(t.start);
        for e in t.exchanges {
            fake = fake.expect(&e.op, &e.args, Answer::Reply(e.reply));
        }
        fake
    }

    /// [`FakeAgent::replaying`] the transcript at `path`.
    pub fn replaying_file(path: &Path) -> FakeAgent {
        FakeAgent::replaying(Transcript::load(path).unwrap_or_else(|e| panic!("{e}")))
    }

    /// A fresh fake guest of `info` that answers every request by `rule`.
    pub fn answering(info: Info, rule: impl FnMut(&str, &str) -> Answer + Send + 'static) -> FakeAgent {
        let mut fake = FakeAgent::new(info);
        fake.rule = Some(Box::new(rule));
        fake
    }

    /// Expect `op args` next, and answer it.
    pub fn expect(mut self, op: &str, args: &str, answer: Answer) -> FakeAgent {
        self.script.push_back(Expected { op: op.to_string(), args: args.to_string(), answer });
        self
    }

    /// The ops sent, in order.
    pub fn ops(&self) -> Vec<&str> {
        self.sent.iter().map(|s| s.split(' ').next().unwrap_or("")).collect()
    }

    /// Panics unless every scripted request was sent.
    pub fn assert_done(&self) {
        let left: Vec<String> = self.script.iter().map(|e| format!("{} {}", e.op, e.args)).collect();
        assert!(left.is_empty(), "the fake agent still expected {} request(s): {left:#?}", left.len());
    }
}

/// An `ok` reply with `fields` (`key=value` words) and `data` lines.
pub fn ok(fields: &str, data: &[&str]) -> Answer {
    Answer::Reply(reply(true, fields, data, &[]))
}

/// A refusal: `err errno=N msg=...`.
pub fn err(errno: i32, msg: &str) -> Answer {
    Answer::Reply(reply(false, &format!("errno={errno} msg={msg}"), &[], &[]))
}

/// A reply with kernel log records (`prio,seq,usec;text`) forwarded before it.
pub fn reply(ok: bool, fields: &str, data: &[&str], kmsg: &[&str]) -> Reply {
    Reply {
        id: 0,
        ok,
        fields: parse_fields(fields),
        data: data.iter().map(|d| parse_fields(d)).collect::<Vec<Fields>>(),
        kmsg: kmsg.iter().map(|k| k.to_string()).collect(),
    }
}

impl Agent for FakeAgent {
    fn info(&self) -> &Info {
        &self.info
    }

    fn request(&mut self, op: &str, args: &str) -> Result<Reply, Fault> {
        let line = format!("{op} {args}");
        let n = self.sent.len() + 1;
        self.sent.push(line.clone());
        let answer = match (self.script.pop_front(), &mut self.rule) {
            (Some(e), _) => {
                assert!(e.op == op && e.args == args, "request {n}: expected `{} {}`, got `{line}`", e.op, e.args);
                e.answer
            }
            (None, Some(rule)) => rule(op, args),
            (None, None) => panic!("request {n} was not expected: `{line}` (the script has ended)"),
        };
        let id = self.next_id;
        self.next_id += 1;
        match answer {
            Answer::Reply(mut reply) => {
                reply.id = id;
                self.books.after(op, Some(&reply));
                for record in reply.kmsg.iter().filter_map(|k| dmesg::parse_record(k)) {
                    self.splats.note(&record);
                }
                Ok(reply)
            }
            Answer::Fault(f) => {
                self.books.after(op, None);
                Err(f)
            }
        }
    }

    fn requests_sent(&self) -> u64 {
        self.next_id - 1
    }

    fn reserve_ids(&mut self, n: u64) -> u64 {
        let first = self.next_id;
        self.next_id += n;
        first
    }

    fn kmsg_mark(&self) -> u64 {
        self.splats.next_seq
    }

    fn splats_since(&self, seq: u64) -> Vec<Splat> {
        self.splats.since(seq)
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

impl Drop for FakeAgent {
    /// A test that ends with requests still scripted did not do what its script says.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.assert_done();
        }
    }
}
