//! A private apt configuration that fetches Debian packages of other architectures and
//! suites without touching the host's apt setup.

use crate::exec::Cmd;
use anyhow::{bail, Context, Result};
use std::fs;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Overrides the host's mirror. A `file:` mirror is a folder of the user's own and is
/// trusted as it is (no signed Release needed); any other is verified as usual.
pub const MIRROR_ENV: &str = "RMAPCHECK_MIRROR";

/// Which archive of the host's mirrors a suite lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Archive {
    Debian,
    Security,
}

impl Archive {
    fn label(self) -> &'static str {
        match self {
            Archive::Debian => "Debian",
            Archive::Security => "Debian-Security",
        }
    }
}

/// One private apt root: its own sources list, lists and package cache.
pub struct Apt {
    dir: PathBuf,
}

/// The mirror URI the host's own apt uses for `archive`, or `$RMAPCHECK_MIRROR` for every
/// archive when set (a local copy, or a test's own repository).
pub fn host_mirror(archive: Archive) -> Result<String> {
    if let Some(uri) = std::env::var_os(MIRROR_ENV) {
        return Ok(uri.to_string_lossy().trim_end_matches('/').to_string());
    }
    let text = Cmd::new("apt-get")
        .args(["indextargets", "--format", "$(REPO_URI)", "Identifier: Packages"])
        .arg(format!("Label: {}", archive.label()))
        .run("apt-get indextargets (is this a Debian host?)")?;
    match text.lines().map(str::trim).find(|l| !l.is_empty()) {
        Some(uri) => Ok(uri.trim_end_matches('/').to_string()),
        None => bail!("the host's apt sources have no {} archive; add one to /etc/apt/sources.list", archive.label()),
    }
}

/// Whether a TCP connection to the host's mirror for `archive` opens within `timeout`:
/// a cheap way for tests to tell "offline" from a real failure.
pub fn mirror_reachable(archive: Archive, timeout: Duration) -> Result<bool> {
    let Some(target) = socket_of(&host_mirror(archive)?) else { return Ok(true) };
    // A name that does not resolve is as unreachable as a host that does not answer.
    let Ok(addrs) = target.to_socket_addrs() else { return Ok(false) };
    Ok(addrs.into_iter().any(|a| TcpStream::connect_timeout(&a, timeout).is_ok()))
}

/// `host:port` of an http(s) URI; `None` for other schemes (a local `file:` mirror).
fn socket_of(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let has_port = authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok());
    Some(if has_port { authority.to_string() } else { format!("{authority}:{port}") })
}

impl Apt {
    /// Set up (or reuse) the private root for `suites` of `archive`.
    pub fn new(cache: &Path, archive: Archive, suites: &[&str]) -> Result<Apt> {
        if !Path::new(KEYRING).exists() {
            bail!("{KEYRING} is missing; run: apt-get install debian-archive-keyring");
        }
        let mirror = host_mirror(archive)?;
        let trust =
            if mirror.starts_with("file:") { "trusted=yes".to_string() } else { format!("signed-by={KEYRING}") };
        let sources: String =
            suites.iter().map(|s| format!("deb [arch=arm64,amd64 {trust}] {mirror} {s} main\n")).collect();
        let key = crate::cache::Key::new().part("sources", &sources).short();
        let dir = cache.join(format!("apt-{key}"));
        for sub in [
            "etc/apt.conf.d",
            "etc/preferences.d",
            "etc/sources.list.d",
            "state/lists/partial",
            "cache/archives/partial",
        ] {
            fs::create_dir_all(dir.join(sub))?;
        }
        fs::write(dir.join("etc/sources.list"), sources)?;
        let d = dir.display();
        let conf = format!(
            "Dir::Etc \"{d}/etc\";\n\
             Dir::Etc::SourceList \"{d}/etc/sources.list\";\n\
             Dir::Etc::SourceParts \"{d}/etc/sources.list.d\";\n\
             Dir::Etc::Parts \"{d}/etc/apt.conf.d\";\n\
             Dir::Etc::Preferences \"{d}/etc/preferences\";\n\
             Dir::Etc::PreferencesParts \"{d}/etc/preferences.d\";\n\
             Dir::State \"{d}/state\";\n\
             Dir::State::status \"/dev/null\";\n\
             Dir::Cache \"{d}/cache\";\n\
             APT::Architecture \"amd64\";\n\
             APT::Architectures {{ \"amd64\"; \"arm64\"; }};\n\
             APT::Sandbox::User \"root\";\n\
             Acquire::Languages \"none\";\n\
             Acquire::Check-Valid-Until \"false\";\n"
        );
        fs::write(dir.join("apt.conf"), conf)?;
        Ok(Apt { dir })
    }

