//! A KIP-848 consumer group (`group.protocol=consumer`): the broker assigns partitions.
//!
//! Every member heartbeats (ConsumerGroupHeartbeat) with its member epoch, subscription
//! and owned partitions. A change of members, subscriptions or subscribed topics' partition
//! counts bumps the **group epoch**; the server-side assignor (`uniform` or `range`) then
//! computes a **target assignment** for that epoch. Each member is reconciled towards its
//! target one step per heartbeat, as KIP-848 describes:
//!
//! 1. partitions the member owns but must give up are revoked first: its epoch stays
//!    where it is and its assignment shrinks until it reports they are released;
//! 2. then its epoch advances to the target's and it receives the partitions of its
//!    target that no other member still owns; the rest follow once released.
//!
//! So a partition is never owned by two members at once. States, as Kafka names them:
//! `Empty` (no members), `Assigning` (target behind the group epoch), `Reconciling` (a member
//! not at the target yet), `Stable`. A member that stops heartbeating for the session
//! timeout, or does not revoke within its rebalance timeout, is removed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use uuid::Uuid;

use super::records::{self, ConsumerMemberValue, CurrentAssignmentValue, RecordKey};
use super::GroupError;

/// Partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// The coordinator's settings for consumer groups.
#[derive(Debug, Clone)]
pub struct ConsumerLimits {
    pub session_timeout_ms: i64,
    pub heartbeat_interval_ms: i32,
    pub max_size: usize,
    /// Server assignor names; the first is the default.
    pub assignors: Vec<String>,
}

/// Short assignor names for Kafka's class names (`...assignor.UniformAssignor`).
pub fn assignor_name(configured: &str) -> &str {
    match configured.rsplit('.').next().unwrap_or(configured) {
        "UniformAssignor" => "uniform",
        "RangeAssignor" => "range",
        other => other,
    }
}

/// The topics that exist: the committed metadata, whichever node hosts their partitions.
pub trait TopicCatalog: Send + Sync {
    /// Every topic's name, id and partition count.
    fn topics(&self) -> Vec<(String, Uuid, i32)>;

    /// A topic's partition count, if it exists.
    fn partition_count(&self, topic: &str) -> Option<i32>;
}

/// The topics that exist, as the assignor sees them.
#[derive(Debug, Default)]
pub struct TopicView {
    by_name: BTreeMap<String, (Uuid, i32)>,
    by_id: HashMap<Uuid, String>,
}

impl TopicView {
    pub fn from_catalog(catalog: &dyn TopicCatalog) -> TopicView {
        let mut view = TopicView::default();
        for (name, id, count) in catalog.topics() {
            view.by_id.insert(id, name.clone());
            view.by_name.insert(name, (id, count));
        }
        view
    }

    #[cfg(test)]
    pub fn of(topics: &[(&str, Uuid, i32)]) -> TopicView {
        let mut view = TopicView::default();
        for (name, id, count) in topics {
            view.by_name.insert(name.to_string(), (*id, *count));
            view.by_id.insert(*id, name.to_string());
        }
        view
    }

    pub fn name(&self, id: &Uuid) -> Option<&str> {
        self.by_id.get(id).map(String::as_str)
    }

    fn get(&self, name: &str) -> Option<(Uuid, i32)> {
        self.by_name.get(name).copied()
    }
}

/// A ConsumerGroupHeartbeat as the coordinator sees it.
#[derive(Debug, Clone, Default)]
pub struct HeartbeatRequest {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// The partitions the member owns, when it reports them (None: unchanged).
    pub owned: Option<Vec<(Uuid, Vec<i32>)>>,
    pub client_id: String,
    pub client_host: String,
}

/// What a heartbeat answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatResult {
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// The member's assignment, when it changed or the member needs it again.
    pub assignment: Option<Vec<(Uuid, Vec<i32>)>>,
}

/// A member as ConsumerGroupDescribe shows it.
#[derive(Debug, Clone)]
pub struct ConsumerMemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub member_epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub assignment: Vec<(Uuid, String, Vec<i32>)>,
    pub target_assignment: Vec<(Uuid, String, Vec<i32>)>,
}

/// A group as ConsumerGroupDescribe shows it.
#[derive(Debug, Clone)]
pub struct ConsumerGroupDescription {
    pub state: &'static str,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor_name: String,
    pub members: Vec<ConsumerMemberDescription>,
}

#[derive(Debug, Clone)]
struct Member {
    member_id: String,
    instance_id: Option<String>,
    rack_id: Option<String>,
    client_id: String,
    client_host: String,
    rebalance_timeout_ms: i32,
    subscribed_names: Vec<String>,
    regex: Option<String>,
    server_assignor: Option<String>,
    member_epoch: i32,
    previous_epoch: i32,
    /// What the coordinator considers the member's: partitions being revoked stay here
    /// until the member reports them released, so nobody else gets them before.
    assigned: Assignment,
    pending_revocation: Assignment,
    /// What the member last reported owning.
    owned: Option<Assignment>,
    /// The assignment last sent, to send it again only when it changes.
    last_sent: Option<Assignment>,
    session_deadline_ms: i64,
    revocation_deadline_ms: Option<i64>,
}

