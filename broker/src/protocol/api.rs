//! The one API version table, and request/response framing around kafka-protocol's codecs.
//!
//! [`API_TABLE`] lists every API this broker serves with the versions it serves. ApiVersions
//! is answered from it and [`check_version`] gates dispatch by it, so the two cannot
//! disagree. An API not in the table is absent from ApiVersions and its requests are
//! refused before their bodies are decoded.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::legacy;

/// One served API and the versions it serves and advertises.
#[derive(Debug, Clone, Copy)]
pub struct ApiEntry {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

const fn api(key: ApiKey, min: i16, max: i16) -> ApiEntry {
    ApiEntry { key, min, max }
}

/// The APIs served, at Apache Kafka 4.1's version ranges, extended down to Kafka 3.9's
/// oldest versions where Kafka 4 removed some (KIP-896; they are decoded by
/// [`super::legacy`]): Produce 0-2, Fetch 0-3, ListOffsets 0, OffsetCommit 0-1,
/// OffsetFetch 0, CreateTopics 0-1, DeleteTopics 0, DescribeConfigs 0, DescribeLogDirs 0
/// and OffsetForLeaderEpoch 0-1.
pub static API_TABLE: &[ApiEntry] = &[
    api(ApiKey::Produce, 0, 13),
    api(ApiKey::Fetch, 0, 18),
    api(ApiKey::ListOffsets, 0, 10),
    api(ApiKey::Metadata, 0, 13),
    api(ApiKey::ApiVersions, 0, 4),
    api(ApiKey::CreateTopics, 0, 7),
    api(ApiKey::DeleteTopics, 0, 6),
    // v6 is KIP-939 two-phase commit, which Kafka 4.1 does not enable by default.
    api(ApiKey::InitProducerId, 0, 5),
    api(ApiKey::OffsetForLeaderEpoch, 0, 4),
    api(ApiKey::DescribeConfigs, 0, 4),
    api(ApiKey::DescribeCluster, 0, 2),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::AlterConfigs, 0, 2),
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
    api(ApiKey::DeleteRecords, 0, 2),
    api(ApiKey::DescribeLogDirs, 0, 4),
    api(ApiKey::DescribeTopicPartitions, 0, 0),
    api(ApiKey::FindCoordinator, 0, 6),
    api(ApiKey::JoinGroup, 0, 9),
    api(ApiKey::SyncGroup, 0, 5),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5),
    // v10, topic ids, is not enabled in Kafka 4.1.
    api(ApiKey::OffsetCommit, 0, 9),
    api(ApiKey::OffsetFetch, 0, 9),
    api(ApiKey::OffsetDelete, 0, 0),
    api(ApiKey::ListGroups, 0, 5),
    api(ApiKey::DescribeGroups, 0, 6),
    api(ApiKey::DeleteGroups, 0, 2),
    api(ApiKey::ConsumerGroupHeartbeat, 0, 1),
    api(ApiKey::ConsumerGroupDescribe, 0, 1),
    api(ApiKey::DescribeQuorum, 0, 2),
];

/// APIs served only on the controller listener, to the cluster's own brokers, and not
/// advertised (Kafka's "listeners": ["controller"] APIs).
pub static CONTROLLER_TABLE: &[ApiEntry] = &[
    api(ApiKey::BrokerRegistration, 0, 4),
    api(ApiKey::BrokerHeartbeat, 0, 1),
    api(ApiKey::AllocateProducerIds, 0, 0),
];

/// The table entry for an API key, if this broker serves it.
pub fn entry(key: ApiKey) -> Option<&'static ApiEntry> {
    API_TABLE.iter().find(|e| e.key == key)
}

/// Why a request could not be taken apart.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes is too short for a request header")]
    TooShort(usize),
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    #[error("api {key:?} is not served")]
    NotServed { key: ApiKey },
    #[error("api {key:?} version {version} is not served")]
    UnsupportedVersion { key: ApiKey, version: i16 },
    #[error("malformed {key:?} v{version} request: {reason}")]
    Malformed {
        key: ApiKey,
        version: i16,
        reason: String,
    },
}

/// Checks a request's version against the table.
pub fn check_version(key: ApiKey, version: i16) -> Result<(), FrameError> {
    check_version_on(key, version, false)
}

