//! Pins that the mirror moves on from, against a real apt repository of the test's own:
//! tiny fake .debs with a kernel's package names, indexed by apt-ftparchive and served as a
//! `file:` mirror (RMAPCHECK_MIRROR). The CLI fetches from it as it does from Debian, with
//! its own private apt root. No network and no kernel.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SUITE: &str = "fakesuite";

const MANIFEST: &str = r#"
default = "fake"

[kernels.fake]
kind = "debian"
about = "a fake kernel that the test's own repository serves"
archive = "debian"
suite = "fakesuite"
abi = '1\.0\.0-\d+'
release = "{abi}-arm64"
page_size = 4096
image = "boot/vmlinuz-{release}"
packages = ["linux-image-{abi}-arm64-unsigned:arm64", "linux-kbuild-1.0:amd64"]
tags = ["default"]
"#;

/// A fake package: its name, version and architecture.
struct Pkg {
    name: String,
    version: &'static str,
    arch: &'static str,
}

fn image(abi: u32, version: &'static str) -> Pkg {
    Pkg { name: format!("linux-image-1.0.0-{abi}-arm64-unsigned"), version, arch: "arm64" }
}

fn kbuild(version: &'static str) -> Pkg {
    Pkg { name: "linux-kbuild-1.0".into(), version, arch: "amd64" }
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}; run scripts/setup (apt-utils, dpkg-dev)"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn sha256(path: &Path) -> String {
    rmapcheck::cache::sha256_file(path).unwrap()
}

/// Build `pkg` as a .deb into `pool`; returns its path.
fn build_deb(pool: &Path, pkg: &Pkg) -> PathBuf {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("DEBIAN")).unwrap();
    fs::write(
        dir.path().join("DEBIAN/control"),
        format!(
            "Package: {}\nVersion: {}\nArchitecture: {}\nMaintainer: rmapcheck tests <tests@invalid>\n\
             Description: a fake kernel package for the test of moved pins\n",
            pkg.name, pkg.version, pkg.arch
        ),
    )
    .unwrap();
    fs::create_dir_all(dir.path().join("boot")).unwrap();
    fs::write(dir.path().join("boot/payload"), format!("{} {}\n", pkg.name, pkg.version)).unwrap();
    let deb = pool.join(format!("{}_{}_{}.deb", pkg.name, pkg.version, pkg.arch));
    run(Command::new("dpkg-deb").args(["--root-owner-group", "-Zgzip", "--build"]).arg(dir.path()).arg(&deb));
    deb
}

/// A repository under `dir` that serves `pkgs` in SUITE; returns its `file:` URI.
fn repository(dir: &Path, pkgs: &[Pkg]) -> String {
    let pool = dir.join("pool");
    fs::create_dir_all(&pool).unwrap();
    for pkg in pkgs {
        build_deb(&pool, pkg);
    }
    let dists = dir.join("dists").join(SUITE);
    for arch in ["arm64", "amd64"] {
        let index = dists.join("main").join(format!("binary-{arch}"));
        fs::create_dir_all(&index).unwrap();
        let out = run(Command::new("apt-ftparchive").current_dir(dir).args(["--arch", arch, "packages", "pool"]));
        fs::write(index.join("Packages"), out.stdout).unwrap();
    }
    let release = run(Command::new("apt-ftparchive")
        .current_dir(dir)
        .args([
            "-o",
            &format!("APT::FTPArchive::Release::Suite={SUITE}"),
            "-o",
            &format!("APT::FTPArchive::Release::Codename={SUITE}"),
            "-o",
            "APT::FTPArchive::Release::Architectures=arm64 amd64",
            "-o",
            "APT::FTPArchive::Release::Components=main",
            "release",
        ])
        .arg(format!("dists/{SUITE}")));
    fs::write(dists.join("Release"), release.stdout).unwrap();
    format!("file:{}", dir.display())
}

/// A project root whose lock pins abi 1 at version 1.0-1 (the debs `pinned` were built
/// from), a cache and a repository serving `served`.
struct World {
    dir: tempfile::TempDir,
    mirror: String,
}

impl World {
    fn new(served: &[Pkg]) -> World {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("root/images");
        fs::create_dir_all(&images).unwrap();
        fs::write(images.join("kernels.toml"), MANIFEST).unwrap();
        // The pin: what a repository of 1.0-1 served when the lock was written.
        let old = tempfile::tempdir().unwrap();
        let pinned = [image(1, "1.0-1"), kbuild("1.0-1")];
        let entries: String = pinned
            .iter()
            .map(|p| {
                let sha = sha256(&build_deb(old.path(), p));
                format!(
                    "\n[[kernels.fake.packages]]\nname = \"{}\"\narch = \"{}\"\nversion = \"{}\"\nsha256 = \"{sha}\"\n",
                    p.name, p.arch, p.version
                )
            })
            .collect();
        let lock = format!("[kernels.fake]\nabi = \"1.0.0-1\"\nrelease = \"1.0.0-1-arm64\"\n{entries}");
        fs::write(images.join("kernels.lock"), lock).unwrap();
        let mirror = repository(&dir.path().join("repo"), served);
        World { dir, mirror }
    }

