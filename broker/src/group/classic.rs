//! A classic consumer group (JoinGroup/SyncGroup/Heartbeat/LeaveGroup), as Kafka's
//! `ClassicGroup`: a state machine with no I/O.
//!
//! States and the requests that move between them:
//!
//! ```text
//!            join                        all joined / join deadline        leader's sync, persisted
//!   Empty ----------> PreparingRebalance ---------------------> CompletingRebalance ----------> Stable
//!     ^                 |  ^   ^                                   |                              |
//!     | nobody rejoined |  |   +---- join, leave, expiry, sync ----+                              |
//!     +-----------------+  +------------- leader/changed join, leave, expiry --------------------+
//!   any state --(group deleted)--> Dead
//! ```
//!
//! [`ClassicState::valid_previous`] lists the legal transitions and [`ClassicGroup`] checks
//! every one, so an illegal transition is a bug that fails loudly in tests.
//!
//! A JoinGroup or SyncGroup that must wait for other members is parked: the member holds a
//! oneshot sender, completed when the rebalance moves on. Deadlines (session expiry, join
//! and sync timeouts, the initial rebalance delay) are checked by [`ClassicGroup::tick`],
//! which the coordinator's runtime calls with the current time.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::records::{GroupMetadataValue, StoredMember};
use super::{GroupError, GroupLimits};

/// Kafka's `ClassicGroupState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassicState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl ClassicState {
    /// The name clients see (DescribeGroups, ListGroups).
    pub fn name(self) -> &'static str {
        match self {
            ClassicState::Empty => "Empty",
            ClassicState::PreparingRebalance => "PreparingRebalance",
            ClassicState::CompletingRebalance => "CompletingRebalance",
            ClassicState::Stable => "Stable",
            ClassicState::Dead => "Dead",
        }
    }

    /// The states this one may be entered from.
    fn valid_previous(self) -> &'static [ClassicState] {
        use ClassicState::*;
        match self {
            Empty => &[PreparingRebalance],
            PreparingRebalance => &[Stable, CompletingRebalance, Empty],
            CompletingRebalance => &[PreparingRebalance],
            Stable => &[CompletingRebalance],
            Dead => &[Stable, PreparingRebalance, CompletingRebalance, Empty, Dead],
        }
    }
}

/// A JoinGroup as the coordinator sees it.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new dynamic member first gets MEMBER_ID_REQUIRED with its id.
    pub require_known_member_id: bool,
    /// JoinGroup v9+: a rejoining static leader may skip computing an assignment.
    pub supports_skip_assignment: bool,
}

/// A member as listed to the leader in a JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

/// The outcome of a JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    pub error: Option<GroupError>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    pub skip_assignment: bool,
    pub members: Vec<JoinedMember>,
}

impl JoinResult {
    pub fn failed(error: GroupError, member_id: &str) -> JoinResult {
        JoinResult {
            error: Some(error),
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            skip_assignment: false,
            members: Vec::new(),
        }
    }
}

/// A SyncGroup as the coordinator sees it.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

/// The outcome of a SyncGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    pub error: Option<GroupError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn failed(error: GroupError) -> SyncResult {
        SyncResult {
            error: Some(error),
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// An answer available now or later.
pub enum Answer<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

/// What a SyncGroup asks of the runtime.
pub enum SyncStep {
    Answer(Answer<SyncResult>),
    /// The leader's assignment arrived: persist the group's metadata, then call
    /// [`ClassicGroup::finish_sync`]; the member's answer follows on the receiver.
    Persist(oneshot::Receiver<SyncResult>),
}

#[derive(Debug)]
struct Member {
    member_id: String,
    group_instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    protocol_type: String,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    /// Order of first join; the earliest remaining member leads when the leader left.
    join_order: u64,
    awaiting_join: Option<oneshot::Sender<JoinResult>>,
    supports_skip_assignment: bool,
    awaiting_sync: Option<oneshot::Sender<SyncResult>>,
    session_deadline_ms: i64,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }
}

/// The first-rebalance delay of a group that was empty (Kafka's `InitialDelayedJoin`):
/// while members keep arriving the delay is extended, up to the rebalance timeout.
#[derive(Debug, Clone, Copy)]
struct InitialDelay {
    delay_ms: i64,
    remaining_ms: i64,
    member_added: bool,
}

/// A member's summary for DescribeGroups.
#[derive(Debug, Clone)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug)]
pub struct ClassicGroup {
    pub id: String,
    state: ClassicState,
    state_since_ms: i64,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    next_join_order: u64,
    /// Member ids handed out with MEMBER_ID_REQUIRED, and when they lapse.
    pending_members: HashMap<String, i64>,
    /// group.instance.id -> member id.
    static_members: HashMap<String, String>,
    join_deadline_ms: Option<i64>,
    initial_delay: Option<InitialDelay>,
    sync_deadline_ms: Option<i64>,
    /// Set when a change outside a rebalance (a static member replaced) must be persisted.
    metadata_changed: bool,
}

impl ClassicGroup {
    pub fn new(id: &str, now_ms: i64) -> ClassicGroup {
        ClassicGroup {
            id: id.to_string(),
            state: ClassicState::Empty,
            state_since_ms: now_ms,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            next_join_order: 0,
            pending_members: HashMap::new(),
            static_members: HashMap::new(),
            join_deadline_ms: None,
            initial_delay: None,
            sync_deadline_ms: None,
            metadata_changed: false,
        }
    }

