//! The swap oracle: reclaim unmaps a page from every process through the rmap
//! (try_to_unmap) before it swaps it out. So a page that left one mapper for swap must
//! have left them all, each for the same swap entry: none may keep a PTE to it. The
//! same holds for MADV_PAGEOUT and for the `reclaim` step (memory.reclaim).
//!
//! Architecture invariant: pure; it compares two pagemap reads, before and after.

use crate::check::model::Slot;
use crate::check::oracle::{Problem, Truth};
use crate::check::problem::{ProblemKind, SwapOut};
use std::collections::BTreeMap;

/// Judge a pageout (or reclaim, `by`) of `slots`: `before` and `after` are pagemap
/// reads around it.
pub fn check_pageout(before: &Truth, after: &Truth, slots: &[Slot], by: SwapOut) -> Vec<Problem> {
    let mut out = Vec::new();
    let held: BTreeMap<Slot, u64> = before.slots().into_iter().collect();
    let now: BTreeMap<Slot, u64> = after.slots().into_iter().collect();
    let mut seen = Vec::new();
    for slot in slots {
        let Some(&pfn) = held.get(slot) else { continue };
        if seen.contains(&pfn) {
            continue;
        }
        seen.push(pfn);
        let holders = before.holders(pfn);
        let swapped: Vec<&Slot> = holders.iter().filter(|s| after.swapped.contains_key(*s)).collect();
        let Some(first) = swapped.first() else { continue };
        let entry = after.swapped[*first];
        for h in &holders {
            match (after.swapped.get(h), now.get(h)) {
                (Some(e), _) if *e == entry => {}
                (Some(e), _) => out.push(Problem::new(ProblemKind::SwapSplit {
                    by,
                    pfn,
                    entry,
                    first: (*first).clone(),
                    other: h.clone(),
                    other_entry: *e,
                })),
                (None, Some(p)) if *p == pfn => out.push(Problem::new(ProblemKind::SwapStillMapped {
                    by,
                    pfn,
                    first: (*first).clone(),
                    holder: h.clone(),
                })),
                // Gone (exited or unmapped) or faulted back to another page: not ours.
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Fields;

    fn truth(lines: &[&str]) -> Truth {
        let data: Vec<Fields> = lines.iter().map(|l| crate::wire::parse_fields(l)).collect();
        Truth::from_data(&data, 4096).unwrap()
    }

    fn slot(p: &str) -> Slot {
        (p.into(), "a".into(), 0)
    }

    const BEFORE: [&str; 3] = [
        "proc=p0 pid=10 name=a addr=0x10000 pages=1 pfns=0x50",
        "proc=c1 pid=11 name=a addr=0x10000 pages=1 pfns=0x50",
        "proc=c2 pid=12 name=a addr=0x10000 pages=1 pfns=0x50",
    ];

    #[test]
    fn a_page_swapped_out_for_all_of_its_mappers_passes() {
        let after = truth(&[
            "proc=p0 pid=10 name=a addr=0x10000 pages=1 pfns=- swap=0x2a0",
            "proc=c1 pid=11 name=a addr=0x10000 pages=1 pfns=- swap=0x2a0",
            "proc=c2 pid=12 name=a addr=0x10000 pages=1 pfns=- swap=0x2a0",
        ]);
        assert!(check_pageout(&truth(&BEFORE), &after, &[slot("p0")], SwapOut::Pageout).is_empty());
        // Not swapped at all (pageout skips shared pages) is fine too.
        assert!(check_pageout(&truth(&BEFORE), &truth(&BEFORE), &[slot("p0")], SwapOut::Pageout).is_empty());
    }

    #[test]
    fn a_mapper_left_with_a_pte_or_another_entry_fails() {
        let after = truth(&[
            "proc=p0 pid=10 name=a addr=0x10000 pages=1 pfns=- swap=0x2a0",
            "proc=c1 pid=11 name=a addr=0x10000 pages=1 pfns=0x50",
            "proc=c2 pid=12 name=a addr=0x10000 pages=1 pfns=- swap=0x2c0",
        ]);
        let p = check_pageout(&truth(&BEFORE), &after, &[slot("p0")], SwapOut::Pageout);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p.iter().any(|p| p.message().contains("c1 a[0] still maps it")));
        assert!(p.iter().any(|p| p.message().contains("0x2c0 for c2 a[0]")));
        // The reclaim step's problems say so, in message and title.
        let p = check_pageout(&truth(&BEFORE), &after, &[slot("p0")], SwapOut::Reclaim);
        assert!(p.iter().all(|p| p.message().starts_with("reclaim: ") && p.title().contains("reclaim: ")), "{p:?}");
    }
}
