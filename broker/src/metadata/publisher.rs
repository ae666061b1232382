//! The node's view of committed metadata, and the publisher that acts on each change.
//!
//! The quorum hands every committed batch to [`MetadataView::apply`]: the records are
//! replayed into a delta over the current image, the publisher opens, grows, reconfigures or
//! removes the partitions this node hosts, and only then is the new image swapped in, so a
//! client that sees a topic in Metadata finds its partitions open.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::image::{MetadataDelta, MetadataImage, TopicImage};
use super::quorum::Applier;
use super::records::MetadataRecord;
use crate::config::BrokerConfig;
use crate::log::TopicConfig;
use crate::replication::ReplicaManager;
use crate::sync::{MutexExt, RwLockExt};

pub struct MetadataView {
    node_id: i32,
    /// The static config (files, environment, arguments).
    config: Arc<BrokerConfig>,
    replicas: Arc<ReplicaManager>,
    image: RwLock<Arc<MetadataImage>>,
    /// The static config with the dynamic broker configs of the image laid over it.
    effective: RwLock<Arc<BrokerConfig>>,
    /// While the node starts, committed records rebuild the image only: replaying a
    /// log's history of creates and deletes against the disk would redo (and undo) what
    /// was done before. [`MetadataView::finish_replay`] then publishes the result once.
    replaying: AtomicBool,
    /// Orders applying batches with the end of the replay.
    applying: Mutex<()>,
}

impl MetadataView {
    pub fn new(
        config: Arc<BrokerConfig>,
        replicas: Arc<ReplicaManager>,
        image: MetadataImage,
    ) -> MetadataView {
        MetadataView {
            node_id: config.node_id,
            effective: RwLock::new(Arc::clone(&config)),
            config,
            replicas,
            image: RwLock::new(Arc::new(image)),
            replaying: AtomicBool::new(true),
            applying: Mutex::new(()),
        }
    }

    /// Ends the start-up replay: opens every partition of the image as it now stands and
    /// applies its dynamic configs. Later batches publish as they are applied.
    pub fn finish_replay(&self) {
        let _applying = self.applying.lock_or_recover();
        if !self.replaying.load(Ordering::Acquire) {
            return;
        }
        let image = self.image();
        let delta = MetadataDelta {
            grown: image.topics.values().map(|t| t.id).collect(),
            broker_configs: true,
            ..MetadataDelta::default()
        };
        self.publish(MetadataImage::clone(&image), delta);
        self.replicas.set_opened();
        self.replaying.store(false, Ordering::Release);
    }

    /// Sets aside partition directories no topic of the image owns. Only once the image
    /// is complete: after the start-up replay and any migration of an older store.
    pub fn set_aside_strays(&self) {
        // Not while a batch opens partitions: a directory being created is not a stray.
        let _applying = self.applying.lock_or_recover();
        assert!(
            self.is_published(),
            "strays are judged against the published image"
        );
        self.replicas.quarantine_strays();
    }

