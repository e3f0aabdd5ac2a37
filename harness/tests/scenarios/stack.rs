//! `vm::stack_decode::<kernel>`, for kernels built from source (their tree keeps the
//! vmlinux and System.map): a splat frame in mm/rmap.c decodes to the file and line that
//! binutils' addr2line gives for the same address, as decode_stacktrace.sh would print.
//! Kernels from Debian packages have no vmlinux with DWARF here; their splats carry a
//! note saying so (vm::planted_warn_fails_one_scenario checks the stack is kept).

use super::Pools;
use libtest_mimic::Trial;
use rmapcheck::coverage::stack::{frame_ref, parse_system_map, Decoder};
use rmapcheck::image::symbols::{self, Symbols};
use std::process::Command;

/// Functions of mm/rmap.c that every source kernel has, and offsets inside them.
const FRAMES: [&str; 3] =
    ["rmap_walk_anon+0x40/0x200", "pc : try_to_unmap_one+0x20/0x600", "folio_referenced_one+0x30/0x300"];

pub fn trial(key: &str, pools: fn() -> &'static Pools) -> Trial {
    let key = key.to_string();
    Trial::test(format!("vm::stack_decode::{key}"), move || {
        let pool = pools().get(&key)?;
        let kernel = &pool.prepared.kernel;
        let Symbols::Vmlinux(vmlinux) = symbols::find(kernel, None) else {
            return Err(format!("{key} is built from source, yet its tree has no vmlinux").into());
        };
        let map_path = kernel.build_dir.join("System.map");
        let decoder = Decoder::open(&vmlinux, &map_path).map_err(|e| format!("{e:#}"))?;
        let map = parse_system_map(&std::fs::read_to_string(&map_path).map_err(|e| e.to_string())?);
        for frame in FRAMES {
            let decoded = decoder.decode(frame);
            let last = decoded.last().cloned().unwrap_or_default();
            let f = frame_ref(frame).ok_or("a frame the test wrote does not parse")?;
            let base = map.get(f.function).copied().flatten().ok_or(format!("{} not in System.map", f.function))?;
            // The pc is exact; any other frame is a return address, the call one
            // instruction (4 bytes) before it.
            let addr = base + f.offset - if f.exact { 0 } else { 4 };
            // -i: the inlined functions first, the frame's own function last.
            let out = Command::new("aarch64-linux-gnu-addr2line")
                .arg("-i")
                .arg("-e")
                .arg(&vmlinux)
                .arg(format!("{addr:#x}"))
                .output()
                .map_err(|e| format!("aarch64-linux-gnu-addr2line: {e} (run scripts/setup)"))?;
            let theirs: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
            let positions: Vec<(String, String)> = theirs
                .iter()
                .filter_map(|l| l.rsplit_once(':'))
                .map(|(f, n)| (f.to_string(), n.split_whitespace().next().unwrap_or(n).to_string()))
                .collect();
            let Some((file, line)) = positions.last() else {
                return Err(format!("{frame}: addr2line said {theirs:?}").into());
            };
            let own =
                file.ends_with("mm/rmap.c") && last.starts_with(frame) && last.ends_with(&format!("mm/rmap.c:{line})"));
            // Each inlined function addr2line names has its file and line, in order.
            let inlined = decoded.len() == positions.len()
                && decoded.iter().zip(&positions).all(|(d, (f, n))| same_place(d, f, n));
            if !own || !inlined {
                return Err(format!("{frame}: decoded {decoded:?}; addr2line -i says {theirs:?}").into());
            }
        }
        Ok(())
    })
}

/// Whether a decoded line (`... (file:line)` or `... (file:line) [inline]`) names the
/// place addr2line printed as `path` and `line` (a path that ends with the file).
fn same_place(decoded: &str, path: &str, line: &str) -> bool {
    let Some(open) = decoded.rfind(" (") else { return false };
    let Some((file, rest)) = decoded[open + 2..].split_once(':') else { return false };
    rest.starts_with(&format!("{line})")) && path.ends_with(file)
}
