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
//! - KIP-848 consumer groups (key versions 3, 5, 6, 7, 8, values in the flexible encoding
//!   with tagged fields): the group epoch, each member's metadata, the target assignment
//!   epoch, each member's target, and each member's current assignment and epochs.
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
    ConsumerGroupMetadata {
        group: String,
    },
    ConsumerMemberMetadata {
        group: String,
        member: String,
    },
    ConsumerTargetAssignmentMetadata {
        group: String,
    },
    ConsumerTargetAssignmentMember {
        group: String,
        member: String,
    },
    ConsumerCurrentAssignment {
        group: String,
        member: String,
    },
}

/// Partitions by topic id, as the consumer group records list them.
pub type TopicPartitions = Vec<(uuid::Uuid, Vec<i32>)>;

/// A KIP-848 member's subscription and identity as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerMemberValue {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
}

/// A KIP-848 member's epochs and current assignment as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CurrentAssignmentValue {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: i8,
    pub assigned: TopicPartitions,
    pub pending_revocation: TopicPartitions,
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
            RecordKey::OffsetCommit { group, .. }
            | RecordKey::GroupMetadata { group }
            | RecordKey::ConsumerGroupMetadata { group }
            | RecordKey::ConsumerMemberMetadata { group, .. }
            | RecordKey::ConsumerTargetAssignmentMetadata { group }
            | RecordKey::ConsumerTargetAssignmentMember { group, .. }
            | RecordKey::ConsumerCurrentAssignment { group, .. } => group,
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
            RecordKey::ConsumerGroupMetadata { group } => {
                out.put_i16(3);
                put_string(&mut out, group);
            }
            RecordKey::ConsumerMemberMetadata { group, member } => {
                out.put_i16(5);
                put_string(&mut out, group);
                put_string(&mut out, member);
            }
            RecordKey::ConsumerTargetAssignmentMetadata { group } => {
                out.put_i16(6);
                put_string(&mut out, group);
            }
            RecordKey::ConsumerTargetAssignmentMember { group, member } => {
                out.put_i16(7);
                put_string(&mut out, group);
                put_string(&mut out, member);
            }
            RecordKey::ConsumerCurrentAssignment { group, member } => {
                out.put_i16(8);
                put_string(&mut out, group);
                put_string(&mut out, member);
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
            3 => RecordKey::ConsumerGroupMetadata {
                group: get_string(&mut bytes)?,
            },
            5 => RecordKey::ConsumerMemberMetadata {
                group: get_string(&mut bytes)?,
                member: get_string(&mut bytes)?,
            },
            6 => RecordKey::ConsumerTargetAssignmentMetadata {
                group: get_string(&mut bytes)?,
            },
            7 => RecordKey::ConsumerTargetAssignmentMember {
                group: get_string(&mut bytes)?,
                member: get_string(&mut bytes)?,
            },
            8 => RecordKey::ConsumerCurrentAssignment {
                group: get_string(&mut bytes)?,
                member: get_string(&mut bytes)?,
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

/// An epoch value (ConsumerGroupMetadataValue, ConsumerGroupTargetAssignmentMetadataValue):
/// version 0, one int32, no tagged fields written; tagged fields read are skipped.
pub fn encode_epoch(epoch: i32) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(0);
    out.put_i32(epoch);
    put_uvarint(&mut out, 0);
    out.freeze()
}

pub fn decode_epoch(mut bytes: &[u8]) -> Result<i32, RecordError> {
    get_i16(&mut bytes)?;
    let epoch = get_i32(&mut bytes)?;
    skip_tagged_fields(&mut bytes)?;
    Ok(epoch)
}

impl ConsumerMemberValue {
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_i16(0);
        put_compact_nullable_string(&mut out, self.instance_id.as_deref());
        put_compact_nullable_string(&mut out, self.rack_id.as_deref());
        put_compact_nullable_string(&mut out, Some(&self.client_id));
        put_compact_nullable_string(&mut out, Some(&self.client_host));
        put_uvarint(&mut out, self.subscribed_topic_names.len() as u64 + 1);
        for name in &self.subscribed_topic_names {
            put_compact_nullable_string(&mut out, Some(name));
        }
        put_compact_nullable_string(&mut out, self.subscribed_topic_regex.as_deref());
        out.put_i32(self.rebalance_timeout_ms);
        put_compact_nullable_string(&mut out, self.server_assignor.as_deref());
        put_uvarint(&mut out, 0);
        out.freeze()
    }

    pub fn decode(mut bytes: &[u8]) -> Result<ConsumerMemberValue, RecordError> {
        get_i16(&mut bytes)?;
        let instance_id = get_compact_nullable_string(&mut bytes)?;
        let rack_id = get_compact_nullable_string(&mut bytes)?;
        let client_id = get_compact_string(&mut bytes)?;
        let client_host = get_compact_string(&mut bytes)?;
        let count = get_compact_length(&mut bytes)?.unwrap_or(0);
        let mut subscribed_topic_names = Vec::with_capacity(count.min(bytes.len()));
        for _ in 0..count {
            subscribed_topic_names.push(get_compact_string(&mut bytes)?);
        }
        let subscribed_topic_regex = get_compact_nullable_string(&mut bytes)?;
        let rebalance_timeout_ms = get_i32(&mut bytes)?;
        let server_assignor = get_compact_nullable_string(&mut bytes)?;
        skip_tagged_fields(&mut bytes)?;
        Ok(ConsumerMemberValue {
            instance_id,
            rack_id,
            client_id,
            client_host,
            subscribed_topic_names,
            subscribed_topic_regex,
            rebalance_timeout_ms,
            server_assignor,
        })
    }
}

