//! The userfaultfd steps' rules: what may be registered, and which other steps a
//! registration rules out because they would fault in the kernel (GUP, populate), where
//! UFFD_FEATURE_SIGBUS fails them with EFAULT, or drop it (a moved VMA loses its
//! registration without UFFD_FEATURE_EVENT_REMAP).

use super::{Step, World};
use crate::scenario::UffdMode;

type Out = Vec<(&'static str, String)>;

impl World {
    /// The registration of a map, if any.
    pub fn uffd_mode(&self, proc: &str, map: &str) -> Option<UffdMode> {
        self.live.get(proc)?.get(map)?.uffd
    }

    /// Why a step cannot touch a registered map.
    pub(super) fn uffd_refusal(&self, step: &Step, out: &mut Out) {
        let registered = |map: &str| step.proc().is_some_and(|p| self.uffd_mode(p, map).is_some());
        let why = match step {
            Step::Mremap(x) if registered(&x.map) => "mremap moves a registered VMA, which then loses its registration",
            Step::Pin(x) if registered(&x.map) => "a pin faults in the kernel, which a registered map refuses",
            Step::Remote(x) if registered(&x.map) => {
                "a remote access faults in the kernel, which a registered map refuses"
            }
            Step::Mlock(x) if registered(&x.map) => "mlock populates in the kernel, which a registered map refuses",
            Step::Mlockall(x)
                if x.current && self.live.get(&x.proc).is_some_and(|maps| maps.values().any(|m| m.uffd.is_some())) =>
            {
                "mlockall populates in the kernel, which a registered map refuses"
            }
            _ => return,
        };
        out.push(("map", format!("{why} (userfaultfd)")));
    }

    /// The userfaultfd steps.
    pub(super) fn play_uffd(&mut self, step: &Step, out: &mut Out) {
        match step {
            Step::Uffd(x) => {
                let Some(m) = self.map_mut(&x.proc, &x.map, out) else { return };
                if !m.anon_private {
                    out.push(("map", format!("'{}' is not private anon: uffd registers only those here", x.map)));
                    return;
                }
                m.uffd = Some(x.mode);
            }
            Step::UffdCopy(_) | Step::UffdZeropage(_) => {
                let Some(m) = self.range_mut(step, out) else { return };
                if m.uffd.is_none() {
                    out.push(("map", format!("'{}' is not registered (uffd)", step.map().unwrap_or(""))));
                }
            }
            Step::UffdWp(x) => {
                let Some(m) = self.range_mut(step, out) else { return };
                if !m.uffd.is_some_and(UffdMode::wp) {
                    out.push(("map", format!("'{}' is not registered with mode wp or both", x.map)));
                }
            }
            Step::UffdMove(x) => {
                let Some(src) = self.range_mut(step, out) else { return };
                if !src.anon_private {
                    out.push(("map", format!("'{}' is not private anon: UFFDIO_MOVE moves only those", x.map)));
                }
                let Some(dst) = self.map_mut(&x.proc, &x.to.map, out) else { return };
                if dst.uffd.is_none() {
                    out.push(("to", format!("'{}' is not registered (uffd)", x.to.map)));
                }
                let end = x.to.page.saturating_add(x.pages);
                if end > dst.pages() || (x.to.page..end).any(|p| !dst.present[p as usize]) {
                    out.push(("to", format!("pages {}..{end} of '{}' are not all mapped", x.to.page, x.to.map)));
                }
                if x.to.map == x.map && x.page < end && x.to.page < x.page + x.pages {
                    out.push(("to", "the source and destination ranges overlap".into()));
                }
            }
            _ => {}
        }
    }
}
