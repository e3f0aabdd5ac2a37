//! `vm::boot_walk::<kernel>`: the kernel boots, the agent reports READY with the module
//! loaded and the page size the matrix expects, and one rmap walk of an anonymous page
//! comes back whole, with no splat since boot.

use super::Pools;
use libtest_mimic::{Failed, Trial};
use rmapcheck::check::dmesg;

pub fn trial(key: &str, pools: fn() -> &'static Pools) -> Trial {
    let key = key.to_string();
    Trial::test(format!("vm::boot_walk::{key}"), move || {
        let pool = pools().get(&key)?;
        let kernel = &pool.prepared.kernel;
        let mut g = pool.take().map_err(|f| Failed::from(f.to_string()))?;
        let mut wrong = Vec::new();
        if !g.info.module_loaded {
            wrong.push("READY says module=0: rmapcheck.ko did not load".to_string());
        }
        if g.info.page_size != kernel.page_size {
            wrong.push(format!("READY page_size={}, the matrix expects {}", g.info.page_size, kernel.page_size));
        }
        if g.info.release != kernel.release {
            wrong.push(format!("READY release={}, the matrix expects {}", g.info.release, kernel.release));
        }
        let mut req = |op: &str, args: &str| g.request(op, args).map_err(|f| Failed::from(f.to_string()));
        req("reset", "")?;
        req("mmap", "proc=p0 name=a pages=1 backing=anon share=private")?;
        req("write", "proc=p0 name=a page=0 value=7")?;
        let reply = req("findpage", "proc=p0 name=a page=0")?;
        let walk = dmesg::walk_in_records(&reply.kmsg, reply.id);
        let pfn = reply.get("pfn").and_then(|p| u64::from_str_radix(p.trim_start_matches("0x"), 16).ok());
        match &walk.page {
            None => wrong.push(format!("no page line in the walk: {:?}", reply.kmsg)),
            Some(page) => {
                if page.kind != "anon" || page.mapcount != 1 || Some(page.pfn) != pfn {
                    wrong.push(format!("walked {page:?}, want an anon page, mapcount 1, pfn {pfn:?} (pagemap)"));
                }
            }
        }
        let mapped = walk.vmas.iter().filter(|v| v.state == dmesg::VmaState::Mapped).count();
        if !matches!(walk.end, Some((0, 1, _))) || mapped != 1 || !walk.bad_lines.is_empty() {
            wrong.push(format!("walk end {:?}, {mapped} mapped VMAs, bad lines {:?}", walk.end, walk.bad_lines));
        }
        // From sequence 0: a splat during boot or module load counts too.
        let splats = g.splats_since(0);
        if !splats.is_empty() {
            wrong.push(format!("splats: {splats:?}"));
        }
        if wrong.is_empty() {
            pool.give(g);
            Ok(())
        } else {
            Err(format!("{key} ({}, {}):\n{}", kernel.release, kernel.compiler(), wrong.join("\n")).into())
        }
    })
}
