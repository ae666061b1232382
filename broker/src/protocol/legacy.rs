//! Request versions that Kafka 4 removed (KIP-896) and weir still serves, so that clients
//! older than Kafka 4 accepts keep working.
//!
//! kafka-protocol's codecs are generated from Kafka 4's message definitions and start at
//! Kafka 4's oldest versions. The formats below are Kafka 3.9's definitions of the older
//! versions (checked against `kafka-clients` 3.9's schemas). A request at such a version
//! is decoded here into the message of the oldest version the codec reads, with the
//! fields that version lacks at their defaults; handlers see the request's real version,
//! and its response is encoded here in the old format. Several old versions differ from
//! the next one only in how the broker treated them (OffsetFetch v0 read ZooKeeper), and
//! are handed to the codec at that next version.
//!
//! Record sets travel unchanged: the Produce and Fetch handlers convert message sets of
//! magic 0 and 1 ([`super::legacy_records`]).

use anyhow::{bail, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::list_offsets_response::ListOffsetsPartitionResponse;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// The oldest version kafka-protocol's codec reads, for the APIs weir serves below it.
pub fn first_codec_version(key: ApiKey) -> Option<i16> {
    Some(match key {
        ApiKey::Produce => 3,
        ApiKey::Fetch => 4,
        ApiKey::ListOffsets => 1,
        ApiKey::OffsetCommit => 2,
        ApiKey::OffsetFetch => 1,
        ApiKey::CreateTopics => 2,
        ApiKey::DeleteTopics => 1,
        ApiKey::DescribeConfigs => 1,
        ApiKey::DescribeLogDirs => 1,
        ApiKey::OffsetForLeaderEpoch => 2,
        _ => return None,
    })
}

/// ListOffsets v0 asks for up to `max_num_offsets` offsets and is answered with a list,
/// fields the codec's messages lack. Both travel between this module and the handler in
/// the partition's tagged-field map under this key: v0 has no tagged fields on the wire,
/// so no client's tag can collide, and only v0 answers (encoded here) carry it.
const LIST_OFFSETS_V0_TAG: i32 = i32::MAX;

/// The `max_num_offsets` of a ListOffsets v0 partition (1 for later versions).
pub fn max_num_offsets(partition: &ListOffsetsPartition) -> i32 {
    partition
        .unknown_tagged_fields
        .get(&LIST_OFFSETS_V0_TAG)
        .and_then(|b| <[u8; 4]>::try_from(&b[..]).ok())
        .map_or(1, i32::from_be_bytes)
}

/// Puts ListOffsets v0's list of offsets in a partition's answer.
pub fn with_old_style_offsets(
    mut response: ListOffsetsPartitionResponse,
    offsets: &[i64],
) -> ListOffsetsPartitionResponse {
    let bytes: Vec<u8> = offsets.iter().flat_map(|o| o.to_be_bytes()).collect();
    response
        .unknown_tagged_fields
        .insert(LIST_OFFSETS_V0_TAG, Bytes::from(bytes));
    response
}

/// Whether a request version is one this module decodes.
pub fn is_legacy(key: ApiKey, version: i16) -> bool {
    first_codec_version(key).is_some_and(|first| version < first)
}

/// Decodes the body of a request at a removed version into the message of the codec's
/// oldest version.
pub fn decode_request(key: ApiKey, version: i16, buf: &mut Bytes) -> Result<RequestKind> {
    Ok(match key {
        ApiKey::Produce => RequestKind::Produce(produce(buf)?),
        ApiKey::Fetch => RequestKind::Fetch(fetch(buf, version)?),
        ApiKey::ListOffsets => RequestKind::ListOffsets(list_offsets(buf)?),
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(offset_commit(buf, version)?),
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(OffsetFetchRequest::decode(buf, 1)?),
        ApiKey::CreateTopics if version == 1 => {
            RequestKind::CreateTopics(CreateTopicsRequest::decode(buf, 2)?)
        }
        ApiKey::CreateTopics => RequestKind::CreateTopics(create_topics_v0(buf)?),
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(DeleteTopicsRequest::decode(buf, 1)?),
        ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(describe_configs(buf)?),
        ApiKey::DescribeLogDirs => {
            RequestKind::DescribeLogDirs(DescribeLogDirsRequest::decode(buf, 1)?)
        }
        ApiKey::OffsetForLeaderEpoch => {
            RequestKind::OffsetForLeaderEpoch(offset_for_leader_epoch(buf)?)
        }
        other => bail!("{other:?} v{version} has no legacy codec"),
    })
}

/// Encodes a response to a request of a removed version, in that version's format.
pub fn encode_response(
    key: ApiKey,
    version: i16,
    body: &ResponseKind,
    out: &mut BytesMut,
) -> Result<()> {
    match body {
        ResponseKind::Produce(r) => produce_response(r, version, out)?,
        ResponseKind::Fetch(r) => fetch_response(r, version, out)?,
        ResponseKind::ListOffsets(r) => list_offsets_response(r, out)?,
        // v0 and v1 answer exactly as v2.
        ResponseKind::OffsetCommit(r) => r.encode(out, 2)?,
        ResponseKind::OffsetFetch(r) => r.encode(out, 1)?,
        ResponseKind::CreateTopics(r) => create_topics_response(r, version, out)?,
        ResponseKind::DeleteTopics(r) => delete_topics_response(r, out)?,
        ResponseKind::DescribeConfigs(r) => describe_configs_response(r, out)?,
        ResponseKind::DescribeLogDirs(r) => r.encode(out, 1)?,
        ResponseKind::OffsetForLeaderEpoch(r) => offset_for_leader_epoch_response(r, version, out)?,
        _ => bail!("{key:?} v{version} has no legacy codec"),
    }
    Ok(())
}

// ---- Reading -------------------------------------------------------------------------

fn take(buf: &mut Bytes, n: usize) -> Result<Bytes> {
    if buf.remaining() < n {
        bail!("{n} bytes needed, {} remaining", buf.remaining());
    }
    Ok(buf.split_to(n))
}

fn read_i8(buf: &mut Bytes) -> Result<i8> {
    Ok(take(buf, 1)?.get_i8())
}

fn read_i16(buf: &mut Bytes) -> Result<i16> {
    Ok(take(buf, 2)?.get_i16())
}

fn read_i32(buf: &mut Bytes) -> Result<i32> {
    Ok(take(buf, 4)?.get_i32())
}

fn read_i64(buf: &mut Bytes) -> Result<i64> {
    Ok(take(buf, 8)?.get_i64())
}

fn read_nullable_string(buf: &mut Bytes) -> Result<Option<StrBytes>> {
    let length = read_i16(buf)?;
    if length < 0 {
        return Ok(None);
    }
    Ok(Some(StrBytes::from_utf8(take(buf, length as usize)?)?))
}

fn read_string(buf: &mut Bytes) -> Result<StrBytes> {
    match read_nullable_string(buf)? {
        Some(s) => Ok(s),
        None => bail!("null string in a non-nullable field"),
    }
}

fn read_nullable_bytes(buf: &mut Bytes) -> Result<Option<Bytes>> {
    let length = read_i32(buf)?;
    if length < 0 {
        return Ok(None);
    }
    take(buf, length as usize).map(Some)
}

/// An array of elements (-1: null). A count beyond the bytes left is refused before
/// anything is reserved, as in the patched codec (every element takes at least a byte).
fn nullable_array<T>(
    buf: &mut Bytes,
    mut element: impl FnMut(&mut Bytes) -> Result<T>,
) -> Result<Option<Vec<T>>> {
    let count = read_i32(buf)?;
    if count < 0 {
        return Ok(None);
    }
    if count as usize > buf.remaining() {
        bail!(
            "Array length {count} exceeds the {} bytes remaining",
            buf.remaining()
        );
    }
    let mut out = Vec::with_capacity((count as usize).min(1024));
    for _ in 0..count {
        out.push(element(buf)?);
    }
    Ok(Some(out))
}

fn array<T>(buf: &mut Bytes, element: impl FnMut(&mut Bytes) -> Result<T>) -> Result<Vec<T>> {
    match nullable_array(buf, element)? {
        Some(items) => Ok(items),
        None => bail!("null array in a non-nullable field"),
    }
}

fn produce(buf: &mut Bytes) -> Result<ProduceRequest> {
    let acks = read_i16(buf)?;
    let timeout_ms = read_i32(buf)?;
    let topic_data = array(buf, |buf| {
        let name = TopicName(read_string(buf)?);
        let partition_data = array(buf, |buf| {
            let index = read_i32(buf)?;
            let records = read_nullable_bytes(buf)?;
            Ok(PartitionProduceData::default()
                .with_index(index)
                .with_records(records))
        })?;
        Ok(TopicProduceData::default()
            .with_name(name)
            .with_partition_data(partition_data))
    })?;
    Ok(ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(topic_data))
}

fn fetch(buf: &mut Bytes, version: i16) -> Result<FetchRequest> {
    let replica_id = BrokerId(read_i32(buf)?);
    let max_wait_ms = read_i32(buf)?;
    let min_bytes = read_i32(buf)?;
    // v0-2 had no response limit.
    let max_bytes = if version >= 3 {
        read_i32(buf)?
    } else {
        i32::MAX
    };
    let topics = array(buf, |buf| {
        let topic = TopicName(read_string(buf)?);
        let partitions = array(buf, |buf| {
            Ok(FetchPartition::default()
                .with_partition(read_i32(buf)?)
                .with_fetch_offset(read_i64(buf)?)
                .with_partition_max_bytes(read_i32(buf)?))
        })?;
        Ok(FetchTopic::default()
            .with_topic(topic)
            .with_partitions(partitions))
    })?;
    Ok(FetchRequest::default()
        .with_replica_id(replica_id)
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(max_bytes)
        .with_topics(topics))
}

fn list_offsets(buf: &mut Bytes) -> Result<ListOffsetsRequest> {
    let replica_id = BrokerId(read_i32(buf)?);
    let topics = array(buf, |buf| {
        let name = TopicName(read_string(buf)?);
        let partitions = array(buf, |buf| {
            let mut partition = ListOffsetsPartition::default()
                .with_partition_index(read_i32(buf)?)
                .with_timestamp(read_i64(buf)?);
            let max_num_offsets = read_i32(buf)?;
            partition.unknown_tagged_fields.insert(
                LIST_OFFSETS_V0_TAG,
                Bytes::copy_from_slice(&max_num_offsets.to_be_bytes()),
            );
            Ok(partition)
        })?;
        Ok(ListOffsetsTopic::default()
            .with_name(name)
            .with_partitions(partitions))
    })?;
    Ok(ListOffsetsRequest::default()
        .with_replica_id(replica_id)
        .with_topics(topics))
}

fn offset_commit(buf: &mut Bytes, version: i16) -> Result<OffsetCommitRequest> {
    let group_id = GroupId(read_string(buf)?);
    let mut request = OffsetCommitRequest::default().with_group_id(group_id);
    if version >= 1 {
        request.generation_id_or_member_epoch = read_i32(buf)?;
        request.member_id = read_string(buf)?;
    }
    request.topics = array(buf, |buf| {
        let name = TopicName(read_string(buf)?);
        let partitions = array(buf, |buf| {
            let partition = read_i32(buf)?;
            let offset = read_i64(buf)?;
            if version == 1 {
                // commit_timestamp: Kafka 3 dropped its use; expiry follows the group's rules.
                read_i64(buf)?;
            }
            Ok(OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)
                .with_committed_metadata(read_nullable_string(buf)?))
        })?;
        Ok(OffsetCommitRequestTopic::default()
            .with_name(name)
            .with_partitions(partitions))
    })?;
    Ok(request)
}

