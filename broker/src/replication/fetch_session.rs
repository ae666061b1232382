//! Incremental fetch sessions (KIP-227).
//!
//! A client that opens a session (session id 0, epoch 0) sends its whole partition list
//! once; afterwards it sends only partitions whose fetch position changed, plus the ones it
//! forgets, and the broker answers only partitions with news: records, a moved high
//! watermark, last stable offset or log start offset, or an error. The cache is bounded by
//! `max.incremental.fetch.session.cache.slots`; when it is full the least recently used
//! session is evicted and its client falls back to a full fetch on its next request.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use crate::protocol::ErrorCode;
use crate::sync::MutexExt;

/// The epoch a client sends to close its session (or to fetch without one).
pub const FINAL_EPOCH: i32 = -1;
const INITIAL_EPOCH: i32 = 0;

/// One partition a fetch reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchTarget {
    pub topic: Arc<str>,
    pub topic_id: Uuid,
    pub partition: i32,
    pub fetch_offset: i64,
    pub max_bytes: i32,
}

/// What a response last told the client about a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PartitionView {
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
}

#[derive(Debug)]
struct CachedPartition {
    target: FetchTarget,
    last_view: Option<PartitionView>,
}

#[derive(Debug)]
struct Session {
    next_epoch: i32,
    partitions: BTreeMap<(Arc<str>, i32), CachedPartition>,
    last_used_ms: i64,
}

/// The session a fetch runs in, as decided by [`FetchSessionCache::begin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionContext {
    /// The session id to answer with (0: no session).
    pub session_id: i32,
    /// Whether unchanged partitions are left out of the response.
    pub incremental: bool,
    pub targets: Vec<FetchTarget>,
}

pub struct FetchSessionCache {
    slots: usize,
    sessions: Mutex<HashMap<i32, Session>>,
    next_id: Mutex<i32>,
}

impl FetchSessionCache {
    pub fn new(slots: usize) -> FetchSessionCache {
        FetchSessionCache {
            slots,
            sessions: Mutex::new(HashMap::new()),
            next_id: Mutex::new(1),
        }
    }

    /// Resolves a request's session fields against the cache.
    pub fn begin(
        &self,
        session_id: i32,
        epoch: i32,
        updates: Vec<FetchTarget>,
        forgotten: Vec<(Arc<str>, i32)>,
        now_ms: i64,
    ) -> Result<SessionContext, ErrorCode> {
        let mut sessions = self.sessions.lock_or_recover();
        if epoch == FINAL_EPOCH {
            if session_id != 0 {
                sessions.remove(&session_id);
            }
            return Ok(SessionContext {
                session_id: 0,
                incremental: false,
                targets: updates,
            });
        }
        if session_id == 0 {
            if epoch != INITIAL_EPOCH {
                return Err(ErrorCode::InvalidFetchSessionEpoch);
            }
            let id = self.new_session(&mut sessions, &updates, now_ms);
            return Ok(SessionContext {
                session_id: id,
                incremental: false,
                targets: updates,
            });
        }
        let session = sessions
            .get_mut(&session_id)
            .ok_or(ErrorCode::FetchSessionIdNotFound)?;
        if session.next_epoch != epoch {
            return Err(ErrorCode::InvalidFetchSessionEpoch);
        }
        session.next_epoch = next_epoch(epoch);
        session.last_used_ms = now_ms;
        for key in forgotten {
            session.partitions.remove(&key);
        }
        for target in updates {
            let key = (Arc::clone(&target.topic), target.partition);
            match session.partitions.get_mut(&key) {
                Some(cached) => cached.target = target,
                None => {
                    session.partitions.insert(
                        key,
                        CachedPartition {
                            target,
                            last_view: None,
                        },
                    );
                }
            }
        }
        Ok(SessionContext {
            session_id,
            incremental: true,
            targets: session
                .partitions
                .values()
                .map(|c| c.target.clone())
                .collect(),
        })
    }

