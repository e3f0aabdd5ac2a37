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

/// `vm::mutants_patches::6.12-debug`: `rmapcheck mutants --patches DIR --kernel
/// 6.12-debug` judges a user's own patch in `git format-patch` form, named by its file
/// and described by its Subject:. The patch is the file-walk mutant as a maintainer
/// would hold it (mail headers, a diffstat, no `rmapcheck mutant:` line); one scenario
/// that catches it stands for the suite, and the fuzzer gets a few seconds. The
/// finding's generated repro.c must then fail the patched kernel and pass the clean one.
pub fn patches_trial(pools: fn() -> &'static Pools) -> Trial {
    Trial::test(format!("vm::mutants_patches::{}", mutants::BASE), move || {
        pools().get(mutants::BASE)?;
        let root = rmapcheck::project_root();
        let tmp = tempfile::Builder::new()
            .prefix("mutants-patches-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .map_err(|e| e.to_string())?;
        let planted = std::fs::read_to_string(root.join("images/mutants/file-walk-skips-second-shared.patch"))
            .map_err(|e| e.to_string())?;
        let diff = &planted[planted.find("--- a/").ok_or("the mutant has no diff")?..];
        let subject = "mm/rmap: walk each shared mapping of a file once";
        let patch = format!(
            "From 0123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001\n\
             From: A Maintainer <maintainer@invalid>\n\
             Date: Mon, 7 Dec 2026 12:00:00 +0000\n\
             Subject: [PATCH] {subject}\n\n\
             Only the first shared mapping needs the walk.\n\n\
             ---\n mm/rmap.c | 4 ++++\n 1 file changed, 4 insertions(+)\n\n{diff}-- \n2.47.3\n"
        );
        let patches = tmp.path().join("patches");
        std::fs::create_dir_all(&patches).map_err(|e| e.to_string())?;
        std::fs::write(patches.join("0001-mm-rmap-walk-each-shared-mapping-once.patch"), patch)
            .map_err(|e| e.to_string())?;
        let scenario = rmapcheck::scenario::load(&root.join("scenarios/file_shared_fork.yaml"))
            .map_err(|e| Failed::from(e.to_string()))?;
        let manifest = rmapcheck::image::kernels::Manifest::load().map_err(|e| format!("{e:#}"))?;
        let opts = mutants::Options {
            patches,
            kernel: mutants::BASE.into(),
            only: Vec::new(),
            fuzz_for: std::time::Duration::from_secs(10),
            seed: 1,
            out: tmp.path().join("out"),
            workroot: tmp.path().join("guests"),
        };
        let verdicts = mutants::run(&manifest, &[scenario], &opts, &|_| {}, &()).map_err(|e| format!("{e:#}"))?;
        eprint!("{}", mutants::text(&verdicts));
        let [v] = verdicts.as_slice() else { return Err(format!("want one verdict, got {}", verdicts.len()).into()) };
        if v.name != "0001-mm-rmap-walk-each-shared-mapping-once" || v.about != subject {
            return Err(format!("judged as '{}' ({}), not by its file and Subject:", v.name, v.about).into());
        }
        if let Some(e) = &v.error {
            return Err(format!("not judged: {e}").into());
        }
        match &v.suite {
            Some(found) if found.title.starts_with("O1") => {}
            other => {
                return Err(format!("file_shared_fork should find the skipped mapping (O1), found {other:?}").into())
            }
        }
        // The finding's generated C program migrates the page the walk cannot reach.
        match &v.repro {
            Some(r) if r.tells_them_apart() => Ok(()),
            other => {
                Err(format!("the repro.c should fail the patched kernel and pass the clean one: {other:?}").into())
            }
        }
    })
}
