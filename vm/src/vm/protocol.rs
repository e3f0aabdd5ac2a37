//! The line protocol with the guest agent (docs/PROTOCOL.md): a framed request/reply
//! channel over the virtio-serial port, with deadlines on every read.

use crate::wire::{parse_fields, Fields};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// One line from the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Ready(Fields),
    /// A raw /dev/kmsg record, `prio,seq,usec;message`.
    Kmsg(String),
    Data(Fields),
    Reply {
        id: u64,
        ok: bool,
        fields: Fields,
    },
    /// Anything else; kept for the transcript, never fatal.
    Other(String),
}

pub fn parse_line(line: &str) -> Line {
    let line = line.trim_end_matches(['\r', '\n']);
    if let Some(rest) = line.strip_prefix("READY") {
        if rest.is_empty() || rest.starts_with(' ') {
            return Line::Ready(parse_fields(rest));
        }
    }
    if let Some(rest) = line.strip_prefix("K ") {
        return Line::Kmsg(rest.to_string());
    }
    if let Some(rest) = line.strip_prefix("D ") {
        return Line::Data(parse_fields(rest));
    }
    if let Some(rest) = line.strip_prefix("R ") {
        let mut words = rest.splitn(3, ' ');
        let id = words.next().and_then(|w| w.parse().ok());
        let status = words.next();
        if let (Some(id), Some(status @ ("ok" | "err"))) = (id, status) {
            return Line::Reply { id, ok: status == "ok", fields: parse_fields(words.next().unwrap_or("")) };
        }
    }
    Line::Other(line.to_string())
}

/// The agent's answer to one request.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reply {
    pub id: u64,
    pub ok: bool,
    pub fields: Fields,
    pub data: Vec<Fields>,
    pub kmsg: Vec<String>,
}

impl Reply {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }
    pub fn errno(&self) -> Option<i32> {
        self.get("errno").and_then(|e| e.parse().ok())
    }
}

/// The answer to `cov`: the kernel PCs (KCOV) the guest's runs reached since the last
/// `cov`, sorted and unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    pub pcs: Vec<u64>,
    /// A trace buffer filled up, so PCs after that point in that step are missing.
    pub overflow: bool,
    /// The requests during which a buffer filled (`compact` always does).
    pub overflow_ops: Vec<String>,
}

/// Decode a `cov` reply (docs/PROTOCOL.md): `D pcs=<first>,<delta>,...` lines in hex,
/// each starting from an absolute PC, and `n=` and `overflow=` on the `R` line. The PCs
/// must be strictly increasing across lines and as many as `n` says.
pub fn decode_coverage(reply: &Reply) -> Result<Coverage, String> {
    let n: usize = reply.get("n").and_then(|n| n.parse().ok()).ok_or("cov reply without n=")?;
    let mut pcs: Vec<u64> = Vec::with_capacity(n);
    for line in &reply.data {
        let list = line.get("pcs").ok_or("cov data line without pcs=")?;
        let mut words = list.split(',');
        let first = words.next().unwrap_or_default();
        let mut pc = u64::from_str_radix(first, 16).map_err(|_| format!("bad pc '{first}'"))?;
        if pcs.last().is_some_and(|&last| last >= pc) {
            return Err(format!("pcs not increasing at {pc:#x}"));
        }
        pcs.push(pc);
        for d in words {
            let delta = u64::from_str_radix(d, 16).map_err(|_| format!("bad pc delta '{d}'"))?;
            if delta == 0 {
                return Err(format!("a zero delta after {pc:#x}"));
            }
            pc = pc.checked_add(delta).ok_or_else(|| format!("pc overflows after {pc:#x}"))?;
            pcs.push(pc);
        }
    }
    if pcs.len() != n {
        return Err(format!("cov said n={n} but sent {} pcs", pcs.len()));
    }
    let overflow_ops = match reply.get("overflow_ops") {
        None | Some("-") => Vec::new(),
        Some(ops) => ops.split(',').map(String::from).collect(),
    };
    Ok(Coverage { pcs, overflow: reply.get("overflow") == Some("1"), overflow_ops })
}

/// Why the channel failed; callers classify guest faults by it.
/// How often a waiting request asks whether to give up.
const WATCH_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("no answer to '{op}' within {secs:.1} s")]
    Timeout { op: String, secs: f64 },
    #[error("the guest closed the channel during '{op}'")]
    Closed { op: String },
    #[error("channel I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// The host end of the protocol.
pub struct Channel {
    stream: UnixStream,
    buf: Vec<u8>,
    next_id: u64,
    /// Lines that were neither data nor replies, for diagnosis.
    pub stray: Vec<String>,
}

