//! Fetch, ListOffsets and OffsetForLeaderEpoch.
//!
//! A fetch reads whole stored batches up to the high watermark (or the last stable offset
//! for read_committed). If fewer than `min_bytes` are there it waits, woken by any append to
//! its partitions, until `max_wait_ms`. The first partition with data always gets at least
//! one whole batch even past the byte limits, so a consumer can never be stuck on a large
//! batch; after that `max_bytes` and each partition's `partition_max_bytes` hold.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::select_all;
use kafka_protocol::messages::fetch_response::{
    FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ResponseKind, TopicName,
};
use uuid::Uuid;

use super::{str_bytes, Reply};
use crate::broker::Broker;
use crate::log::LogError;
use crate::protocol::{legacy, legacy_records, ErrorCode};
use crate::replication::fetch_session::{FetchTarget, PartitionView};
use crate::replication::Partition;

const READ_COMMITTED: i8 = 1;
const EARLIEST_TIMESTAMP: i64 = -2;
const LATEST_TIMESTAMP: i64 = -1;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
const LATEST_TIERED_TIMESTAMP: i64 = -5;

/// The partition this broker leads, with its leader epoch, checked against the client's
/// view of that epoch (-1: no view). Every partition-level API starts here.
pub(crate) fn leader_for(
    broker: &Broker,
    topic: &str,
    partition: i32,
    client_epoch: i32,
) -> Result<(Arc<Partition>, i32), ErrorCode> {
    let leadership = broker
        .controller
        .leadership(topic, partition)
        .ok_or(ErrorCode::UnknownTopicOrPartition)?;
    // Hosted elsewhere, or led by another replica: the client's metadata is stale.
    let hosted = broker.replicas.partition(topic, partition);
    let Some(partition) = hosted.filter(|_| leadership.this_node_leads) else {
        return Err(ErrorCode::NotLeaderOrFollower);
    };
    let epoch = leadership.leader_epoch;
    match client_epoch {
        e if e < 0 || e == epoch => Ok((partition, epoch)),
        e if e > epoch => Err(ErrorCode::UnknownLeaderEpoch),
        _ => Err(ErrorCode::FencedLeaderEpoch),
    }
}

/// One partition of a fetch, with what was read for it.
struct FetchSlot {
    target: FetchTarget,
    partition: Option<Arc<Partition>>,
    error: ErrorCode,
    records: Bytes,
}

pub fn fetch(broker: &Arc<Broker>, version: i16, request: FetchRequest) -> Reply {
    let broker = Arc::clone(broker);
    Reply::Pending(Box::pin(async move {
        ResponseKind::Fetch(run_fetch(&broker, version, request).await)
    }))
}

