//! Metadata and DescribeCluster.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, MetadataRequest, MetadataResponse,
    TopicName,
};
use kafka_protocol::messages::{DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse};
use uuid::Uuid;

use super::{str_bytes, CLUSTER_OPERATIONS_ALL, TOPIC_OPERATIONS_ALL};
use crate::broker::Broker;
use crate::metadata::{validate_topic_name, BrokerInfo, MetadataError, NewTopic, TopicImage};
use crate::protocol::ErrorCode;

pub async fn metadata(
    broker: &Arc<Broker>,
    version: i16,
    request: MetadataRequest,
) -> MetadataResponse {
    let allow_auto_create = version < 4 || request.allow_auto_topic_creation;
    let mut topics = Vec::new();
    match request.topics {
        None => {
            for record in broker.controller.image().topics.values() {
                topics.push(describe_topic(
                    broker,
                    version,
                    record,
                    request.include_topic_authorized_operations,
                ));
            }
        }
        Some(requested) => {
            for topic in requested {
                // A topic id names the topic whatever the name says: the Java client
                // asks by id with an empty name, not a null one (Kafka's rule too).
                let entry = match topic.name {
                    Some(name) if topic.topic_id.is_nil() => {
                        lookup_by_name(broker, &name.0, allow_auto_create).await
                    }
                    _ => lookup_by_id(broker, topic.topic_id),
                };
                topics.push(match entry {
                    Ok(record) => describe_topic(
                        broker,
                        version,
                        &record,
                        request.include_topic_authorized_operations,
                    ),
                    Err((code, name)) => MetadataResponseTopic::default()
                        .with_error_code(code.code())
                        .with_name(name.map(|n| TopicName(str_bytes(n))))
                        .with_topic_id(if version >= 10 {
                            topic.topic_id
                        } else {
                            Uuid::nil()
                        }),
                });
            }
        }
    }
    let image = broker.controller.image();
    let brokers = image
        .brokers
        .iter()
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.node_id))
                .with_host(str_bytes(b.host.clone()))
                .with_port(b.port)
                .with_rack(b.rack.clone().map(str_bytes))
        })
        .collect();
    let mut response = MetadataResponse::default()
        .with_brokers(brokers)
        .with_topics(topics);
    if version >= 1 {
        response.controller_id = BrokerId(controller_id(broker));
    }
    if version >= 2 {
        response.cluster_id = Some(str_bytes(image.cluster_id.clone()));
    }
    if (8..=10).contains(&version) && request.include_cluster_authorized_operations {
        response.cluster_authorized_operations = CLUSTER_OPERATIONS_ALL;
    }
    response
}

type LookupError = (ErrorCode, Option<String>);

async fn lookup_by_name(
    broker: &Arc<Broker>,
    name: &str,
    allow_auto_create: bool,
) -> Result<Arc<TopicImage>, LookupError> {
    if let Some(record) = broker.controller.image().topic(name) {
        return Ok(Arc::clone(record));
    }
    let fail = |code: ErrorCode| Err((code, Some(name.to_string())));
    if validate_topic_name(name).is_err() {
        return fail(ErrorCode::InvalidTopicException);
    }
    if !(allow_auto_create && broker.config.auto_create_topics_enable) {
        return fail(ErrorCode::UnknownTopicOrPartition);
    }
    if name == crate::group::OFFSETS_TOPIC {
        // The offsets topic is created by the group coordinator, with its own configs.
        return match broker.groups.ensure_offsets_topic(&broker.controller).await {
            Ok(()) => broker
                .controller
                .image()
                .topic(name)
                .cloned()
                .ok_or((ErrorCode::LeaderNotAvailable, Some(name.to_string()))),
            Err(_) => fail(ErrorCode::LeaderNotAvailable),
        };
    }
    let new_topic = NewTopic {
        name: name.to_string(),
        partitions: -1,
        replication_factor: -1,
        assignments: Default::default(),
        configs: Default::default(),
    };
    match broker.controller.create_topic(new_topic, false).await {
        Ok(record) => Ok(record),
        // Another request created it first.
        Err(MetadataError::TopicAlreadyExists(_)) => broker
            .controller
            .image()
            .topic(name)
            .cloned()
            .ok_or((ErrorCode::LeaderNotAvailable, Some(name.to_string()))),
        Err(e) => {
            tracing::warn!(topic = %name, error = %e, "automatic topic creation failed");
            fail(e.code())
        }
    }
}

