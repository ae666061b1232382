//! The controller's APIs: BrokerRegistration and BrokerHeartbeat (on the controller
//! listener only, from the cluster's brokers), DescribeQuorum (on every listener, answered
//! by the active controller), and forwarding admin requests to the active controller.

use std::sync::Arc;

use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    ApiKey, BrokerHeartbeatRequest, BrokerHeartbeatResponse, BrokerId, BrokerRegistrationRequest,
    BrokerRegistrationResponse, DescribeQuorumResponse, RequestKind, ResponseKind, TopicName,
};
use uuid::Uuid;

use super::str_bytes;
use crate::broker::Broker;
use crate::metadata::controller::BrokerRegistrationInput;
use crate::metadata::records::BrokerEndpoint;
use crate::metadata::MetadataError;
use crate::protocol::ErrorCode;

/// The metadata log's name, as DescribeQuorum reports it.
const METADATA_TOPIC: &str = "__cluster_metadata";

pub async fn broker_registration(
    broker: &Arc<Broker>,
    request: BrokerRegistrationRequest,
) -> BrokerRegistrationResponse {
    let response = BrokerRegistrationResponse::default().with_broker_epoch(-1);
    let cluster_id = broker.controller.image().cluster_id.clone();
    if request.cluster_id.as_str() != cluster_id {
        tracing::warn!(broker_id = request.broker_id.0, theirs = %request.cluster_id, ours = %cluster_id, "refusing the registration of a broker of another cluster");
        return response.with_error_code(ErrorCode::InconsistentClusterId.code());
    }
    let input = BrokerRegistrationInput {
        broker_id: request.broker_id.0,
        incarnation_id: request.incarnation_id,
        previous_epoch: request.previous_broker_epoch,
        endpoints: request
            .listeners
            .iter()
            .map(|l| BrokerEndpoint {
                name: l.name.to_string(),
                host: l.host.to_string(),
                port: l.port,
                security_protocol: l.security_protocol,
            })
            .collect(),
        rack: request.rack.as_ref().map(|r| r.to_string()),
    };
    match broker.controller.register_broker(input).await {
        Ok(epoch) => response.with_broker_epoch(epoch),
        Err(e) => response.with_error_code(e.code().code()),
    }
}

pub async fn broker_heartbeat(
    broker: &Arc<Broker>,
    request: BrokerHeartbeatRequest,
) -> BrokerHeartbeatResponse {
    match broker
        .controller
        .broker_heartbeat(
            request.broker_id.0,
            request.broker_epoch,
            request.current_metadata_offset,
            request.want_fence,
            request.want_shut_down,
        )
        .await
    {
        Ok(outcome) => BrokerHeartbeatResponse::default()
            .with_is_caught_up(outcome.is_caught_up)
            .with_is_fenced(outcome.is_fenced)
            .with_should_shut_down(outcome.should_shut_down),
        Err(e) => BrokerHeartbeatResponse::default()
            .with_error_code(e.code().code())
            .with_is_fenced(true),
    }
}

/// DescribeQuorum, answered by the active controller (a broker forwards it there, as
/// Kafka's do): the leader, its epoch (the Raft term), the high watermark, and each
/// voter's log end offset as the leader knows it.
pub fn describe_quorum(broker: &Arc<Broker>, version: i16) -> DescribeQuorumResponse {
    let state = broker.controller.quorum_state();
    let now_ms = broker.clock.now_ms();
    let mut partition = PartitionData::default()
        .with_partition_index(0)
        .with_leader_id(BrokerId(state.leader.unwrap_or(-1)))
        .with_leader_epoch(state.term as i32)
        .with_high_watermark(state.high_watermark as i64);
    if state.leader != Some(broker.config.node_id) {
        partition.error_code = ErrorCode::NotLeaderOrFollower.code();
    }
    // openraft reports how far each voter's log matches the leader's, not when it last
    // fetched: a voter whose log ends where the leader's does counts as caught up now,
    // any other as not known.
    partition.current_voters = state
        .voters
        .iter()
        .map(|(id, matched)| {
            let log_end = match (state.leader == Some(*id), matched) {
                (true, _) => state.log_end as i64,
                (false, Some(m)) => *m as i64 + 1,
                (false, None) => -1,
            };
            let mut voter = ReplicaState::default()
                .with_replica_id(BrokerId(*id))
                .with_log_end_offset(log_end);
            if version >= 1 {
                let caught_up = log_end >= 0 && log_end as u64 >= state.log_end;
                let at = if caught_up { now_ms } else { -1 };
                voter.last_fetch_timestamp = at;
                voter.last_caught_up_timestamp = at;
            }
            if version >= 2 {
                voter.replica_directory_id = Uuid::nil();
            }
            voter
        })
        .collect();
    let mut response = DescribeQuorumResponse::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(str_bytes(METADATA_TOPIC)))
        .with_partitions(vec![partition])]);
    if version >= 2 {
        let listener = broker
            .config
            .controller_listener
            .clone()
            .unwrap_or_default();
        response.nodes = broker
            .config
            .voters
            .iter()
            .map(|v| {
                Node::default()
                    .with_node_id(BrokerId(v.node_id))
                    .with_listeners(vec![Listener::default()
                        .with_name(str_bytes(listener.clone()))
                        .with_host(str_bytes(v.host.clone()))
                        .with_port(v.port)])
            })
            .collect();
    }
    response
}

