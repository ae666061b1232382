//! The metadata quorum: commits batches of metadata records through Raft (openraft, pinned)
//! and hands each committed batch, in log order, to an [`Applier`] on every node.
//!
//! The rest of the broker sees only the [`Quorum`] trait, so the consensus library can be
//! swapped in this module alone. The log, the vote and snapshots live in the broker's
//! RocksDB metadata store ([`store`]). A single node is a quorum of one voter, which
//! elects itself at once and needs no network.

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
}

/// Settings of the quorum, from Kafka's `controller.quorum.*` keys.
#[derive(Debug, Clone)]
pub struct QuorumSettings {
    pub node_id: i32,
    pub cluster_id: String,
    /// `controller.quorum.election.timeout.ms`.
    pub election_timeout_ms: u64,
}

/// The openraft implementation of [`Quorum`].
pub struct RaftQuorum {
    raft: Raft<TypeConfig>,
}

impl RaftQuorum {
    /// Opens the quorum's state in `store`, replays the committed log into `applier` and
    /// returns once this node leads with everything committed applied. With one voter
    /// that is at once.
    pub async fn start_single(
        settings: &QuorumSettings,
        store: Arc<dyn MetaStore>,
        applier: Arc<dyn Applier>,
    ) -> anyhow::Result<RaftQuorum> {
        let election = settings.election_timeout_ms.max(10);
        let config = Config {
            cluster_name: settings.cluster_id.clone(),
            election_timeout_min: election,
            election_timeout_max: election * 2,
            heartbeat_interval: (election / 5).max(1),
            // A snapshot every 10,000 batches, and the log after it kept generously, so
            // that purging never races applying (openraft#2116).
            snapshot_policy: SnapshotPolicy::LogsSinceLast(10_000),
            max_in_snapshot_log_to_keep: 1_000,
            ..Config::default()
        }
        .validate()
        .map_err(|e| anyhow::anyhow!("metadata quorum settings: {e}"))?;
        let node_id = settings.node_id as u64;
        let log = store::LogStore::new(Arc::clone(&store));
        let machine = store::StateMachine::open(store, applier)?;
        let raft = Raft::new(
            node_id,
            Arc::new(config),
            network::Unconnected,
            log,
            machine,
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot start the metadata quorum: {e}"))?;
        if !raft.is_initialized().await? {
            let voters = BTreeMap::from([(node_id, BasicNode::new("local"))]);
            raft.initialize(voters)
                .await
                .map_err(|e| anyhow::anyhow!("cannot form the metadata quorum: {e}"))?;
        }
        let wait = Duration::from_millis(election * 10 + 5_000);
        let metrics = raft
            .wait(Some(wait))
            .current_leader(node_id, "the single voter leads")
            .await
            .map_err(|e| anyhow::anyhow!("the metadata quorum elected no leader: {e}"))?;
        raft.wait(Some(wait))
            .applied_index_at_least(metrics.last_log_index, "the committed log is applied")
            .await
            .map_err(|e| anyhow::anyhow!("the metadata log was not applied: {e}"))?;
        watch_for_fatal_errors(&raft);
        Ok(RaftQuorum { raft })
    }
}

/// A consensus core that fails stops the process: a restart replays the durable log,
/// while a broker with a dead quorum would serve metadata no one can change.
fn watch_for_fatal_errors(raft: &Raft<TypeConfig>) {
    let mut metrics = raft.metrics();
    tokio::spawn(async move {
        while metrics.changed().await.is_ok() {
            let failed = match &metrics.borrow().running_state {
                Err(openraft::error::Fatal::Stopped) | Ok(()) => None,
                Err(e) => Some(e.to_string()),
            };
            if let Some(e) = failed {
                tracing::error!(error = %e, "the metadata quorum failed; stopping");
                std::process::exit(1);
            }
        }
    });
}

impl Quorum for RaftQuorum {
    fn propose(&self, records: Vec<MetadataRecord>) -> BoxFuture<'_, Result<u64, QuorumError>> {
        Box::pin(async move {
            match self.raft.client_write(MetadataBatch { records }).await {
                Ok(response) => Ok(response.log_id.index),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                    Err(QuorumError::NotLeader)
                }
                Err(e) => Err(QuorumError::Failed(e.to_string())),
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
}

mod network {
    //! The transport between voters. A single voter never sends anything.

    use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
    use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
    use openraft::raft::{
        AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest,
        InstallSnapshotResponse, VoteRequest, VoteResponse,
    };
    use openraft::BasicNode;

    use super::TypeConfig;

    type Error<E = openraft::error::Infallible> = RPCError<u64, BasicNode, RaftError<u64, E>>;

    fn unreachable<E: std::error::Error>() -> RPCError<u64, BasicNode, E> {
        RPCError::Unreachable(Unreachable::new(&std::io::Error::other(
            "this node has no other voters to reach",
        )))
    }

    pub struct Unconnected;

    impl RaftNetworkFactory<TypeConfig> for Unconnected {
        type Network = Unconnected;

        async fn new_client(&mut self, _target: u64, _node: &BasicNode) -> Unconnected {
            Unconnected
        }
    }

    impl RaftNetwork<TypeConfig> for Unconnected {
        async fn append_entries(
            &mut self,
            _rpc: AppendEntriesRequest<TypeConfig>,
            _option: RPCOption,
        ) -> Result<AppendEntriesResponse<u64>, Error> {
            Err(unreachable())
        }

        async fn install_snapshot(
            &mut self,
            _rpc: InstallSnapshotRequest<TypeConfig>,
            _option: RPCOption,
        ) -> Result<InstallSnapshotResponse<u64>, Error<InstallSnapshotError>> {
            Err(unreachable())
        }

        async fn vote(
            &mut self,
            _rpc: VoteRequest<u64>,
            _option: RPCOption,
        ) -> Result<VoteResponse<u64>, Error> {
            Err(unreachable())
        }
    }
}
