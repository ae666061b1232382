//! The health of the log directory, Kafka's `LogDirFailureChannel` for one directory.
//!
//! The first storage error that leaves the directory's state on disk in doubt (a write or
//! fsync that failed, a file that could not be cut back) takes the directory offline for
//! good: from then on its partitions answer KAFKA_STORAGE_ERROR, no flush completes and so
//! no write waiting for one is acknowledged. On Linux a failed fsync may have dropped the
//! dirty pages it could not write, and a later fsync can succeed without them, which is why
//! nothing after the failure may count as durable. This broker has one directory, so an
//! offline directory stops the broker (the composition root watches [`LogDirHealth::offline`]),
//! as Kafka halts when its last directory fails. A full disk is not such an error: the
//! failed append is cut back and refused, and the directory stays online.

use std::path::{Path, PathBuf};

use tokio::sync::watch;

use crate::log::LogError;

pub struct LogDirHealth {
    dir: PathBuf,
    offline: watch::Sender<bool>,
}

impl LogDirHealth {
    pub fn new(dir: &Path) -> LogDirHealth {
        LogDirHealth {
            dir: dir.to_path_buf(),
            offline: watch::Sender::new(false),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn is_offline(&self) -> bool {
        *self.offline.borrow()
    }

    /// The error every partition of an offline directory answers with.
    pub fn offline_error(&self) -> LogError {
        LogError::DirOffline {
            dir: self.dir.display().to_string(),
        }
    }

    /// Ok while the directory is online.
    pub fn check(&self) -> Result<(), LogError> {
        if self.is_offline() {
            return Err(self.offline_error());
        }
        Ok(())
    }

    /// Takes the directory offline if `error` is a storage failure; returns the error.
    pub fn note(&self, error: LogError) -> LogError {
        if error.is_storage_failure() {
            self.fail(&error);
        }
        error
    }

    /// Takes the directory offline, logging the cause once.
    pub fn fail(&self, cause: &dyn std::fmt::Display) {
        let newly = self
            .offline
            .send_if_modified(|offline| !std::mem::replace(offline, true));
        if newly {
            tracing::error!(
                dir = %self.dir.display(),
                error = %cause,
                "log directory failed: its partitions are offline"
            );
        }
    }

    /// Resolves once the directory is offline.
    pub async fn offline(&self) {
        let mut offline = self.offline.subscribe();
        let _ = offline.wait_for(|o| *o).await;
    }
}
