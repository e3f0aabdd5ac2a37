//! A kernel `.config` (or a config fragment), read in one place: option values, the page
//! size it selects and the compiler that built it.

use anyhow::{bail, Context, Result};
use std::path::Path;

#[derive(Debug, Clone)]
pub struct Kconfig {
    text: String,
    /// (option, value) in file order; `n` for `# CONFIG_X is not set`.
    entries: Vec<(String, String)>,
}

impl Kconfig {
    pub fn parse(text: &str) -> Kconfig {
        let entries = text
            .lines()
            .map(str::trim)
            .filter_map(|l| {
                if let Some(opt) = l.strip_prefix("# ").and_then(|l| l.strip_suffix(" is not set")) {
                    Some((opt.to_string(), "n".to_string()))
                } else {
                    l.split_once('=').filter(|(o, _)| o.starts_with("CONFIG_")).map(|(o, v)| (o.into(), v.into()))
                }
            })
            .collect();
        Kconfig { text: text.to_string(), entries }
    }

    pub fn read(path: &Path) -> Result<Kconfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Kconfig::parse(&text))
    }

    /// The file as read, e.g. for a cache key.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The value of `opt` (`CONFIG_X`): `y`, `m`, `n`, a number or a quoted string. The
    /// first mention wins; an option never mentioned is `None`.
    pub fn get(&self, opt: &str) -> Option<&str> {
        self.entries.iter().find(|(o, _)| o == opt).map(|(_, v)| v.as_str())
    }

    pub fn is(&self, opt: &str, value: &str) -> bool {
        self.get(opt) == Some(value)
    }

    /// The page size an arm64 config selects.
    pub fn page_size(&self) -> Option<u64> {
        [("CONFIG_ARM64_4K_PAGES", 4096), ("CONFIG_ARM64_16K_PAGES", 16384), ("CONFIG_ARM64_64K_PAGES", 65536)]
            .iter()
            .find(|(opt, _)| self.is(opt, "y"))
            .map(|&(_, size)| size)
    }

    /// The gcc major version named by CONFIG_CC_VERSION_TEXT.
    pub fn gcc_major(&self) -> Result<u32> {
        let text = self
            .get("CONFIG_CC_VERSION_TEXT")
            .context("the kernel config has no CONFIG_CC_VERSION_TEXT")?
            .trim_matches('"');
        if !text.contains("gcc") {
            bail!("the kernel was not built with gcc ({text}); only gcc-built kernels are supported");
        }
        let version = text.split_whitespace().last().context("empty CONFIG_CC_VERSION_TEXT")?;
        version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .with_context(|| format!("cannot read a gcc version from '{text}'"))
    }

    /// Options `fragment` sets that this config does not have as set.
    pub fn lost(&self, fragment: &Kconfig) -> Vec<String> {
        fragment
            .entries
            .iter()
            .filter_map(|(opt, want)| {
                let got = self.get(opt).unwrap_or("n");
                (got != want).then(|| format!("{opt}={want} became {got}"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_gcc_major_from_config() {
        let major = |t: &str| Kconfig::parse(t).gcc_major();
        let cfg = "CONFIG_X=y\nCONFIG_CC_VERSION_TEXT=\"aarch64-linux-gnu-gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0\"\n";
        assert_eq!(major(cfg).unwrap(), 12);
        let cfg16 = "CONFIG_CC_VERSION_TEXT=\"aarch64-linux-gnu-gcc-16 (Debian 16.1.0-3) 16.1.0\"\n";
        assert_eq!(major(cfg16).unwrap(), 16);
        assert!(major("CONFIG_CC_VERSION_TEXT=\"clang version 18\"").is_err());
    }

    #[test]
    fn page_size_from_config() {
        let size = |t: &str| Kconfig::parse(t).page_size();
        assert_eq!(size("CONFIG_X=y\nCONFIG_ARM64_16K_PAGES=y\n"), Some(16384));
        assert_eq!(size("CONFIG_ARM64_4K_PAGES=y"), Some(4096));
        assert_eq!(size("# CONFIG_ARM64_4K_PAGES is not set"), None);
    }

    #[test]
    fn lost_names_what_kconfig_dropped() {
        let config = Kconfig::parse("CONFIG_DEBUG_VM=y\n# CONFIG_KASAN is not set\nCONFIG_NR_CPUS=4\n");
        let fragment = Kconfig::parse(
            "# comment\nCONFIG_DEBUG_VM=y\nCONFIG_PAGE_TABLE_CHECK=y\nCONFIG_KASAN=y\n\
             CONFIG_NR_CPUS=8\n# CONFIG_KASAN is not set\n",
        );
        assert_eq!(
            config.lost(&fragment),
            ["CONFIG_PAGE_TABLE_CHECK=y became n", "CONFIG_KASAN=y became n", "CONFIG_NR_CPUS=8 became 4"]
        );
    }

    #[test]
    fn the_checked_in_fragments_parse() {
        let debug = Kconfig::parse(include_str!("../../../images/debug.config"));
        // Against an empty config every option it sets to y is lost: the parser sees them.
        let lost = Kconfig::parse("").lost(&debug);
        assert!(lost.iter().any(|l| l.starts_with("CONFIG_DEBUG_VM=y")), "{lost:?}");
        assert!(lost.iter().any(|l| l.starts_with("CONFIG_PAGE_TABLE_CHECK_ENFORCED=y")), "{lost:?}");
    }
}
