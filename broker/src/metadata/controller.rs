//! The controller's decisions: pure functions from the current image and a request to the
//! records that carry the change out, or the error Kafka's controller answers with.
//!
//! Nothing here touches a disk or a socket; the [`Controller`](super::Controller) proposes
//! the records to the quorum, and the change takes effect when they are committed and
//! replayed on every node.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::image::{MetadataDelta, MetadataImage, TopicImage};
use super::records::{
    resource, BrokerEndpoint, BrokerRegistrationChangeRecord, ConfigRecord, MetadataRecord,
    PartitionChangeRecord, PartitionRecord, ProducerIdsRecord, RegisterBrokerRecord,
    RemoveTopicRecord, TopicRecord, LEADER_RECOVERED, NO_LEADER, NO_LEADER_CHANGE,
};
use super::{
    apply_op, broker_dynamic_type, validate_topic_name, ConfigOp, MetadataError, NewTopic,
};
use crate::config::BrokerConfig;
use crate::log::TopicConfig;

/// The brokers new replicas may be placed on, with their racks, in id order: the
/// unfenced ones not in controlled shutdown.
fn usable_brokers(image: &MetadataImage) -> Vec<(i32, Option<String>)> {
    let mut brokers: Vec<(i32, Option<String>)> = image
        .brokers
        .iter()
        .filter(|b| {
            image
                .registrations
                .get(&b.node_id)
                .is_none_or(|r| !r.in_controlled_shutdown)
        })
        .map(|b| (b.node_id, b.rack.clone()))
        .collect();
    brokers.sort_unstable();
    brokers.dedup_by_key(|b| b.0);
    brokers
}

fn broker_ids(brokers: &[(i32, Option<String>)]) -> Vec<i32> {
    brokers.iter().map(|b| b.0).collect()
}

/// The brokers ordered for placement. Without racks: by id. With racks (`broker.rack`;
/// the brokers without one count as one more rack, first): alternating between the racks
/// in name order, taking each rack's brokers in id order, so neighbours sit on other racks.
fn arrange(brokers: &[(i32, Option<String>)]) -> Vec<(i32, Option<String>)> {
    if brokers.iter().all(|b| b.1.is_none()) {
        return brokers.to_vec();
    }
    let mut by_rack: BTreeMap<Option<&str>, std::collections::VecDeque<i32>> = BTreeMap::new();
    for (id, rack) in brokers {
        by_rack.entry(rack.as_deref()).or_default().push_back(*id);
    }
    let mut arranged = Vec::with_capacity(brokers.len());
    while arranged.len() < brokers.len() {
        for (rack, ids) in by_rack.iter_mut() {
            if let Some(id) = ids.pop_front() {
                arranged.push((id, rack.map(str::to_string)));
            }
        }
    }
    arranged
}

/// Replicas for `count` new partitions starting at index `first`, as Kafka's assignment
/// places them: leaders striped over the arranged brokers from a start index, followers
/// at a shift from their leader that grows each time the partitions wrap around the
/// brokers, and, with racks, no rack holding a second replica of a partition before every
/// rack holds one. Kafka draws the start index and first shift at random; here the
/// topic's (random) id picks them, so leaders of different topics spread over the brokers
/// and new partitions of a topic continue its stripe.
fn place(
    brokers: &[(i32, Option<String>)],
    topic_id: Uuid,
    first: i32,
    count: i32,
    replication_factor: i16,
) -> Result<Vec<Vec<i32>>, MetadataError> {
    let factor = replication_factor as usize;
    if factor > brokers.len() {
        return Err(MetadataError::InvalidReplicationFactor(format!(
            "Unable to replicate the partition {replication_factor} time(s): The target replication factor of {replication_factor} cannot be reached because only {} broker(s) are registered.",
            brokers.len()
        )));
    }
    let arranged = arrange(brokers);
    let n = arranged.len();
    let racks = arranged
        .iter()
        .map(|b| b.1.as_deref())
        .collect::<BTreeSet<_>>()
        .len();
    let rack_aware = arranged.iter().any(|b| b.1.is_some());
    let (high, low) = topic_id.as_u64_pair();
    let start = (high % n as u64) as usize;
    let first_shift = (low % n as u64) as usize;
    // The broker `j` steps after the leader at index `leader`, for a follower shift.
    let follower = |leader: usize, shift: usize, j: usize| (leader + 1 + (shift + j) % (n - 1)) % n;
    let mut placed = Vec::with_capacity(count.max(0) as usize);
    for partition in first..first + count {
        let partition = partition as usize;
        // One more each time the partitions wrap around the brokers.
        let shift = first_shift + partition / n;
        let leader = (partition + start) % n;
        let mut replicas = vec![arranged[leader].0];
        let mut racks_used = BTreeSet::from([arranged[leader].1.as_deref()]);
        let mut k = 0;
        while replicas.len() < factor {
            let candidate = if rack_aware {
                &arranged[follower(leader, shift * racks, k)]
            } else {
                &arranged[follower(leader, shift, k)]
            };
            k += 1;
            let rack = candidate.1.as_deref();
            let rack_ok = !rack_aware || !racks_used.contains(&rack) || racks_used.len() == racks;
            if rack_ok && !replicas.contains(&candidate.0) {
                replicas.push(candidate.0);
                racks_used.insert(rack);
            }
        }
        placed.push(replicas);
    }
    Ok(placed)
}

