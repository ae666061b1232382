//! Idempotent producer state of one partition: per producer id, its epoch and the metadata
//! of its last five batches.
//!
//! This is what lets a retried batch be answered with its original offsets instead of being
//! written twice, and an out-of-order batch be refused. It is rebuilt on start-up from a
//! checkpoint in the metadata store plus the batch headers written after it, so dedupe
//! survives a restart or a crash.

use std::collections::{HashMap, VecDeque};

use crate::protocol::records::BatchHeader;

/// How many batches per producer are remembered, as Kafka's `NUM_BATCHES_TO_RETAIN`.
pub const BATCHES_RETAINED: usize = 5;

/// One remembered batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: i64,
    pub last_offset: i64,
    pub timestamp_ms: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<ProducerBatch>,
    last_timestamp_ms: i64,
}

/// Why a producer's batch is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerStateError {
    #[error("producer {producer_id}: out of order sequence {sequence}, expected {expected}")]
    OutOfOrderSequence {
        producer_id: i64,
        sequence: i32,
        expected: i32,
    },
    #[error("producer {producer_id}: epoch {epoch} is older than the current epoch {current}")]
    InvalidProducerEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
}

/// What to do with a producer's batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it.
    Append,
    /// It was appended before: answer with these offsets and append nothing.
    Duplicate(ProducerBatch),
}

