//! Metadata and DescribeCluster.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, MetadataRequest, MetadataResponse,
    TopicName,
};
use uuid::Uuid;

use super::{str_bytes, CLUSTER_OPERATIONS_ALL, TOPIC_OPERATIONS_ALL};
use crate::broker::Broker;
use crate::metadata::{validate_topic_name, MetadataError, NewTopic, TopicRecord};
use crate::protocol::ErrorCode;

pub fn metadata(broker: &Arc<Broker>, version: i16, request: MetadataRequest) -> MetadataResponse {
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
                let entry = match topic.name {
                    Some(name) => lookup_by_name(broker, &name.0, allow_auto_create),
                    None => lookup_by_id(broker, topic.topic_id),
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
        })
        .collect();
    let mut response = MetadataResponse::default()
        .with_brokers(brokers)
        .with_topics(topics);
    if version >= 1 {
        response.controller_id = BrokerId(image.controller_id);
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

fn lookup_by_name(
    broker: &Arc<Broker>,
    name: &str,
    allow_auto_create: bool,
) -> Result<Arc<TopicRecord>, LookupError> {
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
    let new_topic = NewTopic {
        name: name.to_string(),
        partitions: -1,
        replication_factor: -1,
        assignments: Default::default(),
        configs: Default::default(),
    };
    match broker.controller.create_topic(new_topic, false) {
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

fn lookup_by_id(broker: &Arc<Broker>, id: Uuid) -> Result<Arc<TopicRecord>, LookupError> {
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
    record: &TopicRecord,
    include_operations: bool,
) -> MetadataResponseTopic {
    let node = BrokerId(broker.config.node_id);
    let partitions = (0..record.partitions)
        .map(|index| {
            let epoch = match broker.replicas.partition(&record.name, index) {
                Some(p) if version >= 7 => p.leader_epoch,
                _ => -1,
            };
            MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(node)
                .with_leader_epoch(epoch)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
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
    let brokers = image
        .brokers
        .iter()
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.node_id))
                .with_host(str_bytes(b.host.clone()))
                .with_port(b.port)
        })
        .collect();
    let mut response = DescribeClusterResponse::default()
        .with_endpoint_type(if version >= 1 {
            request.endpoint_type
        } else {
            1
        })
        .with_cluster_id(str_bytes(image.cluster_id.clone()))
        .with_controller_id(BrokerId(image.controller_id))
        .with_brokers(brokers);
    if request.include_cluster_authorized_operations {
        response.cluster_authorized_operations = CLUSTER_OPERATIONS_ALL;
    }
    response
}
