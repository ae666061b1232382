//! CreateTopics, DeleteTopics and DescribeConfigs.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, TopicName,
};
use uuid::Uuid;

use super::{str_bytes, RESOURCE_BROKER, RESOURCE_GROUP, RESOURCE_TOPIC};
use crate::broker::Broker;
use crate::config::{
    kafka_broker_key, kafka_broker_keys, BrokerConfig, ConfigSource, ConfigType, BROKER_CONFIGS,
};
use crate::log::{TopicConfig, TopicConfigDef, TOPIC_CONFIGS};
use crate::metadata::group_config::GROUP_CONFIGS;
use crate::metadata::{MetadataError, NewTopic, TopicImage};
use crate::protocol::ErrorCode;

const SOURCE_DYNAMIC_TOPIC: i8 = 1;

pub async fn create_topics(
    broker: &Arc<Broker>,
    version: i16,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    // A name given twice gets one answer, INVALID_REQUEST, after the others: Kafka's.
    let mut seen = HashSet::new();
    let mut duplicates: Vec<String> = Vec::new();
    for t in &request.topics {
        let name = t.name.0.to_string();
        if !seen.insert(name.clone()) && !duplicates.contains(&name) {
            duplicates.push(name);
        }
    }
    let new_topics: Vec<NewTopic> = request.topics.iter().map(new_topic).collect();
    let too_large = broker
        .controller
        .check_create_size(new_topics.iter().filter(|t| !duplicates.contains(&t.name)))
        .err();
    let mut topics: Vec<CreatableTopicResult> = Vec::new();
    for new_topic in new_topics
        .into_iter()
        .filter(|t| !duplicates.contains(&t.name))
    {
        let name = new_topic.name.clone();
        // The codec's default message is "", Kafka's on success none.
        let result = CreatableTopicResult::default()
            .with_name(TopicName(str_bytes(&name)))
            .with_error_message(None);
        if let Some(e) = &too_large {
            topics.push(failed(result, version, e.code(), e.to_string()));
            continue;
        }
        topics.push(
            match broker
                .controller
                .create_topic(new_topic, request.validate_only)
                .await
            {
                Ok(record) if version >= 5 => result
                    .with_topic_id(if request.validate_only || version < 7 {
                        Uuid::nil()
                    } else {
                        record.id
                    })
                    .with_num_partitions(record.partitions)
                    .with_replication_factor(record.replication_factor)
                    .with_configs(Some(created_configs(broker, &record))),
                Ok(_) => result,
                Err(e) => failed(result, version, e.code(), e.to_string()),
            },
        );
    }
    for name in duplicates {
        let result = CreatableTopicResult::default().with_name(TopicName(str_bytes(&name)));
        topics.push(failed(
            result,
            version,
            ErrorCode::InvalidRequest,
            "Duplicate topic name.".into(),
        ));
    }
    CreateTopicsResponse::default().with_topics(topics)
}

fn new_topic(topic: &CreatableTopic) -> NewTopic {
    NewTopic {
        name: topic.name.0.to_string(),
        partitions: topic.num_partitions,
        replication_factor: topic.replication_factor,
        assignments: topic
            .assignments
            .iter()
            .map(|a| {
                (
                    a.partition_index,
                    a.broker_ids.iter().map(|b| b.0).collect(),
                )
            })
            .collect(),
        configs: topic
            .configs
            .iter()
            .filter_map(|c| {
                c.value
                    .as_ref()
                    .map(|v| (c.name.to_string(), v.to_string()))
            })
            .collect(),
    }
}

fn failed(
    result: CreatableTopicResult,
    version: i16,
    code: ErrorCode,
    message: String,
) -> CreatableTopicResult {
    let result = result
        .with_error_code(code.code())
        .with_error_message(Some(str_bytes(message)));
    if version >= 5 {
        result.with_num_partitions(-1).with_replication_factor(-1)
    } else {
        result
    }
}

fn created_configs(broker: &Arc<Broker>, record: &TopicImage) -> Vec<CreatableTopicConfigs> {
    let view = broker.controller.broker_view();
    TOPIC_CONFIGS
        .iter()
        .filter_map(|def| {
            let (value, source) = topic_value(&view, &record.configs, def)?;
            Some(
                CreatableTopicConfigs::default()
                    .with_name(str_bytes(def.name))
                    .with_value(Some(str_bytes(value)))
                    .with_config_source(source),
            )
        })
        .collect()
}