impl Member {
    /// The topics this member subscribes to that exist now.
    fn resolved_topics(&self, topics: &TopicView) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self
            .subscribed_names
            .iter()
            .filter(|t| topics.get(t).is_some())
            .cloned()
            .collect();
        if let Some(pattern) = self.regex.as_deref().and_then(compile_regex) {
            out.extend(
                topics
                    .by_name
                    .keys()
                    .filter(|t| !t.starts_with("__") && pattern.is_match(t))
                    .cloned(),
            );
        }
        out
    }

    /// The partitions the member should hold now: its assignment minus what it revokes.
    fn current(&self) -> Assignment {
        subtract(&self.assigned, &self.pending_revocation)
    }
}

/// Kafka matches the whole topic name (RE2J `matches()`).
fn compile_regex(pattern: &str) -> Option<regex::Regex> {
    regex::Regex::new(&format!("^(?:{pattern})$")).ok()
}

#[derive(Debug)]
pub struct ConsumerGroup {
    pub id: String,
    group_epoch: i32,
    assignment_epoch: i32,
    members: BTreeMap<String, Member>,
    target: BTreeMap<String, Assignment>,
    /// Partition counts of the subscribed topics the target was computed for.
    subscribed_partitions: BTreeMap<String, i32>,
    assignor: String,
    /// The records last written for this group, so each change writes only its diff.
    persisted: BTreeMap<RecordKey, Bytes>,
}

/// A consumer group's records as loaded from the store, before it is rebuilt.
#[derive(Debug, Default)]
pub struct StoredConsumerGroup {
    pub group_epoch: Option<i32>,
    pub assignment_epoch: Option<i32>,
    pub members: BTreeMap<String, StoredConsumerMember>,
}

#[derive(Debug, Default)]
pub struct StoredConsumerMember {
    pub metadata: Option<ConsumerMemberValue>,
    pub target: Option<records::TopicPartitions>,
    pub current: Option<CurrentAssignmentValue>,
}

impl StoredConsumerGroup {
    /// Takes one loaded record; false if the key is not a consumer group record.
    pub fn add(&mut self, key: &RecordKey, value: &[u8]) -> Result<bool, records::RecordError> {
        match key {
            RecordKey::ConsumerGroupMetadata { .. } => {
                self.group_epoch = Some(records::decode_epoch(value)?)
            }
            RecordKey::ConsumerTargetAssignmentMetadata { .. } => {
                self.assignment_epoch = Some(records::decode_epoch(value)?)
            }
            RecordKey::ConsumerMemberMetadata { member, .. } => {
                self.members.entry(member.clone()).or_default().metadata =
                    Some(ConsumerMemberValue::decode(value)?)
            }
            RecordKey::ConsumerTargetAssignmentMember { member, .. } => {
                self.members.entry(member.clone()).or_default().target =
                    Some(records::decode_target(value)?)
            }
            RecordKey::ConsumerCurrentAssignment { member, .. } => {
                self.members.entry(member.clone()).or_default().current =
                    Some(CurrentAssignmentValue::decode(value)?)
            }
            RecordKey::OffsetCommit { .. } | RecordKey::GroupMetadata { .. } => return Ok(false),
        }
        Ok(true)
    }
}

impl ConsumerGroup {
    pub fn new(id: &str) -> ConsumerGroup {
        ConsumerGroup {
            id: id.to_string(),
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            subscribed_partitions: BTreeMap::new(),
            assignor: String::new(),
            persisted: BTreeMap::new(),
        }
    }

    /// Rebuilds a group from its stored records. Members keep their epochs and
    /// assignments and get a fresh session to heartbeat in.
    pub fn restore(
        id: &str,
        stored: StoredConsumerGroup,
        now_ms: i64,
        limits: &ConsumerLimits,
        topics: &TopicView,
    ) -> ConsumerGroup {
        let mut group = ConsumerGroup::new(id);
        group.group_epoch = stored.group_epoch.unwrap_or(0);
        group.assignment_epoch = stored.assignment_epoch.unwrap_or(0);
        for (member_id, parts) in stored.members {
            // A member is whole only with its metadata and current assignment.
            let (Some(meta), Some(current)) = (parts.metadata, parts.current) else {
                continue;
            };
            if let Some(target) = &parts.target {
                group
                    .target
                    .insert(member_id.clone(), to_assignment(target));
            }
            group.members.insert(
                member_id.clone(),
                Member {
                    member_id,
                    instance_id: meta.instance_id,
                    rack_id: meta.rack_id,
                    client_id: meta.client_id,
                    client_host: meta.client_host,
                    rebalance_timeout_ms: meta.rebalance_timeout_ms,
                    subscribed_names: meta.subscribed_topic_names,
                    regex: meta.subscribed_topic_regex,
                    server_assignor: meta.server_assignor,
                    member_epoch: current.member_epoch,
                    previous_epoch: current.previous_member_epoch,
                    assigned: union(
                        &to_assignment(&current.assigned),
                        &to_assignment(&current.pending_revocation),
                    ),
                    pending_revocation: to_assignment(&current.pending_revocation),
                    owned: None,
                    last_sent: None,
                    session_deadline_ms: now_ms + limits.session_timeout_ms,
                    revocation_deadline_ms: None,
                },
            );
        }
        // The subscribed topics as they are now; a change since is a real change.
        group.subscribed_partitions = group.current_subscriptions(topics);
        group.assignor = group.choose_assignor(limits);
        group.persisted = group.records();
        group
    }

