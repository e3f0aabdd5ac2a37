//! The one error a command ends with, and its exit code (README "Exit codes", as
//! nextest-metadata numbers its own). Each layer fails with its own typed error where the
//! failure is known (`exec::Error`, `PinError`, `Fault`, a scenario's spanned errors);
//! this is the one place those become exit codes. An error nothing here recognises is a
//! harness bug, wherever it surfaces.

use crate::exec;
use crate::image::kernels::PinError;
use crate::vm::guest::Fault;

/// What each exit code means; README.md ("Exit codes") says the same.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success: every scenario passed, the fuzzer found nothing new
  1  a scenario failed or errored, or the fuzzer found a failure
  2  bad usage or bad input: arguments, scenario files, the manifest, results files
  3  the environment failed: a missing tool, the network, the cache, a kernel or
     module build, a guest that does not boot
  4  a harness bug (a panic, or an error rmapcheck did not expect)
  128+N  stopped by signal N (130 for Ctrl-C) in run, fuzz, mutants or bisect, with
     what was done so far saved";

/// The exit codes, named.
pub mod code {
    pub const SUCCESS: u8 = 0;
    pub const FINDINGS: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
    pub const ENVIRONMENT: u8 = 3;
    pub const BUG: u8 = 4;
}

/// How a command failed. Each variant keeps the error chain it was built from, so
/// `{:#}` shows every cause.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A scenario, argument, manifest or file the user must fix (exit 2).
    #[error(transparent)]
    BadInput(anyhow::Error),
    /// A tool, a download, a build, the cache or a guest failed (exit 3).
    #[error(transparent)]
    Environment(anyhow::Error),
    /// The run worked and found failures: the failing scenarios, the fuzzer's findings
    /// (exit 1).
    #[error("{0}")]
    Findings(String),
    /// Stopped by a signal (exit 128 + the signal); `saved` says what was kept.
    #[error("interrupted by signal {signal}; {saved}")]
    Interrupted { signal: i32, saved: String },
    /// rmapcheck itself is wrong (exit 4).
    #[error(transparent)]
    Bug(anyhow::Error),
}

impl Error {
    /// Bad input that is only a message.
    pub fn bad_input(message: impl std::fmt::Display) -> Error {
        Error::BadInput(anyhow::anyhow!("{message}"))
    }

    /// Bad input found by `cause`, whose chain stays.
    pub fn bad(cause: impl Into<anyhow::Error>) -> Error {
        Error::BadInput(cause.into())
    }

    /// A failure where the environment is at fault (fetching, building, booting), unless
    /// a typed `Error` inside says otherwise (a bad commit given to bisect).
    pub fn environment(cause: impl Into<anyhow::Error>) -> Error {
        match cause.into().downcast::<Error>() {
            Ok(typed) => typed,
            Err(cause) => Error::Environment(cause),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::BadInput(_) => code::BAD_INPUT,
            Error::Environment(_) => code::ENVIRONMENT,
            Error::Findings(_) => code::FINDINGS,
            Error::Interrupted { signal, .. } => crate::signal::exit_status(*signal),
            Error::Bug(_) => code::BUG,
        }
    }

    /// The line for stderr: bad input and findings as they are, the rest as errors.
    pub fn message(&self) -> String {
        match self {
            Error::BadInput(e) => format!("{e:#}"),
            Error::Findings(_) | Error::Interrupted { .. } => self.to_string(),
            Error::Environment(e) => format!("error: {e:#}"),
            Error::Bug(e) => {
                format!("error: {e:#}\nrmapcheck: this is a bug in rmapcheck; please report it with the message above")
            }
        }
    }
}

/// An error that surfaced untyped: an `Error` inside it keeps its kind; a failed
/// command, a kernel pin, a guest fault or an I/O error is the environment's; anything
/// else is a harness bug.
impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Error {
        let e = match e.downcast::<Error>() {
            Ok(typed) => return typed,
            Err(e) => e,
        };
        let environment = e
            .chain()
            .any(|c| c.is::<exec::Error>() || c.is::<PinError>() || c.is::<Fault>() || c.is::<std::io::Error>());
        if environment {
            Error::Environment(e)
        } else {
            Error::Bug(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn bad_input_keeps_its_chain() {
        let cause = std::fs::read("/nonexistent/rmapcheck").context("reading the manifest").unwrap_err();
        let e = Error::bad(cause);
        assert_eq!(e.exit_code(), 2);
        let message = e.message();
        assert!(message.starts_with("reading the manifest: "), "{message}");
        assert!(message.contains("No such file"), "{message}");
    }

    #[test]
    fn an_untyped_error_is_classified_by_its_chain() {
        let tool = exec::Error::Missing { tool: "gcc".into(), hint: "install it".into() };
        let e = Error::from(anyhow::Error::new(tool).context("building the agent"));
        assert_eq!(e.exit_code(), 3);
        assert!(e.message().contains("building the agent: gcc is missing"), "{}", e.message());
        let fault = Fault::Protocol("no reply".into());
        assert_eq!(Error::from(anyhow::Error::new(fault)).exit_code(), 3);
        let io = std::io::Error::other("disk full");
        assert_eq!(Error::from(anyhow::Error::new(io).context("saving")).exit_code(), 3);
        let bug = Error::from(anyhow::anyhow!("worker panicked"));
        assert_eq!(bug.exit_code(), 4);
        assert!(bug.message().contains("a bug in rmapcheck"), "{}", bug.message());
    }

    #[test]
    fn a_typed_error_keeps_its_kind_through_anyhow() {
        let e = Error::from(anyhow::Error::new(Error::bad_input("--kernel 9.9: unknown")));
        assert_eq!(e.exit_code(), 2);
        let stopped = Error::Interrupted { signal: 2, saved: "3 results saved".into() };
        assert_eq!(Error::from(anyhow::Error::new(stopped)).exit_code(), 130);
        assert_eq!(Error::Findings("1 of 2 scenarios failed".into()).exit_code(), 1);
    }
}
