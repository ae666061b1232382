//! Produce: append in request order, then acknowledge per the acks policy.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use kafka_protocol::messages::{
    BrokerId, ProduceRequest, ProduceResponse, ResponseKind, TopicName,
};

use super::{str_bytes, Reply};
use crate::broker::Broker;
use crate::log::LogError;
use crate::protocol::{legacy_records, records, ErrorCode};
use crate::replication::{Partition, ProduceError};

/// A partition's append waiting for its fsync before it may be acknowledged.
struct PendingFlush {
    topic: usize,
    partition: usize,
    target: Arc<Partition>,
    offset: i64,
}

pub fn produce(broker: &Arc<Broker>, version: i16, request: ProduceRequest) -> Reply {
    if request.transactional_id.is_none() && has_transactional_records(&request) {
        // Kafka authorizes transactional records against the request's transactional id;
        // without one the whole request fails, so nothing stored can look like an open
        // transaction.
        return refuse_all(request, ErrorCode::TransactionalIdAuthorizationFailed);
    }
    let now = broker.clock.now_ms();
    let acks = request.acks;
    let mut first_error: Option<String> = None;
    let mut pending = Vec::new();
    let mut responses = Vec::with_capacity(request.topic_data.len());
    // Leaders named in NOT_LEADER_OR_FOLLOWER answers, whose endpoints go along (KIP-951).
    let mut hinted: Vec<i32> = Vec::new();
    for (t, topic) in request.topic_data.into_iter().enumerate() {
        let image = broker.controller.image();
        let name = if version >= 13 {
            image.topic_by_id(&topic.topic_id).map(|r| r.name.clone())
        } else {
            Some(topic.name.0.to_string())
        };
        // An unknown topic id (v13+) is UNKNOWN_TOPIC_ID; a known topic without the
        // partition, or an unknown name, UNKNOWN_TOPIC_OR_PARTITION.
        let unknown = if name.is_none() {
            ErrorCode::UnknownTopicId
        } else {
            ErrorCode::UnknownTopicOrPartition
        };
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for (p, data) in topic.partition_data.into_iter().enumerate() {
            // Kafka's answer for a failed partition carries no offsets (-1); success sets them.
            let response = PartitionProduceResponse::default()
                .with_index(data.index)
                .with_base_offset(-1)
                .with_log_start_offset(-1);
            let Some(records) = data.records else {
                first_error.get_or_insert_with(|| format!("{:?}", ErrorCode::InvalidRecord));
                partitions.push(response.with_error_code(ErrorCode::InvalidRecord.code()));
                continue;
            };
            let leadership = name
                .as_deref()
                .and_then(|n| Some((n, broker.controller.leadership(n, data.index)?)));
            let Some((topic_name, leadership)) = leadership else {
                first_error.get_or_insert_with(|| format!("{unknown:?}"));
                partitions.push(response.with_error_code(unknown.code()));
                continue;
            };
            if topic_name == crate::group::OFFSETS_TOPIC {
                // Only the group coordinator writes there, as Kafka refuses clients.
                first_error.get_or_insert_with(|| "produce to an internal topic".into());
                partitions.push(response.with_error_code(ErrorCode::InvalidTopicException.code()));
                continue;
            }
            let target = broker
                .replicas
                .partition(topic_name, data.index)
                .filter(|_| leadership.this_node_leads);
            let Some(target) = target else {
                first_error.get_or_insert_with(|| "not the leader".into());
                let mut response = response.with_error_code(ErrorCode::NotLeaderOrFollower.code());
                if version >= 10 {
                    if let Some((leader, epoch)) =
                        super::cluster::leader_hint(broker, topic_name, data.index)
                    {
                        response.current_leader = LeaderIdAndEpoch::default()
                            .with_leader_id(BrokerId(leader))
                            .with_leader_epoch(epoch);
                        hinted.push(leader);
                    }
                }
                partitions.push(response);
                continue;
            };
            if request.transactional_id.is_some() {
                first_error.get_or_insert_with(|| "transactional produce".into());
                partitions.push(response.with_error_code(ErrorCode::InvalidRequest.code()));
                continue;
            }
            // Produce v0-2 carry message sets of magic 0 or 1, stored as v2 (KIP-896 removed
            // those versions from Kafka 4; weir keeps old clients working).
            let records = if version < 3 && legacy_records::is_legacy(&records) {
                legacy_records::up_convert(&records)
                    .map_err(|e| ProduceError::Log(LogError::Batch(e)))
            } else {
                Ok(records)
            };
            match records.and_then(|records| target.append(records, acks, now)) {
                Ok((append, flush_to)) => {
                    if append.rolled {
                        broker.replicas.checkpoint_partition(&target);
                    }
                    if let Some(offset) = flush_to {
                        pending.push(PendingFlush {
                            topic: t,
                            partition: p,
                            target: Arc::clone(&target),
                            offset,
                        });
                    }
                    partitions.push(
                        response
                            .with_base_offset(append.base_offset)
                            .with_log_append_time_ms(append.log_append_time_ms)
                            .with_log_start_offset(if version >= 5 {
                                target.log_start_offset()
                            } else {
                                -1
                            }),
                    );
                }
                Err(e) => {
                    tracing::debug!(topic = %target.topic, partition = target.index, error = %e, "produce refused");
                    first_error.get_or_insert_with(|| e.to_string());
                    let response = response.with_error_code(e.code().code());
                    let response = if version >= 5 {
                        response.with_log_start_offset(log_start_with_error(&e, &target))
                    } else {
                        response
                    };
                    partitions.push(if version >= 8 {
                        let (message, record_errors) = error_details(&e, &target);
                        response
                            .with_error_message(message.map(str_bytes))
                            .with_record_errors(record_errors)
                    } else {
                        response
                    });
                }
            }
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(TopicName(topic.name.0))
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partitions),
        );
    }
    if acks == 0 {
        // The client reads no response; Kafka closes the connection so that it notices.
        return match first_error {
            Some(error) => Reply::Close(format!("acks=0 produce failed: {error}")),
            None => Reply::Silent,
        };
    }
    let mut response = ProduceResponse::default().with_responses(responses);
    if !hinted.is_empty() {
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
    if pending.is_empty() {
        return Reply::Ready(Box::new(ResponseKind::Produce(response)));
    }
    let timeout = Duration::from_millis(request.timeout_ms.max(0) as u64);
    Reply::Pending(Box::pin(async move {
        let mut response = response;
        for wait in pending {
            if let Err(e) = wait.target.wait_flushed(wait.offset, timeout).await {
                let partition =
                    &mut response.responses[wait.topic].partition_responses[wait.partition];
                partition.error_code = e.code().code();
                if version >= 8 {
                    partition.error_message = Some(str_bytes(e.to_string()));
                }
            }
        }
        ResponseKind::Produce(response)
    }))
}