/// Whether a replica list is non-empty, without repeats, and names registered brokers.
fn distinct_and_registered(brokers: &[i32], replicas: &[i32]) -> bool {
    let mut sorted = replicas.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    !replicas.is_empty()
        && sorted.len() == replicas.len()
        && replicas.iter().all(|r| brokers.contains(r))
}

/// Checks explicit replica lists: every broker registered, none repeated, all lists as
/// long as the first.
fn check_assignments<'a>(
    brokers: &[i32],
    assignments: impl Iterator<Item = &'a Vec<i32>>,
) -> Result<(), MetadataError> {
    let mut factor = None;
    for replicas in assignments {
        if !distinct_and_registered(brokers, replicas) {
            return Err(MetadataError::InvalidReplicaAssignment(format!(
                "The manual partition assignment includes a broker that is not registered or a repeated broker: {replicas:?}"
            )));
        }
        if *factor.get_or_insert(replicas.len()) != replicas.len() {
            return Err(MetadataError::InvalidReplicaAssignment(
                "All partitions should have the same number of replicas".into(),
            ));
        }
    }
    Ok(())
}

/// A new partition, led by its first replica. Its ISR is the leader alone: followers do
/// not copy leaders yet (ISR replication is the next milestone), and a replica that does
/// not fetch is out of sync, as Kafka's leader would find it after
/// `replica.lag.time.max.ms`.
pub(super) fn partition_record(
    topic_id: Uuid,
    partition_id: i32,
    replicas: Vec<i32>,
) -> PartitionRecord {
    PartitionRecord {
        partition_id,
        topic_id,
        leader: replicas[0],
        isr: vec![replicas[0]],
        replicas,
        removing_replicas: Vec::new(),
        adding_replicas: Vec::new(),
        leader_recovery_state: LEADER_RECOVERED,
        leader_epoch: 0,
        partition_epoch: 0,
        eligible_leader_replicas: Vec::new(),
        last_known_elr: Vec::new(),
    }
}

/// The topic `records` leave in the image: what a decision will produce once committed,
/// by the same replay every node runs (a validate-only answer, the answer of a commit whose
/// topic has since changed again).
fn preview(image: &MetadataImage, records: &[MetadataRecord], id: Uuid) -> TopicImage {
    let mut next = image.clone();
    let mut delta = MetadataDelta::default();
    for record in records {
        next.replay(record, image.offset, &mut delta);
    }
    TopicImage::clone(
        next.topic_by_id(&id)
            .expect("the records create or grow this topic"),
    )
}

/// The ConfigRecords that turn `old` into `new`.
fn config_changes(
    resource_type: i8,
    resource_name: &str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Vec<MetadataRecord> {
    let set = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(v))
        .map(|(k, v)| ConfigRecord::record(resource_type, resource_name, k, Some(v)));
    let deleted = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .map(|k| ConfigRecord::record(resource_type, resource_name, k, None));
    set.chain(deleted).collect()
}

/// A new topic (CreateTopics, auto-creation): its TopicRecord, configs and partitions.
pub fn create_topic(
    image: &MetadataImage,
    config: &BrokerConfig,
    topic: NewTopic,
    topic_id: Uuid,
) -> Result<(TopicImage, Vec<MetadataRecord>), MetadataError> {
    validate_topic_name(&topic.name)?;
    if image.topic(&topic.name).is_some() {
        return Err(MetadataError::TopicAlreadyExists(topic.name));
    }
    let brokers = usable_brokers(image);
    let assignments: Vec<Vec<i32>> = if topic.assignments.is_empty() {
        let partitions = if topic.partitions == -1 {
            config.num_partitions
        } else {
            topic.partitions
        };
        let replication_factor = if topic.replication_factor == -1 {
            config.default_replication_factor
        } else {
            topic.replication_factor
        };
        if partitions <= 0 {
            return Err(MetadataError::InvalidPartitions(
                "Number of partitions must be larger than 0.".into(),
            ));
        }
        if replication_factor <= 0 {
            return Err(MetadataError::InvalidReplicationFactor(
                "Replication factor must be larger than 0.".into(),
            ));
        }
        place(&brokers, topic_id, 0, partitions, replication_factor)?
    } else {
        if topic.partitions != -1 || topic.replication_factor != -1 {
            return Err(MetadataError::InvalidRequest(
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
            ));
        }
        let expected: Vec<i32> = (0..topic.assignments.len() as i32).collect();
        if topic.assignments.keys().copied().collect::<Vec<_>>() != expected {
            return Err(MetadataError::InvalidReplicaAssignment(
                "Partitions should be a consecutive 0-based integer sequence".into(),
            ));
        }
        check_assignments(&broker_ids(&brokers), topic.assignments.values())?;
        topic.assignments.into_values().collect()
    };
    for (key, value) in &topic.configs {
        TopicConfig::validate(key, value).map_err(MetadataError::InvalidConfig)?;
    }
    let mut records = vec![MetadataRecord::TopicRecord(TopicRecord {
        name: topic.name.clone(),
        topic_id,
    })];
    records.extend(config_changes(
        resource::TOPIC,
        &topic.name,
        &BTreeMap::new(),
        &topic.configs,
    ));
    records.extend(assignments.into_iter().enumerate().map(|(i, replicas)| {
        MetadataRecord::PartitionRecord(partition_record(topic_id, i as i32, replicas))
    }));
    Ok((preview(image, &records, topic_id), records))
}

