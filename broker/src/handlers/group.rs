//! Group APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
//! OffsetFetch, OffsetDelete, ListGroups, DescribeGroups, DeleteGroups,
//! ConsumerGroupHeartbeat, ConsumerGroupDescribe.
//!
//! Each decodes into the coordinator's terms, calls [`crate::group::GroupCoordinator`] and
//! encodes, setting only the fields the request's version has.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::consumer_group_describe_response::{
    self as cgd, ConsumerGroupDescribeResponse,
};
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    self as cgh, ConsumerGroupHeartbeatResponse,
};
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::{ready, str_bytes, Reply, GROUP_OPERATIONS_ALL};
use crate::broker::Broker;
use crate::group::{
    Answer, CommitContext, CommittedOffset, FetchedOffsets, FlushOwed, GroupError,
    HeartbeatRequest as ConsumerHeartbeat, JoinRequest, JoinResult, OffsetToCommit, SyncRequest,
    SyncResult,
};
use crate::protocol::ErrorCode;

const KEY_TYPE_GROUP: i8 = 0;

fn code(result: Result<(), GroupError>) -> i16 {
    match result {
        Ok(()) => ErrorCode::None.code(),
        Err(e) => e.code().code(),
    }
}

fn opt_str(s: Option<&StrBytes>) -> Option<String> {
    s.map(|s| s.to_string())
}

/// Waits for the fsync the flush policy owes, up to `offsets.commit.timeout.ms`; false if
/// it did not come in time.
async fn wait_flush(flush: FlushOwed, timeout_ms: u64) -> bool {
    match flush {
        None => true,
        Some((partition, offset)) => partition
            .wait_flushed(offset, Duration::from_millis(timeout_ms))
            .await
            .is_ok(),
    }
}

/// Answers after the fsync the flush policy asks for, or at once.
fn after_flush(
    broker: &Arc<Broker>,
    flush: FlushOwed,
    respond: impl FnOnce(bool) -> ResponseKind + Send + 'static,
) -> Reply {
    if flush.is_none() {
        return ready(respond(true));
    }
    let timeout_ms = broker.groups.config().offsets_commit_timeout_ms;
    Reply::Pending(Box::pin(async move {
        respond(wait_flush(flush, timeout_ms).await)
    }))
}

/// Answers a JoinGroup or SyncGroup: at once, or when its parked answer arrives and any
/// fsync owed is done. A parked answer whose group went away reads as `dropped`.
fn answer<T: Send + 'static>(
    broker: &Arc<Broker>,
    answer: Answer<T>,
    flush: FlushOwed,
    dropped: fn() -> T,
    respond: impl FnOnce(T) -> ResponseKind + Send + 'static,
) -> Reply {
    match (answer, flush) {
        (Answer::Now(result), None) => ready(respond(result)),
        (answer, flush) => {
            let timeout_ms = broker.groups.config().offsets_commit_timeout_ms;
            Reply::Pending(Box::pin(async move {
                wait_flush(flush, timeout_ms).await;
                let result = match answer {
                    Answer::Now(result) => result,
                    Answer::Later(rx) => rx.await.unwrap_or_else(|_| dropped()),
                };
                respond(result)
            }))
        }
    }
}

// ---- FindCoordinator ----

