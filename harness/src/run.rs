//! Layer `run`: plays scenarios on guests. One scenario on one guest, a pool of warm
//! guests, the benchmark, and `--gdb`.

pub mod bench;
pub mod gdb;
pub mod pool;
pub mod program;
pub mod replay;
pub mod runner;
pub mod shell;