    /// The group's full record image: what a reload needs.
    fn records(&self) -> BTreeMap<RecordKey, Bytes> {
        let group = self.id.clone();
        let mut out = BTreeMap::new();
        out.insert(
            RecordKey::ConsumerGroupMetadata {
                group: group.clone(),
            },
            records::encode_epoch(self.group_epoch),
        );
        out.insert(
            RecordKey::ConsumerTargetAssignmentMetadata {
                group: group.clone(),
            },
            records::encode_epoch(self.assignment_epoch),
        );
        for member in self.members.values() {
            let member_key = |kind: fn(String, String) -> RecordKey| {
                kind(group.clone(), member.member_id.clone())
            };
            out.insert(
                member_key(|group, member| RecordKey::ConsumerMemberMetadata { group, member }),
                ConsumerMemberValue {
                    instance_id: member.instance_id.clone(),
                    rack_id: member.rack_id.clone(),
                    client_id: member.client_id.clone(),
                    client_host: member.client_host.clone(),
                    subscribed_topic_names: member.subscribed_names.clone(),
                    subscribed_topic_regex: member.regex.clone(),
                    rebalance_timeout_ms: member.rebalance_timeout_ms,
                    server_assignor: member.server_assignor.clone(),
                }
                .encode(),
            );
            let target = self
                .target
                .get(&member.member_id)
                .cloned()
                .unwrap_or_default();
            out.insert(
                member_key(|group, member| RecordKey::ConsumerTargetAssignmentMember {
                    group,
                    member,
                }),
                records::encode_target(&from_assignment(&target)),
            );
            // Kafka's MemberState: 0 stable, 1 unrevoked, 2 unreleased partitions.
            let state = if !member.pending_revocation.is_empty() {
                1
            } else if member.assigned != target {
                2
            } else {
                0
            };
            out.insert(
                member_key(|group, member| RecordKey::ConsumerCurrentAssignment { group, member }),
                CurrentAssignmentValue {
                    member_epoch: member.member_epoch,
                    previous_member_epoch: member.previous_epoch,
                    state,
                    assigned: from_assignment(&member.current()),
                    pending_revocation: from_assignment(&member.pending_revocation),
                }
                .encode(),
            );
        }
        out
    }

    /// The records that changed since the last call (None value: a tombstone), which the
    /// coordinator writes before answering.
    pub fn take_changes(&mut self) -> Vec<(RecordKey, Option<Bytes>)> {
        let current = self.records();
        let mut changes: Vec<(RecordKey, Option<Bytes>)> = self
            .persisted
            .keys()
            .filter(|k| !current.contains_key(*k))
            .map(|k| (k.clone(), None))
            .collect();
        for (key, value) in &current {
            if self.persisted.get(key) != Some(value) {
                changes.push((key.clone(), Some(value.clone())));
            }
        }
        self.persisted = current;
        changes
    }

    /// Tombstones for every record of the group (DeleteGroups, or a conversion to classic).
    pub fn tombstones(&self) -> Vec<(RecordKey, Option<Bytes>)> {
        self.persisted.keys().map(|k| (k.clone(), None)).collect()
    }

