//! The records of `__consumer_offsets`, in Apache Kafka's binary formats.
//!
//! Keys say what a record is about; values carry its state; a null value (tombstone)
//! deletes it, which lets the compacting cleaner drop old commits. The formats are Kafka's,
//! so tools that read `__consumer_offsets` (and a Kafka broker reading our log) agree:
//!
//! - key version 1: an offset commit (`group`, `topic`, `partition`); value version 3:
//!   offset, leader epoch, metadata, commit timestamp.
//! - key version 2: a classic group's metadata (`group`); value version 3: protocol type,
//!   generation, protocol, leader, state timestamp, members with their subscriptions and
//!   assignments.
//!
//! Decoding never panics on stored bytes: a damaged record is an error the loader reports.

use bytes::{Buf, BufMut, Bytes, BytesMut};

const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
const GROUP_METADATA_KEY_VERSION: i16 = 2;
const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
const GROUP_METADATA_VALUE_VERSION: i16 = 3;

/// What a record is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKey {
    OffsetCommit {
        group: String,
        topic: String,
        partition: i32,
    },
    GroupMetadata {
        group: String,
    },
}

/// A committed offset as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// One member of a classic group as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A classic group's metadata as stored after each completed rebalance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp_ms: i64,
    pub members: Vec<StoredMember>,
}

/// A stored record that cannot be read back.
#[derive(Debug, thiserror::Error)]
#[error("damaged __consumer_offsets record: {0}")]
pub struct RecordError(pub &'static str);

impl RecordKey {
    pub fn group(&self) -> &str {
        match self {
            RecordKey::OffsetCommit { group, .. } | RecordKey::GroupMetadata { group } => group,
        }
    }

    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        match self {
            RecordKey::OffsetCommit {
                group,
                topic,
                partition,
            } => {
                out.put_i16(OFFSET_COMMIT_KEY_VERSION);
                put_string(&mut out, group);
                put_string(&mut out, topic);
                out.put_i32(*partition);
            }
            RecordKey::GroupMetadata { group } => {
                out.put_i16(GROUP_METADATA_KEY_VERSION);
                put_string(&mut out, group);
            }
        }
        out.freeze()
    }

    /// Reads a key; `Ok(None)` for record types this broker does not keep (KIP-848 and
    /// share-group records written by a newer Kafka), which are skipped.
    pub fn decode(mut bytes: &[u8]) -> Result<Option<RecordKey>, RecordError> {
        let version = get_i16(&mut bytes)?;
        let key = match version {
            0 | 1 => RecordKey::OffsetCommit {
                group: get_string(&mut bytes)?,
                topic: get_string(&mut bytes)?,
                partition: get_i32(&mut bytes)?,
            },
            2 => RecordKey::GroupMetadata {
                group: get_string(&mut bytes)?,
            },
            _ => return Ok(None),
        };
        Ok(Some(key))
    }
}

impl OffsetCommitValue {
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_i16(OFFSET_COMMIT_VALUE_VERSION);
        out.put_i64(self.offset);
        out.put_i32(self.leader_epoch);
        put_string(&mut out, &self.metadata);
        out.put_i64(self.commit_timestamp_ms);
        out.freeze()
    }

    /// Reads value versions 0-3 (the versions Kafka writes without tagged fields).
    pub fn decode(mut bytes: &[u8]) -> Result<OffsetCommitValue, RecordError> {
        let version = get_i16(&mut bytes)?;
        if !(0..=3).contains(&version) {
            return Err(RecordError("unknown offset commit value version"));
        }
        let offset = get_i64(&mut bytes)?;
        let leader_epoch = if version >= 3 {
            get_i32(&mut bytes)?
        } else {
            -1
        };
        let metadata = get_string(&mut bytes)?;
        let commit_timestamp_ms = get_i64(&mut bytes)?;
        Ok(OffsetCommitValue {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp_ms,
        })
    }
}