fn create_topics_v0(buf: &mut Bytes) -> Result<CreateTopicsRequest> {
    let topics = array(buf, |buf| {
        let name = TopicName(read_string(buf)?);
        let num_partitions = read_i32(buf)?;
        let replication_factor = read_i16(buf)?;
        let assignments = array(buf, |buf| {
            Ok(CreatableReplicaAssignment::default()
                .with_partition_index(read_i32(buf)?)
                .with_broker_ids(array(buf, |buf| Ok(BrokerId(read_i32(buf)?)))?))
        })?;
        let configs = array(buf, |buf| {
            Ok(CreatableTopicConfig::default()
                .with_name(read_string(buf)?)
                .with_value(read_nullable_string(buf)?))
        })?;
        Ok(CreatableTopic::default()
            .with_name(name)
            .with_num_partitions(num_partitions)
            .with_replication_factor(replication_factor)
            .with_assignments(assignments)
            .with_configs(configs))
    })?;
    Ok(CreateTopicsRequest::default()
        .with_topics(topics)
        .with_timeout_ms(read_i32(buf)?))
}

fn describe_configs(buf: &mut Bytes) -> Result<DescribeConfigsRequest> {
    let resources = array(buf, |buf| {
        Ok(DescribeConfigsResource::default()
            .with_resource_type(read_i8(buf)?)
            .with_resource_name(read_string(buf)?)
            .with_configuration_keys(nullable_array(buf, read_string)?))
    })?;
    Ok(DescribeConfigsRequest::default().with_resources(resources))
}