    fn cmd(&self, program: &str) -> Cmd {
        let mut cmd = Cmd::new(program);
        cmd.env("APT_CONFIG", self.dir.join("apt.conf"));
        cmd
    }

    /// Download the package lists, unless `freshness` accepts the ones there are.
    /// Several threads and processes may share the root: one updates while the others
    /// wait for it.
    pub fn update(&self, freshness: Freshness) -> Result<()> {
        let _guard = crate::cache::lock(&self.dir)?;
        let mut refreshed = refreshed_roots().lock().unwrap_or_else(|e| e.into_inner());
        let fresh_enough = match freshness {
            Freshness::Any => self.has_lists()?,
            Freshness::ThisRun => refreshed.contains(&self.dir) && self.has_lists()?,
            Freshness::Now => false,
        };
        if fresh_enough {
            return Ok(());
        }
        let mut cmd = self.cmd("apt-get");
        cmd.args(["-q", "update"]);
        cmd.run("apt-get update (private root)")?;
        refreshed.insert(self.dir.clone());
        Ok(())
    }

    fn has_lists(&self) -> Result<bool> {
        Ok(fs::read_dir(self.dir.join("state/lists"))?
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().ends_with("_Packages")))
    }

    /// Whether the lists hold `name` (`name:arch` or plain) at exactly `version`.
    pub fn serves(&self, name: &str, version: &str) -> Result<bool> {
        let mut cmd = self.cmd("apt-cache");
        cmd.args(["show", "--all-versions", name]);
        // apt-cache fails on a name it does not know at all: that is "not served".
        let Ok(out) = cmd.run(&format!("apt-cache show {name}")) else { return Ok(false) };
        Ok(out.lines().filter_map(|l| l.strip_prefix("Version:")).any(|v| v.trim() == version))
    }

    /// Names of all known packages that start with `prefix`. (`apt-cache pkgnames`
    /// misses some arch-all packages, linux-source-V among them; search does not.)
    pub fn pkgnames(&self, prefix: &str) -> Result<Vec<String>> {
        let mut cmd = self.cmd("apt-cache");
        // A POSIX regex: escape what it treats as special (regex::escape also escapes '-').
        let escaped: String = prefix
            .chars()
            .flat_map(|c| ("\\.[]()*+?^$|{}".contains(c).then_some('\\')).into_iter().chain([c]))
            .collect();
        cmd.args(["search", "--names-only"]).arg(format!("^{escaped}"));
        let out = cmd.run("apt-cache search")?;
        Ok(out.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_string).collect())
    }

    /// The candidate version and sha256 of `name` (`name:arch` or plain).
    pub fn candidate(&self, name: &str) -> Result<(String, String)> {
        let mut cmd = self.cmd("apt-cache");
        cmd.args(["show", "--no-all-versions", name]);
        let out = cmd.run(&format!("apt-cache show {name}"))?;
        let field = |key: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
                .with_context(|| format!("apt-cache show {name} has no {key}"))
        };
        Ok((field("Version:")?, field("SHA256:")?))
    }

    /// Download `name=version` into `dest` and return the .deb's path.
    pub fn download(&self, name: &str, version: &str, dest: &Path) -> Result<PathBuf> {
        fs::create_dir_all(dest)?;
        let before: Vec<_> = list_debs(dest)?;
        let mut cmd = self.cmd("apt-get");
        cmd.dir(dest).args(["-q", "download"]).arg(format!("{name}={version}"));
        cmd.run(&format!("apt-get download {name}={version}"))?;
        let after = list_debs(dest)?;
        after.into_iter().find(|p| !before.contains(p)).with_context(|| format!("apt-get download {name} left no .deb"))
    }
}

/// How recent the package lists must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Any lists will do (resolving a package the cache has).
    Any,
    /// Lists this process downloaded: a download goes by what the mirror serves now.
    ThisRun,
    /// Download them again (`kernels update`).
    Now,
}

/// The private roots whose lists this process downloaded.
fn refreshed_roots() -> &'static std::sync::Mutex<std::collections::HashSet<PathBuf>> {
    static ROOTS: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<PathBuf>>> =
        std::sync::OnceLock::new();
    ROOTS.get_or_init(Default::default)
}

fn list_debs(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mirror_uri_names_the_socket_to_try() {
        assert_eq!(socket_of("http://mirror.example/debian").as_deref(), Some("mirror.example:80"));
        assert_eq!(socket_of("https://user@mirror.example:8443/d").as_deref(), Some("mirror.example:8443"));
        assert_eq!(socket_of("http://[::1]/debian").as_deref(), Some("[::1]:80"));
        assert_eq!(socket_of("file:/srv/mirror"), None);
        assert_eq!(socket_of("file:///srv/mirror"), None);
    }
}
