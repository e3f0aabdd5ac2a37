//! A minimal QMP client: enough to save a running guest to a file with `migrate`.
//!
//! QMP is line-delimited JSON on a Unix socket. The server greets, the client enters
//! command mode with `qmp_capabilities`, then each command gets one `return` or `error`
//! object; asynchronous `event` objects may come in between and are skipped.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connect to the QMP socket at `path` and enter command mode.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Qmp> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(e).with_context(|| format!("connecting to QMP at {}", path.display())),
            }
        };
        stream.set_read_timeout(Some(timeout))?;
        let writer = stream.try_clone()?;
        let mut qmp = Qmp { reader: BufReader::new(stream), writer };
        let greeting = qmp.read_object().context("reading the QMP greeting")?;
        if greeting.get("QMP").is_none() {
            bail!("not a QMP greeting: {greeting}");
        }
        qmp.execute("qmp_capabilities", json!({}))?;
        Ok(qmp)
    }

    fn read_object(&mut self) -> Result<Value> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            bail!("QMP closed the connection");
        }
        serde_json::from_str(&line).with_context(|| format!("QMP sent invalid JSON: {}", line.trim()))
    }

    /// Run one command and return its `return` value.
    pub fn execute(&mut self, command: &str, arguments: Value) -> Result<Value> {
        let mut msg = json!({ "execute": command });
        if arguments.as_object().is_some_and(|a| !a.is_empty()) {
            msg["arguments"] = arguments;
        }
        writeln!(self.writer, "{msg}").with_context(|| format!("sending QMP {command}"))?;
        loop {
            let obj = self.read_object().with_context(|| format!("waiting for QMP {command}"))?;
            if let Some(ret) = obj.get("return") {
                return Ok(ret.clone());
            }
            if let Some(err) = obj.get("error") {
                bail!("QMP {command} failed: {}", err.get("desc").unwrap_or(err));
            }
            // An event; not ours.
        }
    }

    /// Save the whole guest to `state` with `migrate` to `exec:cat > state`, and wait
    /// until the migration completed. The source VM is left paused.
    pub fn save_to(&mut self, state: &Path, timeout: Duration) -> Result<()> {
        let uri = format!("exec:cat > '{}'", state.display());
        if state.to_string_lossy().contains('\'') {
            bail!("state path {} holds a quote", state.display());
        }
        self.execute("migrate", json!({ "uri": uri }))?;
        let deadline = Instant::now() + timeout;
        loop {
            let info = self.execute("query-migrate", json!({}))?;
            match info.get("status").and_then(Value::as_str) {
                Some("completed") => return Ok(()),
                Some(s @ ("failed" | "cancelled")) => {
                    bail!("migration {s}: {}", info.get("error-desc").and_then(Value::as_str).unwrap_or("no reason"))
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                bail!("migration did not complete within {:.1} s: {info}", timeout.as_secs_f64());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