pub async fn find_coordinator(
    broker: &Arc<Broker>,
    version: i16,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    // Kafka locates any key, the empty one too (the group APIs refuse an empty group id
    // later, with INVALID_GROUP_ID).
    let result = if request.key_type != KEY_TYPE_GROUP {
        // Transactions have no coordinator yet; share groups are not served.
        Err(GroupError::CoordinatorNotAvailable)
    } else {
        broker.groups.ensure_offsets_topic(&broker.controller).await
    };
    let image = broker.controller.image();
    let locate = |key: &str| -> Coordinator {
        // The coordinator is the leader of the key's `__consumer_offsets` partition (a lone
        // node leads them all).
        let this = image.topic(crate::group::OFFSETS_TOPIC).and_then(|t| {
            let partition = crate::group::partition_for(key, t.partitions);
            let leader = t.partition_states.get(partition as usize)?.leader;
            image.brokers.iter().find(|b| b.node_id == leader)
        });
        let mut c = Coordinator::default().with_key(str_bytes(key));
        match (&result, this) {
            (Ok(()), Some(b)) => {
                c.node_id = BrokerId(b.node_id);
                c.host = str_bytes(b.host.clone());
                c.port = b.port;
            }
            (Ok(()), None) => {
                c.node_id = BrokerId(-1);
                c.error_code = ErrorCode::CoordinatorNotAvailable.code();
            }
            (Err(e), _) => {
                c.node_id = BrokerId(-1);
                c.error_code = e.code().code();
                c.error_message = Some(str_bytes(e.to_string()));
            }
        }
        c
    };
    let mut response = FindCoordinatorResponse::default();
    if version >= 4 {
        response.coordinators = request
            .coordinator_keys
            .iter()
            .map(|k| locate(k.as_str()))
            .collect();
    } else {
        let c = locate(request.key.as_str());
        response.error_code = c.error_code;
        response.node_id = c.node_id;
        response.host = c.host;
        response.port = c.port;
        if version >= 1 {
            response.error_message = c.error_message;
        }
    }
    response
}

// ---- JoinGroup / SyncGroup / Heartbeat / LeaveGroup ----

pub fn join_group(
    broker: &Arc<Broker>,
    version: i16,
    request: JoinGroupRequest,
    client_id: &str,
    peer: SocketAddr,
) -> Reply {
    let join = JoinRequest {
        member_id: request.member_id.to_string(),
        group_instance_id: opt_str(request.group_instance_id.as_ref()),
        client_id: client_id.to_string(),
        client_host: format!("/{}", peer.ip()),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
    };
    answer(
        broker,
        broker.groups.join_group(&request.group_id.0, join),
        None,
        || JoinResult::failed(GroupError::CoordinatorNotAvailable, ""),
        move |result| ResponseKind::JoinGroup(join_response(version, result)),
    )
}

fn join_response(version: i16, result: JoinResult) -> JoinGroupResponse {
    let mut response = JoinGroupResponse::default()
        .with_error_code(result.error.map_or(0, |e| e.code().code()))
        .with_generation_id(result.generation)
        .with_leader(str_bytes(result.leader))
        .with_member_id(str_bytes(result.member_id));
    let protocol_name = result.protocol_name.map(str_bytes);
    if version >= 7 {
        response.protocol_type = result.protocol_type.map(str_bytes);
        response.protocol_name = protocol_name;
    } else {
        response.protocol_name = Some(protocol_name.unwrap_or_default());
    }
    if version >= 9 {
        response.skip_assignment = result.skip_assignment;
    }
    response.members = result
        .members
        .into_iter()
        .map(|m| {
            let mut member = JoinGroupResponseMember::default()
                .with_member_id(str_bytes(m.member_id))
                .with_metadata(m.metadata);
            if version >= 5 {
                member.group_instance_id = m.group_instance_id.map(str_bytes);
            }
            member
        })
        .collect();
    response
}