/// The controller id clients are given: the active controller when it is a broker too, or
/// -1 while there is none; a lone node is its own.
fn controller_id(broker: &Broker) -> i32 {
    if !broker.controller.is_cluster() {
        return broker.controller.image().controller_id;
    }
    let Some(leader) = broker.controller.quorum_state().leader else {
        return -1;
    };
    // Clients reach brokers only: with a controller that is not one, Kafka names a live
    // broker, which forwards admin requests.
    let live = broker.controller.image().live_brokers();
    if live.contains(&leader) {
        leader
    } else if live.contains(&broker.config.node_id) {
        broker.config.node_id
    } else {
        live.first().copied().unwrap_or(-1)
    }
}

fn lookup_by_id(broker: &Arc<Broker>, id: Uuid) -> Result<Arc<TopicImage>, LookupError> {
    broker
        .controller
        .image()
        .topic_by_id(&id)
        .cloned()
        .ok_or((ErrorCode::UnknownTopicId, None))
}

fn describe_topic(
    broker: &Arc<Broker>,
    version: i16,
    record: &TopicImage,
    include_operations: bool,
) -> MetadataResponseTopic {
    let live = broker.controller.image().live_brokers();
    let partitions = record
        .partition_states
        .iter()
        .enumerate()
        .map(|(index, p)| {
            let leader = p.live_leader(&live);
            let mut partition = MetadataResponsePartition::default()
                .with_partition_index(index as i32)
                .with_leader_id(BrokerId(leader.unwrap_or(-1)))
                .with_leader_epoch(if version >= 7 { p.leader_epoch } else { -1 })
                .with_replica_nodes(broker_ids(&p.replicas))
                .with_isr_nodes(broker_ids(&p.isr));
            if version >= 5 {
                partition.offline_replicas = broker_ids(&p.offline_replicas(&live));
            }
            if leader.is_none() {
                partition.error_code = ErrorCode::LeaderNotAvailable.code();
            }
            partition
        })
        .collect();
    let mut topic = MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(record.name.clone()))))
        .with_partitions(partitions);
    if version >= 1 {
        topic.is_internal = record.name.starts_with("__");
    }
    if version >= 10 {
        topic.topic_id = record.id;
    }
    if version >= 8 && include_operations {
        topic.topic_authorized_operations = TOPIC_OPERATIONS_ALL;
    }
    topic
}

pub fn describe_cluster(
    broker: &Arc<Broker>,
    version: i16,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let image = broker.controller.image();
    let mut brokers: Vec<DescribeClusterBroker> = image
        .brokers
        .iter()
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.node_id))
                .with_host(str_bytes(b.host.clone()))
                .with_port(b.port)
                .with_rack(b.rack.clone().map(str_bytes))
        })
        .collect();
    if version >= 2 && request.include_fenced_brokers {
        let fenced = image
            .registrations
            .iter()
            .filter(|(_, r)| r.fenced)
            .filter_map(|(id, r)| r.info(*id, &image.listener_name));
        for b in fenced {
            brokers.push(
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(b.node_id))
                    .with_host(str_bytes(b.host))
                    .with_port(b.port)
                    .with_rack(b.rack.map(str_bytes))
                    .with_is_fenced(true),
            );
        }
        brokers.sort_by_key(|b| b.broker_id.0);
    }
    let mut response = DescribeClusterResponse::default()
        .with_endpoint_type(if version >= 1 {
            request.endpoint_type
        } else {
            1
        })
        .with_cluster_id(str_bytes(image.cluster_id.clone()))
        .with_controller_id(BrokerId(controller_id(broker)))
        .with_brokers(brokers);
    if request.include_cluster_authorized_operations {
        response.cluster_authorized_operations = CLUSTER_OPERATIONS_ALL;
    }
    response
}

