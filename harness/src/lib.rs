//! rmapcheck: boots arm64 kernels in QEMU, plays scenarios in a guest agent, walks the
//! rmap of user pages with a kernel module, and checks what it reports.
//!
//! One folder per layer, in the order of the data flow. A layer uses only layers below
//! it (`cargo test` checks this: `layers.rs`), low to high:
//!
//! - shared infra: `cache`, `exec` (every external command), `wire` (key=value words),
//!   `signal` (the one stop request);
//! - `scenario`: scenario files, parsed and validated;
//! - `check`: pure judgements: `dmesg`, `oracle`, `model`, `expect`, and the `outcome`
//!   they fill in;
//! - `image`: kernels (fetched or built), the agent and module builds, the initramfs;
//! - `vm`: `qemu`, `protocol`, one `guest`, and saved guests (`vmstate`);
//! - `error`: the one error a command ends with, and its exit code;
//! - `report`: text, JSON, JUnit, snapshots, results files, HTML;
//! - `run`: one scenario on one guest (`runner`), warm guests (`pool`), `bench`;
//! - `fuzz`: generated sequences, shrinking, triage, campaigns;
//! - `mutants`: bugs planted in the debug kernel, and how fast rmapcheck finds them;
//! - `bisect`: the commit of a kernel tree that introduced a finding;
//! - `ui`: one event type from every engine, and the reporter that shows it.
//!
//! See ARCHITECTURE.md.

pub use rmapcheck_vm::{cache, check, coverage, exec, image, log, ops, project_root, scenario, signal, vm, wire};

pub mod bisect;
pub mod error;
pub mod fuzz;
pub mod mutants;
pub mod report;
pub mod run;
pub mod ui;

#[cfg(test)]
mod layers;
