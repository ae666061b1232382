//! The composition root: builds the subsystems from the config, in dependency order, and
//! shuts them down cleanly.
//!
//! Start-up takes the log directory's `.lock`, notes whether the last shutdown was clean
//! (Kafka's `.kafka_cleanshutdown` marker), opens the metadata store and loads topics.
//! A clean shutdown fsyncs every log, checkpoints producer state and writes the marker back.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::BrokerConfig;
use crate::group::{GroupConfig, GroupCoordinator};
use crate::meta_properties::{self, IdentityError, MetaProperties};
use crate::meta_store::rocks::RocksStore;
use crate::meta_store::MetaStore;
use crate::metadata::Controller;
use crate::replication::fetch_session::FetchSessionCache;
use crate::replication::ReplicaManager;
use crate::Clock;

const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
const LOCK_FILE: &str = ".lock";
const META_STORE_DIR: &str = "__weir_meta";
/// The metadata store's record of the cluster id (read by the controller too).
const CLUSTER_ID_KEY: &str = "cluster/id";

/// Everything a request handler can reach.
pub struct Broker {
    pub config: Arc<BrokerConfig>,
    pub clock: Clock,
    pub replicas: Arc<ReplicaManager>,
    pub controller: Controller,
    pub fetch_sessions: FetchSessionCache,
    pub groups: Arc<GroupCoordinator>,
    _lock: File,
}

impl Broker {
    pub async fn start(config: BrokerConfig) -> anyhow::Result<Arc<Broker>> {
        let config = Arc::new(config);
        let log_dir = config.log_dir.clone();
        std::fs::create_dir_all(&log_dir).map_err(|e| {
            anyhow::anyhow!("cannot create log directory {}: {e}", log_dir.display())
        })?;
        let lock = File::create(log_dir.join(LOCK_FILE))?;
        lock.try_lock().map_err(|_| {
            anyhow::anyhow!(
                "log directory {} is in use by another process",
                log_dir.display()
            )
        })?;
        // Whose data this is, before anything is changed: another node's or another
        // cluster's directory is refused as it is.
        let formatted = MetaProperties::read(&log_dir)?;
        if let Some(props) = &formatted {
            props.check_node(config.node_id, &log_dir)?;
        }
        let store_dir = log_dir.join(META_STORE_DIR);
        let stored = RocksStore::peek(&store_dir, CLUSTER_ID_KEY)?
            .map(|id| String::from_utf8_lossy(&id).into_owned());
        let new_store = stored.is_none();
        let cluster_id = settle_cluster_id(stored, formatted.as_ref(), &log_dir)?;
        let store: Arc<dyn MetaStore> = Arc::new(RocksStore::open(&store_dir)?);
        if new_store {
            store.put(CLUSTER_ID_KEY, cluster_id.as_bytes())?;
        }
        if formatted.is_none() {
            // Formatting on first start (or for a directory from before weir wrote one).
            MetaProperties::new(&cluster_id, config.node_id).write(&log_dir)?;
            tracing::info!(log_dir = %log_dir.display(), cluster_id = %cluster_id, "formatted the log directory");
        }
        let marker = log_dir.join(CLEAN_SHUTDOWN_FILE);
        let clean_shutdown = marker.exists();
        // Kafka's marker records the broker epoch it shut down with (KIP-966): presented
        // when registering again, it tells the controller this is the same broker back.
        let previous_broker_epoch = std::fs::read(&marker)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .and_then(|v| v.get("brokerEpoch").and_then(serde_json::Value::as_i64))
            .unwrap_or(-1);
        if clean_shutdown {
            std::fs::remove_file(&marker)?;
        } else {
            tracing::info!(log_dir = %log_dir.display(), "no clean shutdown marker: recovering segments above each recovery point");
        }
        let clock = Clock;
        let replicas = Arc::new(ReplicaManager::new(
            &log_dir,
            Arc::clone(&store),
            clock.clone(),
            clean_shutdown,
        ));
        let controller = Controller::start(
            Arc::clone(&config),
            Arc::clone(&store),
            Arc::clone(&replicas),
        )
        .await?;
        controller.set_previous_broker_epoch(previous_broker_epoch);
        let groups = GroupCoordinator::start(
            GroupConfig::from_broker(&controller.broker_view()),
            clock.clone(),
            store,
            Arc::clone(&replicas),
            controller.view(),
        )
        .map_err(|e| anyhow::anyhow!("cannot load consumer groups: {e}"))?;
        assert_eq!(
            controller.image().cluster_id,
            cluster_id,
            "the controller serves the directory's cluster id"
        );
        let broker = Arc::new(Broker {
            fetch_sessions: FetchSessionCache::new(
                config.max_incremental_fetch_session_cache_slots,
            ),
            config,
            clock,
            replicas,
            controller,
            groups,
            _lock: lock,
        });
        broker.spawn_flush_scheduler();
        if broker.config.is_cluster() {
            crate::metadata::lifecycle::spawn(Arc::downgrade(&broker));
        }
        let retention_check_ms = broker
            .config
            .get_i64("log.retention.check.interval.ms")
            .unwrap_or(300_000);
        let cleaner_backoff_ms =
            (broker.config.get("log.cleaner.enable") == Some("true")).then(|| {
                broker
                    .config
                    .get_i64("log.cleaner.backoff.ms")
                    .unwrap_or(15_000)
            });
        let producer_expiration_ms = broker
            .config
            .get_i64("producer.id.expiration.ms")
            .unwrap_or(86_400_000);
        let recovery_point_checkpoint_ms = broker
            .config
            .get_i64("log.flush.offset.checkpoint.interval.ms")
            .unwrap_or(60_000);
        broker.replicas.spawn_log_tasks(
            retention_check_ms,
            cleaner_backoff_ms,
            producer_expiration_ms,
            recovery_point_checkpoint_ms,
        );
        Ok(broker)
    }