/// Grows a topic to `count` partitions (CreatePartitions); never shrinks one.
pub fn create_partitions(
    image: &MetadataImage,
    name: &str,
    count: i32,
    assignments: Option<Vec<Vec<i32>>>,
) -> Result<(TopicImage, Vec<MetadataRecord>), MetadataError> {
    let topic = image
        .topic(name)
        .ok_or(MetadataError::UnknownTopicOrPartition)?;
    if count < topic.partitions {
        return Err(MetadataError::InvalidPartitions(format!(
            "Topic currently has {} partitions, which is higher than the requested {count}.",
            topic.partitions
        )));
    }
    if count == topic.partitions {
        return Err(MetadataError::InvalidPartitions(format!(
            "Topic already has {} partitions.",
            topic.partitions
        )));
    }
    let brokers = usable_brokers(image);
    let added = count - topic.partitions;
    let assignments = match assignments {
        Some(assignments) => {
            if assignments.len() as i32 != added {
                return Err(MetadataError::InvalidReplicaAssignment(format!(
                    "Increasing the number of partitions by {added} but {} assignments provided.",
                    assignments.len()
                )));
            }
            if !assignments
                .iter()
                .all(|a| distinct_and_registered(&broker_ids(&brokers), a))
            {
                return Err(MetadataError::InvalidReplicaAssignment(
                    "The manual partition assignment includes a broker that is not registered or a repeated broker.".into(),
                ));
            }
            assignments
        }
        None => place(
            &brokers,
            topic.id,
            topic.partitions,
            added,
            topic.replication_factor,
        )?,
    };
    let records: Vec<MetadataRecord> = assignments
        .into_iter()
        .enumerate()
        .map(|(i, replicas)| {
            MetadataRecord::PartitionRecord(partition_record(
                topic.id,
                topic.partitions + i as i32,
                replicas,
            ))
        })
        .collect();
    Ok((preview(image, &records, topic.id), records))
}

/// Deletes a topic with its partitions and configs.
pub fn delete_topic(
    image: &MetadataImage,
    config: &BrokerConfig,
    name: &str,
) -> Result<(TopicImage, Vec<MetadataRecord>), MetadataError> {
    if !config.delete_topic_enable {
        return Err(MetadataError::TopicDeletionDisabled);
    }
    let topic = image
        .topic(name)
        .ok_or(MetadataError::UnknownTopicOrPartition)?;
    Ok((
        TopicImage::clone(topic),
        vec![MetadataRecord::RemoveTopicRecord(RemoveTopicRecord {
            topic_id: topic.id,
        })],
    ))
}

/// Changes a topic's own configs (AlterConfigs replaces them all; IncrementalAlterConfigs
/// applies `ops`).
pub fn alter_topic_configs(
    image: &MetadataImage,
    broker: &BrokerConfig,
    name: &str,
    replace: Option<BTreeMap<String, String>>,
    ops: &[ConfigOp],
) -> Result<Vec<MetadataRecord>, MetadataError> {
    let topic = image
        .topic(name)
        .ok_or(MetadataError::UnknownTopicOrPartition)?;
    let mut configs = replace.unwrap_or_else(|| topic.configs.clone());
    for op in ops {
        apply_op(
            &mut configs,
            op,
            |key| TopicConfig::effective(broker, &topic.configs, key).map(|(v, _)| v),
            |key| {
                crate::log::TOPIC_CONFIGS
                    .iter()
                    .find(|d| d.name == key)
                    .map(|d| d.kind)
            },
        )?;
    }
    for (key, value) in &configs {
        TopicConfig::validate(key, value).map_err(MetadataError::InvalidConfig)?;
    }
    Ok(config_changes(
        resource::TOPIC,
        name,
        &topic.configs,
        &configs,
    ))
}

/// Broker keys read from the config in force whenever they are used, so a dynamic change
/// applies at once.
pub(crate) const LIVE_BROKER_KEYS: &[&str] = &["max.connections.per.ip"];