    fn current_subscriptions(&self, topics: &TopicView) -> BTreeMap<String, i32> {
        let mut subscribed = BTreeMap::new();
        for member in self.members.values() {
            for topic in member.resolved_topics(topics) {
                if let Some((_, count)) = topics.get(&topic) {
                    subscribed.insert(topic, count);
                }
            }
        }
        subscribed
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.assignment_epoch < self.group_epoch {
            "Assigning"
        } else if self.members.values().any(|m| {
            m.member_epoch != self.assignment_epoch
                || !m.pending_revocation.is_empty()
                || m.assigned != self.target.get(&m.member_id).cloned().unwrap_or_default()
        }) {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// Every topic some member subscribes to (names as given and regex matches seen).
    pub fn subscribed_topic_names(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self
            .members
            .values()
            .flat_map(|m| m.subscribed_names.iter().cloned())
            .collect();
        out.extend(self.subscribed_partitions.keys().cloned());
        out
    }

    pub fn heartbeat(
        &mut self,
        now_ms: i64,
        limits: &ConsumerLimits,
        topics: &TopicView,
        request: HeartbeatRequest,
    ) -> Result<HeartbeatResult, GroupError> {
        if request.member_epoch < 0 {
            return self.leave(limits, topics, request);
        }
        let member_id = if request.member_epoch == 0 {
            self.join(now_ms, limits, &request)?
        } else {
            self.check_epoch(&request)?;
            request.member_id.clone()
        };
        let member = self.members.get_mut(&member_id).expect("joined or checked");
        member.session_deadline_ms = now_ms + limits.session_timeout_ms;
        let mut changed = false;
        if let Some(names) = &request.subscribed_topic_names {
            changed |= member.subscribed_names != *names;
            member.subscribed_names = names.clone();
        }
        if let Some(regex) = &request.subscribed_topic_regex {
            let regex = (!regex.is_empty()).then(|| regex.clone());
            changed |= member.regex != regex;
            member.regex = regex;
        }
        if let Some(assignor) = &request.server_assignor {
            member.server_assignor = Some(assignor.clone());
        }
        if request.rebalance_timeout_ms > 0 {
            member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        }
        if let Some(owned) = &request.owned {
            member.owned = Some(to_assignment(owned));
        }
        if changed {
            self.group_epoch += 1;
        }
        self.refresh_target(limits, topics);
        self.reconcile(now_ms, &member_id);
        let member = self.members.get_mut(&member_id).expect("still a member");
        let current = member.current();
        let resend = request.member_epoch == 0
            || member.last_sent.as_ref() != Some(&current)
            || member.owned.as_ref().is_some_and(|o| *o != current) && request.owned.is_some();
        let assignment = resend.then(|| {
            member.last_sent = Some(current.clone());
            from_assignment(&current)
        });
        Ok(HeartbeatResult {
            member_id,
            member_epoch: member.member_epoch,
            heartbeat_interval_ms: limits.heartbeat_interval_ms,
            assignment,
        })
    }

    fn join(
        &mut self,
        now_ms: i64,
        limits: &ConsumerLimits,
        request: &HeartbeatRequest,
    ) -> Result<String, GroupError> {
        if request.subscribed_topic_names.is_none() && request.subscribed_topic_regex.is_none() {
            return Err(GroupError::InvalidRequest);
        }
        if request.rebalance_timeout_ms < 0 {
            return Err(GroupError::InvalidRequest);
        }
        if let Some(regex) = &request.subscribed_topic_regex {
            if !regex.is_empty() && compile_regex(regex).is_none() {
                return Err(GroupError::InvalidRegularExpression);
            }
        }
        if let Some(assignor) = &request.server_assignor {
            if !limits.assignors.iter().any(|a| a == assignor) {
                return Err(GroupError::UnsupportedAssignor);
            }
        }
        let member_id = if request.member_id.is_empty() {
            Uuid::new_v4().to_string()
        } else {
            request.member_id.clone()
        };
        // A static member that restarts takes over its previous assignment.
        let mut inherited = None;
        if let Some(instance) = &request.instance_id {
            if let Some(previous) = self
                .members
                .values()
                .find(|m| {
                    m.instance_id.as_deref() == Some(instance.as_str()) && m.member_id != member_id
                })
                .map(|m| m.member_id.clone())
            {
                let old = self.members.get(&previous).expect("found above");
                if old.member_epoch != -2 {
                    return Err(GroupError::UnreleasedInstanceId);
                }
                let old = self.members.remove(&previous).expect("found above");
                if let Some(target) = self.target.remove(&previous) {
                    self.target.insert(member_id.clone(), target);
                }
                inherited = Some(old);
            }
        }
        if let Some(existing) = self.members.remove(&member_id) {
            // Rejoining with epoch 0 (after being fenced): its partitions are free again.
            tracing::info!(group = %self.id, member = %existing.member_id, "member rejoined");
        } else if inherited.is_none() && self.members.len() >= limits.max_size {
            return Err(GroupError::GroupMaxSizeReached);
        }
        let (assigned, epoch) = match &inherited {
            Some(old) => (old.assigned.clone(), old.previous_epoch.max(0)),
            None => (Assignment::new(), 0),
        };
        self.members.insert(
            member_id.clone(),
            Member {
                member_id: member_id.clone(),
                instance_id: request.instance_id.clone(),
                rack_id: request.rack_id.clone(),
                client_id: request.client_id.clone(),
                client_host: request.client_host.clone(),
                rebalance_timeout_ms: request.rebalance_timeout_ms,
                subscribed_names: request.subscribed_topic_names.clone().unwrap_or_default(),
                regex: request
                    .subscribed_topic_regex
                    .clone()
                    .filter(|r| !r.is_empty()),
                server_assignor: request.server_assignor.clone(),
                member_epoch: epoch,
                previous_epoch: epoch,
                assigned,
                pending_revocation: Assignment::new(),
                owned: None,
                last_sent: None,
                session_deadline_ms: now_ms + limits.session_timeout_ms,
                revocation_deadline_ms: None,
            },
        );
        if inherited.is_none() {
            self.group_epoch += 1;
        }
        Ok(member_id)
    }

    fn check_epoch(&self, request: &HeartbeatRequest) -> Result<(), GroupError> {
        let member = self
            .members
            .get(&request.member_id)
            .ok_or(GroupError::UnknownMemberId)?;
        if request.member_epoch == member.member_epoch {
            return Ok(());
        }
        // The member missed our last answer: it may still use its previous epoch as long
        // as it owns nothing beyond what it was given.
        let owned_within = request.owned.as_ref().is_some_and(|owned| {
            let owned = to_assignment(owned);
            subtract(&owned, &member.assigned).is_empty()
        });
        if request.member_epoch == member.previous_epoch && owned_within {
            return Ok(());
        }
        Err(GroupError::FencedMemberEpoch)
    }

    fn leave(
        &mut self,
        limits: &ConsumerLimits,
        topics: &TopicView,
        request: HeartbeatRequest,
    ) -> Result<HeartbeatResult, GroupError> {
        let static_leave = request.member_epoch == -2 && request.instance_id.is_some();
        let Some(member) = self.members.get_mut(&request.member_id) else {
            return Err(GroupError::UnknownMemberId);
        };
        if static_leave {
            // KIP-345 for KIP-848: a static member going away briefly keeps its assignment
            // until its session times out or its instance rejoins.
            member.previous_epoch = member.member_epoch;
            member.member_epoch = -2;
        } else {
            self.members.remove(&request.member_id);
            self.target.remove(&request.member_id);
            self.group_epoch += 1;
            self.refresh_target(limits, topics);
        }
        Ok(HeartbeatResult {
            member_id: request.member_id,
            member_epoch: request.member_epoch,
            heartbeat_interval_ms: limits.heartbeat_interval_ms,
            assignment: None,
        })
    }

    /// Bumps the group epoch when a subscribed topic's partition count changed, then
    /// computes a new target assignment if the group epoch moved past it.
    fn refresh_target(&mut self, limits: &ConsumerLimits, topics: &TopicView) {
        let subscribed = self.current_subscriptions(topics);
        if subscribed != self.subscribed_partitions {
            self.subscribed_partitions = subscribed;
            self.group_epoch += 1;
        }
        if self.assignment_epoch >= self.group_epoch {
            return;
        }
        let assignor = self.choose_assignor(limits);
        let subscriptions: BTreeMap<String, BTreeSet<String>> = self
            .members
            .values()
            .map(|m| (m.member_id.clone(), m.resolved_topics(topics)))
            .collect();
        let current: BTreeMap<String, Assignment> = self
            .members
            .values()
            .map(|m| {
                (
                    m.member_id.clone(),
                    self.target.get(&m.member_id).cloned().unwrap_or_default(),
                )
            })
            .collect();
        self.target = match assignor.as_str() {
            "range" => assign_range(&subscriptions, topics),
            _ => assign_uniform(&subscriptions, &current, topics),
        };
        self.assignor = assignor;
        self.assignment_epoch = self.group_epoch;
        tracing::debug!(group = %self.id, epoch = self.group_epoch, "computed target assignment");
    }

    /// The assignor most members ask for, else the broker's default.
    fn choose_assignor(&self, limits: &ConsumerLimits) -> String {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some(a) = member.server_assignor.as_deref() {
                *votes.entry(a).or_default() += 1;
            }
        }
        votes
            .into_iter()
            .max_by_key(|(_, count)| *count)
            .map(|(name, _)| name.to_string())
            .or_else(|| limits.assignors.first().cloned())
            .unwrap_or_else(|| "uniform".to_string())
    }

    /// One reconciliation step for a member (see the module docs).
    fn reconcile(&mut self, now_ms: i64, member_id: &str) {
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let owned_by_others: Assignment = self
            .members
            .values()
            .filter(|m| m.member_id != member_id)
            .fold(Assignment::new(), |acc, m| union(&acc, &m.assigned));
        let assignment_epoch = self.assignment_epoch;
        let member = self.members.get_mut(member_id).expect("caller checked");
        if member.member_epoch == -2 {
            return;
        }
        let to_revoke = subtract(&member.assigned, &target);
        if !to_revoke.is_empty() {
            let released = member
                .owned
                .as_ref()
                .is_some_and(|owned| intersect(owned, &to_revoke).is_empty());
            if !released {
                member.pending_revocation = to_revoke;
                member
                    .revocation_deadline_ms
                    .get_or_insert(now_ms + member.rebalance_timeout_ms.max(0) as i64);
                return;
            }
            member.assigned = subtract(&member.assigned, &to_revoke);
        }
        member.pending_revocation.clear();
        member.revocation_deadline_ms = None;
        if member.member_epoch != assignment_epoch {
            member.previous_epoch = member.member_epoch;
            member.member_epoch = assignment_epoch;
        }
        let free = subtract(&subtract(&target, &member.assigned), &owned_by_others);
        member.assigned = union(&member.assigned, &free);
        assert!(
            intersect(&member.assigned, &owned_by_others).is_empty(),
            "group {}: a partition is assigned to two members",
            self.id
        );
    }

    /// OffsetCommit from a member (v9 carries the member epoch).
    pub fn validate_offset_commit(&self, member_id: &str, epoch: i32) -> Result<(), GroupError> {
        if member_id.is_empty() && epoch < 0 {
            return if self.members.is_empty() {
                Ok(())
            } else {
                Err(GroupError::UnknownMemberId)
            };
        }
        self.check_member_epoch(member_id, epoch)
    }

    /// OffsetFetch v9 with a member id: the member must exist with that epoch.
    pub fn validate_offset_fetch(&self, member_id: &str, epoch: i32) -> Result<(), GroupError> {
        if member_id.is_empty() {
            return Ok(());
        }
        self.check_member_epoch(member_id, epoch)
    }

    /// Offsets are read and written by members at their current epoch (KIP-848).
    fn check_member_epoch(&self, member_id: &str, epoch: i32) -> Result<(), GroupError> {
        let member = self
            .members
            .get(member_id)
            .ok_or(GroupError::UnknownMemberId)?;
        if epoch != member.member_epoch {
            return Err(GroupError::StaleMemberEpoch);
        }
        Ok(())
    }

    /// The earliest deadline [`ConsumerGroup::tick`] must act on.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.members
            .values()
            .flat_map(|m| [Some(m.session_deadline_ms), m.revocation_deadline_ms])
            .flatten()
            .min()
    }

