//! A campaign as text: its progress line and its end-of-campaign summary. Pure; the
//! `ui` reporter decides where they go.

use super::campaign::{Snapshot, Summary};
use crate::check::triggers::CLASSES;
use std::time::Duration;

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// One progress line.
pub fn line(s: &Snapshot) -> String {
    format!(
        "[{}] {} runs {} ({:.2}/s), checked ops {} ({:.1} ops/s), unique failures {}{}",
        s.kernel,
        clock(s.elapsed),
        s.runs,
        s.per_sec(s.runs),
        s.ops,
        s.per_sec(s.ops),
        s.failures,
        if s.pcs > 0 { format!(", corpus {} ({} PCs)", s.corpus, s.pcs) } else { String::new() }
    )
}

/// A campaign's first two lines: what ran (`fuzz`, `seed 7`) and how fast.
pub fn head(s: &Summary, command: &str, what: &str) -> String {
    let l = &s.last;
    format!(
        "{command} {} ({}): {what}, {} jobs, {} runs, {} checked ops in {:.1} s{}\n\
         throughput: {:.2} runs/s, {:.1} ops/s, {} guest boots\n",
        s.kernel,
        s.release,
        s.jobs,
        l.runs,
        l.ops,
        l.elapsed.as_secs_f64(),
        if s.stopped { " (stopped early)" } else { "" },
        l.per_sec(l.runs),
        l.per_sec(l.ops),
        l.boots
    )
}

/// The end-of-campaign summary, one fact per line.
pub fn summary(s: &Summary) -> String {
    let l = &s.last;
    let mut out = head(s, "fuzz", &format!("seed {}", s.seed));
    if s.shard.count > 1 {
        out.push_str(&format!("shard {} (run numbers {}, {}, ...)\n", s.shard, s.shard.run(0), s.shard.run(1)));
    }
    out.push_str(&match s.guided {
        Some(true) => format!(
            "{}: corpus {} entries ({} new, {} kernel PCs) in {}\n",
            if s.unguided { "unguided (--unguided), coverage recorded" } else { "coverage-guided" },
            s.corpus,
            s.corpus_new,
            l.pcs,
            s.corpus_dir.display()
        ),
        Some(false) => "unguided: the kernel reports no coverage (no KCOV)\n".to_string(),
        None => String::new(),
    });
    out.push_str(&format!("failures: {} unique\n", s.found.len()));
    for f in &s.found {
        let at = f.folder.as_ref().map(|d| d.display().to_string()).unwrap_or_else(|| "(not saved)".into());
        out.push_str(&format!("  {}x {} -> {at}\n", f.hits, f.title));
    }
    for (finding, runs) in &s.known {
        out.push_str(&format!(
            "known kernel bug {finding} (docs/FINDINGS.md): {runs} runs failed as it; not counted\n"
        ));
    }
    let hit = CLASSES.iter().filter(|c| s.triggers.get(**c).is_some_and(|n| *n > 0)).count();
    out.push_str(&format!("trigger classes hit: {hit} of {} (runs that reached each)\n", CLASSES.len()));
    for class in CLASSES {
        out.push_str(&format!("  {class}: {} runs\n", s.triggers.get(class).copied().unwrap_or(0)));
    }
    out
}
