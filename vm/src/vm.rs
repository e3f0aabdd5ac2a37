//! Layer `vm`: one booted guest. QEMU and its guard, the line protocol with the agent,
//! and saving and restoring a guest at READY. `Agent` is what the layers above need of
//! a guest; the tests' fake agent plays recorded transcripts back.

pub mod agent;
#[cfg(any(test, feature = "test-support"))]
pub mod fake;
pub mod guest;
pub mod protocol;
pub mod qemu;
pub mod qmp;
pub mod transcript;
pub mod vmstate;
