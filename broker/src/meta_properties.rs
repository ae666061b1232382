//! Kafka's `meta.properties`: which cluster and which node a log directory belongs to.
//!
//! `weir format` writes it, as `kafka-storage.sh format` does, before the first start; a
//! directory that was never formatted is formatted on its first start, with a new cluster
//! id (or `CLUSTER_ID` from the environment). Every start checks the file against the
//! configuration and the metadata store, and refuses, naming both sides, a directory that
//! belongs to another node or another cluster: such data must never be served as this
//! node's.
//!
//! The file, as Kafka 4.1 writes it (version 1, KRaft):
//! ```text
//! #
//! #<date>
//! node.id=1
//! directory.id=<uuid>
//! version=1
//! cluster.id=<uuid>
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use uuid::Uuid;

pub const FILE_NAME: &str = "meta.properties";

/// Why a directory's identity cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {reason}")]
    Malformed { path: PathBuf, reason: String },
    /// Kafka's MetaPropertiesEnsemble words both mismatches this way.
    #[error(
        "Stored node id {stored} doesn't match previous node id {configured} in {dir}. If you \
         moved your data, make sure your configured node id matches. If you intend to create \
         a new node, you should remove all data in your data directories."
    )]
    NodeId {
        stored: i32,
        configured: i32,
        dir: PathBuf,
    },
    #[error("Invalid cluster.id in: {path}. Expected {expected}, but read {read}")]
    ClusterId {
        path: PathBuf,
        expected: String,
        read: String,
    },
}

/// What `meta.properties` says about its directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    pub cluster_id: String,
    pub node_id: i32,
    /// Kafka 3.7+ (KIP-858); absent in files weir wrote before it recorded one.
    pub directory_id: Option<String>,
}

impl MetaProperties {
    /// A new identity for a directory of `node_id` in `cluster_id`.
    pub fn new(cluster_id: &str, node_id: i32) -> MetaProperties {
        MetaProperties {
            cluster_id: cluster_id.to_string(),
            node_id,
            directory_id: Some(random_id()),
        }
    }

    /// Reads `dir/meta.properties`; None if the directory was never formatted.
    pub fn read(dir: &Path) -> Result<Option<MetaProperties>, IdentityError> {
        let path = dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(IdentityError::Read { path, source }),
        };
        let fields: BTreeMap<&str, &str> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let malformed = |reason: &str| IdentityError::Malformed {
            path: path.clone(),
            reason: reason.to_string(),
        };
        if fields.get("version") != Some(&"1") {
            return Err(malformed("only version=1 (KRaft) is supported"));
        }
        // Not checked as a UUID: weir once took any CLUSTER_ID, and such directories must
        // keep starting. New ids are checked where they are given (format, CLUSTER_ID).
        let cluster_id = fields
            .get("cluster.id")
            .filter(|id| !id.is_empty())
            .ok_or_else(|| malformed("no cluster.id"))?;
        let node_id = fields
            .get("node.id")
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| malformed("no valid node.id"))?;
        Ok(Some(MetaProperties {
            cluster_id: cluster_id.to_string(),
            node_id,
            directory_id: fields.get("directory.id").map(|id| id.to_string()),
        }))
    }

    /// Writes `dir/meta.properties` durably: a temporary file, fsynced, renamed over.
    pub fn write(&self, dir: &Path) -> Result<(), IdentityError> {
        let path = dir.join(FILE_NAME);
        let temp = dir.join(format!("{FILE_NAME}.tmp"));
        let failed = |source| IdentityError::Write {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::File::create(&temp).map_err(failed)?;
        file.write_all(self.render().as_bytes()).map_err(failed)?;
        file.sync_all().map_err(failed)?;
        std::fs::rename(&temp, &path).map_err(failed)?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(failed)
    }

    fn render(&self) -> String {
        let mut out = format!("#\n#Written by weir\nnode.id={}\n", self.node_id);
        if let Some(id) = &self.directory_id {
            out.push_str(&format!("directory.id={id}\n"));
        }
        out.push_str(&format!("version=1\ncluster.id={}\n", self.cluster_id));
        out
    }

    /// Refuses a directory of another node.
    pub fn check_node(&self, configured: i32, dir: &Path) -> Result<(), IdentityError> {
        if self.node_id != configured {
            return Err(IdentityError::NodeId {
                stored: self.node_id,
                configured,
                dir: dir.to_path_buf(),
            });
        }
        Ok(())
    }
}

/// A cluster id as `kafka-storage.sh random-uuid` prints one: 16 random bytes in URL-safe
/// base64 without padding, never starting with '-' (it would read as an option).
pub fn random_id() -> String {
    loop {
        let id = base64_uuid(Uuid::new_v4());
        if !id.starts_with('-') {
            return id;
        }
    }
}

/// Kafka's `Uuid.fromString` rule: 22 characters of URL-safe base64, 16 bytes.
pub fn check_cluster_id(id: &str) -> Result<(), String> {
    let valid = id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "Cluster ID string {id} does not appear to be a valid UUID: it must be 22 \
             characters of URL-safe base64 (kafka-storage.sh random-uuid makes one)"
        ))
    }
}

/// A UUID in URL-safe base64 without padding, as Kafka prints ids.
pub fn base64_uuid(id: Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_files_read_back_and_kafkas_own_parse() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(MetaProperties::read(dir.path()).unwrap(), None);
        let props = MetaProperties::new(&random_id(), 3);
        props.write(dir.path()).unwrap();
        assert_eq!(MetaProperties::read(dir.path()).unwrap(), Some(props));
        // As kafka-storage.sh format writes it (Kafka 4.1.2).
        std::fs::write(
            dir.path().join(FILE_NAME),
            "#\n#Tue Dec 01 12:00:00 UTC 2026\nnode.id=1\ndirectory.id=7lwx0SHgQKOoe1JEmJUXwA\n\
             version=1\ncluster.id=MkU3OEVBNTcwNTJENDM2Qg\n",
        )
        .unwrap();
        let kafka = MetaProperties::read(dir.path()).unwrap().unwrap();
        assert_eq!(kafka.cluster_id, "MkU3OEVBNTcwNTJENDM2Qg");
        assert_eq!(kafka.node_id, 1);
        assert!(kafka.check_node(2, dir.path()).is_err());
    }

    #[test]
    fn ids_look_like_kafkas() {
        assert_eq!(base64_uuid(Uuid::from_u128(0)), "AAAAAAAAAAAAAAAAAAAAAA");
    }

    #[test]
    fn cluster_ids_are_checked_as_kafka_does() {
        for _ in 0..100 {
            let id = random_id();
            assert!(check_cluster_id(&id).is_ok(), "{id}");
            assert!(!id.starts_with('-'));
        }
        assert!(check_cluster_id("short").is_err());
        assert!(check_cluster_id("MkU3OEVBNTcwNTJENDM2Q!").is_err());
    }
}
