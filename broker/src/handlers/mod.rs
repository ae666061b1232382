//! Request handlers: decode, call one subsystem, encode. No state lives here.
//!
//! [`handle`] runs on the connection's reader in request order, so the part of a handler
//! that changes state (appending a produce) happens in the order requests arrived. What a
//! handler must wait for (a long-polling fetch, an fsync for acks) it returns as
//! [`Reply::Pending`], which the connection's writer awaits in order.

mod admin;
mod alter;
mod api_versions;
mod cluster;
mod controller;
mod fetch;
mod group;
mod log_dirs;
mod produce;
mod producer_id;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;

pub use api_versions::unsupported_version_response;

/// A response still being worked out.
pub type ResponseFuture = Pin<Box<dyn Future<Output = ResponseKind> + Send>>;

/// What a handler gives back to the connection.
pub enum Reply {
    /// Boxed: responses are large and most replies are small.
    Ready(Box<ResponseKind>),
    Pending(ResponseFuture),
    /// A response that changes metadata through the quorum: the connection waits for it
    /// before it handles its next request, as Kafka serves one request per connection at
    /// a time, so a request sees what the ones before it on the connection changed.
    Ordered(ResponseFuture),
    /// No response is sent (Produce with acks=0).
    Silent,
    /// Close the connection (Produce with acks=0 that failed, as Kafka does).
    Close(String),
}

/// Dispatches one decoded request. Only APIs of the version table reach here.
/// `controller_listener`: the request came in on the controller listener, where
/// controller requests are decided here, never forwarded again.
pub fn handle(
    broker: &Arc<Broker>,
    header: &RequestHeader,
    request: RequestKind,
    peer: SocketAddr,
    controller_listener: bool,
) -> Reply {
    let version = header.request_api_version;
    let client_id = header.client_id.as_deref().unwrap_or_default();
    if is_forwarded(&request)
        && !controller_listener
        && broker.controller.is_cluster()
        && !broker.controller.is_leader()
    {
        let key = ApiKey::try_from(header.request_api_key).expect("a served api key");
        return ordered(broker, move |b| async move {
            controller::forward(&b, key, version, request).await
        });
    }
    if is_forwarded(&request)
        && !matches!(request, RequestKind::DescribeQuorum(_))
        && controller_listener
        && !broker.controller.is_leader()
    {
        // Forwarded to a node that is no longer the controller: never forwarded again.
        return ready(controller::refuse(
            request,
            &crate::metadata::MetadataError::NotController,
        ));
    }
    if is_group_request(&request) {
        if let Err(e) = broker.groups.load_if_hosted() {
            tracing::warn!(error = %e, "cannot load the consumer groups");
        }
        if let Some(response) = group::not_coordinator(broker, &request) {
            return ready(response);
        }
    }
    match request {
        RequestKind::ApiVersions(_) => {
            ready(ResponseKind::ApiVersions(api_versions::handle(version)))
        }
        RequestKind::Metadata(r) => ordered(broker, move |b| async move {
            ResponseKind::Metadata(cluster::metadata(&b, version, r).await)
        }),
        RequestKind::DescribeCluster(r) => ready(ResponseKind::DescribeCluster(
            cluster::describe_cluster(broker, version, r),
        )),
        r @ (RequestKind::CreateTopics(_)
        | RequestKind::DeleteTopics(_)
        | RequestKind::CreatePartitions(_)
        | RequestKind::AlterConfigs(_)
        | RequestKind::IncrementalAlterConfigs(_)
        | RequestKind::DescribeQuorum(_)) => {
            ordered(
                broker,
                move |b| async move { decide_here(&b, version, r).await },
            )
        }
        RequestKind::BrokerRegistration(r) => ordered(broker, move |b| async move {
            ResponseKind::BrokerRegistration(controller::broker_registration(&b, r).await)
        }),
        RequestKind::BrokerHeartbeat(r) => ordered(broker, move |b| async move {
            ResponseKind::BrokerHeartbeat(controller::broker_heartbeat(&b, r).await)
        }),
        RequestKind::AllocateProducerIds(r) => ordered(broker, move |b| async move {
            ResponseKind::AllocateProducerIds(producer_id::allocate_producer_ids(&b, r).await)
        }),
        RequestKind::DescribeConfigs(r) => ready(ResponseKind::DescribeConfigs(
            admin::describe_configs(broker, version, r),
        )),
        RequestKind::InitProducerId(r) => ordered(broker, move |b| async move {
            ResponseKind::InitProducerId(producer_id::init_producer_id(&b, r).await)
        }),
        RequestKind::Produce(r) => produce::produce(broker, version, r),
        RequestKind::Fetch(r) => fetch::fetch(broker, version, r),
        RequestKind::ListOffsets(r) => ready(ResponseKind::ListOffsets(fetch::list_offsets(
            broker, version, r,
        ))),
        RequestKind::OffsetForLeaderEpoch(r) => ready(ResponseKind::OffsetForLeaderEpoch(
            fetch::offset_for_leader_epoch(broker, r),
        )),
        RequestKind::DeleteRecords(r) => ready(ResponseKind::DeleteRecords(
            log_dirs::delete_records(broker, r),
        )),
        RequestKind::DescribeLogDirs(r) => ready(ResponseKind::DescribeLogDirs(
            log_dirs::describe_log_dirs(broker, version, r),
        )),
        RequestKind::DescribeTopicPartitions(r) => ready(ResponseKind::DescribeTopicPartitions(
            cluster::describe_topic_partitions(broker, r),
        )),
        RequestKind::FindCoordinator(r) => ordered(broker, move |b| async move {
            ResponseKind::FindCoordinator(group::find_coordinator(&b, version, r).await)
        }),
        RequestKind::JoinGroup(r) => group::join_group(broker, version, r, client_id, peer),
        RequestKind::SyncGroup(r) => group::sync_group(broker, version, r),
        RequestKind::Heartbeat(r) => ready(ResponseKind::Heartbeat(group::heartbeat(broker, r))),
        RequestKind::LeaveGroup(r) => ready(ResponseKind::LeaveGroup(group::leave_group(
            broker, version, r,
        ))),
        RequestKind::OffsetCommit(r) => group::offset_commit(broker, version, r),
        RequestKind::OffsetFetch(r) => ready(ResponseKind::OffsetFetch(group::offset_fetch(
            broker, version, r,
        ))),
        RequestKind::OffsetDelete(r) => group::offset_delete(broker, r),
        RequestKind::ListGroups(r) => ready(ResponseKind::ListGroups(group::list_groups(
            broker, version, r,
        ))),
        RequestKind::DescribeGroups(r) => ready(ResponseKind::DescribeGroups(
            group::describe_groups(broker, version, r),
        )),
        RequestKind::DeleteGroups(r) => {
            ready(ResponseKind::DeleteGroups(group::delete_groups(broker, r)))
        }
        RequestKind::ConsumerGroupHeartbeat(r) => ready(ResponseKind::ConsumerGroupHeartbeat(
            group::consumer_group_heartbeat(broker, version, r, client_id, peer),
        )),
        RequestKind::ConsumerGroupDescribe(r) => ready(ResponseKind::ConsumerGroupDescribe(
            group::consumer_group_describe(broker, r),
        )),
        other => Reply::Close(format!(
            "no handler for {:?}",
            std::mem::discriminant(&other)
        )),
    }
}