pub fn sync_group(broker: &Arc<Broker>, version: i16, request: SyncGroupRequest) -> Reply {
    if version >= 5 && (request.protocol_type.is_none() || request.protocol_name.is_none()) {
        // From v5 both are mandatory; Kafka refuses the request before the group sees it.
        return ready(ResponseKind::SyncGroup(
            SyncGroupResponse::default()
                .with_error_code(ErrorCode::InconsistentGroupProtocol.code())
                .with_protocol_type(None)
                .with_protocol_name(None),
        ));
    }
    let sync = SyncRequest {
        member_id: request.member_id.to_string(),
        group_instance_id: opt_str(request.group_instance_id.as_ref()),
        generation: request.generation_id,
        protocol_type: opt_str(request.protocol_type.as_ref()),
        protocol_name: opt_str(request.protocol_name.as_ref()),
        assignments: request
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let (parked, flush) = broker.groups.sync_group(&request.group_id.0, sync);
    let respond = move |result: SyncResult| {
        let mut response = SyncGroupResponse::default()
            .with_error_code(result.error.map_or(0, |e| e.code().code()))
            .with_assignment(result.assignment);
        if version >= 5 {
            response.protocol_type = result.protocol_type.map(str_bytes);
            response.protocol_name = result.protocol_name.map(str_bytes);
        }
        ResponseKind::SyncGroup(response)
    };
    answer(
        broker,
        parked,
        flush,
        || SyncResult::failed(GroupError::CoordinatorNotAvailable),
        respond,
    )
}

pub fn heartbeat(broker: &Arc<Broker>, request: HeartbeatRequest) -> HeartbeatResponse {
    let result = broker.groups.heartbeat(
        &request.group_id.0,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
    );
    HeartbeatResponse::default().with_error_code(code(result))
}

pub fn leave_group(
    broker: &Arc<Broker>,
    version: i16,
    request: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    opt_str(m.group_instance_id.as_ref()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let mut response = LeaveGroupResponse::default();
    match broker.groups.leave_group(&request.group_id.0, &members) {
        Err(e) => response.error_code = e.code().code(),
        Ok(results) if version >= 3 => {
            response.members = members
                .into_iter()
                .zip(results)
                .map(|((member_id, instance), result)| {
                    MemberResponse::default()
                        .with_member_id(str_bytes(member_id))
                        .with_group_instance_id(instance.map(str_bytes))
                        .with_error_code(code(result))
                })
                .collect();
        }
        Ok(results) => response.error_code = code(results.into_iter().next().unwrap_or(Ok(()))),
    }
    response
}

// ---- Offsets ----

pub fn offset_commit(broker: &Arc<Broker>, version: i16, request: OffsetCommitRequest) -> Reply {
    let context = CommitContext {
        member_id: request.member_id.to_string(),
        group_instance_id: opt_str(request.group_instance_id.as_ref()),
        generation_or_epoch: request.generation_id_or_member_epoch,
        version,
    };
    let topics: Vec<(String, Vec<OffsetToCommit>)> = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| OffsetToCommit {
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: if version >= 6 {
                        p.committed_leader_epoch
                    } else {
                        -1
                    },
                    metadata: p
                        .committed_metadata
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                })
                .collect();
            (t.name.0.to_string(), partitions)
        })
        .collect();
    let outcome = broker
        .groups
        .commit_offsets(&request.group_id.0, &context, &topics);
    let (results, flush) = match outcome {
        Ok(ok) => ok,
        Err(e) => {
            let failed = topics
                .iter()
                .map(|(t, ps)| {
                    (
                        t.clone(),
                        ps.iter().map(|p| (p.partition, Err(e))).collect(),
                    )
                })
                .collect();
            (failed, None)
        }
    };
    after_flush(broker, flush, move |flushed| {
        let topics = results
            .into_iter()
            .map(|(name, partitions)| {
                OffsetCommitResponseTopic::default()
                    .with_name(TopicName(str_bytes(name)))
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|(index, result)| {
                                let error = match result {
                                    Ok(()) if !flushed => ErrorCode::RequestTimedOut.code(),
                                    other => code(other),
                                };
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(index)
                                    .with_error_code(error)
                            })
                            .collect(),
                    )
            })
            .collect();
        ResponseKind::OffsetCommit(OffsetCommitResponse::default().with_topics(topics))
    })
}