    /// Kafka's `log.flush.scheduler.interval.ms`: how often `flush.ms` is checked. With
    /// the defaults no time-based flush is configured and no task runs.
    fn spawn_flush_scheduler(self: &Arc<Self>) {
        let interval_ms = match self.config.log_flush_interval_ms {
            Some(ms) => ms
                .min(self.config.log_flush_scheduler_interval_ms)
                .clamp(10, 60_000),
            None if self.config.log_flush_scheduler_interval_ms < i64::MAX => self
                .config
                .log_flush_scheduler_interval_ms
                .clamp(10, 60_000),
            None => return,
        };
        let replicas = Arc::downgrade(&self.replicas);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_millis(interval_ms as u64));
            loop {
                ticker.tick().await;
                let Some(replicas) = replicas.upgrade() else {
                    break;
                };
                replicas.flush_due_partitions();
            }
        });
    }

    /// Flushes and closes every log, then leaves the clean shutdown marker.
    pub async fn shutdown(&self) {
        self.controller.shutdown().await;
        if !self.replicas.is_opened() {
            tracing::info!("stopped before the partitions were opened: no clean shutdown marker");
            return;
        }
        if !self.replicas.shutdown().await {
            tracing::error!("the log directory is offline: no clean shutdown marker");
            return;
        }
        let marker = self.config.log_dir.join(CLEAN_SHUTDOWN_FILE);
        let contents = format!(
            "{{\"version\":0,\"brokerEpoch\":{}}}",
            self.controller.broker_epoch()
        );
        if let Err(e) = std::fs::write(&marker, contents) {
            tracing::warn!(error = %e, "could not write the clean shutdown marker");
        }
        tracing::info!("logs flushed and closed");
    }
}

impl AsRef<Controller> for Broker {
    fn as_ref(&self) -> &Controller {
        &self.controller
    }
}

/// The cluster id this node serves: the metadata store's, which must be the one the
/// directory was formatted with; for a new store the formatted one, else `CLUSTER_ID` from
/// the environment (as Kafka's container images take it), else a new one. Decided before
/// anything is written.
fn settle_cluster_id(
    stored: Option<String>,
    formatted: Option<&MetaProperties>,
    log_dir: &Path,
) -> anyhow::Result<String> {
    match (stored, formatted) {
        (Some(stored), Some(props)) if stored != props.cluster_id => {
            Err(IdentityError::ClusterId {
                path: log_dir.join(meta_properties::FILE_NAME),
                expected: stored,
                read: props.cluster_id.clone(),
            }
            .into())
        }
        (Some(stored), _) => Ok(stored),
        (None, Some(props)) => Ok(props.cluster_id.clone()),
        (None, None) => match std::env::var("CLUSTER_ID") {
            Ok(id) => {
                meta_properties::check_cluster_id(&id)
                    .map_err(|reason| anyhow::anyhow!("CLUSTER_ID: {reason}"))?;
                Ok(id)
            }
            Err(_) => Ok(meta_properties::random_id()),
        },
    }
}
