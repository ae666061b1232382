//! CreatePartitions, AlterConfigs and IncrementalAlterConfigs.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, CreatePartitionsRequest, CreatePartitionsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{str_bytes, RESOURCE_BROKER, RESOURCE_GROUP, RESOURCE_TOPIC};
use crate::broker::Broker;
use crate::metadata::{BrokerScope, ConfigOp, MetadataError};
use crate::protocol::ErrorCode;

pub async fn create_partitions(
    broker: &Arc<Broker>,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut records = 0;
    let mut results = Vec::new();
    for topic in request.topics {
        results.push(
            async {
                match broker
                    .controller
                    .count_growth(records, &topic.name.0, topic.count)
                {
                    Ok(total) => records = total,
                    Err(e) => {
                        return CreatePartitionsTopicResult::default()
                            .with_name(topic.name)
                            .with_error_code(e.code().code())
                    }
                }
                let assignments = topic.assignments.map(|a| {
                    a.into_iter()
                        .map(|p| p.broker_ids.into_iter().map(|b| b.0).collect())
                        .collect()
                });
                let outcome = broker
                    .controller
                    .create_partitions(
                        &topic.name.0,
                        topic.count,
                        assignments,
                        request.validate_only,
                    )
                    .await;
                let result = CreatePartitionsTopicResult::default().with_name(topic.name);
                match outcome {
                    Ok(_) => result,
                    // Kafka words every refusal but the unknown topic.
                    Err(e) if e.code() == ErrorCode::UnknownTopicOrPartition => {
                        result.with_error_code(e.code().code())
                    }
                    Err(e) => result
                        .with_error_code(e.code().code())
                        .with_error_message(Some(str_bytes(e.to_string()))),
                }
            }
            .await,
        );
    }
    CreatePartitionsResponse::default().with_results(results)
}

/// Which resource a config change names.
enum Target {
    Topic(String),
    Broker(BrokerScope),
    Group(String),
}

fn target(broker: &Broker, resource_type: i8, name: &StrBytes) -> Result<Target, MetadataError> {
    match resource_type {
        RESOURCE_TOPIC => Ok(Target::Topic(name.to_string())),
        RESOURCE_GROUP => Ok(Target::Group(name.to_string())),
        RESOURCE_BROKER if name.is_empty() => Ok(Target::Broker(BrokerScope::ClusterDefault)),
        RESOURCE_BROKER if **name == *broker.config.node_id.to_string() => {
            Ok(Target::Broker(BrokerScope::Broker(broker.config.node_id)))
        }
        // In a cluster the active controller changes any broker's configs (forwarded).
        RESOURCE_BROKER if broker.controller.is_cluster() => match name.parse::<i32>() {
            Ok(id) if id >= 0 => Ok(Target::Broker(BrokerScope::Broker(id))),
            _ => Err(MetadataError::InvalidRequest(format!(
                "Unexpected broker id, expected a broker id or empty string, but received {name}"
            ))),
        },
        RESOURCE_BROKER => Err(MetadataError::InvalidRequest(format!(
            "Unexpected broker id, expected {} or empty string, but received {name}",
            broker.config.node_id
        ))),
        other => Err(MetadataError::InvalidRequest(format!(
            "Unsupported resource type {other}"
        ))),
    }
}

async fn alter(
    broker: &Broker,
    resource_type: i8,
    name: &StrBytes,
    replace: Option<BTreeMap<String, String>>,
    ops: &[ConfigOp],
    validate_only: bool,
) -> AlterConfigsResourceResponse {
    let outcome = match target(broker, resource_type, name) {
        Ok(Target::Topic(topic)) => {
            broker
                .controller
                .alter_topic_configs(&topic, replace, ops, validate_only)
                .await
        }
        Ok(Target::Broker(scope)) => {
            broker
                .controller
                .alter_broker_configs(scope, replace, ops, validate_only)
                .await
        }
        Ok(Target::Group(group)) => {
            broker
                .controller
                .alter_group_configs(&group, replace, ops, validate_only)
                .await
        }
        Err(e) => Err(e),
    };
    // The codec's default message is "", Kafka's on success none.
    let response = AlterConfigsResourceResponse::default()
        .with_error_message(None)
        .with_resource_type(resource_type)
        .with_resource_name(name.clone());
    match outcome {
        Ok(()) => response,
        Err(e) => response
            .with_error_code(e.code().code())
            .with_error_message(Some(str_bytes(e.to_string()))),
    }
}

/// AlterConfigs: the given configs replace every dynamic config of the resource.
pub async fn alter_configs(
    broker: &Arc<Broker>,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let mut responses = Vec::new();
    for resource in &request.resources {
        responses.push({
            let replace = resource
                .configs
                .iter()
                .filter_map(|c| {
                    c.value
                        .as_ref()
                        .map(|v| (c.name.to_string(), v.to_string()))
                })
                .collect();
            alter(
                broker,
                resource.resource_type,
                &resource.resource_name,
                Some(replace),
                &[],
                request.validate_only,
            )
            .await
        });
    }
    AlterConfigsResponse::default().with_responses(responses)
}

/// IncrementalAlterConfigs (KIP-339): SET, DELETE, APPEND and SUBTRACT per key.
pub async fn incremental_alter_configs(
    broker: &Arc<Broker>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::new();
    for resource in &request.resources {
        responses.push({
            let ops: Result<Vec<ConfigOp>, MetadataError> = resource
                .configs
                .iter()
                .map(|c| {
                    let key = c.name.to_string();
                    let value = c.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
                    match c.config_operation {
                        0 => Ok(ConfigOp::Set(key, value)),
                        1 => Ok(ConfigOp::Delete(key)),
                        2 => Ok(ConfigOp::Append(key, value)),
                        3 => Ok(ConfigOp::Subtract(key, value)),
                        other => Err(MetadataError::InvalidRequest(format!("Unknown config operation {other}"))),
                    }
                })
                .collect();
            let response = match ops {
                Ok(ops) => alter(broker, resource.resource_type, &resource.resource_name, None, &ops, request.validate_only).await,
                Err(e) => AlterConfigsResourceResponse::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(resource.resource_name.clone())
                    .with_error_code(e.code().code())
                    .with_error_message(Some(str_bytes(e.to_string()))),
            };
            // The two APIs share one response shape.
            kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(response.error_code)
                .with_error_message(response.error_message)
                .with_resource_type(response.resource_type)
                .with_resource_name(response.resource_name)
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
