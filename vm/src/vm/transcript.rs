//! A guest's requests and replies as JSON lines: what the guest was like when the
//! recording started, then one line per request with the agent's reply. A real run
//! records one (`RMAPCHECK_RECORD=dir`), and the fake agent plays it back in host-side
//! tests, so those tests see what a real kernel answered.

use crate::vm::guest::{Books, Guest, Info};
use crate::vm::protocol::Reply;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `RMAPCHECK_RECORD`: the folder where every scenario a pooled guest plays is recorded,
/// as `<scenario>@<kernel>.jsonl`.
pub fn record_dir() -> Option<PathBuf> {
    std::env::var_os("RMAPCHECK_RECORD").filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The guest's state when the recording started: what a fake must start from to be
/// sent the same requests.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Start {
    pub info: Info,
    /// The id the next request gets.
    pub next_id: u64,
    #[serde(flatten)]
    pub books: Books,
    pub coverage: bool,
}

/// One request and the agent's reply.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Exchange {
    pub op: String,
    pub args: String,
    pub reply: Reply,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    pub start: Start,
    pub exchanges: Vec<Exchange>,
}

impl Transcript {
    pub fn parse(text: &str) -> Result<Transcript, String> {
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let (_, first) = lines.next().ok_or("an empty transcript")?;
        let start = serde_json::from_str(first).map_err(|e| format!("line 1: {e}"))?;
        let exchanges = lines
            .map(|(n, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", n + 1)))
            .collect::<Result<_, _>>()?;
        Ok(Transcript { start, exchanges })
    }

    pub fn load(path: &Path) -> Result<Transcript, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Transcript::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Record every request `guest` sends from now on, with its reply, in a transcript at
/// `path`, until `stop`.
pub fn record(guest: &mut Guest, path: &Path) -> std::io::Result<()> {
    let start = Start {
        info: guest.info.clone(),
        next_id: guest.requests_sent() + 1,
        books: guest.books.clone(),
        coverage: guest.coverage,
    };
    let mut recorder = Recorder::create(path, &start)?;
    guest.on_reply(Some(Box::new(move |op, args, reply| recorder.exchange(op, args, reply))));
    Ok(())
}

pub fn stop(guest: &mut Guest) {
    guest.on_reply(None);
}

/// Writes a transcript as the requests go.
pub struct Recorder {
    file: std::io::BufWriter<std::fs::File>,
    path: PathBuf,
}

impl Recorder {
    pub fn create(path: &Path, start: &Start) -> std::io::Result<Recorder> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut r = Recorder { file: std::io::BufWriter::new(std::fs::File::create(path)?), path: path.to_path_buf() };
        r.line(start);
        Ok(r)
    }

    pub fn exchange(&mut self, op: &str, args: &str, reply: &Reply) {
        let e = Exchange { op: op.to_string(), args: args.to_string(), reply: reply.clone() };
        self.line(&e);
    }

    /// A recording that cannot be written is reported, never a reason to fail the run.
    fn line(&mut self, value: &impl serde::Serialize) {
        let written = serde_json::to_writer(&mut self.file, value)
            .map_err(std::io::Error::from)
            .and_then(|_| self.file.write_all(b"\n"))
            .and_then(|_| self.file.flush());
        if let Err(e) = written {
            tracing::warn!(path = %self.path.display(), "cannot record a request: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transcript_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let start = Start {
            info: Info { key: "6.12".into(), release: "r".into(), page_size: 4096, ..Info::default() },
            next_id: 7,
            books: Books { fresh: true, taint_baseline: Some(4096), collecting: false },
            coverage: false,
        };
        let reply = Reply {
            id: 7,
            ok: true,
            fields: [("a".to_string(), "1".to_string())].into(),
            data: vec![[("d".to_string(), "x y".to_string())].into()],
            kmsg: vec!["6,12,100;rmapcheck: req=7 end".into()],
        };
        let mut r = Recorder::create(&path, &start).unwrap();
        r.exchange("ping", "", &reply);
        drop(r);
        let t = Transcript::load(&path).unwrap();
        assert_eq!(t.start, start);
        assert_eq!(t.exchanges, [Exchange { op: "ping".into(), args: String::new(), reply }]);
    }
}
