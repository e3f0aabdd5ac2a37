//! A kernel ready to boot: what the `image` layer hands to the layers above, whether it
//! came from the manifest or from a developer's own build.

use crate::image::kconfig::Kconfig;
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// A kernel ready to boot and to build modules against.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub key: String,
    pub release: String,
    pub page_size: u64,
    pub image: PathBuf,
    /// The tree `make -C` builds modules against (headers or a built source tree).
    pub build_dir: PathBuf,
    /// Where the kernel's own modules live, if it has a modules tree.
    pub modules_dir: Option<PathBuf>,
    /// The gcc major that built the kernel (CONFIG_CC_VERSION_TEXT).
    pub gcc_major: u32,
    /// The suite whose build root builds modules when the host lacks `gcc_major`.
    pub toolchain_suite: Option<String>,
    /// The headers and kbuild packages, to install into such a build root.
    pub header_debs: Vec<PathBuf>,
}

impl Kernel {
    /// The kernel's .config.
    pub fn config(&self) -> Result<Kconfig> {
        Kconfig::read(&self.build_dir.join(".config"))
    }

    /// Whether it was built with CONFIG_KCOV (its build tree's .config says so).
    pub fn has_kcov(&self) -> bool {
        self.config().is_ok_and(|c| c.is("CONFIG_KCOV", "y"))
    }

    /// The compiler that built it, as reports name it: `gcc-12`.
    pub fn compiler(&self) -> String {
        format!("gcc-{}", self.gcc_major)
    }

    /// A kernel the user built: an Image and a built tree or headers dir. Release, page
    /// size and compiler come from the tree; the key from the release unless given.
    pub fn custom(image: &Path, build_dir: &Path, key: Option<&str>) -> Result<Kernel> {
        if !image.is_file() {
            bail!("--kernel-image {}: no such file", image.display());
        }
        let config_path = build_dir.join(".config");
        let config = Kconfig::read(&config_path)
            .with_context(|| format!("--kernel-build {}: reading its .config", build_dir.display()))?;
        let release_path = build_dir.join("include/config/kernel.release");
        let release = fs::read_to_string(&release_path)
            .with_context(|| {
                format!("--kernel-build {}: no include/config/kernel.release (run make first)", build_dir.display())
            })?
            .trim()
            .to_string();
        let page_size =
            config.page_size().with_context(|| format!("{}: no CONFIG_ARM64_*K_PAGES", config_path.display()))?;
        let gcc_major = config.gcc_major().with_context(|| format!("kernel in {}", build_dir.display()))?;
        // A built tree keeps its .ko files in place; a headers dir has none, and
        // needed_modules says so if the kernel wants some.
        let modules_dir = Some(build_dir.to_path_buf());
        Ok(Kernel {
            key: key.map(str::to_string).unwrap_or_else(|| format!("custom-{release}")),
            release,
            page_size,
            image: image.to_path_buf(),
            build_dir: build_dir.to_path_buf(),
            modules_dir,
            gcc_major,
            toolchain_suite: None,
            header_debs: Vec::new(),
        })
    }
}

/// Progress of a fetch, for the CLI to show.
pub trait FetchProgress {
    fn step(&self, what: &str);
    /// Something the user must hear of even when steps are not shown (a pin that moved).
    fn note(&self, what: &str) {
        eprintln!("rmapcheck: {what}");
    }
}

impl FetchProgress for () {
    fn step(&self, _: &str) {}
}
