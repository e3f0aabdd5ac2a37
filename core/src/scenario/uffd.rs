//! The userfaultfd steps' fields: `uffd` (register a map), `uffd_copy`,
//! `uffd_zeropage`, `uffd_move` and `uffd_wp`. The worker opens one userfaultfd per
//! process with UFFD_FEATURE_SIGBUS, so a fault the registration would hand to a
//! reader delivers SIGBUS instead, which the agent reports as the step's result.

use super::{count, one, p0};
use schemars::JsonSchema;
use serde::Deserialize;

/// What a registration reports to userfaultfd (UFFDIO_REGISTER_MODE_*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UffdMode {
    /// A fault on a page nothing maps.
    Missing,
    /// A write to a page `uffd_wp` protected (arm64 has it from 6.10).
    Wp,
    Both,
}

impl UffdMode {
    pub fn wire(self) -> &'static str {
        match self {
            UffdMode::Missing => "missing",
            UffdMode::Wp => "wp",
            UffdMode::Both => "both",
        }
    }

    pub fn missing(self) -> bool {
        matches!(self, UffdMode::Missing | UffdMode::Both)
    }

    pub fn wp(self) -> bool {
        matches!(self, UffdMode::Wp | UffdMode::Both)
    }
}

/// UFFDIO_REGISTER of a whole private anonymous map.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Uffd {
    #[serde(default = "p0")]
    pub proc: String,
    pub map: String,
    pub mode: UffdMode,
}

/// A range of a registered map: `uffd_zeropage`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UffdRange {
    #[serde(default = "p0")]
    pub proc: String,
    pub map: String,
    #[serde(deserialize_with = "count::one")]
    #[schemars(with = "count::Count")]
    pub page: u64,
    #[serde(default = "one", deserialize_with = "count::one")]
    #[schemars(with = "count::Count")]
    pub pages: u64,
}

/// UFFDIO_WRITEPROTECT of a range of a map registered with `mode: wp` or `both`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UffdWp {
    #[serde(default = "p0")]
    pub proc: String,
    pub map: String,
    #[serde(deserialize_with = "count::one")]
    #[schemars(with = "count::Count")]
    pub page: u64,
    #[serde(default = "one", deserialize_with = "count::one")]
    #[schemars(with = "count::Count")]
    pub pages: u64,
    /// Protect (true) or release (false).
    pub on: bool,
}

/// Where `uffd_move` puts the pages: a registered map of the same process.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UffdTo {
    pub map: String,
    #[serde(deserialize_with = "count::one")]
    #[schemars(with = "count::Count")]
    pub page: u64,
}

/// UFFDIO_MOVE (6.8+) of `pages` pages from `map` to `to`, in one process.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UffdMove {
    #[serde(default = "p0")]
    pub proc: String,
    pub map: String,
    #[serde(deserialize_with = "count::one")]
    #[schemars(with = "count::Count")]
    pub page: u64,
    #[serde(default = "one", deserialize_with = "count::one")]
    #[schemars(with = "count::Count")]
    pub pages: u64,
    pub to: UffdTo,
}