/// Changes the dynamic broker configs of one resource ("" = the cluster default, else a
/// node id).
pub fn alter_broker_configs(
    image: &MetadataImage,
    current: &BrokerConfig,
    resource_name: &str,
    replace: Option<BTreeMap<String, String>>,
    ops: &[ConfigOp],
) -> Result<Vec<MetadataRecord>, MetadataError> {
    let old = image.broker_config(resource_name);
    let mut configs = replace.unwrap_or_else(|| old.clone());
    for op in ops {
        apply_op(
            &mut configs,
            op,
            |key| current.get(key).map(str::to_string),
            broker_dynamic_type,
        )?;
    }
    for (key, value) in &configs {
        let kind = broker_dynamic_type(key).ok_or_else(|| {
            MetadataError::InvalidConfig(format!(
                "Cannot update these configs dynamically: Set({key})"
            ))
        })?;
        kind.validate(value).map_err(|_| {
            MetadataError::InvalidConfig(format!("Invalid value {value} for configuration {key}"))
        })?;
        if let Some(topic_key) = super::topic_key_of_broker_key(key) {
            TopicConfig::validate(topic_key, value).map_err(MetadataError::InvalidConfig)?;
        }
        if LIVE_BROKER_KEYS.contains(&key.as_str())
            && value.trim().parse::<i64>().is_ok_and(|v| v < 0)
        {
            return Err(MetadataError::InvalidConfig(format!(
                "Invalid value {value} for configuration {key}: Value must be at least 0"
            )));
        }
    }
    Ok(config_changes(
        resource::BROKER,
        resource_name,
        &old,
        &configs,
    ))
}

/// Changes a consumer group's configs, checked against Kafka 4.1's group config keys and
/// the broker's bounds. The group need not exist.
pub fn alter_group_configs(
    image: &MetadataImage,
    broker: &BrokerConfig,
    group: &str,
    replace: Option<BTreeMap<String, String>>,
    ops: &[ConfigOp],
) -> Result<Vec<MetadataRecord>, MetadataError> {
    if group.is_empty() {
        return Err(MetadataError::InvalidRequest(
            "Group name must not be empty".into(),
        ));
    }
    let old = image.group_configs.get(group).cloned().unwrap_or_default();
    let mut configs = replace.unwrap_or_else(|| old.clone());
    for op in ops {
        apply_op(
            &mut configs,
            op,
            |key| super::group_config::definition(key).map(|d| d.default_value(broker).to_string()),
            |_| Some(crate::config::ConfigType::Int),
        )?;
    }
    // Kafka reads numbers with surrounding blanks trimmed; keep the value as read.
    for value in configs.values_mut() {
        *value = value.trim().to_string();
    }
    for (key, value) in &configs {
        super::group_config::validate(key, value, broker)?;
    }
    Ok(config_changes(resource::GROUP, group, &old, &configs))
}

/// What a broker sends to register (BrokerRegistration).
#[derive(Debug, Clone)]
pub struct BrokerRegistrationInput {
    pub broker_id: i32,
    pub incarnation_id: Uuid,
    /// The epoch the broker had when it last shut down cleanly (-1: none).
    pub previous_epoch: i64,
    pub endpoints: Vec<BrokerEndpoint>,
    pub rack: Option<String>,
}

/// A broker registers, fenced until its heartbeats show it has caught up with the
/// metadata log. `epoch` is the registration's broker epoch (Kafka: the offset of its
/// record). Another incarnation of a broker whose session is live is refused.
pub fn register_broker(
    image: &MetadataImage,
    input: BrokerRegistrationInput,
    epoch: i64,
    session_live: bool,
) -> Result<Vec<MetadataRecord>, MetadataError> {
    if let Some(current) = image.registrations.get(&input.broker_id) {
        // A new incarnation of a live broker is a second process with the same id, unless
        // it presents the epoch the registered one shut down cleanly with (KIP-966).
        let same_broker_back = input.previous_epoch >= 0 && input.previous_epoch == current.epoch;
        if current.incarnation_id != input.incarnation_id
            && session_live
            && !current.fenced
            && !same_broker_back
        {
            return Err(MetadataError::DuplicateBrokerRegistration(format!(
                "Another broker is registered with that broker id: {}",
                input.broker_id
            )));
        }
    }
    // A registration starts fenced: the previous incarnation's leaderships go first.
    let broker_id = input.broker_id;
    let mut records = vec![MetadataRecord::RegisterBrokerRecord(RegisterBrokerRecord {
        broker_id,
        incarnation_id: input.incarnation_id,
        broker_epoch: epoch,
        end_points: input.endpoints,
        rack: input.rack,
        fenced: true,
        in_controlled_shutdown: false,
    })];
    records.extend(leave_partitions(image, broker_id));
    Ok(records)
}

/// Whether a broker may lead or join an ISR: registered, unfenced, not shutting down.
fn is_active(image: &MetadataImage, broker_id: i32) -> bool {
    image
        .registrations
        .get(&broker_id)
        .is_some_and(|r| !r.fenced && !r.in_controlled_shutdown)
}

/// The leader Kafka's controller elects from an ISR: the first replica, in replica
/// order, that is in the ISR and acceptable; none (-1) if there is none. Unclean
/// election (a replica outside the ISR) comes with replication.
fn elect(replicas: &[i32], isr: &[i32], acceptable: impl Fn(i32) -> bool) -> i32 {
    replicas
        .iter()
        .copied()
        .find(|r| isr.contains(r) && acceptable(*r))
        .unwrap_or(NO_LEADER)
}