    /// Removes members whose session lapsed or who did not revoke in time; true if any.
    pub fn tick(&mut self, now_ms: i64, limits: &ConsumerLimits, topics: &TopicView) -> bool {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.session_deadline_ms <= now_ms
                    || m.revocation_deadline_ms.is_some_and(|d| d <= now_ms)
            })
            .map(|m| m.member_id.clone())
            .collect();
        if gone.is_empty() {
            return false;
        }
        for member_id in &gone {
            tracing::info!(group = %self.id, member = %member_id, "member fenced: session or revocation timeout");
            self.members.remove(member_id);
            self.target.remove(member_id);
        }
        self.group_epoch += 1;
        self.refresh_target(limits, topics);
        true
    }

    pub fn describe(&self, topics: &TopicView) -> ConsumerGroupDescription {
        let named = |a: &Assignment| -> Vec<(Uuid, String, Vec<i32>)> {
            a.iter()
                .map(|(id, parts)| {
                    (
                        *id,
                        topics.name(id).unwrap_or_default().to_string(),
                        parts.iter().copied().collect(),
                    )
                })
                .collect()
        };
        ConsumerGroupDescription {
            state: self.state_name(),
            group_epoch: self.group_epoch,
            assignment_epoch: self.assignment_epoch,
            assignor_name: self.assignor.clone(),
            members: self
                .members
                .values()
                .map(|m| ConsumerMemberDescription {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    member_epoch: m.member_epoch,
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    subscribed_topic_names: m.subscribed_names.clone(),
                    subscribed_topic_regex: m.regex.clone(),
                    assignment: named(&m.current()),
                    target_assignment: named(
                        &self.target.get(&m.member_id).cloned().unwrap_or_default(),
                    ),
                })
                .collect(),
        }
    }
}