fn offset_for_leader_epoch(buf: &mut Bytes) -> Result<OffsetForLeaderEpochRequest> {
    let topics = array(buf, |buf| {
        let topic = TopicName(read_string(buf)?);
        let partitions = array(buf, |buf| {
            Ok(OffsetForLeaderPartition::default()
                .with_partition(read_i32(buf)?)
                .with_leader_epoch(read_i32(buf)?))
        })?;
        Ok(OffsetForLeaderTopic::default()
            .with_topic(topic)
            .with_partitions(partitions))
    })?;
    Ok(OffsetForLeaderEpochRequest::default().with_topics(topics))
}

// ---- Writing -------------------------------------------------------------------------

fn put_string(out: &mut BytesMut, s: &str) -> Result<()> {
    let Ok(length) = i16::try_from(s.len()) else {
        bail!("a string of {} bytes does not fit an INT16 length", s.len());
    };
    out.put_i16(length);
    out.put_slice(s.as_bytes());
    Ok(())
}

fn put_nullable_string(out: &mut BytesMut, s: Option<&str>) -> Result<()> {
    match s {
        Some(s) => put_string(out, s),
        None => {
            out.put_i16(-1);
            Ok(())
        }
    }
}

/// An array: its count, then each element as `put` writes it.
fn put_array<T>(
    out: &mut BytesMut,
    items: &[T],
    mut put: impl FnMut(&mut BytesMut, &T) -> Result<()>,
) -> Result<()> {
    out.put_i32(items.len() as i32);
    items.iter().try_for_each(|item| put(out, item))
}