impl Channel {
    /// Connect to the QEMU chardev socket, retrying while `alive()` holds until `deadline`.
    pub fn connect(path: &Path, deadline: Instant, alive: impl Fn() -> bool) -> Result<Channel, ChannelError> {
        loop {
            match UnixStream::connect(path) {
                Ok(stream) => {
                    return Ok(Channel { stream, buf: Vec::new(), next_id: 1, stray: Vec::new() });
                }
                Err(e) => {
                    if !alive() {
                        return Err(ChannelError::Closed { op: "connect".into() });
                    }
                    if Instant::now() >= deadline {
                        return Err(ChannelError::Io(e));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }

    /// The id the next request will carry.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Read one line, waiting at most until `deadline`.
    pub fn read_line(&mut self, op: &str, deadline: Instant) -> Result<String, ChannelError> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Ok(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ChannelError::Timeout { op: op.into(), secs: 0.0 });
            }
            self.stream.set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))))?;
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ChannelError::Closed { op: op.into() }),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Wait for the READY line; lines before it are kept as stray.
    pub fn wait_ready(&mut self, deadline: Instant) -> Result<Fields, ChannelError> {
        loop {
            match parse_line(&self.read_line("boot", deadline)?) {
                Line::Ready(fields) => return Ok(fields),
                other => self.stray.push(format!("{other:?}")),
            }
        }
    }

    /// Send one request and collect its reply. `args` is already `key=value ...`.
    pub fn request(&mut self, op: &str, args: &str, timeout: Duration) -> Result<Reply, ChannelError> {
        self.request_watching(op, args, timeout, || false)
    }

    /// [`Channel::request`], asking `give_up` a few times a second while it waits: when it
    /// says yes (the guest is known dead), the wait ends as a timeout before `timeout`.
    pub fn request_watching(
        &mut self,
        op: &str,
        args: &str,
        timeout: Duration,
        give_up: impl FnMut() -> bool,
    ) -> Result<Reply, ChannelError> {
        let id = self.next_id;
        self.next_id += 1;
        let line = if args.is_empty() { format!("{id} {op}\n") } else { format!("{id} {op} {args}\n") };
        self.stream.write_all(line.as_bytes())?;
        self.collect(id, op, timeout, give_up)
    }

    /// Take `n` request ids for the module's walks of one batched request (`findpages`),
    /// so they never meet another request's; returns the first.
    pub fn reserve_ids(&mut self, n: u64) -> u64 {
        let first = self.next_id;
        self.next_id += n;
        first
    }

    /// Send a request that gets no reply (the guest dies or stops answering).
    pub fn send_only(&mut self, op: &str) -> Result<(), ChannelError> {
        let id = self.next_id;
        self.next_id += 1;
        self.stream.write_all(format!("{id} {op}\n").as_bytes())?;
        Ok(())
    }

    fn collect(
        &mut self,
        id: u64,
        op: &str,
        timeout: Duration,
        mut give_up: impl FnMut() -> bool,
    ) -> Result<Reply, ChannelError> {
        let start = Instant::now();
        let deadline = start + timeout;
        let mut reply = Reply { id, ..Reply::default() };
        loop {
            let slice = (Instant::now() + WATCH_EVERY).min(deadline);
            let line = match self.read_line(op, slice) {
                Ok(line) => line,
                Err(ChannelError::Timeout { .. }) if Instant::now() < deadline && !give_up() => continue,
                Err(ChannelError::Timeout { op, .. }) => {
                    return Err(ChannelError::Timeout { op, secs: start.elapsed().as_secs_f64() })
                }
                Err(other) => return Err(other),
            };
            match parse_line(&line) {
                Line::Kmsg(k) => reply.kmsg.push(k),
                Line::Data(d) => reply.data.push(d),
                Line::Reply { id: got, ok, fields } if got == id => {
                    reply.ok = ok;
                    reply.fields = fields;
                    return Ok(reply);
                }
                other => self.stray.push(format!("{other:?}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_line_kind() {
        assert_eq!(
            parse_line("READY page_size=4096 release=6.12.1 module=1"),
            Line::Ready(parse_fields("page_size=4096 release=6.12.1 module=1"))
        );
        assert_eq!(
            parse_line("K 6,812,1234;rmapcheck: req=3 end rc=0"),
            Line::Kmsg("6,812,1234;rmapcheck: req=3 end rc=0".into())
        );
        let Line::Reply { id, ok, fields } = parse_line("R 17 err errno=3 msg=no-proc") else { panic!() };
        assert_eq!((id, ok, fields["errno"].as_str()), (17, false, "3"));
        assert!(matches!(parse_line("R 5 ok"), Line::Reply { id: 5, ok: true, .. }));
        assert!(matches!(parse_line("R x ok"), Line::Other(_)));
        assert!(matches!(parse_line("READYX"), Line::Other(_)));
        let Line::Data(d) = parse_line("D proc=p0 pid=7 name=shm pfns=0x1,-") else { panic!() };
        assert_eq!(d["pfns"], "0x1,-");
    }

    #[test]
    fn request_collects_kmsg_and_data_until_its_reply() {
        let (host, mut guest) = UnixStream::pair().unwrap();
        let mut chan = Channel { stream: host, buf: Vec::new(), next_id: 1, stray: Vec::new() };
        let t = std::thread::spawn(move || {
            let mut req = [0u8; 64];
            let n = guest.read(&mut req).unwrap();
            assert_eq!(&req[..n], b"1 pagemap\n");
            guest.write_all(b"K 6,1,2;hello\nD proc=p0 pfns=0x5\nR 0 ok\nR 1 ok n=1\n").unwrap();
            guest
        });
        let reply = chan.request("pagemap", "", Duration::from_secs(5)).unwrap();
        assert!(reply.ok);
        assert_eq!(reply.kmsg, vec!["6,1,2;hello"]);
        assert_eq!(reply.data[0]["pfns"], "0x5");
        assert_eq!(chan.stray.len(), 1);
        let guest = t.join().unwrap();
        drop(guest);
        let err = chan.request("ping", "", Duration::from_secs(5)).unwrap_err();
        assert!(matches!(err, ChannelError::Closed { .. } | ChannelError::Io(_)), "{err}");
    }

    #[test]
    fn a_watcher_ends_the_wait_long_before_the_deadline() {
        let (host, _guest) = UnixStream::pair().unwrap();
        let mut chan = Channel { stream: host, buf: Vec::new(), next_id: 1, stray: Vec::new() };
        let started = Instant::now();
        let mut asked = 0;
        let err = chan
            .request_watching("ping", "", Duration::from_secs(3600), || {
                asked += 1;
                asked == 3
            })
            .unwrap_err();
        assert!(matches!(err, ChannelError::Timeout { .. }), "{err}");
        assert_eq!(asked, 3);
        // Three asks, one per WATCH_EVERY slice (0.75 s). The slices are waits, not a
        // busy loop, so at least two pass before the third ask. A loaded host only
        // oversleeps each wait by scheduling delay (milliseconds, at worst a second),
        // so 5 s on top still holds on 2 shared cores; a watcher asked only at the
        // deadline, or slices grown to seconds, would blow it.
        let elapsed = started.elapsed();
        assert!(elapsed >= WATCH_EVERY * 2, "{elapsed:?}: the watcher was asked without waiting");
        assert!(elapsed < WATCH_EVERY * 3 + Duration::from_secs(5), "{elapsed:?}");
    }

    fn cov_reply(r: &str, data: &[&str]) -> Reply {
        let Line::Reply { ok, fields, .. } = parse_line(r) else { panic!("{r}") };
        let data = data
            .iter()
            .map(|d| match parse_line(d) {
                Line::Data(f) => f,
                other => panic!("{other:?}"),
            })
            .collect();
        Reply { id: 1, ok, fields, data, kmsg: Vec::new() }
    }

    #[test]
    fn coverage_decodes_deltas_across_lines() {
        let reply =
            cov_reply("R 1 ok n=5 overflow=0 on=1", &["D pcs=ffff800080201000,4,1c", "D pcs=ffff800080300000,8"]);
        let cov = decode_coverage(&reply).unwrap();
        assert_eq!(
            cov.pcs,
            [0xffff800080201000, 0xffff800080201004, 0xffff800080201020, 0xffff800080300000, 0xffff800080300008]
        );
        assert!(!cov.overflow);
        let empty = decode_coverage(&cov_reply("R 1 ok n=0 overflow=1 on=1 overflow_ops=compact,write", &[])).unwrap();
        assert_eq!(
            empty,
            Coverage { pcs: Vec::new(), overflow: true, overflow_ops: vec!["compact".into(), "write".into()] }
        );
    }

    #[test]
    fn coverage_refuses_what_is_not_a_sorted_set() {
        for (r, data, want) in [
            ("R 1 ok n=3 overflow=0", &["D pcs=10,4"][..], "n=3 but sent 2"),
            ("R 1 ok overflow=0", &[][..], "without n="),
            ("R 1 ok n=2 overflow=0", &["D pcs=10,0"][..], "zero delta"),
            ("R 1 ok n=2 overflow=0", &["D pcs=10", "D pcs=10"][..], "not increasing"),
            ("R 1 ok n=1 overflow=0", &["D pcs=xyz"][..], "bad pc 'xyz'"),
            ("R 1 ok n=2 overflow=0", &["D pcs=ffffffffffffffff,1"][..], "overflows"),
            ("R 1 ok n=1 overflow=0", &["D pfns=10"][..], "without pcs="),
        ] {
            let e = decode_coverage(&cov_reply(r, data)).unwrap_err();
            assert!(e.contains(want), "{r} {data:?}: {e}");
        }
    }

    #[test]
    fn silence_is_a_timeout() {
        let (host, _guest) = UnixStream::pair().unwrap();
        let mut chan = Channel { stream: host, buf: Vec::new(), next_id: 1, stray: Vec::new() };
        let err = chan.request("ping", "", Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, ChannelError::Timeout { .. }), "{err}");
    }
}