    fn lock(&self) -> String {
        fs::read_to_string(self.dir.path().join("root/images/kernels.lock")).unwrap()
    }

    /// `rmapcheck [extra] kernels fetch --download-only fake`, with RMAPCHECK_LOCKED set
    /// to `locked`; its exit code, stdout and stderr.
    fn fetch(&self, extra: &[&str], locked: &str) -> (Option<i32>, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_rmapcheck"))
            .args(["--progress", "plain"])
            .args(extra)
            .args(["kernels", "fetch", "--download-only", "fake"])
            .env("RMAPCHECK_ROOT", self.dir.path().join("root"))
            .env("RMAPCHECK_CACHE", self.dir.path().join("cache"))
            .env("RMAPCHECK_MIRROR", &self.mirror)
            .env("RMAPCHECK_LOCKED", locked)
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.code(), text)
    }

    fn cached_debs(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.dir.path().join("cache/debs"))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.retain(|n| n.ends_with(".deb"));
        names.sort();
        names
    }
}

#[test]
fn a_pin_that_is_still_served_is_used_as_it_is() {
    let world = World::new(&[image(1, "1.0-1"), kbuild("1.0-1"), image(2, "1.0-2")]);
    let before = world.lock();
    let (code, text) = world.fetch(&[], "");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("fake: 1.0.0-1-arm64 (1.0-1) downloaded, 2 packages"), "{text}");
    assert!(!text.contains("no longer served"), "{text}");
    assert_eq!(world.lock(), before);
    assert_eq!(world.cached_debs().len(), 2);
}

#[test]
fn a_pin_the_mirror_dropped_moves_to_the_newest_match_and_says_so() {
    let world = World::new(&[image(2, "1.0-2"), kbuild("1.0-2"), image(3, "1.0-3~rc1")]);
    let (code, text) = world.fetch(&[], "");
    assert_eq!(code, Some(0), "{text}");
    // One note, naming the old version and the new pin.
    let notes: Vec<&str> = text.lines().filter(|l| l.contains("no longer served")).collect();
    assert_eq!(notes.len(), 1, "{text}");
    assert!(
        notes[0].contains("linux-image-1.0.0-1-arm64-unsigned 1.0-1 is no longer served by fakesuite")
            && notes[0].contains("the pin moves to 1.0.0-3-arm64 (1.0-3~rc1)"),
        "{text}"
    );
    let lock = world.lock();
    assert!(lock.contains("abi = \"1.0.0-3\"") && lock.contains("version = \"1.0-3~rc1\""), "{lock}");
    assert!(lock.contains("name = \"linux-kbuild-1.0\"") && lock.contains("version = \"1.0-2\""), "{lock}");
    assert!(!lock.contains("\"1.0-1\""), "{lock}");
    let debs = world.cached_debs();
    assert!(debs.iter().any(|d| d.starts_with("linux-image-1.0.0-3-arm64-unsigned_")), "{debs:?}");

    // The next fetch uses the new pin from the cache, quietly.
    let (code, text) = world.fetch(&[], "");
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("no longer served"), "{text}");
}

#[test]
fn strict_pins_refuse_to_move() {
    for (flag, env) in [(&["--locked"][..], ""), (&[][..], "1")] {
        let world = World::new(&[image(2, "1.0-2"), kbuild("1.0-2")]);
        let before = world.lock();
        let (code, text) = world.fetch(flag, env);
        assert_eq!(code, Some(3), "{text}");
        assert!(
            text.contains(
                "kernel fake: linux-image-1.0.0-1-arm64-unsigned 1.0-1 is no longer served by fakesuite, \
                 and pins are strict"
            ) && text.contains("rmapcheck kernels update fake"),
            "{text}"
        );
        assert_eq!(world.lock(), before);
        assert!(world.cached_debs().is_empty());
    }
}

#[test]
fn a_kernel_the_mirror_no_longer_has_at_all_is_one_error() {
    let world = World::new(&[Pkg { name: "linux-kbuild-2.0".into(), version: "2.0-1", arch: "amd64" }]);
    let before = world.lock();
    let (code, text) = world.fetch(&[], "");
    assert_eq!(code, Some(3), "{text}");
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("rmapcheck: error:")).collect();
    assert_eq!(errors.len(), 1, "{text}");
    assert!(
        errors[0].contains(
            "kernel fake: linux-image-1.0.0-1-arm64-unsigned 1.0-1 is no longer served by fakesuite, \
             and nothing replaces it"
        ) && errors[0].contains("no package matches"),
        "{text}"
    );
    assert_eq!(world.lock(), before);
}
