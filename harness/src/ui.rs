//! What a person or a program sees while rmapcheck works. Every engine (kernel
//! preparation, the guest loop, `run`, a fuzz campaign) reports through one [`Event`]
//! type, and one [`Reporter`] shows it: bars and a live line when stderr is a terminal,
//! plain lines otherwise, or one JSON object per line (`--progress json`). It writes to
//! stderr only, so `--format json` on stdout stays clean.
//!
//! Architecture invariant: the library below this layer prints nothing; it emits events.

pub mod shell;

use crate::check::outcome::Outcome;
use crate::fuzz::campaign::{self, Snapshot};
use crate::fuzz::summary;
use crate::image::kernel::FetchProgress;
use crate::mutants;
use crate::run::pool;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Everything the engines report while they work.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "event", content = "data")]
pub enum Event {
    /// One step of preparing a kernel: fetching, building, packing.
    Prepare(String),
    /// A kernel could not be prepared; its scenarios are errors.
    Unprepared { key: String, why: String },
    /// The guest loop: boots, restores that fell back, retired guests.
    Guest(pool::Event),
    /// `run` starts the scenarios of one kernel.
    Started { key: String, scenarios: usize },
    /// One scenario finished.
    Scenario(Box<Outcome>),
    /// A fuzz campaign.
    Fuzz(campaign::Event),
    /// `rmapcheck mutants`.
    Mutants(mutants::Event),
    /// A line worth a person's attention that fits no event above.
    Note(String),
}

/// How a [`Reporter`] shows events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Style {
    /// Bars when stderr is a terminal, plain lines otherwise.
    Auto,
    Plain,
    /// One JSON object per event.
    Json,
}

/// How often a plain fuzz progress line is printed.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

pub struct Reporter {
    style: Style,
    bar: Mutex<Option<ProgressBar>>,
    last_plain: Mutex<Option<Instant>>,
}

