//! The HTML report of a real run, opened in a real browser: boots the default kernel,
//! runs a few scenarios through the library, saves the results the way `run --results`
//! does, renders them with the `rmapcheck report` binary, and loads the page in headless
//! Chromium (Debian's `chromium`, installed by scripts/setup). The rendered DOM must hold
//! the matrix and the findpage pictures, and a screenshot must show them. The report also
//! gets a coverage page, from a campaign folder made here whose PCs are those of a small
//! program compiled as `mm/rmap.c` for arm64 with `-g -fsanitize-coverage=trace-pc` (no
//! KCOV kernel needed): its DOM must mark reached and unreached lines beside their
//! source and plot coverage over time, and a screenshot must paint both marks.

use rmapcheck::coverage::{callsites, lines::Symbolizer, pcs, series, Pcs};
use rmapcheck::image::kernels::Manifest;
use rmapcheck::image::prepare;
use rmapcheck::report::results;
use rmapcheck::run::pool::Pool;
use rmapcheck::scenario;
use std::path::{Path, PathBuf};
use std::process::Command;

const SCENARIOS: &[&str] = &["seed_mmap_fork", "fork_three_generations", "madvise_dontfork"];

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        if let Ok(out) = Command::new("sh").args(["-c", &format!("command -v {name}")]).output() {
            if out.status.success() {
                return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            }
        }
    }
    panic!("chromium is not installed; run scripts/setup as root");
}

