//! The metadata quorum: commits batches of metadata records through Raft (openraft, pinned)
//! and hands each committed batch, in log order, to an [`Applier`] on every node.
//!
//! The rest of the broker sees only the [`Quorum`] trait, so the consensus library can be
//! swapped in this module alone. The log, the vote and snapshots live in the broker's
//! RocksDB metadata store ([`store`]). A single node is a quorum of one voter, which
//! elects itself at once and needs no network.

pub mod observer;
pub mod store;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Config, Raft, SnapshotPolicy};
use serde::{Deserialize, Serialize};

use super::records::MetadataRecord;
use crate::meta_store::MetaStore;

/// One batch of records, committed and applied atomically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataBatch {
    pub records: Vec<MetadataRecord>,
}

impl std::fmt::Display for MetadataBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} metadata records", self.records.len())
    }
}

openraft::declare_raft_types!(
    /// openraft's types for the metadata quorum.
    pub TypeConfig:
        D = MetadataBatch,
        R = (),
        NodeId = u64,
        Node = BasicNode,
);

/// Receives committed metadata in log order: the image and its publisher.
pub trait Applier: Send + Sync + 'static {
    /// Applies one committed batch, at metadata log index `index`.
    fn apply(&self, index: u64, records: &[MetadataRecord]);
    /// Replaces all state with a snapshot's records, taken at `index`.
    fn install(&self, index: u64, records: &[MetadataRecord]);
    /// The current state as records, for a snapshot.
    fn snapshot(&self) -> Vec<MetadataRecord>;
}

/// Why a batch was not committed.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    /// This node is not the active controller (Kafka's NOT_CONTROLLER).
    #[error("this node is not the active controller")]
    NotLeader,
    /// Proposed, and not committed in time (a quorum out of reach): it may still be.
    #[error("the metadata quorum did not commit in time")]
    TimedOut,
    #[error("metadata quorum: {0}")]
    Failed(String),
}

/// The seam between the controller and the consensus library.
pub trait Quorum: Send + Sync {
    /// Commits `records` as one batch; returns its log index once it has been applied
    /// on this node.
    fn propose(&self, records: Vec<MetadataRecord>) -> BoxFuture<'_, Result<u64, QuorumError>>;
    /// Stops taking part in the quorum.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
    /// Answers a quorum message from another voter (the body of a [`RAFT_API_KEY`] frame).
    fn handle_rpc(&self, body: bytes::Bytes) -> BoxFuture<'_, Vec<u8>>;
    /// The leader, term and progress of the quorum as this node sees it.
    fn state(&self) -> QuorumState;
    /// Waits until a leader is known and this node has applied every entry it holds.
    fn wait_ready(&self) -> BoxFuture<'_, ()>;
    /// Confirms this node leads and has applied everything committed before now, so a
    /// decision made next sees every earlier one (NotLeader otherwise).
    fn linearize(&self) -> BoxFuture<'_, Result<(), QuorumError>>;
    /// For observers: the index of the last batch applied here, and the committed
    /// batches from `from` on (at most `max`), as far as applied; None when `from` is no
    /// longer in this node's log. Only voters serve this.
    fn committed_since(&self, _from: u64, _max: usize) -> BoxFuture<'_, Committed> {
        Box::pin(async { Committed::NotReady })
    }
}

/// What a voter has for an observer asking from an index.
pub enum Committed {
    /// The committed batches from that index on (none yet: empty), with the index of the
    /// last batch applied here.
    Batches {
        applied: u64,
        batches: Vec<(u64, Vec<MetadataRecord>)>,
    },
    /// The index was purged from this node's log: only a snapshot has it.
    Purged,
    /// This node cannot tell yet (nothing applied, or its log unreadable).
    NotReady,
}

/// The request api key of quorum messages between voters, on the controller listener.
/// It is not a Kafka api key, is never advertised, and is refused on other listeners.
pub const RAFT_API_KEY: i16 = 10_000;

