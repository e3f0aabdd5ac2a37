//! Fuzz mode: random but valid scenarios, played back to back on persistent guests,
//! every step checked by the oracle (O1-O3), the model (O4) and page contents (O5); each new
//! failure is shrunk to a minimal scenario that `rmapcheck run` replays.
//!
//! - `generate`: seeded sequences over every step kind;
//! - `shrink`: delta debugging, re-running each candidate through a predicate;
//! - `triage`: failure titles for deduplication, and the folder each failure gets;
//! - `mutate`: mutants of corpus entries, repaired and validated;
//! - `corpus`: runs that reached new kernel coverage, kept as replayable YAML;
//! - `schedule`: the next input (seed, mutant or fresh) and `--shard I/N`;
//! - `merge`: `rmapcheck corpus merge` of corpora and findings folders;
//! - `campaign`: workers, guests, limits and stopping;
//! - `summary`: the campaign as text: its progress line and its summary.
//! - `sweep`: `rmapcheck sweep`, every sequence of up to `--depth` steps over a finite
//!   vocabulary, played as a listed campaign, sharded and resumable.

pub mod campaign;
pub mod corpus;
pub mod generate;
pub mod merge;
pub mod mutate;
pub mod schedule;
pub mod shrink;
pub mod summary;
pub mod sweep;
pub mod triage;

pub use campaign::{Event, Limit, Options, Summary};
pub use generate::{GenConfig, Weights};

use crate::image::kernel::Kernel;

/// The kernel a campaign runs on when none is named. Fuzzing wants the debug kernel:
/// DEBUG_VM and PAGE_TABLE_CHECK turn silent damage into splats.
pub const DEFAULT_KERNEL: &str = "6.12-debug";

/// `--coverage`: whether runs collect KCOV coverage (kernel PCs) to guide the campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Coverage {
    // On kernels built with CONFIG_KCOV (the source-built debug kernels); elsewhere the
    // campaign is unguided and says so. (Plain comments: `--help` lists no values.)
    Auto,
    On,
    Off,
}

impl Coverage {
    /// Whether a campaign on `kernel` collects coverage, and the line that says why.
    pub fn decide(self, kernel: &Kernel) -> (bool, &'static str) {
        let kcov = kernel.has_kcov();
        let on = match self {
            Coverage::On => true,
            Coverage::Off => false,
            Coverage::Auto => kcov,
        };
        let why = match (on, kcov) {
            (true, true) => "on (KCOV over what the kernel instruments)",
            (true, false) => "asked for, but the kernel's config has no CONFIG_KCOV; runs will tell",
            (false, true) => "off (--coverage off)",
            (false, false) => "off: the kernel has no KCOV, so the campaign is unguided",
        };
        (on, why)
    }
}

/// Parse `10m`, `90s`, `2h` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = num.parse().map_err(|_| format!("'{s}' is not a duration like 90s, 10m or 2h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("'{s}': unknown unit '{unit}' (use s, m or h)")),
    };
    if secs == 0 {
        return Err("a duration must be more than 0".into());
    }
    Ok(std::time::Duration::from_secs(secs))
}

/// Parse `name=value` (a module parameter).
pub fn parse_param(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("'{s}' is not name=value"))?;
    let ok = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok || v.is_empty() || v.contains(char::is_whitespace) {
        return Err(format!("'{s}' is not name=value"));
    }
    Ok((k.to_string(), v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_and_params_parse() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("m").is_err());
        assert_eq!(parse_param("misreport=1"), Ok(("misreport".into(), "1".into())));
        assert!(parse_param("misreport").is_err());
        assert!(parse_param("../x=1").is_err());
    }
}