/// Run Chromium headless on `page` with a fresh profile and no network chatter.
fn headless(page: &Path, extra: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("timeout")
        .arg("120")
        .arg(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn report_of_a_real_run_renders_in_chromium() {
    rmapcheck::signal::install(std::time::Duration::ZERO, |m| eprintln!("rmapcheck: {m}"));
    let manifest = Manifest::load().unwrap();
    let key = manifest.default.clone();
    let prepared = prepare::prepare(&manifest, &key, &()).unwrap_or_else(|e| {
        panic!("kernel {key} is not ready: {e:#}\nset it up with: cargo run -p rmapcheck -- kernels fetch {key}")
    });
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("report-{}", std::process::id()));
    let pool = Pool::new(prepared, work.join("guests"));
    let mut outcomes = Vec::new();
    for name in SCENARIOS {
        let file = rmapcheck::project_root().join("scenarios").join(format!("{name}.yaml"));
        let loaded = scenario::load(&file).unwrap();
        outcomes.push(pool.play(&loaded).outcome);
    }
    pool.shutdown();

    let results_path = work.join("results.json");
    results::write(&results_path, &outcomes).unwrap();
    let out_dir = work.join("report");
    let (_tree, vmlinux, campaign) = coverage_fixture(&work);
    let cli = Command::new(env!("CARGO_BIN_EXE_rmapcheck"))
        .env("RMAPCHECK_CACHE", work.join("cache"))
        .args(["report", "--out"])
        .arg(&out_dir)
        .arg("--from")
        .arg(&results_path)
        .arg("--coverage")
        .arg(&campaign)
        .arg("--vmlinux")
        .arg(&vmlinux)
        .output()
        .unwrap();
    assert!(cli.status.success(), "rmapcheck report: {}", String::from_utf8_lossy(&cli.stderr));
    let index = out_dir.join("index.html");
    assert_eq!(String::from_utf8_lossy(&cli.stdout).trim(), index.display().to_string());

    let dom = String::from_utf8(headless(&index, &["--dump-dom"]).stdout).unwrap();
    assert!(dom.contains("<table class=\"matrix\">"), "no matrix in the rendered DOM");
    for name in SCENARIOS {
        assert!(dom.contains(&format!(">{name}</a></th>")), "no matrix row for {name}");
    }
    let cells = dom.matches("<td class=\"cell\">").count();
    assert_eq!(cells, SCENARIOS.len(), "one kernel column");
    let pictures = dom.matches("<svg class=\"findpage\"").count();
    let findpages: usize = outcomes.iter().map(|o| o.findpages.len()).sum();
    assert!(pictures >= 1 && pictures == findpages, "{pictures} pictures for {findpages} findpages");
    // The fork tree of fork_three_generations is drawn.
    assert!(dom.contains("class=\"fork\""), "no fork tree");

    // Present in the DOM is not yet visible: a screenshot must show the pictures and the
    // matrix, in the colours the page's CSS gives them. It stays next to the report.
    let html = std::fs::read_to_string(&index).unwrap();
    let painted = |pixels: &[[u8; 3]], rules: &[&str]| {
        let colours: Vec<[u8; 3]> = rules.iter().map(|r| css_colour(&html, r)).collect();
        pixels.iter().filter(|p| colours.contains(p)).count()
    };
    let shot = out_dir.join("screenshot.png");
    let pixels = screenshot(&index, &shot);
    // Only the pictures' page boxes have these fills; one box is 180×104 pixels, less
    // four lines of text.
    let pages = painted(&pixels, &[".page rect { fill:", "kind-file rect { fill:", "kind-none rect { fill:"]);
    assert!(pages >= 8_000, "{pages} pixels of page boxes in {}", shot.display());
    // The verdict chips share the cells' colours, so the matrix is judged by what it
    // adds: without it the page must lose about a cell's worth each (150×22, less text).
    let verdicts = ["--pass-bg:", "--new-bg:", "--drift-bg:", "--fail-bg:", "--error-bg:"];
    let start = html.find("<table class=\"matrix\">").unwrap();
    let end = start + html[start..].find("</table>").unwrap() + "</table>".len();
    let bare = out_dir.join("without-matrix.html");
    std::fs::write(&bare, format!("{}{}", &html[..start], &html[end..])).unwrap();
    let without = screenshot(&bare, &out_dir.join("without-matrix.png"));
    let matrix = painted(&pixels, &verdicts).saturating_sub(painted(&without, &verdicts));
    assert!(
        matrix >= 1_000 * SCENARIOS.len(),
        "the matrix paints {matrix} pixels of verdict colours in {}",
        shot.display()
    );
    eprintln!(
        "report: {} (screenshot {}: the matrix paints {matrix} pixels, page boxes {pages})",
        index.display(),
        shot.display()
    );
    check_coverage_page(&out_dir, &dom);
}

/// The C program whose lines stand in for mm/rmap.c: `rmap_walk` is reached up to its
/// loop, `try_to_unmap` only on its early return, `folio_mkclean` never.
const RMAP_C: &str = "int rmap_walk(int n)\n{\n\tint s = 0;\n\tfor (int i = 0; i < n; i++)\n\t\ts += i * 3;\n\treturn s;\n}\n\nint try_to_unmap(int n)\n{\n\tif (n > 100)\n\t\treturn -1;\n\treturn n + 1;\n}\n\nint folio_mkclean(int n)\n{\n\treturn n - 1;\n}\n\nint main(int argc, char **argv)\n{\n\treturn rmap_walk(argc) + try_to_unmap(argc) + folio_mkclean(argc);\n}\n";

/// A kernel tree with `mm/rmap.c` built into a KCOV `vmlinux`, and a campaign
/// folder whose one corpus entry reached some of its lines, with a coverage series.
fn coverage_fixture(work: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let tree = work.join("tree");
    std::fs::create_dir_all(tree.join("mm")).unwrap();
    std::fs::write(tree.join("mm/rmap.c"), RMAP_C).unwrap();
    // Built as a KCOV kernel is: arm64, a call to the callback in every basic block.
    std::fs::write(
        tree.join("kcov.c"),
        "void __attribute__((no_sanitize_coverage)) __sanitizer_cov_trace_pc(void)\n{\n}\n",
    )
    .unwrap();
    let cc = Command::new("aarch64-linux-gnu-gcc")
        .current_dir(&tree)
        .args(["-g", "-O0", "-fsanitize-coverage=trace-pc", "-nostdlib", "-static", "-Wl,-e,main"])
        .args(["-o", "vmlinux", "mm/rmap.c", "kcov.c"])
        .output()
        .unwrap();
    assert!(cc.status.success(), "cc: {}", String::from_utf8_lossy(&cc.stderr));
    let vmlinux = tree.join("vmlinux");
    let sym = Symbolizer::open(&vmlinux).unwrap();
    let sites = callsites::read(&vmlinux).unwrap().addresses;
    // A KCOV PC is a return address: 4 bytes past a call site of the line (arm64).
    let pc = |line: u32| {
        let on = |a: &&u64| sym.frames(**a).iter().any(|f| f.file == "mm/rmap.c" && f.line == line);
        sites.iter().find(on).map(|a| a + 4).unwrap_or_else(|| panic!("no call site on line {line}"))
    };
    let campaign = work.join("campaign");
    let entry = campaign.join("corpus/0123456789abcdef");
    let scenario = rmapcheck::project_root().join("scenarios/seed_mmap_fork.yaml");
    std::fs::create_dir_all(campaign.join("corpus")).unwrap();
    let text = std::fs::read_to_string(scenario).unwrap();
    let text: String = text.split("\nexpect:").next().unwrap().to_string() + "\n";
    std::fs::write(entry.with_extension("yaml"), text).unwrap();
    let reached = Pcs::new(vec![pc(3), pc(4), pc(11), pc(12)]);
    pcs::write(&entry.with_extension("cov"), "test", &reached).unwrap();
    let header = series::Header { kernel: "test".into(), release: "test".into(), seed: 1, shard: "0/1".into() };
    let mut w = series::Writer::open(&campaign.join("coverage.jsonl"), &header).unwrap();
    let point = |runs, secs, new: Vec<u64>| series::Point { runs, secs, pcs: 0, corpus: 1, new };
    w.point(point(1, 0.4, vec![pc(3), pc(4)])).unwrap();
    w.point(point(7, 3.0, vec![pc(11), pc(12)])).unwrap();
    w.point(point(20, 9.5, vec![])).unwrap();
    (tree, vmlinux, campaign)
}

/// The coverage page: linked from the index, lines marked beside their source, the
/// plots drawn, and both marks painted.
fn check_coverage_page(out_dir: &Path, index_dom: &str) {
    assert!(index_dom.contains("href=\"coverage.html\""), "the index does not link the coverage page");
    let page = out_dir.join("coverage.html");
    let dom = String::from_utf8(headless(&page, &["--dump-dom"]).stdout).unwrap();
    for want in ["<h2 class=\"mono\">mm/rmap.c", "rmap_walk", "try_to_unmap", "folio_mkclean"] {
        assert!(dom.contains(want), "no {want:?} on the coverage page");
    }
    assert!(dom.contains("<td>\tfor (int i = 0; i &lt; n; i++)</td>"), "the source is not beside the marks");
    let (hit, miss) = (dom.matches("<tr class=\"hit\">").count(), dom.matches("<tr class=\"miss\">").count());
    assert!(hit >= 3 && miss >= 3, "{hit} lines marked reached, {miss} unreached");
    assert_eq!(dom.matches("<svg class=\"plot\"").count(), 2, "coverage over time: runs and seconds");
    assert!(dom.contains("<path class=\"curve\""));
    assert!(dom.contains("title=\"mm/rmap.c (never reached)\">folio_mkclean<"), "entry points");
    let html = std::fs::read_to_string(&page).unwrap();
    let pixels = screenshot(&page, &out_dir.join("coverage.png"));
    let count = |rule: &str| {
        let c = css_colour(&html, rule);
        pixels.iter().filter(|p| **p == c).count()
    };
    let (hit_px, miss_px) = (count("tr.hit td { background:"), count("tr.miss td { background:"));
    // A source line is about 1300×16 pixels; at least three of each are painted.
    assert!(hit_px >= 3 * 8_000 && miss_px >= 3 * 8_000, "reached {hit_px} px, unreached {miss_px} px");
    eprintln!("coverage page: {} ({hit} reached and {miss} unreached lines painted)", page.display());
}

/// A screenshot of the top of `page` saved to `png`, as RGB pixels.
fn screenshot(page: &Path, png: &Path) -> Vec<[u8; 3]> {
    headless(
        page,
        &[
            "--window-size=1400,2400",
            "--force-device-scale-factor=1",
            "--force-color-profile=srgb",
            &format!("--screenshot={}", png.display()),
        ],
    );
    rgb_pixels(png)
}

/// The colour `#rrggbb` that follows `rule` in the page's CSS.
fn css_colour(html: &str, rule: &str) -> [u8; 3] {
    let at = html.find(rule).unwrap_or_else(|| panic!("no CSS rule {rule:?}")) + rule.len();
    let hex = html[at..].trim_start().strip_prefix('#').and_then(|h| h.get(..6)).expect("a #rrggbb colour");
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex");
    [byte(0), byte(2), byte(4)]
}

/// Every pixel of a PNG as RGB.
fn rgb_pixels(path: &Path) -> Vec<[u8; 3]> {
    let mut decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().expect("a screenshot of sane size")];
    let info = reader.next_frame(&mut buf).unwrap();
    let samples = info.color_type.samples();
    assert!(samples >= 3, "a {:?} screenshot", info.color_type);
    buf[..info.buffer_size()].chunks_exact(samples).map(|p| [p[0], p[1], p[2]]).collect()
}