/// Settings of the quorum, from Kafka's `controller.quorum.*` keys.
#[derive(Debug, Clone)]
pub struct QuorumSettings {
    pub node_id: i32,
    pub cluster_id: String,
    /// `controller.quorum.election.timeout.ms`.
    pub election_timeout_ms: u64,
    /// `metadata.log.max.record.bytes.between.snapshots`.
    pub snapshot_max_bytes: u64,
    /// `metadata.log.max.snapshot.interval.ms` (0: none).
    pub snapshot_interval_ms: u64,
    /// `controller.quorum.voters` as node ids and controller listener addresses; empty
    /// for a lone node, which is the only voter.
    pub voters: Vec<(i32, String)>,
}

impl QuorumSettings {
    /// The voters as `id@host:port,...` in id order: what every voter must agree on.
    fn voters_text(&self) -> String {
        let mut voters = self.voters.clone();
        voters.sort();
        voters
            .iter()
            .map(|(id, addr)| format!("{id}@{addr}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The quorum as DescribeQuorum reports it.
#[derive(Debug, Clone, Default)]
pub struct QuorumState {
    pub leader: Option<i32>,
    /// The leader's term (Kafka's leader epoch).
    pub term: u64,
    /// One past the highest index this node has applied (committed, on the leader): an
    /// offset, as Kafka's high watermark is.
    pub high_watermark: u64,
    /// One past this node's last log index.
    pub log_end: u64,
    /// Voters with how far their log matches the leader's (known on the leader only).
    pub voters: Vec<(i32, Option<u64>)>,
    /// Milliseconds since a quorum of voters last acknowledged the leader (leader only).
    pub millis_since_quorum_ack: Option<u64>,
    /// The voters' controller listener addresses, as an observer learned them (a broker
    /// given only `controller.quorum.bootstrap.servers`).
    pub addresses: Vec<(i32, String)>,
}

/// The openraft implementation of [`Quorum`].
pub struct RaftQuorum {
    raft: Raft<TypeConfig>,
    /// The log, read for observers.
    log: store::LogStore,
    cluster_id: String,
    voters: String,
    voter_count: usize,
    election_ms: u64,
}

impl RaftQuorum {
    /// Opens the quorum's state in `store` and replays the committed log into `applier`.
    /// A lone node returns once it leads with everything committed applied, which is at
    /// once; a voter of several returns at once and [`Quorum::wait_ready`] waits for a
    /// leader. On the first start every voter proposes the same membership, which is safe.
    pub async fn start(
        settings: &QuorumSettings,
        store: Arc<dyn MetaStore>,
        applier: Arc<dyn Applier>,
    ) -> anyhow::Result<RaftQuorum> {
        let election = settings.election_timeout_ms.max(10);
        let config = Config {
            cluster_name: settings.cluster_id.clone(),
            // openraft waits out a leader lease of `election_timeout_max`, then a random
            // timeout in [min, max], before it stands: with Kafka's 1 s election timeout
            // as the maximum, a dead leader is replaced in 1.5-2 s, within Kafka's bounds.
            election_timeout_min: (election / 2).max(2),
            election_timeout_max: election,
            heartbeat_interval: (election / 10).max(1),
            // Snapshots are taken by Kafka's rules (`spawn_snapshot_policy`); after one,
            // the log before it is purged but for 1,000 batches, kept generously so that
            // purging never races applying (openraft#2116) and a voter a little behind
            // catches up from the log rather than from a whole snapshot.
            snapshot_policy: SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: 1_000,
            ..Config::default()
        }
        .validate()
        .map_err(|e| anyhow::anyhow!("metadata quorum settings: {e}"))?;
        let node_id = settings.node_id as u64;
        let log = store::LogStore::new(Arc::clone(&store));
        let log_reader = log.clone();
        let since_snapshot = Arc::new(store::SinceSnapshot::new(settings.snapshot_max_bytes));
        let machine = store::StateMachine::open(store, applier, Arc::clone(&since_snapshot))?;
        let network = network::Network {
            cluster_id: settings.cluster_id.clone(),
            voters: settings.voters_text(),
        };
        let raft = Raft::new(node_id, Arc::new(config), network, log, machine)
            .await
            .map_err(|e| anyhow::anyhow!("cannot start the metadata quorum: {e}"))?;
        // A lone voter needs no address: it never sends anything.
        let voters: BTreeMap<u64, BasicNode> = if settings.voters.len() <= 1 {
            BTreeMap::from([(node_id, BasicNode::new("local"))])
        } else {
            settings
                .voters
                .iter()
                .map(|(id, addr)| (*id as u64, BasicNode::new(addr)))
                .collect()
        };
        if !raft.is_initialized().await? {
            raft.initialize(voters)
                .await
                .map_err(|e| anyhow::anyhow!("cannot form the metadata quorum: {e}"))?;
        } else {
            let stored: BTreeMap<u64, BasicNode> = raft
                .metrics()
                .borrow()
                .membership_config
                .membership()
                .nodes()
                .map(|(id, node)| (*id, node.clone()))
                .collect();
            // A lone voter has no address to compare; its id must still be the only one.
            let differ = if settings.voters.len() > 1 {
                stored != voters
            } else {
                !stored.keys().eq(voters.keys())
            };
            if differ {
                let _ = raft.shutdown().await;
                let text = |m: &BTreeMap<u64, BasicNode>| {
                    m.iter()
                        .map(|(id, n)| format!("{id}@{}", n.addr))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                anyhow::bail!(
                    "controller.quorum.voters is {} but this node's metadata log records the voters {}; changing the voters is not supported",
                    text(&voters),
                    text(&stored)
                );
            }
        }
        let quorum = RaftQuorum {
            raft,
            log: log_reader,
            voters: settings.voters_text(),
            voter_count: settings.voters.len().max(1),
            cluster_id: settings.cluster_id.clone(),
            election_ms: election,
        };
        if settings.voters.len() <= 1 {
            quorum.wait_ready().await;
        }
        watch_for_fatal_errors(&quorum.raft);
        spawn_snapshot_policy(
            quorum.raft.clone(),
            since_snapshot,
            settings.snapshot_interval_ms,
        );
        Ok(quorum)
    }
}

/// Kafka's snapshot rules: every node snapshots its image on its own once
/// `metadata.log.max.record.bytes.between.snapshots` bytes of records were committed
/// since its last snapshot, or once `metadata.log.max.snapshot.interval.ms` passed with
/// any committed.
fn spawn_snapshot_policy(
    raft: Raft<TypeConfig>,
    since: Arc<store::SinceSnapshot>,
    interval_ms: u64,
) {
    tokio::spawn(async move {
        let interval = (interval_ms > 0).then(|| Duration::from_millis(interval_ms));
        let mut last = tokio::time::Instant::now();
        loop {
            let timer = async {
                match interval {
                    Some(i) => tokio::time::sleep_until(last + i).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = since.due.notified() => {}
                _ = timer => {}
            }
            let bytes = since.bytes();
            let overdue = interval.is_some_and(|i| last.elapsed() >= i);
            if bytes >= since.max_bytes || (overdue && bytes > 0) {
                if raft.trigger().snapshot().await.is_err() {
                    break; // the quorum stopped
                }
                last = tokio::time::Instant::now();
            } else if overdue {
                last = tokio::time::Instant::now();
            }
        }
    });
}

/// Logs each change of leader, and stops the process when the consensus core fails: a
/// restart replays the durable log, while a broker with a dead quorum would serve metadata
/// no one can change.
fn watch_for_fatal_errors(raft: &Raft<TypeConfig>) {
    let mut metrics = raft.metrics();
    tokio::spawn(async move {
        let mut leader = None;
        loop {
            let failed = {
                let m = metrics.borrow_and_update();
                if m.current_leader != leader {
                    leader = m.current_leader;
                    match leader {
                        Some(id) => tracing::info!(
                            leader = id,
                            term = m.current_term,
                            "the metadata quorum has a leader"
                        ),
                        None => tracing::info!(
                            term = m.current_term,
                            "the metadata quorum has no leader"
                        ),
                    }
                }
                match &m.running_state {
                    Err(openraft::error::Fatal::Stopped) | Ok(()) => None,
                    Err(e) => Some(e.to_string()),
                }
            };
            if let Some(e) = failed {
                tracing::error!(error = %e, "the metadata quorum failed; stopping");
                std::process::exit(1);
            }
            if metrics.changed().await.is_err() {
                return;
            }
        }
    });
}

impl Quorum for RaftQuorum {
    fn propose(&self, records: Vec<MetadataRecord>) -> BoxFuture<'_, Result<u64, QuorumError>> {
        Box::pin(async move {
            // A leader cut off from its quorum never commits; openraft does not step it
            // down, so the wait is bounded here.
            let bound = Duration::from_millis(self.election_ms * 5);
            match tokio::time::timeout(bound, self.raft.client_write(MetadataBatch { records }))
                .await
            {
                Err(_) => Err(QuorumError::TimedOut),
                Ok(Ok(response)) => Ok(response.log_id.index),
                Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
                    Err(QuorumError::NotLeader)
                }
                Ok(Err(e)) => Err(QuorumError::Failed(e.to_string())),
            }
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Err(e) = self.raft.shutdown().await {
                tracing::warn!(error = %e, "the metadata quorum did not stop cleanly");
            }
        })
    }

    fn handle_rpc(&self, body: bytes::Bytes) -> BoxFuture<'_, Vec<u8>> {
        Box::pin(network::serve(
            &self.raft,
            &self.cluster_id,
            &self.voters,
            body,
        ))
    }

    fn state(&self) -> QuorumState {
        let metrics = self.raft.metrics().borrow().clone();
        let matched = metrics.replication.as_ref();
        // Kafka's check-quorum: a leader that has not heard from a quorum of voters for
        // 1.5 election timeouts no longer counts itself (or is reported) as the leader.
        let cut_off = metrics.current_leader == Some(metrics.id)
            && self.voter_count > 1
            && metrics
                .millis_since_quorum_ack
                .is_some_and(|ms| ms > self.election_ms * 3 / 2);
        QuorumState {
            leader: metrics
                .current_leader
                .map(|id| id as i32)
                .filter(|_| !cut_off),
            term: metrics.current_term,
            high_watermark: metrics.last_applied.map_or(0, |id| id.index + 1),
            log_end: metrics.last_log_index.map_or(0, |i| i + 1),
            voters: metrics
                .membership_config
                .membership()
                .voter_ids()
                .map(|id| {
                    let progress = matched
                        .and_then(|m| m.get(&id))
                        .map(|log| log.map_or(0, |l| l.index));
                    (id as i32, progress)
                })
                .collect(),
            millis_since_quorum_ack: metrics.millis_since_quorum_ack,
            addresses: Vec::new(),
        }
    }

    fn committed_since(&self, from: u64, max: usize) -> BoxFuture<'_, Committed> {
        Box::pin(async move {
            use openraft::storage::RaftLogReader;
            let (applied, purged) = {
                let metrics = self.raft.metrics().borrow().clone();
                (
                    metrics.last_applied.map(|id| id.index),
                    metrics.purged.map(|id| id.index),
                )
            };
            let Some(applied) = applied else {
                return Committed::NotReady;
            };
            if from > applied {
                return Committed::Batches {
                    applied,
                    batches: Vec::new(),
                };
            }
            if purged.is_some_and(|p| p >= from) {
                return Committed::Purged;
            }
            let to = applied.min(from + max.max(1) as u64 - 1);
            let Ok(entries) = self.log.clone().try_get_log_entries(from..=to).await else {
                return Committed::NotReady;
            };
            if entries.first().map(|e| e.log_id.index) != Some(from) {
                // Purged meanwhile: the next ask finds the purge point past it.
                return Committed::NotReady;
            }
            let batches = entries
                .into_iter()
                .map(|entry| {
                    let records = match entry.payload {
                        openraft::EntryPayload::Normal(batch) => batch.records,
                        _ => Vec::new(),
                    };
                    (entry.log_id.index, records)
                })
                .collect();
            Committed::Batches { applied, batches }
        })
    }

    fn linearize(&self) -> BoxFuture<'_, Result<(), QuorumError>> {
        Box::pin(async move {
            let settle = async {
                self.raft.ensure_linearizable().await?;
                // Also everything in this leader's log: a proposal that timed out may
                // still commit, and the next decision must be made on top of it.
                let last = self.raft.metrics().borrow().last_log_index;
                let applied = self
                    .raft
                    .wait(None)
                    .applied_index_at_least(last, "settle before a decision")
                    .await;
                Ok::<_, RaftError<u64, _>>(applied.is_ok())
            };
            match tokio::time::timeout(Duration::from_millis(self.election_ms * 2), settle).await {
                Ok(Ok(true)) => Ok(()),
                Ok(Ok(false)) | Ok(Err(RaftError::APIError(_))) | Err(_) => {
                    Err(QuorumError::NotLeader)
                }
                Ok(Err(e)) => Err(QuorumError::Failed(e.to_string())),
            }
        })
    }

    fn wait_ready(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let mut metrics = self.raft.metrics();
            let mut logged = std::time::Instant::now();
            loop {
                {
                    let m = metrics.borrow_and_update();
                    let applied = m.last_applied.map_or(0, |id| id.index);
                    if m.current_leader.is_some() && applied >= m.last_log_index.unwrap_or(0) {
                        tracing::info!(leader = ?m.current_leader, term = m.current_term, applied, "the metadata quorum is ready");
                        return;
                    }
                    if logged.elapsed() > Duration::from_millis(self.election_ms * 5) {
                        tracing::info!(leader = ?m.current_leader, applied, "waiting for the metadata quorum");
                        logged = std::time::Instant::now();
                    }
                }
                let _ = tokio::time::timeout(Duration::from_millis(500), metrics.changed()).await;
            }
        })
    }
}