impl Default for Reporter {
    fn default() -> Self {
        Reporter::new(Style::Auto)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Reporter {
    pub fn new(style: Style) -> Reporter {
        let style = match style {
            Style::Auto if !std::io::stderr().is_terminal() => Style::Plain,
            s => s,
        };
        Reporter { style, bar: Mutex::new(None), last_plain: Mutex::new(None) }
    }

    fn bars(&self) -> bool {
        self.style == Style::Auto
    }

    /// Show one event.
    pub fn event(&self, e: Event) {
        if self.style == Style::Json {
            if let Ok(line) = serde_json::to_string(&e) {
                self.line_raw(&line);
            }
            return;
        }
        match e {
            Event::Prepare(what) => self.status(what),
            Event::Unprepared { key, why } => {
                self.set(None);
                self.line(&format!("{key}: cannot prepare the kernel: {why}"));
            }
            Event::Guest(g) => self.guest(g),
            Event::Started { key, scenarios } => self.started(&key, scenarios),
            Event::Scenario(o) => self.scenario(&o),
            Event::Fuzz(f) => self.fuzz(f),
            Event::Mutants(m) => self.mutants(m),
            Event::Note(text) => self.line(&text),
        }
    }

    /// Clear whatever bar is showing.
    pub fn finish(&self) {
        self.set(None);
    }

    /// A line that stays on screen (printed above any bar).
    fn line(&self, msg: &str) {
        self.line_raw(&format!("rmapcheck: {msg}"));
    }

    fn line_raw(&self, text: &str) {
        match lock(&self.bar).as_ref() {
            Some(b) => b.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// Replace the current bar (finishing the old one) with `next`, or clear it.
    fn set(&self, next: Option<ProgressBar>) {
        let mut bar = lock(&self.bar);
        if let Some(old) = bar.take() {
            old.finish_and_clear();
        }
        *bar = next;
    }

    /// Work in progress: a spinner's message on a terminal, a line otherwise.
    fn status(&self, msg: String) {
        if !self.bars() {
            return self.line(&msg);
        }
        let mut bar = lock(&self.bar);
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

    fn guest(&self, e: pool::Event) {
        match e {
            pool::Event::Booting { key, release } => self.status(format!("{key}: booting {release}")),
            pool::Event::Booted { key, secs, restored, console } => {
                let how = if restored { "restored" } else { "booted" };
                self.line(&format!("{key}: {how}, READY in {secs:.2} s (console: {})", console.display()))
            }
            pool::Event::FellBack { key, why } => self.line(&format!("{key}: {why}; booting cold")),
            pool::Event::Retired { key, why, workdir } => {
                self.line(&format!("{key}: guest retired ({why}); its logs: {}", workdir.display()))
            }
        }
    }

    fn started(&self, key: &str, total: usize) {
        if !self.bars() {
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
    fn scenario(&self, o: &Outcome) {
        let line = format!("{}: {} {:?} in {} ms", o.kernel, o.scenario, o.status, o.duration_ms);
        if !self.bars() || !o.status.is_ok() {
            self.line(&line);
        }
        if let Some(b) = lock(&self.bar).as_ref() {
            b.set_message(o.scenario.clone());
            b.inc(1);
        }
    }

    fn fuzz(&self, e: campaign::Event) {
        match e {
            campaign::Event::Tick(s) => self.tick(&s),
            campaign::Event::Guest(g) => self.guest(g),
            campaign::Event::Found { title, run } => {
                self.line(&format!("run {run} found a new failure, shrinking it: {title}"))
            }
            campaign::Event::Saved(f) => {
                let at = f.folder.map(|d| d.display().to_string()).unwrap_or_else(|| "(not saved)".into());
                self.line(&format!("saved {at}: {}", f.summary));
            }
            campaign::Event::NotSaved { title, why } => self.line(&format!("cannot save the failure '{title}': {why}")),
            campaign::Event::Note(n) => self.line(&n),
            campaign::Event::Finished { .. } => {}
        }
    }

    fn mutants(&self, e: mutants::Event) {
        match e {
            mutants::Event::Building { name } => self.line(&format!("mutant {name}: patching and building")),
            mutants::Event::Searching { name, how } => self.line(&format!("mutant {name}: {how}")),
            mutants::Event::Judged(v) => {
                let verdict = match (&v.error, v.secs_to_find()) {
                    (Some(e), _) => format!("not judged: {e}"),
                    (None, Some(secs)) => format!("caught in {secs:.1} s"),
                    (None, None) => "missed".to_string(),
                };
                self.line(&format!("mutant {}: {verdict}", v.name))
            }
            mutants::Event::Guest(g) => self.guest(g),
            mutants::Event::Fuzz(f) => self.fuzz(f),
        }
    }

    /// The campaign's live line on a terminal, or a plain line every few seconds.
    fn tick(&self, s: &Snapshot) {
        if self.bars() {
            return self.status(summary::line(s));
        }
        let mut last = lock(&self.last_plain);
        if last.is_none_or(|t| t.elapsed() >= PLAIN_EVERY) {
            *last = Some(Instant::now());
            self.line(&summary::line(s));
        }
    }
}

impl FetchProgress for Reporter {
    fn step(&self, what: &str) {
        self.event(Event::Prepare(what.to_string()));
    }

    fn note(&self, what: &str) {
        self.event(Event::Note(what.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_events_name_their_kind_and_carry_their_data() {
        let e = Event::Guest(pool::Event::FellBack { key: "6.12".into(), why: "no state".into() });
        let v: serde_json::Value = serde_json::to_value(&e).unwrap();
        assert_eq!(v["event"], "guest");
        assert_eq!(v["data"]["fell_back"]["key"], "6.12");
        let v = serde_json::to_value(Event::Note("hello".into())).unwrap();
        assert_eq!((v["event"].as_str(), v["data"].as_str()), (Some("note"), Some("hello")));
    }
}