/// Sends a request this node cannot decide to the active controller and relays its answer,
/// once: without a controller to send it to, NOT_CONTROLLER; sent and not answered in
/// time, REQUEST_TIMED_OUT (the controller may still act on it, so it is not sent again).
pub async fn forward(
    broker: &Arc<Broker>,
    key: ApiKey,
    version: i16,
    request: RequestKind,
) -> ResponseKind {
    match broker
        .controller
        .call_controller(key, version, &request)
        .await
    {
        Ok(response) => response,
        Err(e) => refuse(request, &e),
    }
}

/// The answer to a controller request that was not decided: `error` for every item.
pub fn refuse(request: RequestKind, error: &MetadataError) -> ResponseKind {
    use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
    use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
    use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
    use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
    use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse as IncrementalResult;
    use kafka_protocol::messages::{
        AlterConfigsResponse, CreatePartitionsResponse, CreateTopicsResponse, DeleteTopicsResponse,
        IncrementalAlterConfigsResponse,
    };
    let code = error.code().code();
    let message = Some(str_bytes(error.to_string()));
    match request {
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(
            CreateTopicsResponse::default().with_topics(
                r.topics
                    .into_iter()
                    .map(|t| {
                        CreatableTopicResult::default()
                            .with_name(t.name)
                            .with_error_code(code)
                            .with_error_message(message.clone())
                            .with_num_partitions(-1)
                            .with_replication_factor(-1)
                    })
                    .collect(),
            ),
        ),
        RequestKind::DeleteTopics(r) => {
            let named = r
                .topic_names
                .into_iter()
                .map(|name| DeletableTopicResult::default().with_name(Some(name)));
            let by_state = r.topics.into_iter().map(|t| {
                DeletableTopicResult::default()
                    .with_name(t.name)
                    .with_topic_id(t.topic_id)
            });
            ResponseKind::DeleteTopics(
                DeleteTopicsResponse::default().with_responses(
                    named
                        .chain(by_state)
                        .map(|t| t.with_error_code(code).with_error_message(message.clone()))
                        .collect(),
                ),
            )
        }
        RequestKind::CreatePartitions(r) => ResponseKind::CreatePartitions(
            CreatePartitionsResponse::default().with_results(
                r.topics
                    .into_iter()
                    .map(|t| {
                        CreatePartitionsTopicResult::default()
                            .with_name(t.name)
                            .with_error_code(code)
                            .with_error_message(message.clone())
                    })
                    .collect(),
            ),
        ),
        RequestKind::AlterConfigs(r) => ResponseKind::AlterConfigs(
            AlterConfigsResponse::default().with_responses(
                r.resources
                    .into_iter()
                    .map(|c| {
                        AlterConfigsResourceResponse::default()
                            .with_resource_type(c.resource_type)
                            .with_resource_name(c.resource_name)
                            .with_error_code(code)
                            .with_error_message(message.clone())
                    })
                    .collect(),
            ),
        ),
        RequestKind::IncrementalAlterConfigs(r) => ResponseKind::IncrementalAlterConfigs(
            IncrementalAlterConfigsResponse::default().with_responses(
                r.resources
                    .into_iter()
                    .map(|c| {
                        IncrementalResult::default()
                            .with_resource_type(c.resource_type)
                            .with_resource_name(c.resource_name)
                            .with_error_code(code)
                            .with_error_message(message.clone())
                    })
                    .collect(),
            ),
        ),
        RequestKind::DescribeQuorum(_) => ResponseKind::DescribeQuorum(
            DescribeQuorumResponse::default()
                .with_error_code(code)
                .with_error_message(message),
        ),
        other => unreachable!("not a controller request: {other:?}"),
    }
}