/// Checks a request's version against the table of its listener: the controller listener
/// also serves [`CONTROLLER_TABLE`].
pub fn check_version_on(key: ApiKey, version: i16, controller: bool) -> Result<(), FrameError> {
    let entry = entry(key)
        .or_else(|| {
            controller
                .then(|| CONTROLLER_TABLE.iter().find(|e| e.key == key))
                .flatten()
        })
        .ok_or(FrameError::NotServed { key })?;
    if version < entry.min || version > entry.max {
        return Err(FrameError::UnsupportedVersion { key, version });
    }
    Ok(())
}

/// The key and version at the front of a frame, read before anything else.
pub fn peek_key_version(frame: &[u8]) -> Result<(ApiKey, i16), FrameError> {
    if frame.len() < 8 {
        return Err(FrameError::TooShort(frame.len()));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let key = ApiKey::try_from(raw_key).map_err(|_| FrameError::UnknownApiKey(raw_key))?;
    Ok((key, version))
}

/// Decodes the header and body of a request frame whose version was checked.
pub fn decode_request(
    key: ApiKey,
    version: i16,
    mut frame: Bytes,
) -> Result<(RequestHeader, RequestKind), FrameError> {
    let malformed = |reason: anyhow::Error| FrameError::Malformed {
        key,
        version,
        // `:#` keeps the whole chain: the decoder's innermost error names the cause.
        reason: format!("{reason:#}"),
    };
    let header = RequestHeader::decode(&mut frame, key.request_header_version(version))
        .map_err(malformed)?;
    let body = if legacy::is_legacy(key, version) {
        legacy::decode_request(key, version, &mut frame)
    } else {
        RequestKind::decode(key, &mut frame, version)
    }
    .map_err(malformed)?;
    Ok((header, body))
}

/// Decodes just the header (used to answer a request whose body is not decoded).
pub fn decode_header(
    key: ApiKey,
    version: i16,
    mut frame: Bytes,
) -> Result<RequestHeader, FrameError> {
    let header_version = if key == ApiKey::ApiVersions {
        // KIP-511 fallback: only the correlation id is needed and the body is never read,
        // so the header is read as v1 and whatever follows (tagged fields) is ignored.
        1
    } else {
        key.request_header_version(version)
    };
    RequestHeader::decode(&mut frame, header_version).map_err(|e| FrameError::Malformed {
        key,
        version,
        reason: e.to_string(),
    })
}

/// Encodes a response, length prefix included. ApiVersions always uses response header v0.
pub fn encode_response(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> anyhow::Result<Bytes> {
    let header_version = if key == ApiKey::ApiVersions {
        0
    } else {
        key.response_header_version(version)
    };
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    // Encode once behind a length placeholder, then fill the length in.
    let mut out = BytesMut::with_capacity(capacity_hint(body, version));
    out.put_i32(0);
    header.encode(&mut out, header_version)?;
    if legacy::is_legacy(key, version) {
        legacy::encode_response(key, version, body, &mut out)?;
    } else {
        body.encode(&mut out, version)?;
    }
    let size = i32::try_from(out.len() - 4)?;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Ok(out.freeze())
}

/// Initial capacity of a response buffer; small responses grow it cheaply.
const RESPONSE_BUFFER_BYTES: usize = 1024;

/// Fetch responses carry record batches, up to megabytes: they are sized exactly so the
/// records are copied once, into a buffer that never regrows.
fn capacity_hint(body: &ResponseKind, version: i16) -> usize {
    match body {
        // Fetch v0-3 (the legacy codec) are sized as v4, which has every field they have.
        ResponseKind::Fetch(fetch) => fetch.compute_size(version.max(4)).unwrap_or(0) + 64,
        _ => RESPONSE_BUFFER_BYTES,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{Message, VersionRange};

    /// The versions both the request and the response codec of an API can handle.
    fn codec_versions(key: ApiKey) -> VersionRange {
        fn both<Req: Message, Resp: Message>() -> VersionRange {
            Req::VERSIONS.intersect(&Resp::VERSIONS)
        }
        match key {
            ApiKey::Produce => both::<ProduceRequest, ProduceResponse>(),
            ApiKey::Fetch => both::<FetchRequest, FetchResponse>(),
            ApiKey::ListOffsets => both::<ListOffsetsRequest, ListOffsetsResponse>(),
            ApiKey::Metadata => both::<MetadataRequest, MetadataResponse>(),
            ApiKey::ApiVersions => both::<ApiVersionsRequest, ApiVersionsResponse>(),
            ApiKey::DescribeQuorum => both::<DescribeQuorumRequest, DescribeQuorumResponse>(),
            ApiKey::CreateTopics => both::<CreateTopicsRequest, CreateTopicsResponse>(),
            ApiKey::DeleteTopics => both::<DeleteTopicsRequest, DeleteTopicsResponse>(),
            ApiKey::InitProducerId => both::<InitProducerIdRequest, InitProducerIdResponse>(),
            ApiKey::OffsetForLeaderEpoch => {
                both::<OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse>()
            }
            ApiKey::DescribeConfigs => both::<DescribeConfigsRequest, DescribeConfigsResponse>(),
            ApiKey::DescribeCluster => both::<DescribeClusterRequest, DescribeClusterResponse>(),
            ApiKey::CreatePartitions => both::<CreatePartitionsRequest, CreatePartitionsResponse>(),
            ApiKey::AlterConfigs => both::<AlterConfigsRequest, AlterConfigsResponse>(),
            ApiKey::IncrementalAlterConfigs => {
                both::<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>()
            }
            ApiKey::DeleteRecords => both::<DeleteRecordsRequest, DeleteRecordsResponse>(),
            ApiKey::DescribeLogDirs => both::<DescribeLogDirsRequest, DescribeLogDirsResponse>(),
            ApiKey::DescribeTopicPartitions => {
                both::<DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse>()
            }
            ApiKey::FindCoordinator => both::<FindCoordinatorRequest, FindCoordinatorResponse>(),
            ApiKey::JoinGroup => both::<JoinGroupRequest, JoinGroupResponse>(),
            ApiKey::SyncGroup => both::<SyncGroupRequest, SyncGroupResponse>(),
            ApiKey::Heartbeat => both::<HeartbeatRequest, HeartbeatResponse>(),
            ApiKey::LeaveGroup => both::<LeaveGroupRequest, LeaveGroupResponse>(),
            ApiKey::OffsetCommit => both::<OffsetCommitRequest, OffsetCommitResponse>(),
            ApiKey::OffsetFetch => both::<OffsetFetchRequest, OffsetFetchResponse>(),
            ApiKey::OffsetDelete => both::<OffsetDeleteRequest, OffsetDeleteResponse>(),
            ApiKey::ListGroups => both::<ListGroupsRequest, ListGroupsResponse>(),
            ApiKey::DescribeGroups => both::<DescribeGroupsRequest, DescribeGroupsResponse>(),
            ApiKey::DeleteGroups => both::<DeleteGroupsRequest, DeleteGroupsResponse>(),
            ApiKey::ConsumerGroupHeartbeat => {
                both::<ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse>()
            }
            ApiKey::ConsumerGroupDescribe => {
                both::<ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse>()
            }
            other => panic!("{other:?} is served but has no codec check here"),
        }
    }

    #[test]
    fn table_matches_the_codec_ranges() {
        for e in API_TABLE {
            let codec = codec_versions(e.key);
            // Below the codec's range, the legacy codec takes over.
            let first = legacy::first_codec_version(e.key).unwrap_or(codec.min);
            assert_eq!(
                first, codec.min,
                "{:?}: legacy codec ends where the codec starts",
                e.key
            );
            assert!(
                (e.min >= codec.min || legacy::is_legacy(e.key, e.min)) && e.max <= codec.max,
                "{:?} {codec}",
                e.key
            );
        }
    }

    #[test]
    fn versions_kafka_4_removed_are_served() {
        assert!(check_version(ApiKey::Produce, 0).is_ok());
        assert!(check_version(ApiKey::Fetch, 0).is_ok());
        assert!(check_version(ApiKey::OffsetCommit, 1).is_ok());
        assert!(check_version(ApiKey::Produce, 14).is_err());
    }
}