mod network {
    //! The transport between voters: openraft's messages as JSON in Kafka-framed requests
    //! with the private [`RAFT_API_KEY`](super::RAFT_API_KEY), on the controller listener
    //! (one port per voter, the one `controller.quorum.voters` names). Every message
    //! carries the cluster id, and a node of another cluster is refused.

    use std::time::Duration;

    use openraft::error::{
        InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
    };
    use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
    use openraft::raft::{
        AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest,
        InstallSnapshotResponse, VoteRequest, VoteResponse,
    };
    use openraft::{BasicNode, Raft};
    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Serialize};

    use super::{TypeConfig, RAFT_API_KEY};
    use crate::channel::{Channel, ChannelError};

    #[derive(Serialize, Deserialize)]
    struct Envelope {
        cluster_id: String,
        /// The sender's `controller.quorum.voters`, which must be the receiver's.
        voters: String,
        call: Call,
    }

    #[derive(Serialize, Deserialize)]
    enum Call {
        AppendEntries(AppendEntriesRequest<TypeConfig>),
        Vote(VoteRequest<u64>),
        InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    }

    /// An answer: the receiver's own result, or a refusal before it reached the quorum.
    #[derive(Serialize, Deserialize)]
    enum Reply<T, E> {
        Done(Result<T, E>),
        Refused(String),
    }

    fn encode<T: Serialize, E: Serialize>(reply: &Reply<T, E>) -> Vec<u8> {
        serde_json::to_vec(reply).expect("quorum replies serialize")
    }

    /// Answers one quorum message.
    pub async fn serve(
        raft: &Raft<TypeConfig>,
        cluster_id: &str,
        voters: &str,
        body: bytes::Bytes,
    ) -> Vec<u8> {
        let envelope: Envelope = match serde_json::from_slice(&body) {
            Ok(envelope) => envelope,
            Err(e) => {
                return encode::<(), ()>(&Reply::Refused(format!("unreadable quorum message: {e}")))
            }
        };
        if envelope.cluster_id != cluster_id {
            tracing::warn!(theirs = %envelope.cluster_id, ours = %cluster_id, "refusing a quorum message from another cluster");
            return encode::<(), ()>(&Reply::Refused(format!(
                "this node belongs to cluster {cluster_id}, not {}",
                envelope.cluster_id
            )));
        }
        if envelope.voters != voters {
            tracing::warn!(theirs = %envelope.voters, ours = %voters, "refusing a quorum message from a node with other controller.quorum.voters");
            return encode::<(), ()>(&Reply::Refused(format!(
                "controller.quorum.voters differ: this node has {voters}, the sender {}",
                envelope.voters
            )));
        }
        match envelope.call {
            Call::AppendEntries(request) => {
                encode(&Reply::Done(raft.append_entries(request).await))
            }
            Call::Vote(request) => encode(&Reply::Done(raft.vote(request).await)),
            Call::InstallSnapshot(request) => {
                encode(&Reply::Done(raft.install_snapshot(request).await))
            }
        }
    }

    pub struct Network {
        pub cluster_id: String,
        pub voters: String,
    }

    impl RaftNetworkFactory<TypeConfig> for Network {
        type Network = Peer;

        async fn new_client(&mut self, target: u64, node: &BasicNode) -> Peer {
            Peer {
                target,
                cluster_id: self.cluster_id.clone(),
                voters: self.voters.clone(),
                channel: Channel::new(node.addr.clone(), "weir-quorum"),
            }
        }
    }

    pub struct Peer {
        target: u64,
        cluster_id: String,
        voters: String,
        channel: Channel,
    }

    impl Peer {
        async fn send<T, E>(
            &mut self,
            call: Call,
            timeout: Duration,
        ) -> Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>
        where
            T: DeserializeOwned,
            E: std::error::Error + DeserializeOwned,
        {
            let body = serde_json::to_vec(&Envelope {
                cluster_id: self.cluster_id.clone(),
                voters: self.voters.clone(),
                call,
            })
            .expect("quorum messages serialize");
            let answer = self
                .channel
                .call_raw(RAFT_API_KEY, 0, &body, timeout)
                .await
                .map_err(|e| match e {
                    // No connection: openraft backs off before trying again.
                    ChannelError::Io { .. } => RPCError::Unreachable(Unreachable::new(&e)),
                    // Slow (a large batch, a busy disk): retried without that back-off.
                    ChannelError::Timeout { .. } | ChannelError::Protocol { .. } => {
                        RPCError::Network(NetworkError::new(&e))
                    }
                })?;
            let reply: Reply<T, RaftError<u64, E>> =
                serde_json::from_slice(&answer).map_err(|e| {
                    RPCError::Network(NetworkError::new(&std::io::Error::other(format!(
                        "{}: unreadable quorum answer: {e}",
                        self.channel.addr()
                    ))))
                })?;
            match reply {
                Reply::Done(Ok(answer)) => Ok(answer),
                Reply::Done(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
                Reply::Refused(reason) => Err(RPCError::Network(NetworkError::new(
                    &std::io::Error::other(format!("{}: {reason}", self.channel.addr())),
                ))),
            }
        }
    }

    impl RaftNetwork<TypeConfig> for Peer {
        async fn append_entries(
            &mut self,
            rpc: AppendEntriesRequest<TypeConfig>,
            option: RPCOption,
        ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
            self.send(Call::AppendEntries(rpc), option.soft_ttl()).await
        }

        async fn install_snapshot(
            &mut self,
            rpc: InstallSnapshotRequest<TypeConfig>,
            option: RPCOption,
        ) -> Result<
            InstallSnapshotResponse<u64>,
            RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
        > {
            self.send(Call::InstallSnapshot(rpc), option.soft_ttl())
                .await
        }

        async fn vote(
            &mut self,
            rpc: VoteRequest<u64>,
            option: RPCOption,
        ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
            self.send(Call::Vote(rpc), option.soft_ttl()).await
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::meta_store::MemoryStore;
    use crate::metadata::records::{FeatureLevelRecord, MetadataRecord};

    /// An applier that keeps the records it was given, as a log would.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<MetadataRecord>>);

    impl Applier for Recorder {
        fn apply(&self, _index: u64, records: &[MetadataRecord]) {
            self.0.lock().unwrap().extend_from_slice(records);
        }
        fn install(&self, _index: u64, records: &[MetadataRecord]) {
            *self.0.lock().unwrap() = records.to_vec();
        }
        fn snapshot(&self) -> Vec<MetadataRecord> {
            self.0.lock().unwrap().clone()
        }
    }

    fn record(level: i16) -> Vec<MetadataRecord> {
        vec![MetadataRecord::FeatureLevelRecord(FeatureLevelRecord {
            name: format!("f{level}"),
            feature_level: level,
        })]
    }

    fn settings() -> QuorumSettings {
        QuorumSettings {
            node_id: 1,
            cluster_id: "test".into(),
            election_timeout_ms: 100,
            snapshot_max_bytes: 20 * 1024 * 1024,
            snapshot_interval_ms: 0,
            voters: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_restart_loads_the_snapshot_then_replays_the_log_after_it() {
        let store: Arc<dyn MetaStore> = Arc::new(MemoryStore::default());
        let first = Arc::new(Recorder::default());
        let quorum = RaftQuorum::start(&settings(), Arc::clone(&store), first.clone())
            .await
            .unwrap();
        for level in 0..5 {
            quorum.propose(record(level)).await.unwrap();
        }
        quorum.raft.trigger().snapshot().await.unwrap();
        quorum
            .raft
            .wait(Some(Duration::from_secs(5)))
            .metrics(
                |m| m.snapshot.is_some_and(|s| s.index >= 5),
                "snapshot built",
            )
            .await
            .unwrap();
        // Everything up to the snapshot may go from the log; the snapshot replaces it.
        // (A metrics borrow must not live across an await: it would block the core.)
        let snapshot = quorum.raft.metrics().borrow().snapshot.unwrap();
        quorum
            .raft
            .trigger()
            .purge_log(snapshot.index)
            .await
            .unwrap();
        quorum
            .raft
            .wait(Some(Duration::from_secs(5)))
            .purged(Some(snapshot), "purged")
            .await
            .unwrap();
        for level in 5..8 {
            quorum.propose(record(level)).await.unwrap();
        }
        quorum.shutdown().await;
        assert!(
            store.scan_prefix("raft/log/").unwrap().len() < 8,
            "the log was purged below the snapshot"
        );

        let second = Arc::new(Recorder::default());
        let quorum = RaftQuorum::start(&settings(), Arc::clone(&store), second.clone())
            .await
            .unwrap();
        assert_eq!(
            *second.0.lock().unwrap(),
            (0..8).flat_map(record).collect::<Vec<_>>(),
            "the snapshot and the log after it"
        );
        quorum.propose(record(8)).await.unwrap();
        assert_eq!(second.0.lock().unwrap().len(), 9, "and the quorum goes on");
        quorum.shutdown().await;
    }
}