    fn new_session(
        &self,
        sessions: &mut HashMap<i32, Session>,
        targets: &[FetchTarget],
        now_ms: i64,
    ) -> i32 {
        if self.slots == 0 {
            return 0;
        }
        if sessions.len() >= self.slots {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.last_used_ms)
                .map(|(id, _)| *id)
            {
                sessions.remove(&oldest);
            }
        }
        let id = {
            let mut next = self.next_id.lock_or_recover();
            loop {
                let id = *next;
                *next = if *next == i32::MAX { 1 } else { *next + 1 };
                if !sessions.contains_key(&id) {
                    break id;
                }
            }
        };
        let partitions = targets
            .iter()
            .map(|t| {
                (
                    (Arc::clone(&t.topic), t.partition),
                    CachedPartition {
                        target: t.clone(),
                        last_view: None,
                    },
                )
            })
            .collect();
        sessions.insert(
            id,
            Session {
                next_epoch: 1,
                partitions,
                last_used_ms: now_ms,
            },
        );
        id
    }

    /// Records what the response tells the client about a partition, and says whether an
    /// incremental response must include it.
    pub fn note_response(
        &self,
        session_id: i32,
        topic: &Arc<str>,
        partition: i32,
        view: PartitionView,
        has_news: bool,
    ) -> bool {
        if session_id == 0 {
            return true;
        }
        let mut sessions = self.sessions.lock_or_recover();
        let Some(cached) = sessions
            .get_mut(&session_id)
            .and_then(|s| s.partitions.get_mut(&(Arc::clone(topic), partition)))
        else {
            return true;
        };
        let changed = cached.last_view != Some(view);
        cached.last_view = Some(view);
        has_news || changed
    }

    pub fn len(&self) -> usize {
        self.sessions.lock_or_recover().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(partition: i32, offset: i64) -> FetchTarget {
        FetchTarget {
            topic: Arc::from("t"),
            topic_id: Uuid::nil(),
            partition,
            fetch_offset: offset,
            max_bytes: 100,
        }
    }

    #[test]
    fn session_lifecycle() {
        let cache = FetchSessionCache::new(2);
        let full = cache
            .begin(0, 0, vec![target(0, 0), target(1, 0)], vec![], 0)
            .unwrap();
        assert!(full.session_id > 0 && !full.incremental);
        let inc = cache
            .begin(full.session_id, 1, vec![target(1, 5)], vec![], 1)
            .unwrap();
        assert!(inc.incremental);
        assert_eq!(inc.targets.len(), 2);
        assert_eq!(inc.targets[1].fetch_offset, 5);
        assert_eq!(
            cache.begin(full.session_id, 1, vec![], vec![], 2),
            Err(ErrorCode::InvalidFetchSessionEpoch)
        );
        let forgot = cache
            .begin(full.session_id, 2, vec![], vec![(Arc::from("t"), 0)], 3)
            .unwrap();
        assert_eq!(forgot.targets.len(), 1);
        assert_eq!(
            cache.begin(99, 1, vec![], vec![], 4),
            Err(ErrorCode::FetchSessionIdNotFound)
        );
        let closed = cache
            .begin(full.session_id, FINAL_EPOCH, vec![target(0, 0)], vec![], 5)
            .unwrap();
        assert_eq!(closed.session_id, 0);
        assert!(cache.is_empty());
    }

    #[test]
    fn unchanged_partitions_are_left_out() {
        let cache = FetchSessionCache::new(1);
        let s = cache
            .begin(0, 0, vec![target(0, 0)], vec![], 0)
            .unwrap()
            .session_id;
        let topic: Arc<str> = Arc::from("t");
        let view = PartitionView::default();
        assert!(cache.note_response(s, &topic, 0, view, false));
        assert!(!cache.note_response(s, &topic, 0, view, false));
        assert!(cache.note_response(s, &topic, 0, view, true));
    }
}