/// The changes when a broker stops serving (fenced, in controlled shutdown, or
/// registering again), as Kafka's controller makes them: it leaves every ISR it is in,
/// except that an ISR is never emptied (its last member keeps the partition's data, and
/// leads again when it returns); where it led, the first active replica of the new ISR
/// leads, or no one.
pub fn leave_partitions(image: &MetadataImage, leaving: i32) -> Vec<MetadataRecord> {
    let acceptable = |r: i32| r != leaving && is_active(image, r);
    let mut records = Vec::new();
    for topic in image.topics.values() {
        for (index, p) in topic.partition_states.iter().enumerate() {
            if !p.isr.contains(&leaving) && p.leader != leaving {
                continue;
            }
            let mut isr: Vec<i32> = p.isr.iter().copied().filter(|r| *r != leaving).collect();
            if isr.is_empty() {
                isr = p.isr.clone();
            }
            // The leaving broker's partitions elect, and so does any whose leader is
            // not active either (as Kafka's controller re-elects an unacceptable leader).
            let leader = if p.leader == NO_LEADER || !acceptable(p.leader) {
                elect(&p.replicas, &isr, acceptable)
            } else {
                p.leader
            };
            if let Some(change) = partition_change(topic.id, index as i32, p, isr, leader) {
                records.push(change);
            }
        }
    }
    records
}

/// The changes when a broker becomes active again (unfenced): partitions with no leader
/// elect one from their ISR, the returning broker included.
pub fn elect_leaderless(image: &MetadataImage, joining: i32) -> Vec<MetadataRecord> {
    let acceptable = |r: i32| r == joining || is_active(image, r);
    let mut records = Vec::new();
    for topic in image.topics.values() {
        for (index, p) in topic.partition_states.iter().enumerate() {
            if p.leader != NO_LEADER {
                continue;
            }
            let leader = elect(&p.replicas, &p.isr, acceptable);
            if let Some(change) = partition_change(topic.id, index as i32, p, p.isr.clone(), leader)
            {
                records.push(change);
            }
        }
    }
    records
}

/// A PartitionChangeRecord from a partition's state to a new ISR and leader, if either
/// differs (a new leader bumps the leader epoch when replayed).
fn partition_change(
    topic_id: Uuid,
    partition_id: i32,
    from: &super::image::PartitionImage,
    isr: Vec<i32>,
    leader: i32,
) -> Option<MetadataRecord> {
    if isr == from.isr && leader == from.leader {
        return None;
    }
    Some(MetadataRecord::PartitionChangeRecord(
        PartitionChangeRecord {
            partition_id,
            topic_id,
            isr: (isr != from.isr).then_some(isr),
            leader: if leader == from.leader {
                NO_LEADER_CHANGE
            } else {
                leader
            },
            replicas: None,
            removing_replicas: None,
            adding_replicas: None,
            leader_recovery_state: None,
        },
    ))
}

/// What a heartbeat decided: the records (unfencing, or entering controlled shutdown) and
/// the answer's fields.
#[derive(Debug, Default)]
pub struct HeartbeatOutcome {
    pub records: Vec<MetadataRecord>,
    pub is_caught_up: bool,
    pub is_fenced: bool,
    pub should_shut_down: bool,
}

/// A broker's heartbeat: a fenced broker that has caught up (its metadata offset reached
/// its registration) and does not want to stay fenced is unfenced, and leads again where
/// it can; one that wants to shut down gives up its leaderships, is fenced, and may go.
pub fn broker_heartbeat(
    image: &MetadataImage,
    broker_id: i32,
    broker_epoch: i64,
    metadata_offset: i64,
    want_fence: bool,
    want_shut_down: bool,
) -> Result<HeartbeatOutcome, MetadataError> {
    let registration = image.registrations.get(&broker_id).ok_or_else(|| {
        MetadataError::BrokerIdNotRegistered(format!("Broker {broker_id} is not registered."))
    })?;
    if registration.epoch != broker_epoch {
        return Err(MetadataError::StaleBrokerEpoch(format!(
            "Expected broker epoch {}, but got broker epoch {broker_epoch}",
            registration.epoch
        )));
    }
    let is_caught_up = metadata_offset >= registration.epoch;
    let mut outcome = HeartbeatOutcome {
        is_caught_up,
        is_fenced: registration.fenced,
        ..HeartbeatOutcome::default()
    };
    let change = |fenced: i8, in_controlled_shutdown: i8| {
        MetadataRecord::BrokerRegistrationChangeRecord(BrokerRegistrationChangeRecord {
            broker_id,
            broker_epoch,
            fenced,
            in_controlled_shutdown,
        })
    };
    if want_shut_down {
        // Its leaderships move to other in-sync replicas, and it is fenced, so that it
        // may register again as soon as it restarts.
        if !registration.fenced || !registration.in_controlled_shutdown {
            outcome.records.push(change(1, 1));
            outcome.records.extend(leave_partitions(image, broker_id));
        }
        outcome.is_fenced = true;
        outcome.should_shut_down = true;
    } else if registration.fenced
        && !want_fence
        && is_caught_up
        && !registration.in_controlled_shutdown
    {
        outcome.records.push(change(-1, 0));
        outcome.records.extend(elect_leaderless(image, broker_id));
        outcome.is_fenced = false;
    } else if !registration.fenced && want_fence {
        outcome.records.push(change(1, 0));
        outcome.records.extend(leave_partitions(image, broker_id));
        outcome.is_fenced = true;
    }
    Ok(outcome)
}