async fn run_fetch(broker: &Arc<Broker>, version: i16, request: FetchRequest) -> FetchResponse {
    let image = broker.controller.image();
    let resolve = |name: &TopicName, id: Uuid| -> (Arc<str>, Uuid) {
        if version >= 13 {
            match image.topic_by_id(&id) {
                Some(record) => (Arc::from(record.name.as_str()), id),
                None => (Arc::from(""), id),
            }
        } else {
            let id = image.topic(&name.0).map(|r| r.id).unwrap_or_default();
            (Arc::from(name.0.as_str()), id)
        }
    };
    let mut updates = Vec::new();
    let mut client_epochs: HashMap<(Arc<str>, i32), i32> = HashMap::new();
    for topic in &request.topics {
        let (name, id) = resolve(&topic.topic, topic.topic_id);
        for p in &topic.partitions {
            client_epochs.insert((Arc::clone(&name), p.partition), p.current_leader_epoch);
            updates.push(FetchTarget {
                topic: Arc::clone(&name),
                topic_id: id,
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes,
            });
        }
    }
    let forgotten = request
        .forgotten_topics_data
        .iter()
        .flat_map(|t| {
            let (name, _) = resolve(&t.topic, t.topic_id);
            t.partitions.iter().map(move |p| (Arc::clone(&name), *p))
        })
        .collect();
    let now = broker.clock.now_ms();
    let session = match broker.fetch_sessions.begin(
        request.session_id,
        request.session_epoch,
        updates,
        forgotten,
        now,
    ) {
        Ok(session) => session,
        Err(code) => return fetch_error(code),
    };
    let mut slots: Vec<FetchSlot> = session
        .targets
        .into_iter()
        .map(|target| {
            // Partitions the request did not name come from the session: no epoch to check.
            let epoch = client_epochs
                .get(&(Arc::clone(&target.topic), target.partition))
                .copied()
                .unwrap_or(-1);
            let (partition, error) =
                match leader_for(broker, &target.topic, target.partition, epoch) {
                    Ok((p, _)) => (Some(p), ErrorCode::None),
                    Err(ErrorCode::UnknownTopicOrPartition)
                        if version >= 13 && target.topic.is_empty() =>
                    {
                        (None, ErrorCode::UnknownTopicId)
                    }
                    Err(code) => (
                        broker.replicas.partition(&target.topic, target.partition),
                        code,
                    ),
                };
            FetchSlot {
                target,
                partition,
                error,
                records: Bytes::new(),
            }
        })
        .collect();

    let read_committed = request.isolation_level == READ_COMMITTED;
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let min_bytes = request.min_bytes.max(0) as usize;
    // The broker's fetch.max.bytes bounds what one response may hold, as in Kafka.
    let max_bytes = if request.max_bytes <= 0 {
        broker.config.fetch_max_bytes
    } else {
        (request.max_bytes as usize).min(broker.config.fetch_max_bytes)
    };
    // Fetch v0-2 predate KIP-74: their limits are hard, even for the first partition; a
    // partition whose next batch does not fit gets nothing, as from Kafka 3.
    let hard_limit = version <= 2;
    loop {
        let partitions: Vec<Arc<Partition>> =
            slots.iter().filter_map(|s| s.partition.clone()).collect();
        let mut wakeups: Vec<_> = partitions.iter().map(|p| Box::pin(p.appended())).collect();
        for w in &mut wakeups {
            w.as_mut().enable();
        }
        let total = read_slots(&mut slots, read_committed, max_bytes, hard_limit);
        let errors = slots.iter().any(|s| s.error != ErrorCode::None);
        if total >= min_bytes
            || errors
            || wakeups.is_empty()
            || tokio::time::Instant::now() >= deadline
        {
            break;
        }
        if tokio::time::timeout_at(deadline, select_all(wakeups))
            .await
            .is_err()
        {
            read_slots(&mut slots, read_committed, max_bytes, hard_limit);
            break;
        }
    }
    build_response(
        broker,
        version,
        session.session_id,
        session.incremental,
        read_committed,
        slots,
    )
}

/// Reads every slot from its fetch offset; returns the total bytes read. With
/// `hard_limit` (Fetch v0-2) not even the first partition may exceed its limits.
fn read_slots(
    slots: &mut [FetchSlot],
    read_committed: bool,
    max_bytes: usize,
    hard_limit: bool,
) -> usize {
    let mut total = 0usize;
    for slot in slots.iter_mut() {
        slot.records = Bytes::new();
        let Some(partition) = &slot.partition else {
            continue;
        };
        if slot.error != ErrorCode::None && slot.error != ErrorCode::OffsetOutOfRange {
            continue;
        }
        let upper = if read_committed {
            partition.last_stable_offset()
        } else {
            partition.high_watermark()
        };
        let remaining = max_bytes.saturating_sub(total);
        if remaining == 0 && total > 0 {
            continue;
        }
        let limit = remaining.min(slot.target.max_bytes.max(0) as usize);
        // With nothing read yet a batch above the limits is still returned whole; after
        // that a partition whose next batch does not fit gets nothing, and is not read.
        let whole_first = total == 0 && !hard_limit;
        let limit = if whole_first { limit.max(1) } else { limit };
        let read = partition
            .plan_read(slot.target.fetch_offset, upper, limit)
            .and_then(|plan| {
                plan.filter(|p| whole_first || p.first_batch_bytes() <= limit)
                    .map(|p| partition.read(p))
                    .transpose()
            });
        match read {
            Ok(Some(data)) => {
                assert!(
                    whole_first || data.records.len() <= limit,
                    "a fetch read past its byte limit"
                );
                total += data.records.len();
                slot.records = data.records;
                slot.error = ErrorCode::None;
            }
            Ok(None) => slot.error = ErrorCode::None,
            Err(e) => slot.error = e.code(),
        }
    }
    total
}