// ---- Assignors ----

/// `range`: per topic, members subscribed to it (by member id) take contiguous ranges,
/// the first `partitions % members` one more.
fn assign_range(
    subscriptions: &BTreeMap<String, BTreeSet<String>>,
    topics: &TopicView,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = subscriptions
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    let all_topics: BTreeSet<&String> = subscriptions.values().flatten().collect();
    for topic in all_topics {
        let Some((id, count)) = topics.get(topic) else {
            continue;
        };
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, t)| t.contains(topic))
            .map(|(m, _)| m)
            .collect();
        let (per, extra) = (
            count as usize / members.len(),
            count as usize % members.len(),
        );
        let mut next = 0i32;
        for (i, member) in members.iter().enumerate() {
            let take = per + usize::from(i < extra);
            let parts: BTreeSet<i32> = (next..next + take as i32).collect();
            next += take as i32;
            if !parts.is_empty() {
                out.get_mut(*member).expect("listed").insert(id, parts);
            }
        }
    }
    out
}

/// `uniform`: every subscribed partition to a subscribed member, balanced by count, and
/// sticky: a member keeps what it had up to its share before anything moves.
fn assign_uniform(
    subscriptions: &BTreeMap<String, BTreeSet<String>>,
    current: &BTreeMap<String, Assignment>,
    topics: &TopicView,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = subscriptions
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    let mut counts: BTreeMap<&String, usize> = subscriptions.keys().map(|m| (m, 0)).collect();
    let mut partitions: Vec<(String, Uuid, i32)> = Vec::new();
    for topic in subscriptions.values().flatten().collect::<BTreeSet<_>>() {
        if let Some((id, count)) = topics.get(topic) {
            partitions.extend((0..count).map(|p| (topic.clone(), id, p)));
        }
    }
    if subscriptions.is_empty() {
        return out;
    }
    let quota = partitions.len().div_ceil(subscriptions.len());
    let mut unassigned = Vec::new();
    for (topic, id, p) in partitions {
        let keeper = current.iter().find(|(m, a)| {
            a.get(&id).is_some_and(|s| s.contains(&p))
                && subscriptions.get(*m).is_some_and(|t| t.contains(&topic))
        });
        match keeper {
            Some((member, _)) if counts.get(member).is_some_and(|c| *c < quota) => {
                *counts.get_mut(member).expect("counted") += 1;
                out.get_mut(member)
                    .expect("listed")
                    .entry(id)
                    .or_default()
                    .insert(p);
            }
            _ => unassigned.push((topic, id, p)),
        }
    }
    for (topic, id, p) in unassigned {
        let least = subscriptions
            .iter()
            .filter(|(_, t)| t.contains(&topic))
            .map(|(m, _)| m)
            .min_by_key(|m| counts.get(m).copied().unwrap_or(usize::MAX));
        if let Some(member) = least {
            *counts.get_mut(member).expect("counted") += 1;
            out.get_mut(member)
                .expect("listed")
                .entry(id)
                .or_default()
                .insert(p);
        }
    }
    // Moving from the most to the least loaded evens out what stickiness left uneven.
    while let (Some(most), Some(least)) = (
        counts
            .iter()
            .max_by_key(|(_, c)| **c)
            .map(|(m, c)| ((*m).clone(), *c)),
        counts
            .iter()
            .min_by_key(|(_, c)| **c)
            .map(|(m, c)| ((*m).clone(), *c)),
    ) {
        if most.1 <= least.1 + 1 {
            break;
        }
        let least_topics = &subscriptions[&least.0];
        let movable = out[&most.0].iter().find_map(|(id, parts)| {
            let name = topics.name(id)?;
            least_topics
                .contains(name)
                .then(|| parts.iter().next_back().map(|p| (*id, *p)))
                .flatten()
        });
        let Some((id, p)) = movable else { break };
        let from = out.get_mut(&most.0).expect("listed");
        if let Some(parts) = from.get_mut(&id) {
            parts.remove(&p);
            if parts.is_empty() {
                from.remove(&id);
            }
        }
        out.get_mut(&least.0)
            .expect("listed")
            .entry(id)
            .or_default()
            .insert(p);
        *counts.get_mut(&most.0).expect("counted") -= 1;
        *counts.get_mut(&least.0).expect("counted") += 1;
    }
    out
}