/// Producer state of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerState {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerState {
    /// Checks a batch against the producer's state without changing it.
    pub fn check(&self, header: &BatchHeader) -> Result<SequenceCheck, ProducerStateError> {
        let producer_id = header.producer_id;
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(SequenceCheck::Append);
        };
        if header.producer_epoch < entry.epoch {
            return Err(ProducerStateError::InvalidProducerEpoch {
                producer_id,
                epoch: header.producer_epoch,
                current: entry.epoch,
            });
        }
        if header.producer_epoch > entry.epoch {
            // A bumped epoch restarts the sequence at zero.
            return if header.base_sequence == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(ProducerStateError::OutOfOrderSequence {
                    producer_id,
                    sequence: header.base_sequence,
                    expected: 0,
                })
            };
        }
        if let Some(batch) = entry.batches.iter().find(|b| {
            b.first_sequence == header.base_sequence && b.last_sequence == header.last_sequence()
        }) {
            return Ok(SequenceCheck::Duplicate(*batch));
        }
        let expected = match entry.batches.back() {
            Some(last) if last.last_sequence == i32::MAX => 0,
            Some(last) => last.last_sequence + 1,
            None => header.base_sequence,
        };
        if header.base_sequence != expected {
            return Err(ProducerStateError::OutOfOrderSequence {
                producer_id,
                sequence: header.base_sequence,
                expected,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// Records a batch appended by a produce, which [`ProducerState::check`] let through:
    /// within an epoch its sequence continues the producer's last batch, asserted in every
    /// build (a gap here would be silent data loss for the producer).
    pub fn append(&mut self, header: &BatchHeader) {
        let last = self
            .producers
            .get(&header.producer_id)
            .filter(|e| e.epoch == header.producer_epoch)
            .and_then(|e| e.batches.back());
        if let Some(last) = last {
            let expected = if last.last_sequence == i32::MAX {
                0
            } else {
                last.last_sequence + 1
            };
            assert_eq!(
                header.base_sequence, expected,
                "producer {} broke sequence continuity",
                header.producer_id
            );
        }
        self.record(header);
    }

    /// Records a batch (base offset assigned) without checks: replaying the log, where
    /// compaction or retention may have removed batches between two of a producer's.
    pub fn record(&mut self, header: &BatchHeader) {
        let entry = self.producers.entry(header.producer_id).or_default();
        if header.producer_epoch != entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == BATCHES_RETAINED {
            entry.batches.pop_front();
        }
        entry.batches.push_back(ProducerBatch {
            first_sequence: header.base_sequence,
            last_sequence: header.last_sequence(),
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
            timestamp_ms: header.max_timestamp,
        });
        entry.last_timestamp_ms = header.max_timestamp;
    }

    /// Forgets producers whose last write is older than `producer.id.expiration.ms`.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) {
        self.producers
            .retain(|_, e| now_ms.saturating_sub(e.last_timestamp_ms) < expiration_ms);
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Serializes the state for a checkpoint: per producer, id, epoch and its batches.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.producers.len() * 64);
        out.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        for (id, entry) in &self.producers {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&entry.epoch.to_be_bytes());
            out.extend_from_slice(&entry.last_timestamp_ms.to_be_bytes());
            out.push(entry.batches.len() as u8);
            for b in &entry.batches {
                out.extend_from_slice(&b.first_sequence.to_be_bytes());
                out.extend_from_slice(&b.last_sequence.to_be_bytes());
                out.extend_from_slice(&b.base_offset.to_be_bytes());
                out.extend_from_slice(&b.last_offset.to_be_bytes());
                out.extend_from_slice(&b.timestamp_ms.to_be_bytes());
            }
        }
        out
    }

    /// Reads a checkpoint written by [`ProducerState::encode`]; None if it is damaged.
    pub fn decode(mut bytes: &[u8]) -> Option<ProducerState> {
        fn take<const N: usize>(bytes: &mut &[u8]) -> Option<[u8; N]> {
            let (head, rest) = bytes.split_first_chunk::<N>()?;
            *bytes = rest;
            Some(*head)
        }
        let count = u32::from_be_bytes(take(&mut bytes)?);
        let mut state = ProducerState::default();
        for _ in 0..count {
            let id = i64::from_be_bytes(take(&mut bytes)?);
            let epoch = i16::from_be_bytes(take(&mut bytes)?);
            let last_timestamp_ms = i64::from_be_bytes(take(&mut bytes)?);
            let batches = take::<1>(&mut bytes)?[0] as usize;
            let mut entry = ProducerEntry {
                epoch,
                batches: VecDeque::with_capacity(batches),
                last_timestamp_ms,
            };
            for _ in 0..batches {
                entry.batches.push_back(ProducerBatch {
                    first_sequence: i32::from_be_bytes(take(&mut bytes)?),
                    last_sequence: i32::from_be_bytes(take(&mut bytes)?),
                    base_offset: i64::from_be_bytes(take(&mut bytes)?),
                    last_offset: i64::from_be_bytes(take(&mut bytes)?),
                    timestamp_ms: i64::from_be_bytes(take(&mut bytes)?),
                });
            }
            state.producers.insert(id, entry);
        }
        bytes.is_empty().then_some(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(
        producer_id: i64,
        epoch: i16,
        sequence: i32,
        count: i32,
        base_offset: i64,
    ) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: 100,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id,
            producer_epoch: epoch,
            base_sequence: sequence,
            record_count: count,
        }
    }

    #[test]
    fn duplicates_answer_with_original_offsets() {
        let mut state = ProducerState::default();
        let first = header(7, 0, 0, 3, 10);
        assert_eq!(state.check(&first), Ok(SequenceCheck::Append));
        state.record(&first);
        match state.check(&header(7, 0, 0, 3, 99)) {
            Ok(SequenceCheck::Duplicate(b)) => assert_eq!((b.base_offset, b.last_offset), (10, 12)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            state.check(&header(7, 0, 5, 1, 13)),
            Err(ProducerStateError::OutOfOrderSequence { expected: 3, .. })
        ));
        assert_eq!(
            state.check(&header(7, 0, 3, 1, 13)),
            Ok(SequenceCheck::Append)
        );
    }

    #[test]
    fn epochs_fence_and_reset() {
        let mut state = ProducerState::default();
        state.record(&header(1, 2, 0, 1, 0));
        assert!(matches!(
            state.check(&header(1, 1, 1, 1, 1)),
            Err(ProducerStateError::InvalidProducerEpoch { .. })
        ));
        assert_eq!(
            state.check(&header(1, 3, 0, 1, 1)),
            Ok(SequenceCheck::Append)
        );
        assert!(state.check(&header(1, 3, 4, 1, 1)).is_err());
    }

    #[test]
    fn checkpoint_round_trips() {
        let mut state = ProducerState::default();
        for i in 0..7 {
            state.record(&header(3, 0, i, 1, i as i64));
        }
        state.record(&header(4, 1, 0, 2, 7));
        let decoded = ProducerState::decode(&state.encode()).unwrap();
        assert_eq!(decoded, state);
        assert!(ProducerState::decode(&state.encode()[..5]).is_none());
    }

    #[test]
    fn idle_producers_expire() {
        let mut state = ProducerState::default();
        let mut old = header(1, 0, 0, 1, 0);
        old.max_timestamp = 1_000;
        let mut recent = header(2, 0, 0, 1, 1);
        recent.max_timestamp = 9_000;
        state.record(&old);
        state.record(&recent);
        state.expire(10_000, 5_000);
        assert_eq!(state.len(), 1);
        // The forgotten producer starts over like a new one.
        assert_eq!(
            state.check(&header(1, 0, 7, 1, 2)),
            Ok(SequenceCheck::Append)
        );
    }
}
