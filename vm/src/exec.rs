//! Every external command that runs to completion goes through here; QEMU, which runs
//! beside the harness, has its own guard in `vm::qemu`. A failure always names the
//! command line and shows the tail of what the command printed.

use anyhow::Result;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Lines of output a failure keeps: enough for a compiler error, short enough to read.
const TAIL: usize = 30;

/// A command that could not start or failed. It is the environment's fault, not the
/// input's, so the CLI exits 3 on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: cannot run `{line}`: {source}")]
    Spawn { what: String, line: String, source: std::io::Error },
    #[error("{what} failed ({status}): `{line}`\n{tail}")]
    Failed { what: String, line: String, status: String, tail: String },
    #[error("{tool} is missing; {hint}")]
    Missing { tool: String, hint: String },
}

/// A command line to run, built like `std::process::Command`.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    dir: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        Cmd { program: program.as_ref().to_owned(), args: Vec::new(), dir: None, env: Vec::new() }
    }

    /// `program` run through `prefix` (e.g. a user namespace), or directly when empty.
    pub fn prefixed(prefix: &[&str], program: &str) -> Cmd {
        match prefix.split_first() {
            Some((first, rest)) => {
                let mut cmd = Cmd::new(first);
                cmd.args(rest).arg(program);
                cmd
            }
            None => Cmd::new(program),
        }
    }

    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Cmd {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&mut self, args: I) -> &mut Cmd {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn dir(&mut self, dir: impl AsRef<Path>) -> &mut Cmd {
        self.dir = Some(dir.as_ref().to_path_buf());
        self
    }

    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Cmd {
        self.env.push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// The command line as a shell would show it (for errors; not quoted for a shell).
    pub fn line(&self) -> String {
        std::iter::once(&self.program).chain(&self.args).map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
    }

    fn expression(&self) -> duct::Expression {
        let mut e = duct::cmd(&self.program, &self.args).stdin_null().unchecked();
        if let Some(dir) = &self.dir {
            e = e.dir(dir);
        }
        for (k, v) in &self.env {
            e = e.env(k, v);
        }
        e
    }

    fn spawn_error(&self, what: &str, source: std::io::Error) -> anyhow::Error {
        Error::Spawn { what: what.to_string(), line: self.line(), source }.into()
    }

    fn check(&self, what: &str, status: std::process::ExitStatus, output: &[&[u8]]) -> Result<()> {
        if status.success() {
            return Ok(());
        }
        let text: Vec<String> = output.iter().map(|o| String::from_utf8_lossy(o).into_owned()).collect();
        let lines: Vec<&str> = text.iter().flat_map(|t| t.lines()).collect();
        let tail = lines[lines.len().saturating_sub(TAIL)..].join("\n");
        Err(Error::Failed { what: what.to_string(), line: self.line(), status: status.to_string(), tail }.into())
    }

    /// Run to completion and return its stdout. `what` says what it was for.
    pub fn run(&self, what: &str) -> Result<String> {
        let out = self.expression().stdout_capture().stderr_capture().run().map_err(|e| self.spawn_error(what, e))?;
        self.check(what, out.status, &[&out.stdout, &out.stderr])?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Run to completion, handing each line of stdout to `line` as it comes (for
    /// progress on long builds). A failure shows the tail of stderr.
    pub fn run_lines(&self, what: &str, mut line: impl FnMut(&str)) -> Result<()> {
        let reader = self.expression().stderr_capture().reader().map_err(|e| self.spawn_error(what, e))?;
        let mut lines = BufReader::new(&reader);
        let mut buf = String::new();
        loop {
            buf.clear();
            match lines.read_line(&mut buf) {
                Ok(0) => break,
                Ok(_) => line(buf.trim_end_matches('\n')),
                Err(e) => return Err(self.spawn_error(what, e)),
            }
        }
        let out = reader.try_wait().map_err(|e| self.spawn_error(what, e))?.cloned();
        let out = out.ok_or_else(|| self.spawn_error(what, std::io::Error::other("no exit status after EOF")))?;
        self.check(what, out.status, &[&out.stderr])
    }
}

/// Where `program` is on PATH: the one tool lookup.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(program)).find(|p| p.is_file()))
}

pub fn have(program: &str) -> bool {
    which(program).is_some()
}

/// `Ok` when `program` is on PATH, else an error saying how to get it.
pub fn require(program: &str, hint: &str) -> Result<()> {
    if have(program) {
        return Ok(());
    }
    Err(Error::Missing { tool: program.to_string(), hint: hint.to_string() }.into())
}

/// Unpack a Debian package into `dir` (`dpkg-deb -x`), through `prefix` as in
/// [`Cmd::prefixed`].
pub fn extract_deb(deb: &Path, dir: &Path, prefix: &[&str]) -> Result<()> {
    Cmd::prefixed(prefix, "dpkg-deb").arg("-x").arg(deb).arg(dir).run(&format!("extracting {}", deb.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_the_command_line_and_shows_stderr() {
        let e = Cmd::new("sh").args(["-c", "echo out; echo oops >&2; exit 3"]).run("testing").unwrap_err();
        let text = format!("{e:#}");
        assert!(text.contains("`sh -c echo out; echo oops >&2; exit 3`"), "{text}");
        assert!(text.contains("oops") && text.contains("out") && text.contains("testing failed"), "{text}");
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let e = Cmd::new("rmapcheck-no-such-tool").run("looking").unwrap_err();
        assert!(matches!(e.downcast_ref::<Error>(), Some(Error::Spawn { .. })), "{e:#}");
        assert!(!have("rmapcheck-no-such-tool"));
    }

    #[test]
    fn run_lines_streams_stdout_and_keeps_stderr_for_errors() {
        let mut seen = Vec::new();
        let cmd = Cmd::new("sh").args(["-c", "echo a; echo b; echo bad >&2; exit 1"]).clone();
        let e = cmd.run_lines("streaming", |l| seen.push(l.to_string())).unwrap_err();
        assert_eq!(seen, ["a", "b"]);
        assert!(format!("{e:#}").contains("bad"), "{e:#}");
        Cmd::new("true").run_lines("ok", |_| {}).unwrap();
    }
}