pub fn offset_fetch(
    broker: &Arc<Broker>,
    version: i16,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let mut response = OffsetFetchResponse::default();
    if version >= 8 {
        response.groups = request
            .groups
            .iter()
            .map(|g| {
                let topics: Option<Vec<(String, Vec<i32>)>> = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                        .collect()
                });
                let member = match (&g.member_id, version >= 9) {
                    (Some(id), true) => Some((id.as_str(), g.member_epoch)),
                    _ => None,
                };
                let result = fetch_offsets(broker, &g.group_id.0, topics.as_deref(), member);
                group_offsets(g.group_id.clone(), result)
            })
            .collect();
        return response;
    }
    let topics: Option<Vec<(String, Vec<i32>)>> = request.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let fetched = fetch_offsets(broker, &request.group_id.0, topics.as_deref(), None);
    match fetched {
        Ok(found) => {
            response.topics = found
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(str_bytes(name)))
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|(index, value)| {
                                    let (offset, epoch, metadata) = committed_fields(value);
                                    let mut p = OffsetFetchResponsePartition::default()
                                        .with_partition_index(index)
                                        .with_committed_offset(offset)
                                        .with_metadata(Some(str_bytes(metadata)));
                                    if version >= 5 {
                                        p.committed_leader_epoch = epoch;
                                    }
                                    p
                                })
                                .collect(),
                        )
                })
                .collect();
        }
        Err(e) if version >= 2 => response.error_code = e.code().code(),
        Err(e) => {
            // v1 has no top-level error: each requested partition carries it.
            response.topics = topics
                .unwrap_or_default()
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(str_bytes(name)))
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|index| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(index)
                                        .with_committed_offset(-1)
                                        .with_metadata(Some(StrBytes::default()))
                                        .with_error_code(e.code().code())
                                })
                                .collect(),
                        )
                })
                .collect();
        }
    }
    response
}

fn committed_fields(value: CommittedOffset) -> (i64, i32, String) {
    match value {
        Some(v) => (v.offset, v.leader_epoch, v.metadata),
        None => (-1, -1, String::new()),
    }
}

fn group_offsets(
    group_id: GroupId,
    result: Result<FetchedOffsets, GroupError>,
) -> OffsetFetchResponseGroup {
    let mut group = OffsetFetchResponseGroup::default().with_group_id(group_id);
    match result {
        Ok(found) => {
            group.topics = found
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetFetchResponseTopics::default()
                        .with_name(TopicName(str_bytes(name)))
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|(index, value)| {
                                    let (offset, epoch, metadata) = committed_fields(value);
                                    OffsetFetchResponsePartitions::default()
                                        .with_partition_index(index)
                                        .with_committed_offset(offset)
                                        .with_committed_leader_epoch(epoch)
                                        .with_metadata(Some(str_bytes(metadata)))
                                })
                                .collect(),
                        )
                })
                .collect();
        }
        Err(e) => group.error_code = e.code().code(),
    }
    group
}

pub fn offset_delete(broker: &Arc<Broker>, request: OffsetDeleteRequest) -> Reply {
    let topics: Vec<(String, Vec<i32>)> = request
        .topics
        .iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    match broker.groups.delete_offsets(&request.group_id.0, &topics) {
        Err(e) => ready(ResponseKind::OffsetDelete(
            OffsetDeleteResponse::default().with_error_code(e.code().code()),
        )),
        Ok((results, flush)) => after_flush(broker, flush, move |_| {
            let topics = results
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetDeleteResponseTopic::default()
                        .with_name(TopicName(str_bytes(name)))
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|(index, result)| {
                                    OffsetDeleteResponsePartition::default()
                                        .with_partition_index(index)
                                        .with_error_code(code(result))
                                })
                                .collect(),
                        )
                })
                .collect();
            ResponseKind::OffsetDelete(OffsetDeleteResponse::default().with_topics(topics))
        }),
    }
}

// ---- Admin ----

