//! The one stop request. The first SIGINT, SIGTERM or SIGHUP sets it; `run`, `fuzz`,
//! `mutants` and `bisect` read it between units of work, stop taking more, save what they
//! have and exit with 128 + the signal. After a grace period, or at once on a second
//! signal, the process quits anyway: the hooks registered with [`on_quit`] run (the QEMU
//! guard kills every live guest there) and it exits with 128 + the signal.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

/// How long a clean stop may take before the process quits anyway.
pub const GRACE: Duration = Duration::from_millis(1500);

/// The signal that asked this process to stop, or 0.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// What must happen before the process quits on a signal.
static ON_QUIT: Mutex<Vec<fn()>> = Mutex::new(Vec::new());

/// The signal (SIGINT, SIGTERM or SIGHUP) that asked the harness to stop, if one did.
pub fn requested() -> Option<i32> {
    Some(SIGNAL.load(Ordering::SeqCst)).filter(|s| *s != 0)
}

/// The exit status of a process stopped by `signal`, as a shell reports it.
pub fn exit_status(signal: i32) -> u8 {
    128u8.saturating_add(signal.clamp(0, 127) as u8)
}

/// Run `hook` before the process quits on a signal (registered once per hook).
pub fn on_quit(hook: fn()) {
    let mut hooks = ON_QUIT.lock().unwrap_or_else(|e| e.into_inner());
    if !hooks.iter().any(|h| std::ptr::fn_addr_eq(*h, hook)) {
        hooks.push(hook);
    }
}

/// Catch SIGINT, SIGTERM and SIGHUP: the first sets [`requested`]; after `grace`, or at a
/// second signal, the process quits (a zero `grace` quits at the first). `say` tells
/// the user. Installed once per process; later calls do nothing.
pub fn install(grace: Duration, say: fn(String)) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return;
        };
        std::thread::spawn(move || {
            for sig in signals.forever() {
                if SIGNAL.swap(sig, Ordering::SeqCst) == 0 && !grace.is_zero() {
                    say(format!("stopping (signal {sig}); send it again to quit now"));
                    // Nothing may outlive the signal by more than the grace period,
                    // whatever the loop is doing.
                    std::thread::spawn(move || {
                        std::thread::sleep(grace);
                        quit(sig, say);
                    });
                } else {
                    quit(sig, say);
                }
            }
        });
    });
}

fn quit(sig: i32, say: fn(String)) -> ! {
    let hooks = ON_QUIT.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for hook in hooks {
        hook();
    }
    say(format!("interrupted by signal {sig}; every guest was killed"));
    std::process::exit(exit_status(sig).into());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_exits_as_a_shell_reports_it() {
        assert_eq!(exit_status(2), 130);
        assert_eq!(exit_status(15), 143);
        assert_eq!(exit_status(1), 129);
    }

    #[test]
    fn a_hook_is_registered_once() {
        fn hook() {}
        on_quit(hook);
        on_quit(hook);
        let hooks = ON_QUIT.lock().unwrap();
        assert_eq!(hooks.iter().filter(|h| std::ptr::fn_addr_eq(**h, hook as fn())).count(), 1);
    }
}