/// DescribeTopicPartitions (KIP-966): topics in name order, partitions paged by
/// `response_partition_limit` with a cursor, as `kafka-topics.sh --describe` reads them.
pub fn describe_topic_partitions(
    broker: &Arc<Broker>,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let image = broker.controller.image();
    let mut names: Vec<String> = if request.topics.is_empty() {
        image.topics.keys().cloned().collect()
    } else {
        request
            .topics
            .iter()
            .map(|t| t.name.0.to_string())
            .collect()
    };
    names.sort();
    names.dedup();
    let (start_topic, start_partition) = match &request.cursor {
        Some(c) => (c.topic_name.0.to_string(), c.partition_index),
        None => (String::new(), 0),
    };
    let mut budget = request.response_partition_limit.max(1);
    let live = image.live_brokers();
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for name in names.into_iter().filter(|n| *n >= start_topic) {
        let Some(record) = image.topic(&name) else {
            topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(ErrorCode::UnknownTopicOrPartition.code())
                    .with_name(Some(TopicName(str_bytes(name)))),
            );
            continue;
        };
        if budget == 0 {
            next_cursor = Some(
                Cursor::default()
                    .with_topic_name(TopicName(str_bytes(name)))
                    .with_partition_index(0),
            );
            break;
        }
        let first = if name == start_topic {
            start_partition
        } else {
            0
        };
        let mut partitions = Vec::new();
        for index in first..record.partitions {
            if budget == 0 {
                next_cursor = Some(
                    Cursor::default()
                        .with_topic_name(TopicName(str_bytes(name.clone())))
                        .with_partition_index(index),
                );
                break;
            }
            budget -= 1;
            let p = &record.partition_states[index as usize];
            partitions.push(
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(index)
                    .with_leader_id(BrokerId(p.live_leader(&live).unwrap_or(-1)))
                    .with_leader_epoch(p.leader_epoch)
                    .with_replica_nodes(broker_ids(&p.replicas))
                    .with_isr_nodes(broker_ids(&p.isr))
                    .with_offline_replicas(broker_ids(&p.offline_replicas(&live)))
                    .with_eligible_leader_replicas(Some(broker_ids(&p.eligible_leader_replicas)))
                    .with_last_known_elr(Some(broker_ids(&p.last_known_elr))),
            );
        }
        topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(TopicName(str_bytes(name.clone()))))
                .with_topic_id(record.id)
                .with_is_internal(name.starts_with("__"))
                .with_partitions(partitions)
                .with_topic_authorized_operations(TOPIC_OPERATIONS_ALL),
        );
        if next_cursor.is_some() {
            break;
        }
    }
    DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next_cursor)
}

/// KIP-951: the partition's current leader and its epoch, for a NOT_LEADER_OR_FOLLOWER
/// answer, so that the client goes there without asking for metadata first. None when
/// the image names no live leader.
pub(crate) fn leader_hint(broker: &Broker, topic: &str, partition: i32) -> Option<(i32, i32)> {
    let image = broker.controller.image();
    let p = image
        .topic(topic)?
        .partition_states
        .get(usize::try_from(partition).ok()?)?;
    let leader = p.live_leader(&image.live_brokers())?;
    Some((leader, p.leader_epoch))
}

/// The brokers named by leader hints, once each, for KIP-951's `NodeEndpoints`.
pub(crate) fn hinted_brokers(broker: &Broker, mut ids: Vec<i32>) -> Vec<BrokerInfo> {
    ids.sort_unstable();
    ids.dedup();
    broker
        .controller
        .image()
        .brokers
        .iter()
        .filter(|b| ids.binary_search(&b.node_id).is_ok())
        .cloned()
        .collect()
}

fn broker_ids(ids: &[i32]) -> Vec<BrokerId> {
    ids.iter().copied().map(BrokerId).collect()
}