    /// Rebuilds a group from its stored metadata: Stable with its members (who keep their
    /// sessions if they heartbeat in time) or Empty.
    pub fn restore(id: &str, value: &GroupMetadataValue, now_ms: i64) -> ClassicGroup {
        let mut group = ClassicGroup::new(id, now_ms);
        group.generation = value.generation;
        group.protocol_type = Some(value.protocol_type.clone());
        group.protocol = value.protocol.clone();
        group.leader = value.leader.clone();
        if value.current_state_timestamp_ms >= 0 {
            group.state_since_ms = value.current_state_timestamp_ms;
        }
        for stored in &value.members {
            let order = group.next_order();
            let protocols = match &value.protocol {
                Some(p) => vec![(p.clone(), stored.subscription.clone())],
                None => Vec::new(),
            };
            if let Some(instance) = &stored.group_instance_id {
                group
                    .static_members
                    .insert(instance.clone(), stored.member_id.clone());
            }
            group.members.insert(
                stored.member_id.clone(),
                Member {
                    member_id: stored.member_id.clone(),
                    group_instance_id: stored.group_instance_id.clone(),
                    client_id: stored.client_id.clone(),
                    client_host: stored.client_host.clone(),
                    session_timeout_ms: stored.session_timeout_ms,
                    rebalance_timeout_ms: stored.rebalance_timeout_ms,
                    protocol_type: value.protocol_type.clone(),
                    protocols,
                    assignment: stored.assignment.clone(),
                    join_order: order,
                    awaiting_join: None,
                    supports_skip_assignment: false,
                    awaiting_sync: None,
                    session_deadline_ms: now_ms + stored.session_timeout_ms as i64,
                },
            );
        }
        if !group.members.is_empty() {
            group.state = ClassicState::Stable;
        }
        group
    }

    pub fn state(&self) -> ClassicState {
        self.state
    }

