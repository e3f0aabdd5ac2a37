//! `mutants::apply_to_their_tree::6.12-debug`: every patch under images/mutants/ applies
//! cleanly to the cached 6.12-debug tree, the tree `rmapcheck mutants` copies and
//! patches, and each hunk lands in the function its header names. Boots nothing; only
//! where 6.12-debug is among the kernels.

use super::Pools;
use libtest_mimic::{Failed, Trial};
use rmapcheck::mutants::{self, hunks};
use std::process::Command;

pub fn trial(pools: fn() -> &'static Pools) -> Trial {
    Trial::test(format!("mutants::apply_to_their_tree::{}", mutants::BASE), move || {
        let pool = pools().get(mutants::BASE)?;
        let tree = &pool.prepared.kernel.build_dir;
        let all = mutants::load(&rmapcheck::project_root().join("images/mutants")).map_err(|e| format!("{e:#}"))?;
        let mut wrong = Vec::new();
        for m in &all {
            // A dry run, exact to the line's context (no fuzz): the cached tree is never
            // patched.
            let out = Command::new("patch")
                .current_dir(tree)
                .args(["-p1", "--dry-run", "--fuzz=0", "--forward", "-s", "-i"])
                .arg(&m.patch)
                .output()
                .map_err(|e| format!("patch: {e}"))?;
            if !out.status.success() {
                wrong.push(format!("{} does not apply: {}", m.name, String::from_utf8_lossy(&out.stdout)));
            }
            let text = std::fs::read_to_string(&m.patch).map_err(|e| e.to_string())?;
            for h in hunks::parse(&text).map_err(|e| format!("{}: {e:#}", m.name))? {
                let source = std::fs::read_to_string(tree.join(&h.file)).map_err(|e| format!("{}: {e}", h.file))?;
                let at = hunks::function_at(&source, h.first_change());
                if at != h.function() {
                    wrong.push(format!(
                        "{}: the hunk at {}:{} names {:?} but changes {at:?}",
                        m.name,
                        h.file,
                        h.first_change(),
                        h.function()
                    ));
                }
            }
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(Failed::from(wrong.join("\n")))
        }
    })
}
