//! The request of every step of each shipped scenario, at 4 and 16 KiB pages, against
//! tests/fixtures/requests/<scenario>.txt: the wire text the runner sends must not
//! change. Every step is taken to succeed. `RMAPCHECK_WRITE_REQUESTS=1` writes the files
//! (they were first written by the runner's code before `Request` existed).

use rmapcheck::scenario::request::Request;
use rmapcheck::scenario::{self, Step, World};
use std::path::PathBuf;

/// The requests for `steps` on a kernel of `page_size`, each built from the world before
/// its step.
fn rendered(steps: &[Step], page_size: u64) -> Vec<String> {
    let mut world = World::for_page_size(page_size);
    let mut out = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let n = i + 1;
        if let Some(request) = Request::from_step(step, &world, n) {
            let wire = request.wire();
            out.push(format!("{n} {} {}", wire.op, wire.args()));
        }
        world.apply(step).expect("a shipped scenario is valid");
    }
    out
}

#[test]
fn every_shipped_scenario_sends_the_requests_it_always_sent() {
    let root = rmapcheck::project_root();
    let fixtures = root.join("harness/tests/fixtures/requests");
    let write = std::env::var_os("RMAPCHECK_WRITE_REQUESTS").is_some();
    let files = scenario::discover(&[root.join("scenarios")]).unwrap();
    assert!(files.len() >= 50, "only {} scenarios", files.len());
    let mut differ = Vec::new();
    for file in files {
        let loaded = scenario::load(&file).unwrap();
        let mut text = String::new();
        for page_size in [4096, 16384] {
            let s = loaded.scenario.for_page_size(page_size).unwrap();
            text.push_str(&format!("# {} KiB pages\n", page_size / 1024));
            for line in rendered(&s.steps, page_size) {
                text.push_str(&line);
                text.push('\n');
            }
        }
        let want: PathBuf = fixtures.join(format!("{}.txt", loaded.scenario.name));
        if write {
            std::fs::write(&want, &text).unwrap();
        } else if std::fs::read_to_string(&want).ok().as_deref() != Some(text.as_str()) {
            differ.push(loaded.scenario.name.clone());
        }
    }
    assert!(differ.is_empty(), "requests changed for {differ:?}");
}