// ---- Set arithmetic on assignments ----

fn to_assignment(list: &[(Uuid, Vec<i32>)]) -> Assignment {
    let mut out = Assignment::new();
    for (id, parts) in list {
        if !parts.is_empty() {
            out.entry(*id).or_default().extend(parts.iter().copied());
        }
    }
    out
}

fn from_assignment(a: &Assignment) -> Vec<(Uuid, Vec<i32>)> {
    a.iter()
        .map(|(id, parts)| (*id, parts.iter().copied().collect()))
        .collect()
}

fn subtract(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (id, parts) in a {
        let rest: BTreeSet<i32> = match b.get(id) {
            Some(other) => parts.difference(other).copied().collect(),
            None => parts.clone(),
        };
        if !rest.is_empty() {
            out.insert(*id, rest);
        }
    }
    out
}

fn intersect(a: &Assignment, b: &Assignment) -> Assignment {
    subtract(a, &subtract(a, b))
}

fn union(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = a.clone();
    for (id, parts) in b {
        out.entry(*id).or_default().extend(parts.iter().copied());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConsumerLimits {
        ConsumerLimits {
            session_timeout_ms: 1000,
            heartbeat_interval_ms: 100,
            max_size: 10,
            assignors: vec!["uniform".into(), "range".into()],
        }
    }

    fn join(topic: &str) -> HeartbeatRequest {
        HeartbeatRequest {
            member_epoch: 0,
            rebalance_timeout_ms: 5000,
            subscribed_topic_names: Some(vec![topic.into()]),
            ..HeartbeatRequest::default()
        }
    }

    /// A heartbeat of a known member that changes nothing.
    fn beat(member_id: &str, member_epoch: i32) -> HeartbeatRequest {
        HeartbeatRequest {
            member_id: member_id.into(),
            member_epoch,
            ..HeartbeatRequest::default()
        }
    }

    fn count(result: &HeartbeatResult) -> usize {
        result
            .assignment
            .as_ref()
            .map(|a| a.iter().map(|(_, p)| p.len()).sum())
            .unwrap_or(0)
    }

    #[test]
    fn two_members_split_then_one_leaves() {
        let t = Uuid::new_v4();
        let topics = TopicView::of(&[("t", t, 4)]);
        let mut group = ConsumerGroup::new("g");
        let a = group.heartbeat(0, &limits(), &topics, join("t")).unwrap();
        assert_eq!(count(&a), 4);
        assert_eq!(group.state_name(), "Stable");

        let b = group.heartbeat(1, &limits(), &topics, join("t")).unwrap();
        assert_eq!(count(&b), 0, "b waits until a releases");
        // a is asked to revoke two partitions; its epoch stays.
        let a2 = group
            .heartbeat(2, &limits(), &topics, beat(&a.member_id, a.member_epoch))
            .unwrap();
        assert_eq!((count(&a2), a2.member_epoch), (2, a.member_epoch));
        assert_eq!(group.state_name(), "Reconciling");
        // a reports it released them: its epoch advances.
        let kept = a2.assignment.clone().unwrap();
        let a3 = group
            .heartbeat(
                3,
                &limits(),
                &topics,
                HeartbeatRequest {
                    owned: Some(kept),
                    ..beat(&a.member_id, a.member_epoch)
                },
            )
            .unwrap();
        assert!(
            a3.member_epoch > a.member_epoch,
            "a advanced to the new target"
        );
        // b now gets the released partitions.
        let b2 = group
            .heartbeat(
                4,
                &limits(),
                &topics,
                HeartbeatRequest {
                    owned: Some(vec![]),
                    ..beat(&b.member_id, b.member_epoch)
                },
            )
            .unwrap();
        assert_eq!(count(&b2), 2);
        assert_eq!(group.state_name(), "Stable");

        // b leaves; a gets everything back.
        group
            .heartbeat(5, &limits(), &topics, beat(&b.member_id, -1))
            .unwrap();
        let a4 = group
            .heartbeat(6, &limits(), &topics, beat(&a.member_id, a3.member_epoch))
            .unwrap();
        assert_eq!(count(&a4), 4);
    }

    #[test]
    fn the_record_image_restores_the_group_and_removals_are_tombstoned() {
        let t = Uuid::new_v4();
        let topics = TopicView::of(&[("t", t, 4)]);
        let mut group = ConsumerGroup::new("g");
        let a = group.heartbeat(0, &limits(), &topics, join("t")).unwrap();
        let b = group.heartbeat(1, &limits(), &topics, join("t")).unwrap();
        let changes = group.take_changes();
        assert!(changes.iter().all(|(_, v)| v.is_some()));
        let mut stored = StoredConsumerGroup::default();
        for (key, value) in &changes {
            assert!(stored.add(key, value.as_ref().unwrap()).unwrap());
        }
        let restored = ConsumerGroup::restore("g", stored, 5, &limits(), &topics);
        let summary = |g: &ConsumerGroup| {
            let d = g.describe(&topics);
            let members: Vec<_> = d
                .members
                .iter()
                .map(|m| (m.member_id.clone(), m.member_epoch, m.assignment.clone()))
                .collect();
            (d.group_epoch, d.assignment_epoch, d.state, members)
        };
        assert_eq!(summary(&restored), summary(&group));
        assert!(group.take_changes().is_empty(), "nothing changed since");

        group
            .heartbeat(2, &limits(), &topics, beat(&b.member_id, -1))
            .unwrap();
        let tombstoned: Vec<_> = group
            .take_changes()
            .into_iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k)
            .collect();
        assert_eq!(tombstoned.len(), 3, "b's metadata, target and assignment");
        assert!(tombstoned.iter().all(|k| matches!(k,
            RecordKey::ConsumerMemberMetadata { member, .. }
            | RecordKey::ConsumerTargetAssignmentMember { member, .. }
            | RecordKey::ConsumerCurrentAssignment { member, .. } if *member == b.member_id)));
        let _ = a;
    }

    #[test]
    fn fenced_epochs_and_expiry() {
        let t = Uuid::new_v4();
        let topics = TopicView::of(&[("t", t, 2)]);
        let mut group = ConsumerGroup::new("g");
        let a = group.heartbeat(0, &limits(), &topics, join("t")).unwrap();
        let stale = group.heartbeat(
            1,
            &limits(),
            &topics,
            beat(&a.member_id, a.member_epoch + 5),
        );
        assert_eq!(stale, Err(GroupError::FencedMemberEpoch));
        let unknown = group.heartbeat(
            1,
            &limits(),
            &topics,
            HeartbeatRequest {
                member_id: "nobody".into(),
                member_epoch: 3,
                ..HeartbeatRequest::default()
            },
        );
        assert_eq!(unknown, Err(GroupError::UnknownMemberId));
        group.tick(2000, &limits(), &topics);
        assert!(group.is_empty());
    }

    #[test]
    fn regex_subscription_and_range_assignor() {
        let (t1, t2) = (Uuid::new_v4(), Uuid::new_v4());
        let topics = TopicView::of(&[
            ("orders-a", t1, 2),
            ("orders-b", t2, 2),
            ("other", Uuid::new_v4(), 3),
        ]);
        let mut group = ConsumerGroup::new("g");
        let a = group
            .heartbeat(
                0,
                &limits(),
                &topics,
                HeartbeatRequest {
                    member_epoch: 0,
                    subscribed_topic_regex: Some("orders-.*".into()),
                    server_assignor: Some("range".into()),
                    ..HeartbeatRequest::default()
                },
            )
            .unwrap();
        assert_eq!(count(&a), 4);
        let bad = group.heartbeat(
            0,
            &limits(),
            &topics,
            HeartbeatRequest {
                member_epoch: 0,
                subscribed_topic_regex: Some("(".into()),
                ..HeartbeatRequest::default()
            },
        );
        assert_eq!(bad, Err(GroupError::InvalidRegularExpression));
        let unsupported = group.heartbeat(
            0,
            &limits(),
            &topics,
            HeartbeatRequest {
                member_epoch: 0,
                subscribed_topic_names: Some(vec!["other".into()]),
                server_assignor: Some("magic".into()),
                ..HeartbeatRequest::default()
            },
        );
        assert_eq!(unsupported, Err(GroupError::UnsupportedAssignor));
    }

    #[test]
    fn uniform_is_sticky_and_balanced() {
        let t = Uuid::new_v4();
        let topics = TopicView::of(&[("t", t, 6)]);
        let subs: BTreeMap<String, BTreeSet<String>> = ["a", "b"]
            .iter()
            .map(|m| (m.to_string(), BTreeSet::from(["t".to_string()])))
            .collect();
        let first = assign_uniform(&subs, &BTreeMap::new(), &topics);
        let mut three = subs.clone();
        three.insert("c".into(), BTreeSet::from(["t".to_string()]));
        let second = assign_uniform(&three, &first, &topics);
        for member in ["a", "b", "c"] {
            assert_eq!(second[member][&t].len(), 2);
        }
        for member in ["a", "b"] {
            assert!(
                second[member][&t].is_subset(&first[member][&t]),
                "{member} kept its partitions"
            );
        }
    }
}