/// The log start offset a failed append reports, by Kafka's ReplicaManager: none (-1) for
/// corrupt or oversized batches and storage errors, the partition's own for the rest
/// (invalid records, producer sequence and epoch errors).
fn log_start_with_error(error: &ProduceError, target: &Partition) -> i64 {
    match error.code() {
        ErrorCode::CorruptMessage
        | ErrorCode::MessageTooLarge
        | ErrorCode::RecordListTooLarge
        | ErrorCode::KafkaStorageError => -1,
        _ => target.log_start_offset(),
    }
}

/// The partition's error message, if Kafka gives one for this error, and, for errors of
/// single records, KIP-467's record errors: the records' indexes in the batch with Kafka's
/// messages, so that a client fails those records with the cause and the rest as
/// collateral.
fn error_details(
    error: &ProduceError,
    target: &Partition,
) -> (Option<String>, Vec<BatchIndexAndErrorMessage>) {
    let ProduceError::Log(LogError::CompactedWithoutKey { indexes }) = error else {
        // Kafka words only failures of single records (KIP-467, below) and timestamps; a
        // batch it refuses whole is answered with the code alone.
        let worded = error.code() == ErrorCode::InvalidTimestamp;
        return (worded.then(|| error.to_string()), Vec::new());
    };
    let message = format!(
        "Compacted topic cannot accept message without key in topic partition {}-{}",
        target.topic, target.index
    );
    let shown: Vec<String> = indexes
        .iter()
        .take(3)
        .map(|i| format!("RecordError(batchIndex={i}, message='{message}')"))
        .collect();
    let summary = format!(
        "One or more records have been rejected due to {} record errors in total, and only \
         showing the first three errors at most: [{}]",
        indexes.len(),
        shown.join(", ")
    );
    let record_errors = indexes
        .iter()
        .map(|&i| {
            BatchIndexAndErrorMessage::default()
                .with_batch_index(i)
                .with_batch_index_error_message(Some(str_bytes(message.clone())))
        })
        .collect();
    (Some(summary), record_errors)
}

fn has_transactional_records(request: &ProduceRequest) -> bool {
    request
        .topic_data
        .iter()
        .flat_map(|t| t.partition_data.iter())
        .filter_map(|p| p.records.as_deref())
        .any(records::has_transactional_batch)
}

/// Answers every partition of a request with one error, as Kafka's error response does.
fn refuse_all(request: ProduceRequest, code: ErrorCode) -> Reply {
    if request.acks == 0 {
        return Reply::Close(format!("acks=0 produce refused: {code:?}"));
    }
    let responses = request
        .topic_data
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partition_data
                .iter()
                .map(|data| {
                    PartitionProduceResponse::default()
                        .with_index(data.index)
                        .with_error_code(code.code())
                        .with_base_offset(-1)
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(TopicName(topic.name.0))
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partitions)
        })
        .collect();
    Reply::Ready(Box::new(ResponseKind::Produce(
        ProduceResponse::default().with_responses(responses),
    )))
}
