//! A broker's life in a cluster, as Kafka's `BrokerLifecycleManager`: it registers with the
//! active controller (BrokerRegistration), then heartbeats every
//! `broker.heartbeat.interval.ms` (BrokerHeartbeat) so that it is unfenced once it has
//! caught up with the metadata log, and asks for a controlled shutdown when it stops. On
//! the active controller a second task fences brokers whose heartbeats stopped for
//! `broker.session.timeout.ms`.
//!
//! Every call goes through the active controller's controller listener, this node's own
//! included, so there is one path for all of them.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Weak;
use std::time::Duration;

use kafka_protocol::messages::broker_registration_request::Listener;
use kafka_protocol::messages::{
    ApiKey, BrokerHeartbeatRequest, BrokerId, BrokerRegistrationRequest, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::Controller;
use crate::config::BrokerConfig;
use crate::protocol::ErrorCode;

/// This broker's registration: its incarnation and the epoch the controller gave it.
pub struct Lifecycle {
    incarnation_id: Uuid,
    epoch: AtomicI64,
    /// The epoch this broker had when it last shut down cleanly (-1: none).
    previous_epoch: AtomicI64,
    /// Set once the broker asked for a controlled shutdown: later heartbeats keep asking.
    shutting_down: AtomicBool,
}

impl Lifecycle {
    /// The broker epoch the controller gave this broker, or -1 before it registered.
    pub fn epoch(&self) -> i64 {
        self.epoch.load(Ordering::Acquire)
    }
}

impl Default for Lifecycle {
    fn default() -> Lifecycle {
        Lifecycle {
            incarnation_id: Uuid::new_v4(),
            epoch: AtomicI64::new(-1),
            previous_epoch: AtomicI64::new(-1),
            shutting_down: AtomicBool::new(false),
        }
    }
}

fn registration(
    config: &BrokerConfig,
    incarnation_id: Uuid,
    previous_epoch: i64,
    cluster_id: &str,
) -> RequestKind {
    let listeners = config
        .client_endpoints()
        .map(|l| {
            Listener::default()
                .with_name(StrBytes::from_string(l.name))
                .with_host(StrBytes::from_string(l.host))
                .with_port(l.port)
                .with_security_protocol(0)
        })
        .collect();
    RequestKind::BrokerRegistration(
        BrokerRegistrationRequest::default()
            .with_broker_id(BrokerId(config.node_id))
            .with_cluster_id(StrBytes::from_string(cluster_id.to_string()))
            .with_incarnation_id(incarnation_id)
            .with_listeners(listeners)
            .with_rack(
                config
                    .get("broker.rack")
                    .map(|r| StrBytes::from_string(r.to_string())),
            )
            .with_previous_broker_epoch(previous_epoch),
    )
}

impl Controller {
    /// The broker epoch of the registration this broker holds (-1: none).
    pub fn broker_epoch(&self) -> i64 {
        self.lifecycle.epoch()
    }

    /// The epoch recorded by this broker's last clean shutdown.
    pub fn set_previous_broker_epoch(&self, epoch: i64) {
        self.lifecycle
            .previous_epoch
            .store(epoch, Ordering::Release);
    }

    /// Registers, then heartbeats, until the broker is gone.
    async fn heartbeat_once(&self, want_shut_down: bool) -> Option<bool> {
        let lifecycle = &self.lifecycle;
        let want_shut_down = want_shut_down || lifecycle.shutting_down.load(Ordering::Acquire);
        let epoch = lifecycle.epoch.load(Ordering::Acquire);
        if epoch < 0 {
            let request = registration(
                &self.config,
                lifecycle.incarnation_id,
                lifecycle.previous_epoch.load(Ordering::Acquire),
                &self.image().cluster_id,
            );
            match self
                .call_controller(ApiKey::BrokerRegistration, 4, &request)
                .await
            {
                Ok(ResponseKind::BrokerRegistration(r)) if r.error_code == 0 => {
                    lifecycle.epoch.store(r.broker_epoch, Ordering::Release);
                    tracing::info!(
                        epoch = r.broker_epoch,
                        "registered with the active controller"
                    );
                }
                Ok(ResponseKind::BrokerRegistration(r)) => {
                    tracing::info!(
                        error_code = r.error_code,
                        "the controller refused the registration; retrying"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "cannot register yet"),
            }
            return None;
        }
        let request = RequestKind::BrokerHeartbeat(
            BrokerHeartbeatRequest::default()
                .with_broker_id(BrokerId(self.config.node_id))
                .with_broker_epoch(epoch)
                // Caught up only once the partitions of the image are open.
                .with_current_metadata_offset(if self.view.is_published() {
                    self.image().offset as i64
                } else {
                    -1
                })
                .with_want_fence(false)
                .with_want_shut_down(want_shut_down),
        );
        match self
            .call_controller(ApiKey::BrokerHeartbeat, 1, &request)
            .await
        {
            Ok(ResponseKind::BrokerHeartbeat(r)) if r.error_code == 0 => Some(r.should_shut_down),
            Ok(ResponseKind::BrokerHeartbeat(r))
                if r.error_code == ErrorCode::StaleBrokerEpoch.code()
                    || r.error_code == ErrorCode::BrokerIdNotRegistered.code() =>
            {
                tracing::info!(
                    epoch,
                    "the controller no longer knows this registration; registering again"
                );
                lifecycle.epoch.store(-1, Ordering::Release);
                None
            }
            Ok(_) | Err(_) => None,
        }
    }

    /// In a cluster, asks the active controller for a controlled shutdown and waits for
    /// its consent, half a session at most: past that it fences this broker anyway.
    pub async fn controlled_shutdown(&self) {
        let timeout =
            (self.session_timeout() / 2).clamp(Duration::from_millis(50), Duration::from_secs(5));
        if !self.is_cluster() || self.lifecycle.epoch.load(Ordering::Acquire) < 0 {
            return;
        }
        self.lifecycle.shutting_down.store(true, Ordering::Release);
        let asked = tokio::time::timeout(timeout, async {
            loop {
                if self.heartbeat_once(true).await == Some(true) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        match asked {
            Ok(()) => tracing::info!("the controller agreed to a controlled shutdown"),
            Err(_) => {
                tracing::warn!("no answer to the controlled shutdown request; stopping anyway")
            }
        }
    }
}

/// Runs the broker's registration and heartbeats, and the active controller's fencing of
/// stale brokers, while the controller lives.
pub fn spawn(controller: Weak<impl AsRef<Controller> + Send + Sync + 'static>) {
    let Some((is_broker, is_controller)) = controller.upgrade().map(|owner| {
        let config = &owner.as_ref().as_ref().config;
        (config.is_broker, config.is_controller)
    }) else {
        return;
    };
    let heartbeats = controller.clone();
    // A broker registers and heartbeats; a controller fences brokers that stop.
    if is_broker {
        spawn_heartbeats(heartbeats);
    }
    if is_controller {
        spawn_fencing(controller);
    }
}

fn spawn_heartbeats(heartbeats: Weak<impl AsRef<Controller> + Send + Sync + 'static>) {
    tokio::spawn(async move {
        loop {
            let interval = {
                let Some(owner) = heartbeats.upgrade() else {
                    return;
                };
                let controller = owner.as_ref().as_ref();
                controller.heartbeat_once(false).await;
                controller
                    .config
                    .get_i64("broker.heartbeat.interval.ms")
                    .unwrap_or(2_000)
                    .max(10) as u64
            };
            tokio::time::sleep(Duration::from_millis(interval)).await;
        }
    });
}

fn spawn_fencing(controller: Weak<impl AsRef<Controller> + Send + Sync + 'static>) {
    tokio::spawn(async move {
        let mut leading_since = None;
        loop {
            {
                let Some(owner) = controller.upgrade() else {
                    return;
                };
                owner
                    .as_ref()
                    .as_ref()
                    .fence_stale_brokers(&mut leading_since)
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}