/// ConsumerGroupTargetAssignmentMemberValue: the member's target partitions.
pub fn encode_target(partitions: &TopicPartitions) -> Bytes {
    let mut out = BytesMut::new();
    out.put_i16(0);
    put_topic_partitions(&mut out, partitions);
    put_uvarint(&mut out, 0);
    out.freeze()
}

pub fn decode_target(mut bytes: &[u8]) -> Result<TopicPartitions, RecordError> {
    get_i16(&mut bytes)?;
    let partitions = get_topic_partitions(&mut bytes)?;
    skip_tagged_fields(&mut bytes)?;
    Ok(partitions)
}

impl CurrentAssignmentValue {
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_i16(0);
        out.put_i32(self.member_epoch);
        out.put_i32(self.previous_member_epoch);
        out.put_i8(self.state);
        put_topic_partitions(&mut out, &self.assigned);
        put_topic_partitions(&mut out, &self.pending_revocation);
        put_uvarint(&mut out, 0);
        out.freeze()
    }

    pub fn decode(mut bytes: &[u8]) -> Result<CurrentAssignmentValue, RecordError> {
        get_i16(&mut bytes)?;
        let member_epoch = get_i32(&mut bytes)?;
        let previous_member_epoch = get_i32(&mut bytes)?;
        if bytes.is_empty() {
            return Err(RecordError("truncated"));
        }
        let state = bytes.get_i8();
        let assigned = get_topic_partitions(&mut bytes)?;
        let pending_revocation = get_topic_partitions(&mut bytes)?;
        skip_tagged_fields(&mut bytes)?;
        Ok(CurrentAssignmentValue {
            member_epoch,
            previous_member_epoch,
            state,
            assigned,
            pending_revocation,
        })
    }
}

fn put_uvarint(out: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        out.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

fn get_uvarint(bytes: &mut &[u8]) -> Result<u64, RecordError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        if bytes.is_empty() {
            return Err(RecordError("truncated varint"));
        }
        let byte = bytes.get_u8();
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(RecordError("varint too long"))
}

/// A compact length: None for null (0), else n.
fn get_compact_length(bytes: &mut &[u8]) -> Result<Option<usize>, RecordError> {
    let raw = get_uvarint(bytes)?;
    if raw == 0 {
        return Ok(None);
    }
    let length = (raw - 1) as usize;
    if length > bytes.len() * 4 + 16 {
        return Err(RecordError("length beyond the record"));
    }
    Ok(Some(length))
}

fn put_compact_nullable_string(out: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => {
            put_uvarint(out, s.len() as u64 + 1);
            out.put_slice(s.as_bytes());
        }
        None => put_uvarint(out, 0),
    }
}

fn get_compact_nullable_string(bytes: &mut &[u8]) -> Result<Option<String>, RecordError> {
    match get_compact_length(bytes)? {
        Some(length) => take_str(bytes, length).map(Some),
        None => Ok(None),
    }
}

fn get_compact_string(bytes: &mut &[u8]) -> Result<String, RecordError> {
    get_compact_nullable_string(bytes)?.ok_or(RecordError("null where a string is required"))
}