fn build_response(
    broker: &Arc<Broker>,
    version: i16,
    session_id: i32,
    incremental: bool,
    read_committed: bool,
    slots: Vec<FetchSlot>,
) -> FetchResponse {
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    // Leaders named in NOT_LEADER_OR_FOLLOWER answers, whose endpoints go along (KIP-951).
    let mut hinted: Vec<i32> = Vec::new();
    for slot in slots {
        // As Kafka: a partition that failed reports no offsets (-1), so that a client
        // resets from ListOffsets rather than from numbers that came with an error.
        let (hw, lso, log_start) = match &slot.partition {
            Some(p) if slot.error == ErrorCode::None => (
                p.high_watermark(),
                p.last_stable_offset(),
                p.log_start_offset(),
            ),
            _ => (-1, -1, -1),
        };
        // Kafka's answer for a partition it could not even look up carries an empty
        // aborted-transactions list, one whose read failed none, and one read from a log
        // a list only for read_committed.
        let aborted = if slot.partition.is_none() {
            Some(Vec::new())
        } else if slot.error != ErrorCode::None {
            None
        } else {
            read_committed.then(Vec::new)
        };
        let view = PartitionView {
            high_watermark: hw,
            last_stable_offset: lso,
            log_start_offset: log_start,
        };
        let has_news = !slot.records.is_empty() || slot.error != ErrorCode::None;
        if incremental
            && !broker.fetch_sessions.note_response(
                session_id,
                &slot.target.topic,
                slot.target.partition,
                view,
                has_news,
            )
        {
            continue;
        }
        if !incremental {
            broker.fetch_sessions.note_response(
                session_id,
                &slot.target.topic,
                slot.target.partition,
                view,
                has_news,
            );
        }
        let (records, error) = if version < 4 {
            down_convert(&slot, version)
        } else {
            (slot.records, slot.error)
        };
        let mut current_leader = LeaderIdAndEpoch::default();
        if error == ErrorCode::NotLeaderOrFollower && version >= 12 {
            if let Some((leader, epoch)) =
                super::cluster::leader_hint(broker, &slot.target.topic, slot.target.partition)
            {
                current_leader = current_leader
                    .with_leader_id(BrokerId(leader))
                    .with_leader_epoch(epoch);
                hinted.push(leader);
            }
        }
        let data = PartitionData::default()
            .with_partition_index(slot.target.partition)
            .with_current_leader(current_leader)
            .with_error_code(error.code())
            .with_high_watermark(hw)
            .with_last_stable_offset(lso)
            .with_log_start_offset(if version >= 5 { log_start } else { -1 })
            .with_aborted_transactions(aborted)
            .with_records(Some(records));
        match topics.last_mut() {
            Some(t) if fetch_topic_matches(t, &slot.target, version) => t.partitions.push(data),
            _ => {
                let topic = FetchableTopicResponse::default().with_partitions(vec![data]);
                topics.push(if version >= 13 {
                    topic.with_topic_id(slot.target.topic_id)
                } else {
                    topic.with_topic(TopicName(str_bytes(slot.target.topic.to_string())))
                });
            }
        }
    }
    let mut response = FetchResponse::default()
        .with_session_id(session_id)
        .with_responses(topics);
    if version >= 16 && !hinted.is_empty() {
        response.node_endpoints = super::cluster::hinted_brokers(broker, hinted)
            .into_iter()
            .map(|b| {
                NodeEndpoint::default()
                    .with_node_id(BrokerId(b.node_id))
                    .with_host(str_bytes(b.host))
                    .with_port(b.port)
                    .with_rack(b.rack.map(str_bytes))
            })
            .collect();
    }
    response
}

/// Fetch v0-3 (removed from Kafka 4 by KIP-896) read message sets of magic 0 (v0-1) or 1
/// (v2-3): the stored v2 batches are converted, as Kafka 3 did, into no more room than the
/// stored bytes read (uncompressed messages may be far larger than compressed batches),
/// its first message always whole.
fn down_convert(slot: &FetchSlot, version: i16) -> (Bytes, ErrorCode) {
    if slot.records.is_empty() {
        return (Bytes::new(), slot.error);
    }
    let magic = if version >= 2 { 1 } else { 0 };
    let converted = legacy_records::down_convert(
        &slot.records,
        magic,
        slot.target.fetch_offset,
        slot.records.len(),
    );
    match converted {
        Ok(records) => (records, slot.error),
        Err(e) => {
            tracing::error!(topic = %slot.target.topic, partition = slot.target.partition, error = %e, "stored records cannot be converted for an old fetch");
            (Bytes::new(), LogError::Batch(e).code())
        }
    }
}

