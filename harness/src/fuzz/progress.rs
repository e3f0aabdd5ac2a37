//! Shows a campaign's events to a person: a live line on a terminal (indicatif), plain
//! lines every few seconds otherwise, and the final summary.

use super::campaign::{Event, Snapshot, Summary};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a plain (non-terminal) progress line is printed.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

pub struct Progress {
    bar: Option<ProgressBar>,
    last_plain: Mutex<Option<Instant>>,
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// One progress line.
pub fn line(s: &Snapshot) -> String {
    format!(
        "[{}] {} runs {} ({:.2}/s), checked ops {} ({:.1} ops/s), unique failures {}",
        s.kernel,
        clock(s.elapsed),
        s.runs,
        s.per_sec(s.runs),
        s.ops,
        s.per_sec(s.ops),
        s.failures
    )
}

impl Progress {
    /// A live line when stderr is a terminal, plain lines otherwise.
    pub fn new() -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("a valid template"));
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Progress { bar, last_plain: Mutex::new(None) }
    }

    fn println(&self, text: &str) {
        match &self.bar {
            Some(b) => b.println(text),
            None => eprintln!("{text}"),
        }
    }

    pub fn event(&self, e: Event) {
        match e {
            Event::Tick(s) => match &self.bar {
                Some(b) => b.set_message(line(&s)),
                None => {
                    let mut last = self.last_plain.lock().unwrap_or_else(|e| e.into_inner());
                    if last.is_none_or(|t| t.elapsed() >= PLAIN_EVERY) {
                        *last = Some(Instant::now());
                        eprintln!("rmapcheck: {}", line(&s));
                    }
                }
            },
            Event::Booted { secs, restored } => {
                let how = if restored { "restored" } else { "booted" };
                self.println(&format!("rmapcheck: fuzz: a guest {how}, READY in {secs:.2} s"))
            }
            Event::FellBack(why) => self.println(&format!("rmapcheck: fuzz: {why}; booting cold")),
            Event::Found { title, run } => {
                self.println(&format!("rmapcheck: run {run} found a new failure, shrinking it: {title}"))
            }
            Event::Saved(f) => {
                let at = f.folder.map(|d| d.display().to_string()).unwrap_or_else(|| "(not saved)".into());
                self.println(&format!("rmapcheck: saved {at}: {}", f.summary));
            }
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Default for Progress {
    fn default() -> Progress {
        Progress::new()
    }
}

/// The end-of-campaign summary, one fact per line.
pub fn summary(s: &Summary) -> String {
    let l = &s.last;
    let mut out = format!(
        "fuzz {} ({}): seed {}, {} jobs, {} runs, {} checked ops in {:.1} s{}\n",
        s.kernel,
        s.release,
        s.seed,
        s.jobs,
        l.runs,
        l.ops,
        l.elapsed.as_secs_f64(),
        if s.stopped { " (stopped early)" } else { "" }
    );
    out.push_str(&format!(
        "throughput: {:.2} runs/s, {:.1} ops/s, {} guest boots\n",
        l.per_sec(l.runs),
        l.per_sec(l.ops),
        l.boots
    ));
    out.push_str(&format!("failures: {} unique\n", s.found.len()));
    for f in &s.found {
        let at = f.folder.as_ref().map(|d| d.display().to_string()).unwrap_or_else(|| "(not saved)".into());
        out.push_str(&format!("  {}x {} -> {at}\n", f.hits, f.title));
    }
    out
}