/// A topic config's effective value and its DescribeConfigs source code: the topic's
/// own (DYNAMIC_TOPIC_CONFIG), else wherever the broker got its synonym from.
fn topic_value(
    view: &BrokerConfig,
    overrides: &BTreeMap<String, String>,
    def: &TopicConfigDef,
) -> Option<(String, i8)> {
    let (value, from_topic) = TopicConfig::effective(view, overrides, def.name)?;
    let source = if from_topic {
        SOURCE_DYNAMIC_TOPIC
    } else {
        def.broker_synonym
            .and_then(|key| view.value(key))
            .map(|(_, source)| source)
            .unwrap_or(ConfigSource::Default)
            .describe_code()
    };
    Some((value, source))
}

pub async fn delete_topics(
    broker: &Arc<Broker>,
    version: i16,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let mut targets: Vec<(Option<String>, Uuid)> = request
        .topic_names
        .iter()
        .map(|n| (Some(n.0.to_string()), Uuid::nil()))
        .collect();
    targets.extend(
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)),
    );
    let mut responses = Vec::new();
    for (name, id) in targets {
        let resolved = match (&name, id) {
            (Some(name), _) => Ok(name.clone()),
            (None, id) => broker
                .controller
                .image()
                .topic_by_id(&id)
                .map(|r| r.name.clone())
                .ok_or(MetadataError::UnknownTopicId),
        };
        let outcome = match resolved {
            Ok(n) => broker.controller.delete_topic(&n).await,
            Err(e) => Err(e),
        };
        let result = DeletableTopicResult::default()
            .with_name(name.clone().map(|n| TopicName(str_bytes(n))))
            .with_topic_id(id);
        responses.push(match outcome {
            Ok(record) => result
                .with_name(Some(TopicName(str_bytes(record.name.clone()))))
                .with_topic_id(if version >= 6 { record.id } else { id }),
            Err(e) if version >= 5 => result
                .with_error_code(e.code().code())
                .with_error_message(Some(str_bytes(e.to_string()))),
            Err(e) => result.with_error_code(e.code().code()),
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

pub fn describe_configs(
    broker: &Arc<Broker>,
    version: i16,
    mut request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let resources = std::mem::take(&mut request.resources);
    let results = resources
        .into_iter()
        .map(|resource| {
            let wanted: Option<HashSet<String>> = resource
                .configuration_keys
                .map(|keys| keys.iter().map(|k| k.to_string()).collect());
            let keep = |name: &str| wanted.as_ref().is_none_or(|w| w.contains(name));
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let name = resource.resource_name.to_string();
            let configs = match resource.resource_type {
                RESOURCE_TOPIC => describe_topic_configs(broker, &name, &request, &keep),
                RESOURCE_BROKER => describe_broker_configs(broker, &name, &request, &keep),
                RESOURCE_GROUP if name.is_empty() => Err((
                    ErrorCode::InvalidRequest,
                    "Group name must not be empty".to_string(),
                )),
                RESOURCE_GROUP => Ok(describe_group_configs(broker, &name, &request, &keep)),
                other => Err((
                    ErrorCode::InvalidRequest,
                    format!("Unsupported resource type {other}"),
                )),
            };
            match configs {
                Ok(mut configs) => {
                    if version < 3 {
                        for c in &mut configs {
                            c.config_type = 0;
                            c.documentation = None;
                        }
                    }
                    result.with_configs(configs)
                }
                Err((code, message)) => result
                    .with_error_code(code.code())
                    .with_error_message(Some(str_bytes(message))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

type Described = Result<Vec<DescribeConfigsResourceResult>, (ErrorCode, String)>;

fn describe_topic_configs(
    broker: &Arc<Broker>,
    topic: &str,
    request: &DescribeConfigsRequest,
    keep: &dyn Fn(&str) -> bool,
) -> Described {
    let record = broker.controller.image().topic(topic).cloned().ok_or((
        ErrorCode::UnknownTopicOrPartition,
        format!("Topic {topic} does not exist."),
    ))?;
    let view = broker.controller.broker_view();
    Ok(TOPIC_CONFIGS
        .iter()
        .filter(|def| keep(def.name))
        .filter_map(|def| {
            let (value, source) = topic_value(&view, &record.configs, def)?;
            let mut entry = config_entry(
                def.name,
                Some(value.clone()),
                source,
                false,
                false,
                def.kind,
                def.doc,
                request,
            );
            if request.include_synonyms {
                if source == SOURCE_DYNAMIC_TOPIC {
                    entry
                        .synonyms
                        .push(synonym(def.name, &value, SOURCE_DYNAMIC_TOPIC));
                }
                if let Some(key) = def.broker_synonym {
                    if let Some((v, source)) = view.value(key) {
                        if source != ConfigSource::Default {
                            entry.synonyms.push(synonym(key, v, source.describe_code()));
                        }
                    }
                    let default = def.default.to_string();
                    entry.synonyms.push(synonym(
                        key,
                        &default,
                        ConfigSource::Default.describe_code(),
                    ));
                }
            }
            Some(entry)
        })
        .collect())
}

/// A group's configs: each of Kafka 4.1's group keys with the group's own value
/// (DYNAMIC_GROUP_CONFIG) or the broker's setting behind it (DEFAULT_CONFIG). The group
/// need not exist, as with Kafka.
fn describe_group_configs(
    broker: &Arc<Broker>,
    group: &str,
    request: &DescribeConfigsRequest,
    keep: &dyn Fn(&str) -> bool,
) -> Vec<DescribeConfigsResourceResult> {
    const SOURCE_DYNAMIC_GROUP: i8 = 8;
    let view = broker.controller.broker_view();
    let set = broker.controller.group_configs(group);
    GROUP_CONFIGS
        .iter()
        .filter(|def| keep(def.name))
        .map(|def| {
            let (value, source) = match set.get(def.name) {
                Some(v) => (v.clone(), SOURCE_DYNAMIC_GROUP),
                None => (
                    def.default_value(&view).to_string(),
                    ConfigSource::Default.describe_code(),
                ),
            };
            let mut entry = config_entry(
                def.name,
                Some(value.clone()),
                source,
                false,
                false,
                def.config_type(),
                "A group's own setting; its default is the broker's group setting of that name.",
                request,
            );
            if request.include_synonyms {
                entry.synonyms.push(synonym(def.name, &value, source));
            }
            entry
        })
        .collect()
}

fn describe_broker_configs(
    broker: &Arc<Broker>,
    name: &str,
    request: &DescribeConfigsRequest,
    keep: &dyn Fn(&str) -> bool,
) -> Described {
    let node = broker.config.node_id.to_string();
    if !name.is_empty() && name != node {
        return Err((
            ErrorCode::InvalidRequest,
            format!("Unexpected broker id, expected {node} or empty string, but received {name}"),
        ));
    }
    let view = broker.controller.broker_view();
    // Every key of Kafka's broker configuration, then any other key this broker was given;
    // set values come from the broker view, the rest are Kafka's defaults.
    let mut keys: Vec<&str> = kafka_broker_keys().iter().map(|k| k.name).collect();
    keys.extend(view.entries().map(|(key, _, _)| key));
    keys.sort_unstable();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        if !keep(key) {
            continue;
        }
        let kafka = kafka_broker_key(key);
        let ours = BROKER_CONFIGS.iter().find(|d| d.name == key);
        let (value, source) = match view.value(key) {
            Some((value, source)) => (Some(value.to_string()), source),
            None => (
                kafka.and_then(|k| k.default).map(str::to_string),
                ConfigSource::Default,
            ),
        };
        let kind = kafka
            .map(|k| k.kind)
            .or(ours.map(|d| d.kind))
            .unwrap_or(ConfigType::String);
        let sensitive = kind == ConfigType::Password;
        let read_only = crate::metadata::broker_dynamic_type(key).is_none();
        let doc = match ours {
            Some(def) => def.doc.to_string(),
            None => format!(
                "Apache Kafka broker configuration `{key}`: accepted for compatibility, no effect in this broker."
            ),
        };
        let shown = if sensitive { None } else { value.clone() };
        let mut entry = config_entry(
            key,
            shown,
            source.describe_code(),
            read_only,
            sensitive,
            kind,
            &doc,
            request,
        );
        if request.include_synonyms && !sensitive {
            if let Some(value) = &value {
                entry
                    .synonyms
                    .push(synonym(key, value, source.describe_code()));
            }
        }
        out.push(entry);
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn config_entry(
    name: &str,
    value: Option<String>,
    source: i8,
    read_only: bool,
    sensitive: bool,
    kind: ConfigType,
    doc: &str,
    request: &DescribeConfigsRequest,
) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult::default()
        .with_name(str_bytes(name))
        .with_value(value.map(str_bytes))
        .with_read_only(read_only)
        .with_config_source(source)
        .with_is_sensitive(sensitive)
        .with_config_type(kind.describe_code())
        .with_documentation(request.include_documentation.then(|| str_bytes(doc)))
}

fn synonym(name: &str, value: &str, source: i8) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(str_bytes(name))
        .with_value(Some(str_bytes(value)))
        .with_source(source)
}
