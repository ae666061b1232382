//! A broker-only node (`process.roles=broker`): it follows the metadata log without
//! voting, as Kafka's brokers are observers of the KRaft quorum.
//!
//! Kafka's observers fetch the committed log from the controllers; so does this one. It
//! asks a voter, over the voter's controller listener, for the committed batches after the
//! last one it applied ([`OBSERVER_FETCH_API_KEY`], never advertised). A voter answers
//! with the batches it has applied, waiting a moment for new ones when there are none
//! (a long poll), or with a snapshot of its image when the log no longer reaches back that
//! far. The observer keeps nothing on disk: after a restart it fetches the image again,
//! which the controllers hold.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Applier, Quorum, QuorumError, QuorumState};
use crate::channel::Channel;
use crate::metadata::records::MetadataRecord;
use crate::sync::MutexExt;

/// The request api key of an observer's fetch, on a voter's controller listener.
pub const OBSERVER_FETCH_API_KEY: i16 = 10_001;

/// How long a voter holds a fetch that finds nothing new.
pub const LONG_POLL: Duration = Duration::from_millis(500);

/// At most this many batches in one answer.
pub const MAX_BATCHES: usize = 1_000;

#[derive(Debug, Serialize, Deserialize)]
pub struct FetchRequest {
    pub cluster_id: String,
    /// The index of the first batch wanted.
    pub from: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct FetchResponse {
    /// Why the voter refused (another cluster): nothing else is set.
    pub refused: Option<String>,
    /// The active controller as the voter knows it.
    pub leader: Option<i32>,
    /// The index of the last batch the voter has applied.
    pub applied: u64,
    /// The voter's image at an index, when `from` is no longer in its log.
    pub snapshot: Option<(u64, Vec<MetadataRecord>)>,
    /// Committed batches by index, from `from` (empty batches are the quorum's own).
    pub batches: Vec<(u64, Vec<MetadataRecord>)>,
    /// The voters (id, controller listener address), for a broker that was given only
    /// bootstrap servers.
    #[serde(default)]
    pub voters: Vec<(i32, String)>,
}

/// The quorum as a broker-only node sees it.
pub struct ObserverQuorum {
    state: Arc<Mutex<QuorumState>>,
    ready: watch::Receiver<bool>,
    stop: CancellationToken,
}

impl ObserverQuorum {
    /// Starts following the log of the voters (`id`, controller listener address); with
    /// bootstrap servers only, their ids are learned from the first answer.
    pub fn start(
        cluster_id: String,
        voters: Vec<(i32, String)>,
        applier: Arc<dyn Applier>,
    ) -> ObserverQuorum {
        let state = Arc::new(Mutex::new(QuorumState::default()));
        let (ready_tx, ready) = watch::channel(false);
        let stop = CancellationToken::new();
        let follower = Follower {
            cluster_id,
            voters,
            applier,
            state: Arc::clone(&state),
            ready: ready_tx,
            channels: HashMap::new(),
            next: 0,
        };
        let stopped = stop.clone();
        tokio::spawn(async move {
            use futures::FutureExt;
            tokio::select! {
                result = std::panic::AssertUnwindSafe(follower.run()).catch_unwind() => {
                    if result.is_err() {
                        // A broker that can no longer follow the metadata would serve a
                        // stale view: it stops, and a restart fetches the image again.
                        tracing::error!("following the metadata log failed: stopping");
                        std::process::exit(1);
                    }
                }
                _ = stopped.cancelled() => {}
            }
        });
        ObserverQuorum { state, ready, stop }
    }
}

struct Follower {
    cluster_id: String,
    voters: Vec<(i32, String)>,
    applier: Arc<dyn Applier>,
    state: Arc<Mutex<QuorumState>>,
    ready: watch::Sender<bool>,
    channels: HashMap<i32, Channel>,
    /// The index of the next batch to apply.
    next: u64,
}

impl Follower {
    async fn run(mut self) {
        let mut turn = 0usize;
        loop {
            // The active controller if known (its log is the freshest), else each voter
            // in turn.
            let known = self.state.lock_or_recover().leader;
            let voter = known
                .and_then(|l| self.voters.iter().position(|(id, _)| *id == l))
                .unwrap_or(turn % self.voters.len().max(1));
            let Some((id, address)) = self.voters.get(voter).cloned() else {
                return;
            };
            match self.fetch(id, &address).await {
                Ok(progress) => {
                    // A voter that knows no leader (cut off, electing) may be behind: the
                    // others are asked in turn.
                    if self.state.lock_or_recover().leader.is_none() && !progress {
                        turn = voter + 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                Err(e) => {
                    tracing::debug!(voter = id, error = %e, "cannot fetch the metadata log");
                    self.state.lock_or_recover().leader = None;
                    turn = voter + 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// One fetch from a voter; whether it brought anything new.
    async fn fetch(&mut self, id: i32, address: &str) -> Result<bool, String> {
        let body = serde_json::to_vec(&FetchRequest {
            cluster_id: self.cluster_id.clone(),
            from: self.next,
        })
        .expect("fetch requests serialize");
        let channel = self
            .channels
            .entry(id)
            .or_insert_with(|| Channel::new(address.to_string(), "weir-observer"));
        let answer = channel
            .call_raw(OBSERVER_FETCH_API_KEY, 0, &body, LONG_POLL * 4)
            .await
            .map_err(|e| e.to_string())?;
        let response: FetchResponse =
            serde_json::from_slice(&answer).map_err(|e| format!("unreadable answer: {e}"))?;
        if let Some(reason) = response.refused {
            tracing::warn!(voter = id, reason = %reason, "a voter refused to serve the metadata log");
            tokio::time::sleep(Duration::from_secs(1)).await;
            return Err(reason);
        }
        if !response.voters.is_empty() && response.voters != self.voters {
            self.voters = response.voters.clone();
            self.channels.clear();
            self.state.lock_or_recover().addresses = response.voters.clone();
        }
        let before = self.next;
        if let Some((index, records)) = &response.snapshot {
            if index + 1 < self.next {
                // Older than what this node has: never applied backwards.
                return Err(format!("a snapshot at {index}, behind {}", self.next));
            }
            self.applier.install(*index, records);
            self.next = index + 1;
            tracing::info!(index, voter = id, "installed a metadata snapshot");
        }
        for (index, records) in &response.batches {
            if *index < self.next {
                continue;
            }
            assert_eq!(*index, self.next, "committed batches are fetched in order");
            self.applier.apply(*index, records);
            self.next = index + 1;
        }
        {
            let mut state = self.state.lock_or_recover();
            state.leader = response.leader;
            state.high_watermark = self.next;
            state.log_end = self.next;
        }
        // Caught up with the leader itself, not with a voter that may be behind it.
        if self.next > response.applied && response.leader == Some(id) && !*self.ready.borrow() {
            let _ = self.ready.send(true);
        }
        Ok(self.next > before)
    }
}

impl Quorum for ObserverQuorum {
    fn propose(&self, _: Vec<MetadataRecord>) -> BoxFuture<'_, Result<u64, QuorumError>> {
        Box::pin(async { Err(QuorumError::NotLeader) })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        self.stop.cancel();
        Box::pin(async {})
    }

    fn handle_rpc(&self, _: bytes::Bytes) -> BoxFuture<'_, Vec<u8>> {
        Box::pin(async { Vec::new() })
    }

    fn state(&self) -> QuorumState {
        self.state.lock_or_recover().clone()
    }

    fn wait_ready(&self) -> BoxFuture<'_, ()> {
        let mut ready = self.ready.clone();
        Box::pin(async move {
            let _ = ready.wait_for(|r| *r).await;
        })
    }

    fn linearize(&self) -> BoxFuture<'_, Result<(), QuorumError>> {
        Box::pin(async { Err(QuorumError::NotLeader) })
    }
}
