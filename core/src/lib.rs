//! rmapcheck's core: pure values and judgements, no I/O but reading a scenario file.
//!
//! - `wire`: the `key=value` words of both wire formats;
//! - `ops`: every agent op, its argument keys and the agent's limits;
//! - `scenario`: scenario files, parsed and validated against a symbolic `World`, and
//!   the typed `Request` each step sends;
//! - `check`: the model and the oracles (`dmesg`, `oracle`, `model`, `contents`,
//!   `expect`), the `Problem`s they find and the `outcome` they fill in.
//!
//! The crate graph keeps it below the machines (`rmapcheck-vm`) and the drivers
//! (`rmapcheck`). See ARCHITECTURE.md.

pub mod check;
pub mod ops;
pub mod scenario;
pub mod wire;
