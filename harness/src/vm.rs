//! Layer `vm`: one booted guest. QEMU and its guard, the line protocol with the agent,
//! and saving and restoring a guest at READY.

pub mod guest;
pub mod protocol;
pub mod qemu;
pub mod qmp;
pub mod vmstate;