/// Requests a group coordinator answers.
fn is_group_request(request: &RequestKind) -> bool {
    matches!(
        request,
        RequestKind::JoinGroup(_)
            | RequestKind::SyncGroup(_)
            | RequestKind::Heartbeat(_)
            | RequestKind::LeaveGroup(_)
            | RequestKind::OffsetCommit(_)
            | RequestKind::OffsetFetch(_)
            | RequestKind::OffsetDelete(_)
            | RequestKind::ListGroups(_)
            | RequestKind::DescribeGroups(_)
            | RequestKind::DeleteGroups(_)
            | RequestKind::ConsumerGroupHeartbeat(_)
            | RequestKind::ConsumerGroupDescribe(_)
    )
}

/// Requests the active controller decides: a broker that is not it forwards them.
fn is_forwarded(request: &RequestKind) -> bool {
    matches!(
        request,
        RequestKind::CreateTopics(_)
            | RequestKind::DeleteTopics(_)
            | RequestKind::CreatePartitions(_)
            | RequestKind::AlterConfigs(_)
            | RequestKind::IncrementalAlterConfigs(_)
            | RequestKind::DescribeQuorum(_)
    )
}

/// Answers a request the controller decides, on this node.
async fn decide_here(broker: &Arc<Broker>, version: i16, request: RequestKind) -> ResponseKind {
    match request {
        RequestKind::CreateTopics(r) => {
            ResponseKind::CreateTopics(admin::create_topics(broker, version, r).await)
        }
        RequestKind::DeleteTopics(r) => {
            ResponseKind::DeleteTopics(admin::delete_topics(broker, version, r).await)
        }
        RequestKind::CreatePartitions(r) => {
            ResponseKind::CreatePartitions(alter::create_partitions(broker, r).await)
        }
        RequestKind::AlterConfigs(r) => {
            ResponseKind::AlterConfigs(alter::alter_configs(broker, r).await)
        }
        RequestKind::IncrementalAlterConfigs(r) => {
            ResponseKind::IncrementalAlterConfigs(alter::incremental_alter_configs(broker, r).await)
        }
        RequestKind::DescribeQuorum(_) => {
            ResponseKind::DescribeQuorum(controller::describe_quorum(broker, version))
        }
        other => unreachable!("not a controller request: {other:?}"),
    }
}

fn ready(response: ResponseKind) -> Reply {
    Reply::Ready(Box::new(response))
}

/// A reply the connection awaits before its next request (see [`Reply::Ordered`]).
fn ordered<F, Fut>(broker: &Arc<Broker>, handler: F) -> Reply
where
    F: FnOnce(Arc<Broker>) -> Fut,
    Fut: Future<Output = ResponseKind> + Send + 'static,
{
    Reply::Ordered(Box::pin(handler(Arc::clone(broker))))
}

pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// Kafka's ConfigResource types that the config APIs serve.
pub(crate) const RESOURCE_TOPIC: i8 = 2;
pub(crate) const RESOURCE_BROKER: i8 = 4;
pub(crate) use crate::metadata::group_config::RESOURCE_GROUP;

/// Kafka's "all operations" bitfields, for the authorized-operations fields: without an
/// authorizer Kafka 4.1 reports every operation of the resource type (bit = AclOperation
/// code: READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8, CLUSTER_ACTION 9,
/// DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12). Checked against Kafka 4.1.2.
pub(crate) const TOPIC_OPERATIONS_ALL: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
/// CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE.
pub(crate) const CLUSTER_OPERATIONS_ALL: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);
/// READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
pub(crate) const GROUP_OPERATIONS_ALL: i32 = (1 << 3) | (1 << 6) | (1 << 8) | (1 << 10) | (1 << 11);