fn produce_response(r: &ProduceResponse, version: i16, out: &mut BytesMut) -> Result<()> {
    put_array(out, &r.responses, |out, topic| {
        put_string(out, &topic.name)?;
        put_array(out, &topic.partition_responses, |out, p| {
            out.put_i32(p.index);
            out.put_i16(p.error_code);
            out.put_i64(p.base_offset);
            if version >= 2 {
                out.put_i64(p.log_append_time_ms);
            }
            Ok(())
        })
    })?;
    if version >= 1 {
        out.put_i32(r.throttle_time_ms);
    }
    Ok(())
}

fn fetch_response(r: &FetchResponse, version: i16, out: &mut BytesMut) -> Result<()> {
    if version >= 1 {
        out.put_i32(r.throttle_time_ms);
    }
    put_array(out, &r.responses, |out, topic| {
        put_string(out, &topic.topic)?;
        put_array(out, &topic.partitions, |out, p| {
            out.put_i32(p.partition_index);
            out.put_i16(p.error_code);
            out.put_i64(p.high_watermark);
            let records = p.records.as_deref().unwrap_or_default();
            out.put_i32(records.len() as i32);
            out.put_slice(records);
            Ok(())
        })
    })
}

/// v0's list of offsets, which the handler put in the tagged-field map.
fn list_offsets_response(r: &ListOffsetsResponse, out: &mut BytesMut) -> Result<()> {
    put_array(out, &r.topics, |out, topic| {
        put_string(out, &topic.name)?;
        put_array(out, &topic.partitions, |out, p| {
            out.put_i32(p.partition_index);
            out.put_i16(p.error_code);
            let offsets = p
                .unknown_tagged_fields
                .get(&LIST_OFFSETS_V0_TAG)
                .map(|b| b.chunks_exact(8).collect::<Vec<_>>())
                .unwrap_or_default();
            put_array(out, &offsets, |out, offset| {
                out.put_slice(offset);
                Ok(())
            })
        })
    })
}

fn create_topics_response(
    r: &CreateTopicsResponse,
    version: i16,
    out: &mut BytesMut,
) -> Result<()> {
    put_array(out, &r.topics, |out, topic| {
        put_string(out, &topic.name)?;
        out.put_i16(topic.error_code);
        if version >= 1 {
            put_nullable_string(out, topic.error_message.as_deref())?;
        }
        Ok(())
    })
}

fn delete_topics_response(r: &DeleteTopicsResponse, out: &mut BytesMut) -> Result<()> {
    put_array(out, &r.responses, |out, topic| {
        put_string(out, topic.name.as_ref().map_or("", |n| n.as_str()))?;
        out.put_i16(topic.error_code);
        Ok(())
    })
}

/// Kafka's ConfigSource DEFAULT_CONFIG: what v0's `is_default` reported.
const DEFAULT_CONFIG: i8 = 5;

fn describe_configs_response(r: &DescribeConfigsResponse, out: &mut BytesMut) -> Result<()> {
    out.put_i32(r.throttle_time_ms);
    put_array(out, &r.results, |out, result| {
        out.put_i16(result.error_code);
        put_nullable_string(out, result.error_message.as_deref())?;
        out.put_i8(result.resource_type);
        put_string(out, &result.resource_name)?;
        put_array(out, &result.configs, |out, config| {
            put_string(out, &config.name)?;
            put_nullable_string(out, config.value.as_deref())?;
            out.put_u8(config.read_only as u8);
            out.put_u8((config.config_source == DEFAULT_CONFIG) as u8);
            out.put_u8(config.is_sensitive as u8);
            Ok(())
        })
    })
}