pub fn list_groups(
    broker: &Arc<Broker>,
    version: i16,
    request: ListGroupsRequest,
) -> ListGroupsResponse {
    let states: Vec<String> = request
        .states_filter
        .iter()
        .map(|s| s.to_string())
        .collect();
    let types: Vec<String> = request.types_filter.iter().map(|s| s.to_string()).collect();
    let groups = broker
        .groups
        .list_groups(&states, &types)
        .into_iter()
        .map(|g| {
            let mut listed = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(g.group_id)))
                .with_protocol_type(str_bytes(g.protocol_type));
            if version >= 4 {
                listed.group_state = str_bytes(g.state);
            }
            if version >= 5 {
                listed.group_type = str_bytes(g.group_type);
            }
            listed
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

pub fn describe_groups(
    broker: &Arc<Broker>,
    version: i16,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let ids: Vec<String> = request.groups.iter().map(|g| g.0.to_string()).collect();
    let groups = split_by_coordinator(broker, &ids, |ours| broker.groups.describe_groups(ours))
        .into_iter()
        .map(|(id, result)| {
            let mut group = DescribedGroup::default().with_group_id(GroupId(str_bytes(id)));
            if version >= 3 {
                group.authorized_operations = if request.include_authorized_operations {
                    GROUP_OPERATIONS_ALL
                } else {
                    i32::MIN
                };
            }
            match result {
                Ok(d) => {
                    group.group_state = str_bytes(d.state);
                    group.protocol_type = str_bytes(d.protocol_type);
                    group.protocol_data = str_bytes(d.protocol);
                    group.members = d
                        .members
                        .into_iter()
                        .map(|m| {
                            let mut member = DescribedGroupMember::default()
                                .with_member_id(str_bytes(m.member_id))
                                .with_client_id(str_bytes(m.client_id))
                                .with_client_host(str_bytes(m.client_host))
                                .with_member_metadata(m.metadata)
                                .with_member_assignment(m.assignment);
                            if version >= 4 {
                                member.group_instance_id = m.group_instance_id.map(str_bytes);
                            }
                            member
                        })
                        .collect();
                }
                // Before v6 an unknown group is described as Dead without an error.
                Err(GroupError::GroupIdNotFound) if version < 6 => {
                    group.group_state = str_bytes("Dead");
                }
                Err(e) => {
                    group.error_code = e.code().code();
                    group.group_state = str_bytes("Dead");
                    if version >= 6 {
                        group.error_message = Some(str_bytes(e.to_string()));
                    }
                }
            }
            group
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

pub fn delete_groups(broker: &Arc<Broker>, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let ids: Vec<String> = request
        .groups_names
        .iter()
        .map(|g| g.0.to_string())
        .collect();
    let results = split_by_coordinator(broker, &ids, |ours| broker.groups.delete_groups(ours))
        .into_iter()
        .map(|(id, result)| {
            DeletableGroupResult::default()
                .with_group_id(GroupId(str_bytes(id)))
                .with_error_code(code(result))
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}

// ---- KIP-848 ----

pub fn consumer_group_heartbeat(
    broker: &Arc<Broker>,
    version: i16,
    request: ConsumerGroupHeartbeatRequest,
    client_id: &str,
    peer: SocketAddr,
) -> ConsumerGroupHeartbeatResponse {
    let heartbeat = ConsumerHeartbeat {
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        instance_id: opt_str(request.instance_id.as_ref()),
        rack_id: opt_str(request.rack_id.as_ref()),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request
            .subscribed_topic_names
            .as_ref()
            .map(|ts| ts.iter().map(|t| t.0.to_string()).collect()),
        subscribed_topic_regex: opt_str(request.subscribed_topic_regex.as_ref()),
        server_assignor: opt_str(request.server_assignor.as_ref()),
        owned: request.topic_partitions.as_ref().map(|ts| {
            ts.iter()
                .map(|t| (t.topic_id, t.partitions.clone()))
                .collect()
        }),
        client_id: client_id.to_string(),
        client_host: format!("/{}", peer.ip()),
    };
    let mut response = ConsumerGroupHeartbeatResponse::default();
    // v1 (KIP-1082): the member generates its id, so it is never empty.
    let outcome = if version >= 1 && heartbeat.member_id.is_empty() {
        Err(GroupError::InvalidRequest)
    } else {
        let group_configs = broker.controller.group_configs(&request.group_id.0);
        broker
            .groups
            .consumer_heartbeat(&request.group_id.0, &group_configs, heartbeat)
    };
    match outcome {
        Ok(result) => {
            response.member_id = Some(str_bytes(result.member_id));
            response.member_epoch = result.member_epoch;
            response.heartbeat_interval_ms = result.heartbeat_interval_ms;
            response.assignment = result.assignment.map(|a| {
                cgh::Assignment::default().with_topic_partitions(
                    a.into_iter()
                        .map(|(id, partitions)| {
                            cgh::TopicPartitions::default()
                                .with_topic_id(id)
                                .with_partitions(partitions)
                        })
                        .collect(),
                )
            });
        }
        Err(e) => {
            response.error_code = e.code().code();
            response.error_message = Some(str_bytes(e.to_string()));
            response.member_epoch = -1;
        }
    }
    response
}

pub fn consumer_group_describe(
    broker: &Arc<Broker>,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let ids: Vec<String> = request.group_ids.iter().map(|g| g.0.to_string()).collect();
    let to_assignment = |list: Vec<(uuid::Uuid, String, Vec<i32>)>| {
        cgd::Assignment::default().with_topic_partitions(
            list.into_iter()
                .map(|(id, name, partitions)| {
                    cgd::TopicPartitions::default()
                        .with_topic_id(id)
                        .with_topic_name(TopicName(str_bytes(name)))
                        .with_partitions(partitions)
                })
                .collect(),
        )
    };
    let groups = broker
        .groups
        .describe_consumer_groups(&ids)
        .into_iter()
        .map(|(id, result)| {
            let mut group = cgd::DescribedGroup::default()
                .with_group_id(GroupId(str_bytes(id)))
                .with_authorized_operations(if request.include_authorized_operations {
                    GROUP_OPERATIONS_ALL
                } else {
                    i32::MIN
                });
            match result {
                Ok(d) => {
                    group.group_state = str_bytes(d.state);
                    group.group_epoch = d.group_epoch;
                    group.assignment_epoch = d.assignment_epoch;
                    group.assignor_name = str_bytes(d.assignor_name);
                    group.members = d
                        .members
                        .into_iter()
                        .map(|m| {
                            cgd::Member::default()
                                .with_member_id(str_bytes(m.member_id))
                                .with_instance_id(m.instance_id.map(str_bytes))
                                .with_rack_id(m.rack_id.map(str_bytes))
                                .with_member_epoch(m.member_epoch)
                                .with_client_id(str_bytes(m.client_id))
                                .with_client_host(str_bytes(m.client_host))
                                .with_subscribed_topic_names(
                                    m.subscribed_topic_names
                                        .into_iter()
                                        .map(|t| TopicName(str_bytes(t)))
                                        .collect(),
                                )
                                .with_subscribed_topic_regex(
                                    m.subscribed_topic_regex.map(str_bytes),
                                )
                                .with_assignment(to_assignment(m.assignment))
                                .with_target_assignment(to_assignment(m.target_assignment))
                        })
                        .collect();
                }
                Err(e) => {
                    group.error_code = e.code().code();
                    group.error_message = Some(str_bytes(e.to_string()));
                    group.group_state = str_bytes("Dead");
                }
            }
            group
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}

/// In a cluster, a group's coordinator is the leader of its `__consumer_offsets`
/// partition; another node answers a request that would change the group with
/// NOT_COORDINATOR, in the request's own shape, so the client looks the coordinator up
/// again instead of writing to a copy no one else reads.
pub(super) fn not_coordinator(broker: &Arc<Broker>, request: &RequestKind) -> Option<ResponseKind> {
    if !broker.controller.is_cluster() {
        return None;
    }
    let group = match request {
        RequestKind::JoinGroup(r) => &r.group_id.0,
        RequestKind::SyncGroup(r) => &r.group_id.0,
        RequestKind::Heartbeat(r) => &r.group_id.0,
        RequestKind::LeaveGroup(r) => &r.group_id.0,
        RequestKind::OffsetCommit(r) => &r.group_id.0,
        RequestKind::OffsetDelete(r) => &r.group_id.0,
        RequestKind::ConsumerGroupHeartbeat(r) => &r.group_id.0,
        _ => return None,
    };
    if coordinates(broker, group) {
        return None;
    }
    let code = ErrorCode::NotCoordinator.code();
    Some(match request {
        RequestKind::JoinGroup(_) => ResponseKind::JoinGroup(
            JoinGroupResponse::default()
                .with_error_code(code)
                .with_generation_id(-1),
        ),
        RequestKind::SyncGroup(_) => {
            ResponseKind::SyncGroup(SyncGroupResponse::default().with_error_code(code))
        }
        RequestKind::Heartbeat(_) => {
            ResponseKind::Heartbeat(HeartbeatResponse::default().with_error_code(code))
        }
        RequestKind::LeaveGroup(_) => {
            ResponseKind::LeaveGroup(LeaveGroupResponse::default().with_error_code(code))
        }
        RequestKind::OffsetDelete(_) => {
            ResponseKind::OffsetDelete(OffsetDeleteResponse::default().with_error_code(code))
        }
        RequestKind::ConsumerGroupHeartbeat(_) => ResponseKind::ConsumerGroupHeartbeat(
            ConsumerGroupHeartbeatResponse::default()
                .with_error_code(code)
                .with_heartbeat_interval_ms(0),
        ),
        RequestKind::OffsetCommit(r) => ResponseKind::OffsetCommit(
            OffsetCommitResponse::default().with_topics(
                r.topics
                    .iter()
                    .map(|t| {
                        OffsetCommitResponseTopic::default()
                            .with_name(t.name.clone())
                            .with_topic_id(t.topic_id)
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        OffsetCommitResponsePartition::default()
                                            .with_partition_index(p.partition_index)
                                            .with_error_code(code)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        _ => return None,
    })
}

/// Whether this node coordinates `group`: always on a lone node; in a cluster, when it
/// leads the group's `__consumer_offsets` partition (or that topic does not exist yet).
/// A group's committed offsets, if this node coordinates the group.
fn fetch_offsets(
    broker: &Broker,
    group: &str,
    topics: Option<&[(String, Vec<i32>)]>,
    member: Option<(&str, i32)>,
) -> Result<crate::group::FetchedOffsets, GroupError> {
    if !coordinates(broker, group) {
        return Err(GroupError::NotCoordinator);
    }
    broker.groups.fetch_offsets(group, topics, member)
}

fn coordinates(broker: &Broker, group: &str) -> bool {
    if !broker.controller.is_cluster() {
        return true;
    }
    let image = broker.controller.image();
    match image.topic(crate::group::OFFSETS_TOPIC) {
        Some(offsets) => broker.controller.leads(
            crate::group::OFFSETS_TOPIC,
            crate::group::partition_for(group, offsets.partitions),
        ),
        None => true,
    }
}

/// Answers the groups this node coordinates with `answer` (one result per group, in
/// order), the others with NOT_COORDINATOR, in the order asked.
fn split_by_coordinator<T>(
    broker: &Broker,
    ids: &[String],
    answer: impl FnOnce(&[String]) -> Vec<(String, Result<T, GroupError>)>,
) -> Vec<(String, Result<T, GroupError>)> {
    let ours: Vec<bool> = ids.iter().map(|id| coordinates(broker, id)).collect();
    let asked: Vec<String> = ids
        .iter()
        .zip(&ours)
        .filter(|(_, ours)| **ours)
        .map(|(id, _)| id.clone())
        .collect();
    let mut answered = answer(&asked).into_iter();
    ids.iter()
        .zip(ours)
        .map(|(id, ours)| match ours.then(|| answered.next()).flatten() {
            Some(result) => result,
            None => (id.clone(), Err(GroupError::NotCoordinator)),
        })
        .collect()
}
