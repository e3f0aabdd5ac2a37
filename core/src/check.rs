//! Layer `check`: pure judgements over values, no I/O. The kernel log parser, the oracle
//! (O1-O3), the model (O4), page contents (O5), the scenario's `expect:` block, and the
//! [`outcome::Outcome`] they fill in.

pub mod contents;
pub mod dmesg;
pub mod expect;
pub mod model;
pub mod oracle;
pub mod outcome;
pub mod problem;
pub mod swap;
pub mod triggers;
pub mod vma_diff;
pub mod vmas;
pub mod worker;

/// The (major, minor) of a `uname -r` release such as `6.12.117` or `6.1.0-40-arm64`;
/// the rules that changed in a kernel version compare against it.
pub fn release_version(release: &str) -> (u32, u32) {
    let mut nums = release.split(|c: char| !c.is_ascii_digit()).map(|n| n.parse::<u32>().unwrap_or(0));
    (nums.next().unwrap_or(0), nums.next().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    #[test]
    fn release_versions() {
        assert_eq!(super::release_version("6.1.0-40-arm64"), (6, 1));
        assert_eq!(super::release_version("6.12.117"), (6, 12));
        assert_eq!(super::release_version("7.2.0-rc1+"), (7, 2));
        assert_eq!(super::release_version(""), (0, 0));
    }
}