fn put_topic_partitions(out: &mut BytesMut, list: &TopicPartitions) {
    put_uvarint(out, list.len() as u64 + 1);
    for (topic_id, partitions) in list {
        out.put_slice(topic_id.as_bytes());
        put_uvarint(out, partitions.len() as u64 + 1);
        for p in partitions {
            out.put_i32(*p);
        }
        put_uvarint(out, 0);
    }
}

fn get_topic_partitions(bytes: &mut &[u8]) -> Result<TopicPartitions, RecordError> {
    let count = get_compact_length(bytes)?.unwrap_or(0);
    let mut out = Vec::with_capacity(count.min(bytes.len()));
    for _ in 0..count {
        let topic_id = uuid::Uuid::from_slice(take(bytes, 16, "truncated topic id")?)
            .map_err(|_| RecordError("topic id"))?;
        let n = get_compact_length(bytes)?.unwrap_or(0);
        let mut partitions = Vec::with_capacity(n.min(bytes.len()));
        for _ in 0..n {
            partitions.push(get_i32(bytes)?);
        }
        skip_tagged_fields(bytes)?;
        out.push((topic_id, partitions));
    }
    Ok(out)
}

fn skip_tagged_fields(bytes: &mut &[u8]) -> Result<(), RecordError> {
    let count = get_uvarint(bytes)?;
    for _ in 0..count {
        get_uvarint(bytes)?;
        let size = get_uvarint(bytes)? as usize;
        take(bytes, size, "tagged field beyond the record")?;
    }
    Ok(())
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
    take_str(bytes, length as usize).map(Some)
}

/// The next `length` bytes as UTF-8, for both string encodings.
fn take_str(bytes: &mut &[u8], length: usize) -> Result<String, RecordError> {
    let taken = take(bytes, length, "string beyond the record")?;
    std::str::from_utf8(taken)
        .map(str::to_string)
        .map_err(|_| RecordError("string is not UTF-8"))
}

/// The next `length` bytes, or an error naming what ran past the record.
fn take<'a>(
    bytes: &mut &'a [u8],
    length: usize,
    beyond: &'static str,
) -> Result<&'a [u8], RecordError> {
    if bytes.len() < length {
        return Err(RecordError(beyond));
    }
    let (taken, rest) = bytes.split_at(length);
    *bytes = rest;
    Ok(taken)
}

fn get_string(bytes: &mut &[u8]) -> Result<String, RecordError> {
    get_nullable_string(bytes)?.ok_or(RecordError("null where a string is required"))
}

fn get_bytes(bytes: &mut &[u8]) -> Result<Bytes, RecordError> {
    let length = get_i32(bytes)?;
    if length < 0 {
        return Ok(Bytes::new());
    }
    take(bytes, length as usize, "bytes beyond the record").map(Bytes::copy_from_slice)
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
    fn consumer_group_records_round_trip() {
        let member = ConsumerMemberValue {
            instance_id: None,
            rack_id: Some("r".into()),
            client_id: "c".into(),
            client_host: "/h".into(),
            subscribed_topic_names: vec!["a".into(), "b".into()],
            subscribed_topic_regex: Some("x.*".into()),
            rebalance_timeout_ms: 300,
            server_assignor: Some("uniform".into()),
        };
        assert_eq!(
            ConsumerMemberValue::decode(&member.encode()).unwrap(),
            member
        );
        let id = uuid::Uuid::from_u128(7);
        let current = CurrentAssignmentValue {
            member_epoch: 4,
            previous_member_epoch: 3,
            state: 0,
            assigned: vec![(id, vec![0, 2])],
            pending_revocation: vec![(id, vec![1])],
        };
        let encoded = current.encode();
        assert_eq!(CurrentAssignmentValue::decode(&encoded).unwrap(), current);
        for cut in 0..encoded.len() {
            assert!(CurrentAssignmentValue::decode(&encoded[..cut]).is_err());
        }
        assert_eq!(
            decode_target(&encode_target(&vec![(id, vec![5])])).unwrap(),
            vec![(id, vec![5])]
        );
        assert_eq!(decode_epoch(&encode_epoch(9)).unwrap(), 9);
        for key in [
            RecordKey::ConsumerGroupMetadata { group: "g".into() },
            RecordKey::ConsumerCurrentAssignment {
                group: "g".into(),
                member: "m".into(),
            },
        ] {
            assert_eq!(RecordKey::decode(&key.encode()).unwrap(), Some(key));
        }
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
        assert_eq!(RecordKey::decode(&[0, 99]).unwrap(), None);
    }
}
