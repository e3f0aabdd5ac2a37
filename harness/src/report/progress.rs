//! What the CLI shows while it works: a spinner for fetch, build and boot, and a bar over
//! the scenarios, when stdout is a terminal; plain `rmapcheck: ...` lines on stderr
//! otherwise (CI logs, pipes). Either way it writes to stderr only, so `--format json`
//! on stdout stays clean.

use crate::check::outcome::{Outcome, Status};
use crate::image::kernel::FetchProgress;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

pub struct Progress {
    tty: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Progress {
    /// Bars if stdout is a terminal, lines otherwise.
    pub fn new() -> Progress {
        Progress { tty: std::io::stdout().is_terminal(), bar: Mutex::new(None) }
    }

    /// Replace the current bar (finishing the old one) with `next`, or clear it.
    fn set(&self, next: Option<ProgressBar>) {
        let mut bar = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = bar.take() {
            old.finish_and_clear();
        }
        *bar = next;
    }

    fn spinner(&self, msg: String) {
        let mut bar = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        // A running bar (spinner or scenarios) just takes the message.
        match bar.as_ref() {
            Some(b) => b.set_message(msg),
            None => {
                let b = ProgressBar::new_spinner().with_message(msg);
                b.set_style(
                    ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}").expect("valid template"),
                );
                b.enable_steady_tick(Duration::from_millis(100));
                *bar = Some(b);
            }
        }
    }

    /// A line that stays on screen (printed above any bar).
    pub fn line(&self, msg: &str) {
        let bar = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        match bar.as_ref() {
            Some(b) => b.println(format!("rmapcheck: {msg}")),
            None => eprintln!("rmapcheck: {msg}"),
        }
    }

    pub fn boot(&self, key: &str, release: &str) {
        let msg = format!("{key}: booting {release}");
        if self.tty {
            self.spinner(msg);
        } else {
            self.line(&msg);
        }
    }

    pub fn booted(&self, key: &str, secs: f64, console: &std::path::Path) {
        self.line(&format!("{key}: READY in {secs:.2} s (console: {})", console.display()));
    }

    /// Start the bar over `total` scenarios on `key`.
    pub fn start_run(&self, key: &str, total: usize) {
        if !self.tty {
            return;
        }
        let b = ProgressBar::new(total as u64).with_prefix(key.to_string());
        b.set_style(
            ProgressStyle::with_template("{prefix:>8.bold} [{bar:32.cyan/blue}] {pos}/{len} {msg} {elapsed:.dim}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        self.set(Some(b));
    }

    /// One scenario finished: a line for anything but a pass (every result when plain).
    pub fn scenario_done(&self, o: &Outcome) {
        let line = format!("{}: {} {:?} in {} ms", o.kernel, o.scenario, o.status, o.duration_ms);
        if !self.tty {
            self.line(&line);
            return;
        }
        if o.status != Status::Pass {
            self.line(&line);
        }
        if let Some(b) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            b.set_message(o.scenario.clone());
            b.inc(1);
        }
    }

    /// Clear whatever bar is showing.
    pub fn finish(&self) {
        self.set(None);
    }
}

impl FetchProgress for Progress {
    fn step(&self, what: &str) {
        if self.tty {
            self.spinner(what.to_string());
        } else {
            self.line(what);
        }
    }
}