/// A top-level fetch error (v7+, where sessions exist).
fn fetch_error(code: ErrorCode) -> FetchResponse {
    FetchResponse::default().with_error_code(code.code())
}

fn fetch_topic_matches(topic: &FetchableTopicResponse, target: &FetchTarget, version: i16) -> bool {
    if version >= 13 {
        topic.topic_id == target.topic_id
    } else {
        *topic.topic.0 == *target.topic
    }
}

pub fn list_offsets(
    broker: &Arc<Broker>,
    version: i16,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let read_committed = request.isolation_level == READ_COMMITTED;
    let request_replica = request.replica_id.0;
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    let (partition, leader_epoch) = match leader_for(
                        broker,
                        &topic.name.0,
                        p.partition_index,
                        p.current_leader_epoch,
                    ) {
                        Ok(found) => found,
                        Err(code) => return response.with_error_code(code.code()),
                    };
                    if version == 0 {
                        // Kafka 3's answer to v0 (removed from Kafka 4): a list of offsets.
                        let max_num = legacy::max_num_offsets(p);
                        let now = broker.clock.now_ms();
                        // Kafka's rule: replicas (ids >= 0) and the debugging id (-2) are
                        // not consumers.
                        let consumer = request_replica < 0 && request_replica != -2;
                        return match partition.offsets_before(p.timestamp, max_num, now, consumer) {
                            Ok(offsets) => legacy::with_old_style_offsets(response, &offsets),
                            Err(e) => response.with_error_code(e.code().code()),
                        };
                    }
                    match offset_for_timestamp(&partition, p.timestamp, read_committed) {
                        Ok((timestamp, offset)) => response
                            .with_timestamp(timestamp)
                            .with_offset(offset)
                            // No offset found (a time after the last record): no epoch.
                            .with_leader_epoch(if version >= 4 && offset >= 0 {
                                leader_epoch
                            } else {
                                -1
                            }),
                        Err(code) => response.with_error_code(code.code()),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// The (timestamp, offset) ListOffsets answers for a target timestamp or sentinel.
fn offset_for_timestamp(
    partition: &Partition,
    timestamp: i64,
    read_committed: bool,
) -> Result<(i64, i64), ErrorCode> {
    let upper = if read_committed {
        partition.last_stable_offset()
    } else {
        partition.high_watermark()
    };
    let found = match timestamp {
        EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => {
            return Ok((-1, partition.log_start_offset()))
        }
        LATEST_TIMESTAMP => return Ok((-1, upper)),
        LATEST_TIERED_TIMESTAMP => return Ok((-1, partition.log_start_offset() - 1)),
        MAX_TIMESTAMP => partition.max_timestamp(),
        t if t >= 0 => partition.lookup_timestamp(t),
        _ => return Err(ErrorCode::InvalidRequest),
    };
    match found {
        Ok(Some(hit)) if hit.offset < upper => Ok((hit.timestamp, hit.offset)),
        Ok(_) => Ok((-1, -1)),
        Err(e) => Err(e.code()),
    }
}

pub fn offset_for_leader_epoch(
    broker: &Arc<Broker>,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let response = EpochEndOffset::default().with_partition(p.partition);
                    let (partition, leader_epoch) = match leader_for(
                        broker,
                        &topic.topic.0,
                        p.partition,
                        p.current_leader_epoch,
                    ) {
                        Ok(found) => found,
                        Err(code) => return response.with_error_code(code.code()),
                    };
                    // A log is never truncated yet (a partition has one replica in its
                    // ISR), so every epoch up to the current one ends at the log end
                    // offset: no client ever has to truncate. A later epoch is unknown.
                    if p.leader_epoch <= leader_epoch {
                        response
                            .with_leader_epoch(p.leader_epoch)
                            .with_end_offset(partition.log_end_offset())
                    } else {
                        response.with_leader_epoch(-1).with_end_offset(-1)
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
