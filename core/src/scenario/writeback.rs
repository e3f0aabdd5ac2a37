//! The writeback steps' fields: `msync`, `fsync`, `sync` and `drop_caches`.

use super::{count, p0};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Msync {
    #[serde(default = "p0")]
    pub proc: String,
    pub map: String,
    #[serde(default, deserialize_with = "count::opt")]
    #[schemars(with = "Option<count::Count>")]
    pub page: Option<u64>,
    /// Number of pages from `page` (default: 1 when `page` is given, else the map).
    #[serde(default, deserialize_with = "count::opt")]
    #[schemars(with = "Option<count::Count>")]
    pub pages: Option<u64>,
    /// MS_ASYNC instead of MS_SYNC: since 2.6.19 it starts no writeback at all.
    #[serde(default, rename = "async")]
    pub async_: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fsync {
    #[serde(default = "p0")]
    pub proc: String,
    /// A map with a file behind it (memfd, file, ext4).
    pub map: String,
    /// A page of the map, which names the VMA and so the file (default 0).
    #[serde(default, deserialize_with = "count::opt")]
    #[schemars(with = "Option<count::Count>")]
    pub page: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncAll {}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DropCaches {}
