//! Layer `check`: pure judgements over values, no I/O. The kernel log parser, the oracle
//! (O1-O3), the model (O4), page contents (O5), the scenario's `expect:` block, and the
//! [`outcome::Outcome`] they fill in.

pub mod contents;
pub mod dmesg;
pub mod expect;
pub mod model;
pub mod oracle;
pub mod outcome;
pub mod swap;
pub mod triggers;