impl GroupMetadataValue {
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_i16(GROUP_METADATA_VALUE_VERSION);
        put_string(&mut out, &self.protocol_type);
        out.put_i32(self.generation);
        put_nullable_string(&mut out, self.protocol.as_deref());
        put_nullable_string(&mut out, self.leader.as_deref());
        out.put_i64(self.current_state_timestamp_ms);
        out.put_i32(self.members.len() as i32);
        for member in &self.members {
            put_string(&mut out, &member.member_id);
            put_nullable_string(&mut out, member.group_instance_id.as_deref());
            put_string(&mut out, &member.client_id);
            put_string(&mut out, &member.client_host);
            out.put_i32(member.rebalance_timeout_ms);
            out.put_i32(member.session_timeout_ms);
            put_bytes(&mut out, &member.subscription);
            put_bytes(&mut out, &member.assignment);
        }
        out.freeze()
    }

    /// Reads value versions 0-3 (the versions without tagged fields).
    pub fn decode(mut bytes: &[u8]) -> Result<GroupMetadataValue, RecordError> {
        let version = get_i16(&mut bytes)?;
        if !(0..=3).contains(&version) {
            return Err(RecordError("unknown group metadata value version"));
        }
        let protocol_type = get_string(&mut bytes)?;
        let generation = get_i32(&mut bytes)?;
        let protocol = get_nullable_string(&mut bytes)?;
        let leader = get_nullable_string(&mut bytes)?;
        let current_state_timestamp_ms = if version >= 2 {
            get_i64(&mut bytes)?
        } else {
            -1
        };
        let count = get_i32(&mut bytes)?;
        if count < 0 || count as usize > bytes.len() {
            return Err(RecordError("member count beyond the record"));
        }
        let mut members = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let member_id = get_string(&mut bytes)?;
            let group_instance_id = if version >= 3 {
                get_nullable_string(&mut bytes)?
            } else {
                None
            };
            let client_id = get_string(&mut bytes)?;
            let client_host = get_string(&mut bytes)?;
            let rebalance_timeout_ms = if version >= 1 {
                get_i32(&mut bytes)?
            } else {
                -1
            };
            let session_timeout_ms = get_i32(&mut bytes)?;
            let subscription = get_bytes(&mut bytes)?;
            let assignment = get_bytes(&mut bytes)?;
            members.push(StoredMember {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance_timeout_ms: if rebalance_timeout_ms < 0 {
                    session_timeout_ms
                } else {
                    rebalance_timeout_ms
                },
                session_timeout_ms,
                subscription,
                assignment,
            });
        }
        Ok(GroupMetadataValue {
            protocol_type,
            generation,
            protocol,
            leader,
            current_state_timestamp_ms,
            members,
        })
    }
}

fn put_string(out: &mut BytesMut, s: &str) {
    // Group ids, topics and member ids are bounded far below i16::MAX by the protocol.
    out.put_i16(s.len() as i16);
    out.put_slice(s.as_bytes());
}

fn put_nullable_string(out: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(out, s),
        None => out.put_i16(-1),
    }
}

fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    out.put_i32(b.len() as i32);
    out.put_slice(b);
}

fn get_i16(bytes: &mut &[u8]) -> Result<i16, RecordError> {
    if bytes.remaining() < 2 {
        return Err(RecordError("truncated"));
    }
    Ok(bytes.get_i16())
}

fn get_i32(bytes: &mut &[u8]) -> Result<i32, RecordError> {
    if bytes.remaining() < 4 {
        return Err(RecordError("truncated"));
    }
    Ok(bytes.get_i32())
}

fn get_i64(bytes: &mut &[u8]) -> Result<i64, RecordError> {
    if bytes.remaining() < 8 {
        return Err(RecordError("truncated"));
    }
    Ok(bytes.get_i64())
}

fn get_nullable_string(bytes: &mut &[u8]) -> Result<Option<String>, RecordError> {
    let length = get_i16(bytes)?;
    if length < 0 {
        return Ok(None);
    }
    let length = length as usize;
    if bytes.remaining() < length {
        return Err(RecordError("string beyond the record"));
    }
    let s = std::str::from_utf8(&bytes[..length])
        .map_err(|_| RecordError("string is not UTF-8"))?
        .to_string();
    bytes.advance(length);
    Ok(Some(s))
}

fn get_string(bytes: &mut &[u8]) -> Result<String, RecordError> {
    get_nullable_string(bytes)?.ok_or(RecordError("null where a string is required"))
}

fn get_bytes(bytes: &mut &[u8]) -> Result<Bytes, RecordError> {
    let length = get_i32(bytes)?;
    if length < 0 {
        return Ok(Bytes::new());
    }
    let length = length as usize;
    if bytes.remaining() < length {
        return Err(RecordError("bytes beyond the record"));
    }
    let out = Bytes::copy_from_slice(&bytes[..length]);
    bytes.advance(length);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let key = RecordKey::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
        };
        assert_eq!(RecordKey::decode(&key.encode()).unwrap(), Some(key));
        let value = OffsetCommitValue {
            offset: 42,
            leader_epoch: 1,
            metadata: "m".into(),
            commit_timestamp_ms: 7,
        };
        assert_eq!(OffsetCommitValue::decode(&value.encode()).unwrap(), value);
        let group = GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 3,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp_ms: 9,
            members: vec![StoredMember {
                member_id: "m1".into(),
                group_instance_id: Some("i".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300,
                session_timeout_ms: 45,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        assert_eq!(GroupMetadataValue::decode(&group.encode()).unwrap(), group);
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let group = GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 1,
            protocol: None,
            leader: None,
            current_state_timestamp_ms: 0,
            members: vec![],
        }
        .encode();
        for cut in 0..group.len() {
            assert!(GroupMetadataValue::decode(&group[..cut]).is_err());
        }
        assert!(RecordKey::decode(&[0, 1, 0x7f]).is_err());
        assert_eq!(RecordKey::decode(&[0, 9]).unwrap(), None);
    }
}