/// Fences a broker whose session expired, if it is registered and not fenced yet.
pub fn fence_broker(image: &MetadataImage, broker_id: i32) -> Vec<MetadataRecord> {
    let Some(registration) = image.registrations.get(&broker_id) else {
        return Vec::new();
    };
    if registration.fenced {
        return Vec::new();
    }
    let mut records = vec![MetadataRecord::BrokerRegistrationChangeRecord(
        BrokerRegistrationChangeRecord {
            broker_id,
            broker_epoch: registration.epoch,
            fenced: 1,
            in_controlled_shutdown: 0,
        },
    )];
    records.extend(leave_partitions(image, broker_id));
    records
}

/// The next block of `size` producer ids, handed to `broker_id`.
pub fn allocate_producer_ids(image: &MetadataImage, broker_id: i32, size: i64) -> MetadataRecord {
    MetadataRecord::ProducerIdsRecord(ProducerIdsRecord {
        broker_id,
        broker_epoch: 0,
        next_producer_id: image.next_producer_id + size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::image::{BrokerInfo, MetadataDelta};

    fn image_with_brokers(ids: &[i32]) -> MetadataImage {
        MetadataImage {
            brokers: ids
                .iter()
                .map(|&node_id| BrokerInfo {
                    node_id,
                    host: "localhost".into(),
                    port: 9092 + node_id,
                    rack: None,
                })
                .collect(),
            ..MetadataImage::default()
        }
    }

    fn new_topic(name: &str, partitions: i32, factor: i16) -> NewTopic {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor: factor,
            assignments: BTreeMap::new(),
            configs: BTreeMap::new(),
        }
    }

    fn commit(image: &mut MetadataImage, records: &[MetadataRecord]) {
        let mut delta = MetadataDelta::default();
        let index = image.offset + 1;
        for record in records {
            image.replay(record, index, &mut delta);
        }
    }

    #[test]
    fn replicas_are_striped_and_the_factor_is_bounded_by_the_brokers() {
        let config = BrokerConfig::load_from(&[], &[]).unwrap();
        let mut image = image_with_brokers(&[1, 2, 3]);
        let (topic, records) =
            create_topic(&image, &config, new_topic("t", 3, 2), Uuid::from_u128(1)).unwrap();
        let replicas: Vec<Vec<i32>> = topic
            .partition_states
            .iter()
            .map(|p| p.replicas.clone())
            .collect();
        // Id 1: start index 0, follower shift 1.
        assert_eq!(replicas, vec![vec![1, 3], vec![2, 1], vec![3, 2]]);
        assert!(topic
            .partition_states
            .iter()
            .all(|p| p.leader == p.replicas[0] && p.isr == vec![p.leader]));
        commit(&mut image, &records);
        assert_eq!(
            image.topic("t").map(|t| t.as_ref()),
            Some(&topic),
            "the decision is what replay builds"
        );

        let err =
            create_topic(&image, &config, new_topic("u", 1, 4), Uuid::from_u128(2)).unwrap_err();
        assert!(
            matches!(err, MetadataError::InvalidReplicationFactor(ref m) if m.contains("only 3 broker(s)")),
            "{err}"
        );
        assert!(matches!(
            create_topic(&image, &config, new_topic("t", 1, 1), Uuid::from_u128(3)),
            Err(MetadataError::TopicAlreadyExists(_))
        ));

        let (grown, records) = create_partitions(&image, "t", 5, None).unwrap();
        assert_eq!(grown.partition_states[3].replicas, vec![1, 2]);
        commit(&mut image, &records);
        assert_eq!(image.topic("t").unwrap().partitions, 5);
    }

    fn racked(brokers: &[(i32, &str)]) -> Vec<(i32, Option<String>)> {
        brokers
            .iter()
            .map(|(id, rack)| (*id, Some(rack.to_string())))
            .collect()
    }

    #[test]
    fn leaders_spread_and_followers_shift_as_partitions_wrap() {
        let brokers: Vec<(i32, Option<String>)> = (0..5).map(|id| (id, None)).collect();
        // Kafka's documented example: five brokers, start index 0, shift 0.
        let placed = place(&brokers, Uuid::from_u128(0), 0, 10, 3).unwrap();
        assert_eq!(
            placed,
            vec![
                vec![0, 1, 2],
                vec![1, 2, 3],
                vec![2, 3, 4],
                vec![3, 4, 0],
                vec![4, 0, 1],
                vec![0, 2, 3],
                vec![1, 3, 4],
                vec![2, 4, 0],
                vec![3, 0, 1],
                vec![4, 1, 2],
            ]
        );
        // Added partitions continue the stripe, wherever they start.
        for first in [3, 5, 7] {
            assert_eq!(
                place(&brokers, Uuid::from_u128(0), first, 10 - first, 3).unwrap(),
                placed[first as usize..].to_vec()
            );
        }
        // Each topic's id picks its own start, so partition 0 does not always lead on
        // the same broker.
        let starts: BTreeSet<i32> = (0..20u128)
            .map(|i| place(&brokers, Uuid::from_u128(i << 64), 0, 1, 1).unwrap()[0][0])
            .collect();
        assert_eq!(starts.len(), 5);
    }

    #[test]
    fn with_racks_every_partition_spans_as_many_racks_as_it_can() {
        let brokers = racked(&[(1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c"), (6, "c")]);
        assert_eq!(
            arrange(&brokers).iter().map(|b| b.0).collect::<Vec<_>>(),
            vec![1, 3, 5, 2, 4, 6],
            "racks alternate"
        );
        let rack = |id: i32| brokers.iter().find(|b| b.0 == id).unwrap().1.clone();
        for seed in 0..12u128 {
            let id = Uuid::from_u128((seed << 64) | (seed * 7));
            for replicas in place(&brokers, id, 0, 12, 3).unwrap() {
                let racks: BTreeSet<_> = replicas.iter().map(|&r| rack(r)).collect();
                assert_eq!(racks.len(), 3, "{replicas:?}: one replica per rack");
            }
            for replicas in place(&brokers, id, 0, 12, 4).unwrap() {
                let racks: BTreeSet<_> = replicas.iter().map(|&r| rack(r)).collect();
                let distinct: BTreeSet<_> = replicas.iter().collect();
                assert_eq!((racks.len(), distinct.len()), (3, 4), "{replicas:?}");
            }
        }
        // Uneven racks: two brokers in one, one in the other; two replicas always span both.
        let uneven = racked(&[(1, "a"), (2, "a"), (3, "b")]);
        for seed in 0..6u128 {
            for replicas in place(&uneven, Uuid::from_u128((seed << 64) | seed), 0, 9, 2).unwrap() {
                assert!(replicas.contains(&3), "{replicas:?} spans racks a and b");
            }
        }
    }

    #[test]
    fn config_changes_are_written_as_the_difference() {
        let config = BrokerConfig::load_from(&[], &[]).unwrap();
        let mut image = image_with_brokers(&[1]);
        let mut topic = new_topic("t", 1, 1);
        topic.configs.insert("retention.ms".into(), "1000".into());
        let (_, records) = create_topic(&image, &config, topic, Uuid::from_u128(1)).unwrap();
        commit(&mut image, &records);
        let records = alter_topic_configs(
            &image,
            &config,
            "t",
            None,
            &[
                ConfigOp::Delete("retention.ms".into()),
                ConfigOp::Set("segment.ms".into(), "5000".into()),
            ],
        )
        .unwrap();
        assert_eq!(records.len(), 2);
        commit(&mut image, &records);
        let configs = &image.topic("t").unwrap().configs;
        assert_eq!(configs.len(), 1);
        assert_eq!(configs.get("segment.ms").map(String::as_str), Some("5000"));

        let bad = [ConfigOp::Set("num.partitions".into(), "9".into())];
        assert!(matches!(
            alter_broker_configs(&image, &config, "", None, &bad),
            Err(MetadataError::InvalidConfig(_))
        ));
    }

    #[test]
    fn brokers_register_fenced_are_unfenced_when_caught_up_and_fenced_again() {
        let mut image = MetadataImage {
            listener_name: "PLAINTEXT".into(),
            ..MetadataImage::default()
        };
        let input = |incarnation: u128| BrokerRegistrationInput {
            broker_id: 2,
            incarnation_id: Uuid::from_u128(incarnation),
            previous_epoch: -1,
            endpoints: vec![BrokerEndpoint {
                name: "PLAINTEXT".into(),
                host: "h2".into(),
                port: 9093,
                security_protocol: 0,
            }],
            rack: Some("r1".into()),
        };
        let records = register_broker(&image, input(1), 5, false).unwrap();
        commit(&mut image, &records);
        assert!(image.brokers.is_empty(), "registered fenced");
        assert!(matches!(
            broker_heartbeat(&image, 2, 4, 10, false, false),
            Err(MetadataError::StaleBrokerEpoch(_))
        ));
        let behind = broker_heartbeat(&image, 2, 5, 3, false, false).unwrap();
        assert!(behind.records.is_empty() && behind.is_fenced && !behind.is_caught_up);
        let caught_up = broker_heartbeat(&image, 2, 5, 5, false, false).unwrap();
        assert!(!caught_up.is_fenced);
        commit(&mut image, &caught_up.records);
        assert_eq!(image.live_brokers(), vec![2]);
        assert_eq!(image.brokers[0].host, "h2");

        assert!(
            matches!(
                register_broker(&image, input(9), 7, true),
                Err(MetadataError::DuplicateBrokerRegistration(_))
            ),
            "another incarnation while the session lives"
        );
        let fenced = fence_broker(&image, 2);
        commit(&mut image, &fenced);
        assert!(image.live_brokers().is_empty());
        assert!(fence_broker(&image, 2).is_empty(), "fenced once");
        assert!(
            register_broker(&image, input(9), 7, true).is_ok(),
            "a fenced broker may come back as another incarnation"
        );

        let records = register_broker(&image, input(9), 7, false).unwrap();
        commit(&mut image, &records);
        let unfence = broker_heartbeat(&image, 2, 7, 9, false, false).unwrap();
        commit(&mut image, &unfence.records);
        assert_eq!(image.live_brokers(), vec![2]);
        let shutting = broker_heartbeat(&image, 2, 7, 9, false, true).unwrap();
        assert!(shutting.should_shut_down && shutting.is_fenced);
        commit(&mut image, &shutting.records);
        assert!(image.registrations[&2].in_controlled_shutdown);
        assert!(
            image.live_brokers().is_empty(),
            "a broker that shut down is fenced"
        );
    }

    /// Registers and unfences brokers `ids` (epoch = 10 + id).
    fn live_cluster(ids: &[i32]) -> MetadataImage {
        let mut image = MetadataImage {
            listener_name: "PLAINTEXT".into(),
            ..MetadataImage::default()
        };
        for &id in ids {
            let input = BrokerRegistrationInput {
                broker_id: id,
                incarnation_id: Uuid::from_u128(id as u128),
                previous_epoch: -1,
                endpoints: vec![BrokerEndpoint {
                    name: "PLAINTEXT".into(),
                    host: "h".into(),
                    port: 9090 + id as u16,
                    security_protocol: 0,
                }],
                rack: None,
            };
            let epoch = 10 + id as i64;
            let records = register_broker(&image, input, epoch, false).unwrap();
            commit(&mut image, &records);
            let up = broker_heartbeat(&image, id, epoch, i64::MAX, false, false).unwrap();
            commit(&mut image, &up.records);
        }
        image
    }

    /// Each partition of "t" as (leader, leader epoch, ISR).
    fn leaders(image: &MetadataImage) -> Vec<(i32, i32, Vec<i32>)> {
        image
            .topic("t")
            .unwrap()
            .partition_states
            .iter()
            .map(|p| (p.leader, p.leader_epoch, p.isr.clone()))
            .collect()
    }

    #[test]
    fn a_fenced_broker_leaves_its_isrs_and_leads_again_when_it_returns() {
        let config = BrokerConfig::load_from(&[], &[]).unwrap();
        let mut image = live_cluster(&[1, 2, 3]);
        let mut topic = new_topic("t", 0, -1);
        topic.partitions = -1;
        topic.replication_factor = -1;
        topic.assignments = BTreeMap::from([(0, vec![2, 1]), (1, vec![1, 2]), (2, vec![3, 1])]);
        let (_, records) = create_topic(&image, &config, topic, Uuid::from_u128(7)).unwrap();
        commit(&mut image, &records);
        // Make partition 0's ISR {2, 1}, as replication will.
        let first = image.topic("t").unwrap().partition_states[0].clone();
        let grown = partition_change(Uuid::from_u128(7), 0, &first, vec![2, 1], 2).unwrap();
        commit(&mut image, &[grown]);
        assert_eq!(
            leaders(&image),
            vec![(2, 0, vec![2, 1]), (1, 0, vec![1]), (3, 0, vec![3])]
        );

        // Broker 2 is fenced: partition 0 moves to 1 (epoch bump), and 2 leaves its ISR.
        let fenced = fence_broker(&image, 2);
        commit(&mut image, &fenced);
        assert_eq!(
            leaders(&image),
            vec![(1, 1, vec![1]), (1, 0, vec![1]), (3, 0, vec![3])]
        );
        // Broker 1 shuts down: no other in-sync replica, so no leader; the ISR keeps its
        // last member, which holds the data.
        let shutdown = broker_heartbeat(&image, 1, 11, i64::MAX, false, true).unwrap();
        commit(&mut image, &shutdown.records);
        assert_eq!(
            leaders(&image),
            vec![(-1, 2, vec![1]), (-1, 1, vec![1]), (3, 0, vec![3])]
        );
        assert!(
            fence_broker(&image, 1).is_empty(),
            "a broker in controlled shutdown is fenced already"
        );
        // Broker 1 registers again and is unfenced: it leads what it is the ISR of.
        let input = BrokerRegistrationInput {
            broker_id: 1,
            incarnation_id: Uuid::from_u128(100),
            previous_epoch: 11,
            endpoints: vec![],
            rack: None,
        };
        let records = register_broker(&image, input, 50, false).unwrap();
        assert_eq!(records.len(), 1, "nothing to leave: {records:?}");
        commit(&mut image, &records);
        let up = broker_heartbeat(&image, 1, 50, i64::MAX, false, false).unwrap();
        commit(&mut image, &up.records);
        assert_eq!(
            leaders(&image),
            vec![(1, 3, vec![1]), (1, 2, vec![1]), (3, 0, vec![3])]
        );
        // A broker that registers again while it leads (a crash and a quick restart)
        // gives up its leaderships first.
        let input = BrokerRegistrationInput {
            broker_id: 3,
            incarnation_id: Uuid::from_u128(300),
            previous_epoch: -1,
            endpoints: vec![],
            rack: None,
        };
        let records = register_broker(&image, input, 60, false).unwrap();
        commit(&mut image, &records);
        assert_eq!(leaders(&image)[2], (-1, 1, vec![3]));
    }
}