fn offset_for_leader_epoch_response(
    r: &OffsetForLeaderEpochResponse,
    version: i16,
    out: &mut BytesMut,
) -> Result<()> {
    put_array(out, &r.topics, |out, topic| {
        put_string(out, &topic.topic)?;
        put_array(out, &topic.partitions, |out, p| {
            out.put_i16(p.error_code);
            out.put_i32(p.partition);
            if version >= 1 {
                out.put_i32(p.leader_epoch);
            }
            out.put_i64(p.end_offset);
            Ok(())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The old formats that equal a newer one byte for byte, checked through the codec.
    #[test]
    fn versions_handed_to_the_codec_share_its_format() {
        // OffsetCommit v0/v1 responses = v2.
        let response = OffsetCommitResponse::default();
        let mut a = BytesMut::new();
        encode_response(
            ApiKey::OffsetCommit,
            0,
            &ResponseKind::OffsetCommit(response),
            &mut a,
        )
        .unwrap();
        assert_eq!(&a[..], &[0, 0, 0, 0]);
    }

    #[test]
    fn produce_v0_to_v2_decode_and_answer_in_their_format() {
        let mut frame = BytesMut::new();
        frame.put_i16(1); // acks
        frame.put_i32(1500);
        frame.put_i32(1);
        put_string(&mut frame, "t").unwrap();
        frame.put_i32(1);
        frame.put_i32(3);
        frame.put_i32(2);
        frame.put_slice(b"xy");
        let request = produce(&mut frame.freeze()).unwrap();
        assert_eq!(request.acks, 1);
        assert_eq!(request.transactional_id, None);
        let data = &request.topic_data[0].partition_data[0];
        assert_eq!((data.index, data.records.as_deref()), (3, Some(&b"xy"[..])));

        let mut response = ProduceResponse::default().with_throttle_time_ms(7);
        response.responses.push(
            produce_response::TopicProduceResponse::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partition_responses(vec![
                    produce_response::PartitionProduceResponse::default()
                        .with_index(3)
                        .with_base_offset(42)
                        .with_log_append_time_ms(-1),
                ]),
        );
        let sizes: Vec<usize> = (0..3)
            .map(|v| {
                let mut out = BytesMut::new();
                produce_response(&response, v, &mut out).unwrap();
                out.len()
            })
            .collect();
        // v1 adds the throttle time, v2 the log append time.
        assert_eq!(
            sizes,
            vec![4 + 3 + 4 + 14, 4 + 3 + 4 + 14 + 4, 4 + 3 + 4 + 22 + 4]
        );
        let mut v2 = BytesMut::new();
        produce_response(&response, 2, &mut v2).unwrap();
        let mut v3 = BytesMut::new();
        response.encode(&mut v3, 3).unwrap();
        assert_eq!(v2, v3, "v2 answers as v3");
    }

    #[test]
    fn counts_beyond_the_frame_are_refused() {
        let mut frame = BytesMut::new();
        frame.put_i16(1);
        frame.put_i32(1500);
        frame.put_i32(i32::MAX);
        let error = produce(&mut frame.freeze()).unwrap_err();
        assert!(error.to_string().contains("exceeds"), "{error}");
    }

    #[test]
    fn fetch_v3_reads_max_bytes_and_v0_does_not() {
        let body = |v3: bool| {
            let mut frame = BytesMut::new();
            frame.put_i32(-1);
            frame.put_i32(500);
            frame.put_i32(1);
            if v3 {
                frame.put_i32(1000);
            }
            frame.put_i32(1);
            put_string(&mut frame, "t").unwrap();
            frame.put_i32(1);
            frame.put_i32(0);
            frame.put_i64(5);
            frame.put_i32(4096);
            frame.freeze()
        };
        let v0 = fetch(&mut body(false), 0).unwrap();
        assert_eq!(v0.max_bytes, i32::MAX);
        let v3 = fetch(&mut body(true), 3).unwrap();
        assert_eq!(v3.max_bytes, 1000);
        let p = &v3.topics[0].partitions[0];
        assert_eq!((p.fetch_offset, p.partition_max_bytes), (5, 4096));
        assert_eq!(v3.session_epoch, -1, "no fetch session before v7");
    }
}
