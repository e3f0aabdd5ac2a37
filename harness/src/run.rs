//! Layer `run`: plays scenarios on guests. One scenario on one guest, a pool of warm
//! guests, and the benchmark.

pub mod bench;
pub mod pool;
pub mod program;
pub mod replay;
pub mod runner;
pub mod shell;