    pub fn state_since_ms(&self) -> i64 {
        self.state_since_ms
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Whether the metadata changed outside a rebalance since the last call.
    pub fn take_metadata_changed(&mut self) -> bool {
        std::mem::take(&mut self.metadata_changed)
    }

    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// Marks a deleted group; every parked request is answered.
    pub fn mark_dead(&mut self) {
        for member in self.members.values_mut() {
            if let Some(tx) = member.awaiting_join.take() {
                let _ = tx.send(JoinResult::failed(
                    GroupError::CoordinatorNotAvailable,
                    &member.member_id,
                ));
            }
            if let Some(tx) = member.awaiting_sync.take() {
                let _ = tx.send(SyncResult::failed(GroupError::CoordinatorNotAvailable));
            }
        }
        self.members.clear();
        self.transition(ClassicState::Dead, self.state_since_ms);
    }

    fn next_order(&mut self) -> u64 {
        self.next_join_order += 1;
        self.next_join_order
    }

    fn transition(&mut self, to: ClassicState, now_ms: i64) {
        assert!(
            to.valid_previous().contains(&self.state),
            "group {}: illegal transition {:?} -> {:?}",
            self.id,
            self.state,
            to
        );
        self.state = to;
        self.state_since_ms = now_ms;
    }

    /// The group's metadata record value, as written after a rebalance completes.
    pub fn metadata_value(&self) -> GroupMetadataValue {
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            current_state_timestamp_ms: self.state_since_ms,
            members: self
                .members
                .values()
                .map(|m| StoredMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: self
                        .protocol
                        .as_deref()
                        .map(|p| m.metadata_for(p))
                        .unwrap_or_default(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    // ---- JoinGroup ----

    pub fn join(
        &mut self,
        now_ms: i64,
        limits: &GroupLimits,
        request: JoinRequest,
    ) -> Answer<JoinResult> {
        if let Err(error) = self.validate_join(limits, &request) {
            return Answer::Now(JoinResult::failed(error, &request.member_id));
        }
        if request.member_id.is_empty() {
            self.join_new_member(now_ms, limits, request)
        } else {
            self.join_known_member(now_ms, limits, request)
        }
    }

    fn validate_join(&self, limits: &GroupLimits, request: &JoinRequest) -> Result<(), GroupError> {
        if self.state == ClassicState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if request.session_timeout_ms < limits.min_session_timeout_ms
            || request.session_timeout_ms > limits.max_session_timeout_ms
        {
            return Err(GroupError::InvalidSessionTimeout);
        }
        if request.protocol_type.is_empty() || request.protocols.is_empty() {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        if self.state == ClassicState::Empty && self.members.is_empty() {
            return Ok(());
        }
        if self.protocol_type.as_deref() != Some(request.protocol_type.as_str()) {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        let others: Vec<&Member> = self
            .members
            .values()
            .filter(|m| m.member_id != request.member_id)
            .collect();
        let shared = request.protocols.iter().any(|(name, _)| {
            others
                .iter()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        });
        if !shared {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        Ok(())
    }

    fn join_new_member(
        &mut self,
        now_ms: i64,
        limits: &GroupLimits,
        request: JoinRequest,
    ) -> Answer<JoinResult> {
        let prefix = request
            .group_instance_id
            .as_deref()
            .unwrap_or(request.client_id.as_str());
        let member_id = format!("{prefix}-{}", uuid::Uuid::new_v4());
        if let Some(instance) = request.group_instance_id.clone() {
            if let Some(old_id) = self.static_members.get(&instance).cloned() {
                return self.replace_static_member(now_ms, limits, &old_id, member_id, request);
            }
        }
        if self.members.len() + self.pending_members.len() >= limits.max_size {
            return Answer::Now(JoinResult::failed(
                GroupError::GroupMaxSizeReached,
                &request.member_id,
            ));
        }
        if request.group_instance_id.is_none() && request.require_known_member_id {
            self.pending_members.insert(
                member_id.clone(),
                now_ms + request.session_timeout_ms as i64,
            );
            return Answer::Now(JoinResult::failed(GroupError::MemberIdRequired, &member_id));
        }
        self.add_member_and_rebalance(now_ms, limits, member_id, request)
    }

    fn join_known_member(
        &mut self,
        now_ms: i64,
        limits: &GroupLimits,
        request: JoinRequest,
    ) -> Answer<JoinResult> {
        let member_id = request.member_id.clone();
        if self.pending_members.remove(&member_id).is_some() {
            return self.add_member_and_rebalance(now_ms, limits, member_id, request);
        }
        if let Err(error) = self.validate_member(&member_id, request.group_instance_id.as_deref()) {
            return Answer::Now(JoinResult::failed(error, &member_id));
        }
        match self.state {
            ClassicState::PreparingRebalance => {
                let rx = self.update_member(now_ms, &request);
                self.try_complete_join(now_ms);
                Answer::Later(rx)
            }
            ClassicState::CompletingRebalance => {
                if self.same_protocols(&member_id, &request.protocols) {
                    Answer::Now(self.current_join_result(&member_id, false))
                } else {
                    let rx = self.update_member(now_ms, &request);
                    self.prepare_rebalance(
                        now_ms,
                        limits,
                        "a member joined with changed protocols",
                    );
                    Answer::Later(rx)
                }
            }
            ClassicState::Stable => {
                let is_leader = self.leader.as_deref() == Some(member_id.as_str());
                if is_leader || !self.same_protocols(&member_id, &request.protocols) {
                    let rx = self.update_member(now_ms, &request);
                    self.prepare_rebalance(
                        now_ms,
                        limits,
                        "the leader or a member with changed protocols rejoined",
                    );
                    Answer::Later(rx)
                } else {
                    self.refresh_session(now_ms, &member_id);
                    Answer::Now(self.current_join_result(&member_id, false))
                }
            }
            ClassicState::Empty | ClassicState::Dead => {
                Answer::Now(JoinResult::failed(GroupError::UnknownMemberId, &member_id))
            }
        }
    }

    /// A static member rejoined with no member id: the new id replaces the old one (which is
    /// fenced). In Stable with unchanged protocols no rebalance happens.
    fn replace_static_member(
        &mut self,
        now_ms: i64,
        limits: &GroupLimits,
        old_id: &str,
        new_id: String,
        request: JoinRequest,
    ) -> Answer<JoinResult> {
        let Some(mut member) = self.members.remove(old_id) else {
            self.static_members
                .remove(request.group_instance_id.as_deref().unwrap_or_default());
            return self.add_member_and_rebalance(now_ms, limits, new_id, request);
        };
        if let Some(tx) = member.awaiting_join.take() {
            let _ = tx.send(JoinResult::failed(GroupError::FencedInstanceId, old_id));
        }
        if let Some(tx) = member.awaiting_sync.take() {
            let _ = tx.send(SyncResult::failed(GroupError::FencedInstanceId));
        }
        member.member_id = new_id.clone();
        self.members.insert(new_id.clone(), member);
        if let Some(instance) = &request.group_instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.clone());
        }
        let is_leader = self.leader.as_deref() == Some(new_id.as_str());
        // As Kafka: in Stable only a change of the protocol the group would select forces a
        // rebalance; the subscription bytes of a restarted client may differ harmlessly.
        let protocol_kept = self.state == ClassicState::Stable && {
            if let Some(m) = self.members.get_mut(&new_id) {
                m.protocols = request.protocols.clone();
            }
            self.select_protocol() == self.protocol
        };
        match self.state {
            ClassicState::Stable if protocol_kept => {
                self.refresh_session(now_ms, &new_id);
                self.metadata_changed = true;
                let mut result = self.current_join_result(&new_id, false);
                if is_leader && request.supports_skip_assignment {
                    // v9+: the leader gets the members but keeps the current assignment.
                    result.skip_assignment = true;
                } else if is_leader {
                    // Older clients would compute a new assignment: answer as to a follower,
                    // naming the old leader id, as Kafka does.
                    result.members.clear();
                    result.leader = old_id.to_string();
                }
                Answer::Now(result)
            }
            ClassicState::Stable | ClassicState::CompletingRebalance => {
                let rx = self.update_member(
                    now_ms,
                    &JoinRequest {
                        member_id: new_id,
                        ..request
                    },
                );
                self.prepare_rebalance(
                    now_ms,
                    limits,
                    "a static member rejoined: the selected protocol would change, or it leads",
                );
                Answer::Later(rx)
            }
            _ => {
                let rx = self.update_member(
                    now_ms,
                    &JoinRequest {
                        member_id: new_id,
                        ..request
                    },
                );
                self.try_complete_join(now_ms);
                Answer::Later(rx)
            }
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        now_ms: i64,
        limits: &GroupLimits,
        member_id: String,
        request: JoinRequest,
    ) -> Answer<JoinResult> {
        let (tx, rx) = oneshot::channel();
        if let Some(instance) = &request.group_instance_id {
            self.static_members
                .insert(instance.clone(), member_id.clone());
        }
        let order = self.next_order();
        if self.members.is_empty() {
            self.protocol_type = Some(request.protocol_type.clone());
        }
        self.members.insert(
            member_id.clone(),
            Member {
                member_id,
                group_instance_id: request.group_instance_id,
                client_id: request.client_id,
                client_host: request.client_host,
                session_timeout_ms: request.session_timeout_ms,
                rebalance_timeout_ms: request.rebalance_timeout_ms,
                protocol_type: request.protocol_type,
                protocols: request.protocols,
                assignment: Bytes::new(),
                join_order: order,
                awaiting_join: Some(tx),
                supports_skip_assignment: request.supports_skip_assignment,
                awaiting_sync: None,
                session_deadline_ms: now_ms + request.session_timeout_ms as i64,
            },
        );
        if let Some(delay) = self.initial_delay.as_mut() {
            delay.member_added = true;
        }
        match self.state {
            ClassicState::PreparingRebalance => self.try_complete_join(now_ms),
            _ => self.prepare_rebalance(now_ms, limits, "a new member joined"),
        }
        Answer::Later(rx)
    }

    /// Takes a known member's new join parameters and parks its JoinGroup.
    fn update_member(
        &mut self,
        now_ms: i64,
        request: &JoinRequest,
    ) -> oneshot::Receiver<JoinResult> {
        let (tx, rx) = oneshot::channel();
        let member = self
            .members
            .get_mut(&request.member_id)
            .expect("caller checked the member");
        member.protocols = request.protocols.clone();
        member.protocol_type = request.protocol_type.clone();
        member.session_timeout_ms = request.session_timeout_ms;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.client_id = request.client_id.clone();
        member.client_host = request.client_host.clone();
        member.supports_skip_assignment = request.supports_skip_assignment;
        member.session_deadline_ms = now_ms + request.session_timeout_ms as i64;
        // A retried JoinGroup replaces the parked one, whose connection has moved on.
        member.awaiting_join = Some(tx);
        rx
    }

    fn same_protocols(&self, member_id: &str, protocols: &[(String, Bytes)]) -> bool {
        self.members
            .get(member_id)
            .is_some_and(|m| m.protocols == protocols)
    }

    fn current_join_result(&self, member_id: &str, skip_assignment: bool) -> JoinResult {
        let is_leader = self.leader.as_deref() == Some(member_id);
        JoinResult {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            skip_assignment,
            members: if is_leader {
                self.joined_members()
            } else {
                Vec::new()
            },
        }
    }

    fn joined_members(&self) -> Vec<JoinedMember> {
        let protocol = self.protocol.clone().unwrap_or_default();
        let mut members: Vec<&Member> = self.members.values().collect();
        members.sort_by_key(|m| m.join_order);
        members
            .into_iter()
            .map(|m| JoinedMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata_for(&protocol),
            })
            .collect()
    }

    fn prepare_rebalance(&mut self, now_ms: i64, limits: &GroupLimits, reason: &str) {
        tracing::info!(
            group = %self.id,
            state = self.state.name(),
            generation = self.generation,
            reason,
            "preparing to rebalance"
        );
        if self.state == ClassicState::CompletingRebalance {
            for member in self.members.values_mut() {
                member.assignment = Bytes::new();
                if let Some(tx) = member.awaiting_sync.take() {
                    let _ = tx.send(SyncResult::failed(GroupError::RebalanceInProgress));
                }
            }
        }
        let was_empty = self.state == ClassicState::Empty;
        self.transition(ClassicState::PreparingRebalance, now_ms);
        self.sync_deadline_ms = None;
        let rebalance_timeout_ms = self.max_rebalance_timeout_ms();
        if was_empty && limits.initial_rebalance_delay_ms > 0 {
            let delay_ms = limits
                .initial_rebalance_delay_ms
                .min(rebalance_timeout_ms.max(1));
            self.initial_delay = Some(InitialDelay {
                delay_ms,
                remaining_ms: (rebalance_timeout_ms - delay_ms).max(0),
                member_added: false,
            });
            self.join_deadline_ms = Some(now_ms + delay_ms);
        } else {
            self.initial_delay = None;
            self.join_deadline_ms = Some(now_ms + rebalance_timeout_ms);
            self.try_complete_join(now_ms);
        }
    }

    fn max_rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| m.rebalance_timeout_ms as i64)
            .max()
            .unwrap_or(0)
    }

    /// Completes the join phase early once every member has rejoined (not during the
    /// initial delay, which exists to gather members).
    fn try_complete_join(&mut self, now_ms: i64) {
        if self.state != ClassicState::PreparingRebalance || self.initial_delay.is_some() {
            return;
        }
        let all_joined = self.members.values().all(|m| m.awaiting_join.is_some())
            && self.pending_members.is_empty();
        if all_joined {
            self.complete_join(now_ms);
        }
    }

    fn complete_join(&mut self, now_ms: i64) {
        self.join_deadline_ms = None;
        self.initial_delay = None;
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in gone {
            self.remove_member(&member_id, GroupError::UnknownMemberId);
        }
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol = None;
            self.leader = None;
            self.transition(ClassicState::Empty, now_ms);
            return;
        }
        self.protocol = self.select_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self
                .members
                .values()
                .min_by_key(|m| m.join_order)
                .map(|m| m.member_id.clone());
        }
        self.transition(ClassicState::CompletingRebalance, now_ms);
        self.sync_deadline_ms = Some(now_ms + self.max_rebalance_timeout_ms());
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for member_id in ids {
            let result = self.current_join_result(&member_id, false);
            let member = self.members.get_mut(&member_id).expect("listed above");
            member.session_deadline_ms = now_ms + member.session_timeout_ms as i64;
            if let Some(tx) = member.awaiting_join.take() {
                let _ = tx.send(result);
            }
        }
    }

    /// The protocol every member supports that most members list first (ties go to the
    /// leader's preference order), as Kafka's `selectProtocol`.
    fn select_protocol(&self) -> Option<String> {
        let mut members: Vec<&Member> = self.members.values().collect();
        members.sort_by_key(|m| m.join_order);
        let first = members.first()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(name, _)| name)
            .filter(|name| {
                members
                    .iter()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == *name))
            })
            .collect();
        let mut votes: Vec<(usize, &String)> = candidates.iter().map(|c| (0, *c)).collect();
        for member in &members {
            if let Some((name, _)) = member
                .protocols
                .iter()
                .find(|(name, _)| candidates.contains(&name))
            {
                if let Some(vote) = votes.iter_mut().find(|(_, c)| *c == name) {
                    vote.0 += 1;
                }
            }
        }
        let best = votes.iter().map(|(count, _)| *count).max()?;
        votes
            .into_iter()
            .find(|(count, _)| *count == best)
            .map(|(_, name)| name.clone())
    }

    fn remove_member(&mut self, member_id: &str, error: GroupError) {
        let Some(mut member) = self.members.remove(member_id) else {
            return;
        };
        if let Some(tx) = member.awaiting_join.take() {
            let _ = tx.send(JoinResult::failed(error, member_id));
        }
        if let Some(tx) = member.awaiting_sync.take() {
            let _ = tx.send(SyncResult::failed(error));
        }
        if let Some(instance) = &member.group_instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = None;
        }
    }

    /// After members left: a settled group rebalances, a rebalancing one may now complete.
    fn after_members_removed(&mut self, now_ms: i64, limits: &GroupLimits) {
        match self.state {
            ClassicState::Stable | ClassicState::CompletingRebalance => {
                self.prepare_rebalance(now_ms, limits, "members left")
            }
            ClassicState::PreparingRebalance => self.try_complete_join(now_ms),
            ClassicState::Empty | ClassicState::Dead => {}
        }
    }

    fn validate_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), GroupError> {
        if let Some(instance) = instance_id {
            match self.static_members.get(instance) {
                Some(current) if current == member_id => {}
                Some(_) => return Err(GroupError::FencedInstanceId),
                None if self.members.contains_key(member_id) => {
                    return Err(GroupError::FencedInstanceId)
                }
                None => return Err(GroupError::UnknownMemberId),
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(GroupError::UnknownMemberId);
        }
        Ok(())
    }

    fn refresh_session(&mut self, now_ms: i64, member_id: &str) {
        if let Some(member) = self.members.get_mut(member_id) {
            member.session_deadline_ms = now_ms + member.session_timeout_ms as i64;
        }
    }

    // ---- SyncGroup ----

    pub fn sync(&mut self, now_ms: i64, request: SyncRequest) -> SyncStep {
        let fail = |e| SyncStep::Answer(Answer::Now(SyncResult::failed(e)));
        // An Empty or Dead group has no members: the member check answers UNKNOWN_MEMBER_ID.
        if let Err(e) =
            self.validate_member(&request.member_id, request.group_instance_id.as_deref())
        {
            return fail(e);
        }
        if request.generation != self.generation {
            return fail(GroupError::IllegalGeneration);
        }
        let type_mismatch = request
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != self.protocol_type.as_ref());
        let name_mismatch = request
            .protocol_name
            .as_ref()
            .is_some_and(|n| Some(n) != self.protocol.as_ref());
        if type_mismatch || name_mismatch {
            return fail(GroupError::InconsistentGroupProtocol);
        }
        self.refresh_session(now_ms, &request.member_id);
        match self.state {
            ClassicState::PreparingRebalance => fail(GroupError::RebalanceInProgress),
            ClassicState::Stable => {
                SyncStep::Answer(Answer::Now(self.sync_result(&request.member_id)))
            }
            ClassicState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                let is_leader = self.leader.as_deref() == Some(request.member_id.as_str());
                let member = self
                    .members
                    .get_mut(&request.member_id)
                    .expect("validated above");
                member.awaiting_sync = Some(tx);
                if !is_leader {
                    return SyncStep::Answer(Answer::Later(rx));
                }
                let given: HashMap<String, Bytes> = request.assignments.into_iter().collect();
                for member in self.members.values_mut() {
                    member.assignment = given.get(&member.member_id).cloned().unwrap_or_default();
                }
                SyncStep::Persist(rx)
            }
            ClassicState::Empty | ClassicState::Dead => {
                unreachable!("a validated member belongs to a group with members")
            }
        }
    }

    /// Called once the leader's assignment is persisted (or failed to be): the group
    /// settles and every parked SyncGroup gets its assignment.
    pub fn finish_sync(
        &mut self,
        now_ms: i64,
        limits: &GroupLimits,
        persisted: Result<(), GroupError>,
    ) {
        if self.state != ClassicState::CompletingRebalance {
            return;
        }
        match persisted {
            Ok(()) => {
                self.transition(ClassicState::Stable, now_ms);
                self.sync_deadline_ms = None;
                let ids: Vec<String> = self.members.keys().cloned().collect();
                for member_id in ids {
                    let result = self.sync_result(&member_id);
                    if let Some(tx) = self
                        .members
                        .get_mut(&member_id)
                        .and_then(|m| m.awaiting_sync.take())
                    {
                        let _ = tx.send(result);
                    }
                }
            }
            Err(error) => {
                for member in self.members.values_mut() {
                    member.assignment = Bytes::new();
                    if let Some(tx) = member.awaiting_sync.take() {
                        let _ = tx.send(SyncResult::failed(error));
                    }
                }
                self.prepare_rebalance(now_ms, limits, "the assignment could not be persisted");
            }
        }
    }

    fn sync_result(&self, member_id: &str) -> SyncResult {
        SyncResult {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment: self
                .members
                .get(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    // ---- Heartbeat, LeaveGroup, OffsetCommit checks ----

    pub fn heartbeat(
        &mut self,
        now_ms: i64,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        match self.state {
            ClassicState::Dead => return Err(GroupError::CoordinatorNotAvailable),
            ClassicState::Empty => return Err(GroupError::UnknownMemberId),
            _ => {}
        }
        self.validate_member(member_id, instance_id)?;
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        self.refresh_session(now_ms, member_id);
        if self.state == ClassicState::PreparingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        Ok(())
    }

    /// LeaveGroup for one member, by member id or (static members) by instance id.
    pub fn leave(
        &mut self,
        now_ms: i64,
        limits: &GroupLimits,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), GroupError> {
        if self.state == ClassicState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        let target = match instance_id {
            Some(instance) => {
                let current = self
                    .static_members
                    .get(instance)
                    .cloned()
                    .ok_or(GroupError::UnknownMemberId)?;
                if !member_id.is_empty() && member_id != current {
                    return Err(GroupError::FencedInstanceId);
                }
                current
            }
            None => member_id.to_string(),
        };
        if self.pending_members.remove(&target).is_some() {
            self.try_complete_join(now_ms);
            return Ok(());
        }
        if !self.members.contains_key(&target) {
            return Err(GroupError::UnknownMemberId);
        }
        self.remove_member(&target, GroupError::UnknownMemberId);
        self.after_members_removed(now_ms, limits);
        Ok(())
    }

    /// Whether an OffsetCommit may write for this group. Generation -1 with no member id is
    /// a commit from outside the group (assign() users, admin tools): allowed while Empty.
    pub fn validate_offset_commit(
        &mut self,
        now_ms: i64,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), GroupError> {
        if self.state == ClassicState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if generation < 0 && member_id.is_empty() && self.state == ClassicState::Empty {
            return Ok(());
        }
        self.validate_member(member_id, instance_id)?;
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        if self.state == ClassicState::CompletingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        self.refresh_session(now_ms, member_id);
        Ok(())
    }

    /// OffsetFetch with a member id (v9) is checked only for consumer groups; classic
    /// groups answer whoever asks, as Kafka.
    pub fn describe_members(&self) -> Vec<MemberDescription> {
        let stable = self.state == ClassicState::Stable;
        let protocol = self.protocol.clone().unwrap_or_default();
        self.members
            .values()
            .map(|m| MemberDescription {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata_for(&protocol)
                } else {
                    Bytes::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect()
    }

    /// The topics the group's members are subscribed to, when their subscriptions can be
    /// read (protocol type "consumer"); None when unknown.
    pub fn subscribed_topics(&self) -> Option<Vec<String>> {
        if self.protocol_type.as_deref() != Some("consumer") || self.protocol.is_none() {
            return None;
        }
        let protocol = self.protocol.clone().unwrap_or_default();
        let mut topics = Vec::new();
        for member in self.members.values() {
            topics.extend(crate::protocol::consumer_subscription_topics(
                &member.metadata_for(&protocol),
            )?);
        }
        topics.sort();
        topics.dedup();
        Some(topics)
    }

    // ---- Time ----

    /// The earliest deadline [`ClassicGroup::tick`] must act on.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        let sessions = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.awaiting_sync.is_none())
            .map(|m| m.session_deadline_ms);
        let rebalance = match self.state {
            ClassicState::PreparingRebalance => self.join_deadline_ms,
            ClassicState::CompletingRebalance => self.sync_deadline_ms,
            _ => None,
        };
        sessions
            .chain(self.pending_members.values().copied())
            .chain(rebalance)
            .min()
    }

    /// Applies every deadline that passed; returns true when the group's metadata should be
    /// persisted (it became Empty).
    pub fn tick(&mut self, now_ms: i64, limits: &GroupLimits) -> bool {
        let before = (self.state, self.generation);
        self.pending_members
            .retain(|_, deadline| *deadline > now_ms);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.awaiting_join.is_none()
                    && m.awaiting_sync.is_none()
                    && m.session_deadline_ms <= now_ms
            })
            .map(|m| m.member_id.clone())
            .collect();
        if !expired.is_empty() {
            for member_id in &expired {
                tracing::info!(group = %self.id, member = %member_id, "member session expired");
                self.remove_member(member_id, GroupError::UnknownMemberId);
            }
            self.after_members_removed(now_ms, limits);
        }
        if self.state == ClassicState::PreparingRebalance
            && self.join_deadline_ms.is_some_and(|d| d <= now_ms)
        {
            match self.initial_delay {
                Some(delay) if delay.member_added && delay.remaining_ms > 0 => {
                    let next = delay.delay_ms.min(delay.remaining_ms);
                    self.initial_delay = Some(InitialDelay {
                        delay_ms: delay.delay_ms,
                        remaining_ms: delay.remaining_ms - next,
                        member_added: false,
                    });
                    self.join_deadline_ms = Some(now_ms + next);
                }
                _ => self.complete_join(now_ms),
            }
        }
        if self.state == ClassicState::CompletingRebalance
            && self.sync_deadline_ms.is_some_and(|d| d <= now_ms)
        {
            let missing: Vec<String> = self
                .members
                .values()
                .filter(|m| m.awaiting_sync.is_none())
                .map(|m| m.member_id.clone())
                .collect();
            for member_id in &missing {
                self.remove_member(member_id, GroupError::UnknownMemberId);
            }
            self.prepare_rebalance(now_ms, limits, "members did not sync in time");
        }
        let after = (self.state, self.generation);
        after != before && self.state == ClassicState::Empty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> GroupLimits {
        GroupLimits {
            min_session_timeout_ms: 10,
            max_session_timeout_ms: 100_000,
            max_size: 10,
            initial_rebalance_delay_ms: 0,
        }
    }

    fn join(member_id: &str, instance: Option<&str>, protocols: &[&str]) -> JoinRequest {
        JoinRequest {
            member_id: member_id.into(),
            group_instance_id: instance.map(String::from),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 1000,
            rebalance_timeout_ms: 2000,
            protocol_type: "consumer".into(),
            protocols: protocols
                .iter()
                .map(|p| (p.to_string(), Bytes::from_static(b"m")))
                .collect(),
            require_known_member_id: true,
            supports_skip_assignment: true,
        }
    }

    fn sync_request(
        member_id: &str,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncRequest {
        SyncRequest {
            member_id: member_id.into(),
            group_instance_id: None,
            generation,
            protocol_type: None,
            protocol_name: None,
            assignments,
        }
    }

    fn now<T>(answer: Answer<T>) -> T {
        match answer {
            Answer::Now(t) => t,
            Answer::Later(_) => panic!("expected an immediate answer"),
        }
    }

    fn later<T>(answer: Answer<T>) -> oneshot::Receiver<T> {
        match answer {
            Answer::Later(rx) => rx,
            Answer::Now(_) => panic!("expected a parked answer"),
        }
    }

    /// Joins a dynamic member through the MEMBER_ID_REQUIRED handshake.
    fn handshake(
        group: &mut ClassicGroup,
        t: i64,
        protocols: &[&str],
    ) -> (String, oneshot::Receiver<JoinResult>) {
        let first = now(group.join(t, &limits(), join("", None, protocols)));
        assert_eq!(first.error, Some(GroupError::MemberIdRequired));
        let rx = later(group.join(t, &limits(), join(&first.member_id, None, protocols)));
        (first.member_id, rx)
    }

    fn settle(group: &mut ClassicGroup, t: i64, leader: &str) {
        let generation = group.generation();
        let SyncStep::Persist(_) = group.sync(t, sync_request(leader, generation, vec![])) else {
            panic!("leader sync persists");
        };
        group.finish_sync(t, &limits(), Ok(()));
        assert_eq!(group.state(), ClassicState::Stable);
    }

    #[test]
    fn two_members_rebalance_and_one_leaves() {
        let mut group = ClassicGroup::new("g", 0);
        let (a, mut rx_a) = handshake(&mut group, 0, &["range"]);
        let ra = rx_a.try_recv().unwrap();
        assert_eq!((ra.generation, ra.leader.as_str()), (1, a.as_str()));
        assert_eq!(ra.members.len(), 1);
        assert_eq!(group.state(), ClassicState::CompletingRebalance);
        settle(&mut group, 1, &a);

        // b joins: the group prepares a rebalance; a must rejoin (heartbeat tells it).
        let (b, mut rx_b) = handshake(&mut group, 2, &["range", "roundrobin"]);
        assert_eq!(group.state(), ClassicState::PreparingRebalance);
        assert_eq!(
            group.heartbeat(3, &a, None, 1),
            Err(GroupError::RebalanceInProgress)
        );
        let mut rx_a = later(group.join(4, &limits(), join(&a, None, &["range"])));
        let (ra, rb) = (rx_a.try_recv().unwrap(), rx_b.try_recv().unwrap());
        assert_eq!((ra.generation, rb.generation), (2, 2));
        assert_eq!(ra.protocol_name.as_deref(), Some("range"));
        assert_eq!(ra.members.len(), 2, "leader gets the members");
        assert!(rb.members.is_empty());

        // The follower's sync waits for the leader's.
        let SyncStep::Answer(Answer::Later(mut sync_b)) = group.sync(
            5,
            SyncRequest {
                protocol_type: Some("consumer".into()),
                protocol_name: Some("range".into()),
                ..sync_request(&b, 2, vec![])
            },
        ) else {
            panic!("follower parks");
        };
        let SyncStep::Persist(_) = group.sync(
            6,
            sync_request(&a, 2, vec![(b.clone(), Bytes::from_static(b"for-b"))]),
        ) else {
            panic!("leader persists");
        };
        group.finish_sync(7, &limits(), Ok(()));
        assert_eq!(
            sync_b.try_recv().unwrap().assignment,
            Bytes::from_static(b"for-b")
        );

        // a leaves: b must rejoin, then it is alone in generation 3.
        group.leave(8, &limits(), &a, None).unwrap();
        assert_eq!(group.state(), ClassicState::PreparingRebalance);
        let mut rx_b = later(group.join(9, &limits(), join(&b, None, &["range"])));
        let rb = rx_b.try_recv().unwrap();
        assert_eq!((rb.generation, rb.leader.as_str()), (3, b.as_str()));
    }

    #[test]
    fn session_expiry_removes_a_silent_member() {
        let mut group = ClassicGroup::new("g", 0);
        let (a, _rx) = handshake(&mut group, 0, &["range"]);
        settle(&mut group, 0, &a);
        group.tick(500, &limits());
        assert_eq!(group.state(), ClassicState::Stable);
        assert!(group.tick(1001, &limits()), "the group became Empty");
        assert_eq!(group.state(), ClassicState::Empty);
        assert_eq!(
            group.heartbeat(1002, &a, None, 1),
            Err(GroupError::UnknownMemberId)
        );
    }

    #[test]
    fn static_member_rejoins_without_rebalance_and_fences_the_old_id() {
        let mut group = ClassicGroup::new("g", 0);
        let mut rx = later(group.join(0, &limits(), join("", Some("i1"), &["range"])));
        let first = rx.try_recv().unwrap();
        let (_b, mut rx_b) = {
            let r = now(group.join(0, &limits(), join("", None, &["range"])));
            (
                r.member_id.clone(),
                later(group.join(0, &limits(), join(&r.member_id, None, &["range"]))),
            )
        };
        // b's arrival rebalanced the group; the static member rejoins, all joined.
        let mut rx =
            later(group.join(1, &limits(), join(&first.member_id, Some("i1"), &["range"])));
        let again = rx.try_recv().unwrap();
        assert!(rx_b.try_recv().is_ok());
        settle(&mut group, 2, &again.leader);
        let generation = group.generation();

        // The static member restarts: new member id, same generation, no rebalance.
        let restarted = now(group.join(3, &limits(), join("", Some("i1"), &["range"])));
        assert_eq!(restarted.error, None);
        assert_eq!(restarted.generation, generation);
        assert_ne!(restarted.member_id, first.member_id);
        assert_eq!(group.state(), ClassicState::Stable);
        assert_eq!(
            group.heartbeat(4, &first.member_id, Some("i1"), generation),
            Err(GroupError::FencedInstanceId)
        );
        assert_eq!(
            group.heartbeat(4, &restarted.member_id, Some("i1"), generation),
            Ok(())
        );
    }

    #[test]
    fn errors_for_bad_joins_and_syncs() {
        let mut group = ClassicGroup::new("g", 0);
        let mut bad = join("", None, &["range"]);
        bad.session_timeout_ms = 1;
        assert_eq!(
            now(group.join(0, &limits(), bad)).error,
            Some(GroupError::InvalidSessionTimeout)
        );
        let (a, _rx) = handshake(&mut group, 0, &["range"]);
        let mut other = join("", None, &["roundrobin"]);
        other.require_known_member_id = false;
        assert_eq!(
            now(group.join(0, &limits(), other)).error,
            Some(GroupError::InconsistentGroupProtocol)
        );
        let mut wrong_type = join("", None, &["range"]);
        wrong_type.protocol_type = "connect".into();
        assert_eq!(
            now(group.join(0, &limits(), wrong_type)).error,
            Some(GroupError::InconsistentGroupProtocol)
        );
        let SyncStep::Answer(Answer::Now(result)) =
            group.sync(0, sync_request("stranger", 1, vec![]))
        else {
            panic!("answered at once");
        };
        assert_eq!(result.error, Some(GroupError::UnknownMemberId));
        assert_eq!(
            group.heartbeat(0, &a, None, 7),
            Err(GroupError::IllegalGeneration)
        );
    }

    #[test]
    fn group_max_size_is_enforced() {
        let mut group = ClassicGroup::new("g", 0);
        let small = GroupLimits {
            max_size: 1,
            ..limits()
        };
        let first = now(group.join(0, &small, join("", None, &["range"])));
        assert_eq!(first.error, Some(GroupError::MemberIdRequired));
        let second = now(group.join(0, &small, join("", None, &["range"])));
        assert_eq!(second.error, Some(GroupError::GroupMaxSizeReached));
    }

    #[test]
    fn initial_delay_gathers_members() {
        let delayed = GroupLimits {
            initial_rebalance_delay_ms: 100,
            ..limits()
        };
        let mut group = ClassicGroup::new("g", 0);
        let mut a = join("", None, &["range"]);
        a.require_known_member_id = false;
        let mut rx_a = later(group.join(0, &delayed, a.clone()));
        group.tick(50, &delayed);
        let mut rx_b = later(group.join(60, &delayed, a));
        group.tick(100, &delayed);
        assert!(rx_a.try_recv().is_err(), "extended because b arrived");
        group.tick(200, &delayed);
        let (ra, rb) = (rx_a.try_recv().unwrap(), rx_b.try_recv().unwrap());
        assert_eq!((ra.generation, rb.generation), (1, 1));
    }

    #[test]
    #[should_panic(expected = "illegal transition")]
    fn illegal_transitions_are_bugs() {
        let mut group = ClassicGroup::new("g", 0);
        group.transition(ClassicState::Stable, 0);
    }
}