    /// Whether the start-up replay has been published (the partitions are open).
    pub fn is_published(&self) -> bool {
        !self.replaying.load(Ordering::Acquire)
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.image.read_or_recover())
    }

    pub fn broker_view(&self) -> Arc<BrokerConfig> {
        Arc::clone(&self.effective.read_or_recover())
    }

    /// The effective config for an image's dynamic broker configs: the cluster default
    /// ("") under this node's own.
    fn effective_for(&self, image: &MetadataImage) -> BrokerConfig {
        self.config.with_dynamic(
            &image.broker_config(""),
            &image.broker_config(&self.node_id.to_string()),
        )
    }

    /// The partitions of a topic this node holds a replica of. A lone node holds all: its
    /// records may name another node id only if they came from an older store.
    fn hosted_indexes(&self, topic: &TopicImage) -> Vec<i32> {
        (0..topic.partitions)
            .filter(|&i| {
                !self.config.is_cluster()
                    || topic
                        .partition_states
                        .get(i as usize)
                        .is_some_and(|p| p.replicas.contains(&self.node_id))
            })
            .collect()
    }

    fn publish(&self, next: MetadataImage, delta: MetadataDelta) {
        if delta.broker_configs {
            *self.effective.write_or_recover() = Arc::new(self.effective_for(&next));
            tracing::info!("dynamic broker configs changed");
        }
        let effective = self.broker_view();
        let resolve = |topic: &TopicImage| TopicConfig::resolve(&effective, topic.configs.clone());
        for removed in &delta.removed {
            let delay =
                TopicConfig::effective(&effective, &removed.configs, "file.delete.delay.ms")
                    .and_then(|(v, _)| v.parse().ok())
                    .unwrap_or(60_000);
            self.replicas.remove_topic(&removed.name, removed.id, delay);
            tracing::info!(topic = %removed.name, "deleted topic");
        }
        let mut created = std::collections::BTreeSet::new();
        for id in &delta.grown {
            let topic = next.topic_by_id(id).expect("grown topics are in the image");
            let indexes = self.hosted_indexes(topic);
            let before = self.replicas.topic(&topic.name).map_or(0, |p| p.len());
            match self
                .replicas
                .host_topic(&topic.name, topic.id, &indexes, &resolve(topic))
            {
                Ok(opened) => {
                    // A topic new to this node gets its configs as it opens.
                    if before == 0 {
                        created.insert(*id);
                    }
                    if opened > 0 {
                        let what = if before == 0 {
                            "created topic"
                        } else {
                            "added partitions"
                        };
                        tracing::info!(topic = %topic.name, partitions = topic.partitions, hosted = ?indexes, "{what}");
                    }
                }
                // The metadata is committed; this node cannot serve the partitions.
                Err(e) => {
                    tracing::error!(topic = %topic.name, error = %e, "cannot open the partitions of a topic")
                }
            }
        }
        if delta.broker_configs {
            for topic in next.topics.values() {
                self.replicas.reconfigure(&topic.name, &resolve(topic));
            }
        } else {
            for id in delta.reconfigured.difference(&created) {
                let topic = next
                    .topic_by_id(id)
                    .expect("reconfigured topics are in the image");
                self.replicas.reconfigure(&topic.name, &resolve(topic));
                tracing::info!(topic = %topic.name, "topic configs changed");
            }
        }
        *self.image.write_or_recover() = Arc::new(next);
    }
}

impl Applier for MetadataView {
    fn apply(&self, index: u64, records: &[MetadataRecord]) {
        let _applying = self.applying.lock_or_recover();
        let mut next = MetadataImage::clone(&self.image());
        let mut delta = MetadataDelta::default();
        for record in records {
            next.replay(record, index, &mut delta);
        }
        assert!(index >= next.offset, "batches apply in log order");
        next.offset = index;
        if self.replaying.load(Ordering::Acquire) || records.is_empty() {
            *self.image.write_or_recover() = Arc::new(next);
            return;
        }
        self.publish(next, delta);
    }

    fn install(&self, index: u64, records: &[MetadataRecord]) {
        let _applying = self.applying.lock_or_recover();
        let current = self.image();
        let mut next = MetadataImage {
            cluster_id: current.cluster_id.clone(),
            controller_id: current.controller_id,
            brokers: current.brokers.clone(),
            listener_name: current.listener_name.clone(),
            ..MetadataImage::default()
        };
        let mut delta = MetadataDelta::default();
        for record in records {
            next.replay(record, index, &mut delta);
        }
        // A snapshot is the log up to its index, records or not.
        next.offset = index;
        if self.replaying.load(Ordering::Acquire) {
            *self.image.write_or_recover() = Arc::new(next);
            return;
        }
        for topic in current.topics.values() {
            if next.topic_by_id(&topic.id).is_none() {
                delta.removed.push(Arc::clone(topic));
            }
        }
        delta.broker_configs = true;
        self.publish(next, delta);
    }

    fn snapshot(&self) -> Vec<MetadataRecord> {
        self.image().to_records()
    }
}

impl crate::group::consumer::TopicCatalog for MetadataView {
    fn topics(&self) -> Vec<(String, uuid::Uuid, i32)> {
        self.image()
            .topics
            .values()
            .map(|t| (t.name.clone(), t.id, t.partitions))
            .collect()
    }

    fn partition_count(&self, topic: &str) -> Option<i32> {
        self.image().topic(topic).map(|t| t.partitions)
    }
}
