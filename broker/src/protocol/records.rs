//! Record batches (magic v2): header fields, validation, codecs and rebuilding.
//!
//! A produced batch is checked here before anything is appended: its lengths, magic, CRC32C,
//! record count and offset deltas. Batches are stored as the producer sent them; only the
//! base offset and partition leader epoch (both outside the CRC) are rewritten. A batch is
//! decompressed only when the broker must look inside it: an uncompressed one is walked to
//! check its records, a compressed one is inflated only for recompression to the topic's
//! `compression.type` or for a timestamp search.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Size of the fixed batch header, up to and including the record count.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Offset + length prefix: what precedes `batchLength` bytes of a batch.
pub const LOG_OVERHEAD: usize = 12;

const OFFSET_BASE: usize = 0;
const OFFSET_LENGTH: usize = 8;
const OFFSET_LEADER_EPOCH: usize = 12;
const OFFSET_MAGIC: usize = 16;
const OFFSET_CRC: usize = 17;
const OFFSET_ATTRIBUTES: usize = 21;
const OFFSET_LAST_DELTA: usize = 23;
const OFFSET_BASE_TIMESTAMP: usize = 27;
const OFFSET_MAX_TIMESTAMP: usize = 35;
const OFFSET_PRODUCER_ID: usize = 43;
const OFFSET_PRODUCER_EPOCH: usize = 51;
const OFFSET_BASE_SEQUENCE: usize = 53;
const OFFSET_RECORD_COUNT: usize = 57;

const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_LOG_APPEND_TIME: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

/// A batch's compression codec, as the three low attribute bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

impl Compression {
    fn from_bits(bits: i16) -> Option<Compression> {
        match bits {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// Why a batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Lengths, magic or CRC are wrong: Kafka's CORRUPT_MESSAGE.
    #[error("corrupt record batch: {0}")]
    Corrupt(&'static str),
    /// The batch is well formed but its records are not valid: Kafka's INVALID_RECORD.
    #[error("invalid record: {0}")]
    InvalidRecord(&'static str),
    /// An unknown compression codec: UNSUPPORTED_COMPRESSION_TYPE.
    #[error("unsupported compression codec {0}")]
    UnsupportedCompression(i16),
    /// A magic other than 2: UNSUPPORTED_FOR_MESSAGE_FORMAT.
    #[error("unsupported record batch magic {0}")]
    UnsupportedMagic(i8),
}

/// Read-only view of a v2 batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    /// Parses the header at the start of `bytes`, which must hold at least
    /// [`BATCH_HEADER_BYTES`]. Checks only what the fields themselves can say.
    pub fn parse(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
        if bytes.len() < BATCH_HEADER_BYTES {
            return Err(BatchError::Corrupt("batch shorter than its header"));
        }
        let magic = bytes[OFFSET_MAGIC] as i8;
        if magic != 2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        let header = BatchHeader {
            base_offset: read_i64(bytes, OFFSET_BASE),
            batch_length: read_i32(bytes, OFFSET_LENGTH),
            attributes: read_i16(bytes, OFFSET_ATTRIBUTES),
            last_offset_delta: read_i32(bytes, OFFSET_LAST_DELTA),
            base_timestamp: read_i64(bytes, OFFSET_BASE_TIMESTAMP),
            max_timestamp: read_i64(bytes, OFFSET_MAX_TIMESTAMP),
            producer_id: read_i64(bytes, OFFSET_PRODUCER_ID),
            producer_epoch: read_i16(bytes, OFFSET_PRODUCER_EPOCH),
            base_sequence: read_i32(bytes, OFFSET_BASE_SEQUENCE),
            record_count: read_i32(bytes, OFFSET_RECORD_COUNT),
        };
        if (header.batch_length as i64) < (BATCH_HEADER_BYTES - LOG_OVERHEAD) as i64 {
            return Err(BatchError::Corrupt("batch length below the header size"));
        }
        Ok(header)
    }

    /// Bytes the whole batch takes, length prefix included.
    pub fn total_bytes(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    pub fn compression(&self) -> Result<Compression, BatchError> {
        Compression::from_bits(self.attributes & ATTR_COMPRESSION_MASK).ok_or(
            BatchError::UnsupportedCompression(self.attributes & ATTR_COMPRESSION_MASK),
        )
    }

    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_LOG_APPEND_TIME != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// A record's timestamp: with LogAppendTime every record has the batch's
    /// max timestamp, otherwise the base timestamp plus the record's delta.
    pub fn record_timestamp(&self, timestamp_delta: i64) -> i64 {
        if self.is_log_append_time() {
            self.max_timestamp
        } else {
            // Wrapping, as Kafka's Java arithmetic: stored deltas are the producer's.
            self.base_timestamp.wrapping_add(timestamp_delta)
        }
    }

    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// The last sequence number this batch carries, wrapping as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        let last = self.base_sequence as i64 + self.last_offset_delta as i64;
        if last > i32::MAX as i64 {
            (last - i32::MAX as i64 - 1) as i32
        } else {
            last as i32
        }
    }
}

fn read_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

fn read_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn read_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Splits a produce request's record set into its batches and validates each one as a
/// producer must send it. Returns the batches' headers; the bytes are left untouched.
///
/// As Kafka (ProduceRequest v3+), a partition's record set is exactly one batch: several
/// would be checked against producer state together and appended one by one, so a
/// refusal or a full disk part-way could store some of a request that was refused.
pub fn validate_record_set(records: &[u8]) -> Result<Vec<BatchHeader>, BatchError> {
    validate_produced(records).map(|batch| vec![batch.header])
}

/// A produced batch that passed validation, and what its one walk over the records saw.
#[derive(Debug)]
pub struct ValidatedBatch {
    pub header: BatchHeader,
    /// The indexes in the batch of records without a key (for compacted topics).
    pub keyless: Vec<i32>,
}

/// Validates a produced record set (exactly one batch, see [`validate_record_set`]),
/// reading its records once.
pub fn validate_produced(records: &[u8]) -> Result<ValidatedBatch, BatchError> {
    // Framing of every batch first, then the one batch's own rules.
    let headers = split_record_set(records, |_, _| Ok(()))?;
    if headers.len() > 1 {
        return Err(BatchError::InvalidRecord(
            "Produce requests are only allowed to contain exactly one record batch per partition",
        ));
    }
    let header = headers[0];
    let keyless = validate_batch(&records[..header.total_bytes()], &header)?;
    Ok(ValidatedBatch { header, keyless })
}

/// Splits record bytes read back from a log into batches and validates each one with the
/// stored-batch rules: compaction keeps a batch's offset span while dropping records, so
/// offset deltas may have gaps. Returns the batches' headers.
pub fn validate_stored_record_set(records: &[u8]) -> Result<Vec<BatchHeader>, BatchError> {
    split_record_set(records, validate_stored_batch)
}

fn split_record_set(
    records: &[u8],
    validate: fn(&[u8], &BatchHeader) -> Result<(), BatchError>,
) -> Result<Vec<BatchHeader>, BatchError> {
    if records.is_empty() {
        return Err(BatchError::Corrupt("empty record set"));
    }
    let mut headers = Vec::with_capacity(1);
    let mut rest = records;
    while !rest.is_empty() {
        if rest.len() < LOG_OVERHEAD + 5 {
            return Err(BatchError::Corrupt("truncated batch"));
        }
        let magic = rest[OFFSET_MAGIC] as i8;
        if magic != 2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        let header = BatchHeader::parse(rest)?;
        let total = header.total_bytes();
        if total > rest.len() {
            return Err(BatchError::Corrupt("batch length beyond the record set"));
        }
        validate(&rest[..total], &header)?;
        headers.push(header);
        rest = &rest[total..];
    }
    Ok(headers)
}

/// Validates one whole batch as a client must send it: CRC32C over attributes..end, counts
/// and record framing, and Kafka's client-origin rules (LogValidator): no control batches,
/// and an idempotent batch carries a sequence number. Returns the indexes of the records
/// without a key, which a compacted topic refuses.
fn validate_batch(batch: &[u8], header: &BatchHeader) -> Result<Vec<i32>, BatchError> {
    let stored_crc = read_i32(batch, OFFSET_CRC) as u32;
    if crc32c::crc32c(&batch[OFFSET_ATTRIBUTES..]) != stored_crc {
        return Err(BatchError::Corrupt("CRC32C mismatch"));
    }
    if header.is_control() {
        return Err(BatchError::InvalidRecord(
            "Clients are not allowed to write control records",
        ));
    }
    if header.has_producer_id() && header.base_sequence < 0 {
        return Err(BatchError::InvalidRecord(
            "an idempotent batch must carry a sequence number",
        ));
    }
    if header.record_count <= 0 {
        return Err(BatchError::InvalidRecord(
            "a batch must hold at least one record",
        ));
    }
    if header.last_offset_delta != header.record_count - 1 {
        return Err(BatchError::InvalidRecord(
            "last offset delta does not match the record count",
        ));
    }
    // Every record is read, compressed or not, as Kafka's LogValidator does: a batch whose
    // records do not match its header must not be stored, or every consumer of the
    // partition would fail on it. Inflation is bounded (INFLATED_BYTES_MAX). The CRC
    // vouched for the bytes, so records that do not match the header are invalid rather
    // than corrupt: Kafka's INVALID_RECORD, for plain and compressed batches alike.
    let inflated;
    let records = if header.compression()? == Compression::None {
        &batch[BATCH_HEADER_BYTES..]
    } else {
        inflated = inflate_records(batch, header)?;
        &inflated[..]
    };
    let mut keyless = Vec::new();
    let mut index = 0;
    walk_records(records, header.record_count, OffsetDeltas::Dense, |r| {
        if r.key.is_none() {
            keyless.push(index);
        }
        index += 1;
        Ok(())
    })
    .map_err(|e| match e {
        BatchError::Corrupt(_) => {
            BatchError::InvalidRecord("the records of the batch do not match its header")
        }
        other => other,
    })?;
    Ok(keyless)
}

/// Whether any batch of a record set has the transactional attribute, reading only the
/// batch headers (the record set is validated later). Malformed bytes end the walk.
pub fn has_transactional_batch(records: &[u8]) -> bool {
    let mut rest = records;
    while let Ok(header) = BatchHeader::parse(rest) {
        if header.is_transactional() {
            return true;
        }
        match rest.get(header.total_bytes()..) {
            Some(next) => rest = next,
            None => break,
        }
    }
    false
}

/// Validates a batch read back from a segment: its CRC, and for uncompressed batches the
/// record framing. Compacted batches keep their offsets, so deltas may have gaps and the
/// record count may be below the offset span.
pub fn validate_stored_batch(batch: &[u8], header: &BatchHeader) -> Result<(), BatchError> {
    let stored_crc = read_i32(batch, OFFSET_CRC) as u32;
    if crc32c::crc32c(&batch[OFFSET_ATTRIBUTES..header.total_bytes()]) != stored_crc {
        return Err(BatchError::Corrupt("CRC32C mismatch"));
    }
    if header.record_count < 0 || header.record_count as i64 > header.last_offset_delta as i64 + 1 {
        return Err(BatchError::Corrupt("record count beyond the offset span"));
    }
    if header.compression()? == Compression::None {
        walk_records(
            &batch[BATCH_HEADER_BYTES..header.total_bytes()],
            header.record_count,
            OffsetDeltas::Increasing,
            |_| Ok(()),
        )?;
    }
    Ok(())
}

/// How record offset deltas must run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetDeltas {
    /// 0, 1, 2, ...: a batch as a producer sends it.
    Dense,
    /// Strictly increasing with gaps allowed: a batch after compaction.
    Increasing,
}

/// One record inside a batch, borrowed from the (decompressed) record bytes.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    /// The record's bytes after its length prefix, to copy it unchanged.
    pub raw: &'a [u8],
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
}

/// Walks `count` records, checking their framing and that offset deltas run 0, 1, 2...
pub fn walk_records<'a>(
    mut bytes: &'a [u8],
    count: i32,
    deltas: OffsetDeltas,
    mut visit: impl FnMut(RecordView<'a>) -> Result<(), BatchError>,
) -> Result<(), BatchError> {
    let mut previous_delta = -1i64;
    for index in 0..count {
        let length = read_varint(&mut bytes)?;
        if length < 0 || length as usize > bytes.len() {
            return Err(BatchError::Corrupt("record length beyond the batch"));
        }
        let (raw, rest) = bytes.split_at(length as usize);
        bytes = rest;
        let mut record = raw;
        if record.is_empty() {
            return Err(BatchError::Corrupt("empty record"));
        }
        record.advance(1); // attributes, unused in v2
        let timestamp_delta = read_varlong(&mut record)?;
        let offset_delta = read_varint(&mut record)?;
        let in_order = match deltas {
            OffsetDeltas::Dense => offset_delta == index,
            OffsetDeltas::Increasing => offset_delta as i64 > previous_delta,
        };
        if !in_order {
            return Err(BatchError::InvalidRecord(
                "record offset deltas are not consecutive",
            ));
        }
        previous_delta = offset_delta as i64;
        let key = read_nullable_bytes(&mut record)?;
        let value = read_nullable_bytes(&mut record)?;
        let header_count = read_varint(&mut record)?;
        if header_count < 0 {
            return Err(BatchError::Corrupt("negative header count"));
        }
        for _ in 0..header_count {
            if read_nullable_bytes(&mut record)?.is_none() {
                return Err(BatchError::InvalidRecord("null header key"));
            }
            read_nullable_bytes(&mut record)?;
        }
        if !record.is_empty() {
            return Err(BatchError::Corrupt("trailing bytes in a record"));
        }
        visit(RecordView {
            raw,
            offset_delta,
            timestamp_delta,
            key,
            value,
        })?;
    }
    if !bytes.is_empty() {
        return Err(BatchError::InvalidRecord(
            "more records than the record count",
        ));
    }
    Ok(())
}

fn read_unsigned_varint(bytes: &mut &[u8]) -> Result<u64, BatchError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let Some((&b, rest)) = bytes.split_first() else {
            return Err(BatchError::Corrupt("truncated varint"));
        };
        *bytes = rest;
        value |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(BatchError::Corrupt("varint too long"))
}

fn read_varlong(bytes: &mut &[u8]) -> Result<i64, BatchError> {
    let raw = read_unsigned_varint(bytes)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

fn read_varint(bytes: &mut &[u8]) -> Result<i32, BatchError> {
    let value = read_varlong(bytes)?;
    i32::try_from(value).map_err(|_| BatchError::Corrupt("varint out of range"))
}

fn read_nullable_bytes<'a>(bytes: &mut &'a [u8]) -> Result<Option<&'a [u8]>, BatchError> {
    let length = read_varint(bytes)?;
    if length < 0 {
        return Ok(None);
    }
    if length as usize > bytes.len() {
        return Err(BatchError::Corrupt("field length beyond the record"));
    }
    let (field, rest) = bytes.split_at(length as usize);
    *bytes = rest;
    Ok(Some(field))
}

/// The records section of a batch, inflated if the batch is compressed.
pub fn inflate_records(batch: &[u8], header: &BatchHeader) -> Result<Bytes, BatchError> {
    let body = &batch[BATCH_HEADER_BYTES..header.total_bytes()];
    crate::protocol::compression::decompress(header.compression()?, body)
}

/// The leading bytes of a batch holding what the broker assigns (base offset, length,
/// partition leader epoch); the magic byte and the CRC-covered part follow.
pub const PATCHED_HEADER_BYTES: usize = OFFSET_MAGIC;

/// Rewrites the base offset and partition leader epoch in place; neither is under the CRC.
pub fn assign_offset(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    batch[OFFSET_BASE..OFFSET_BASE + 8].copy_from_slice(&base_offset.to_be_bytes());
    batch[OFFSET_LEADER_EPOCH..OFFSET_LEADER_EPOCH + 4]
        .copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Stamps LogAppendTime: sets the timestamp-type bit and max timestamp, then the CRC.
pub fn stamp_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attributes = read_i16(batch, OFFSET_ATTRIBUTES) | ATTR_LOG_APPEND_TIME;
    batch[OFFSET_ATTRIBUTES..OFFSET_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[OFFSET_MAX_TIMESTAMP..OFFSET_MAX_TIMESTAMP + 8].copy_from_slice(&now_ms.to_be_bytes());
    reseal_crc(batch);
}

fn reseal_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[OFFSET_ATTRIBUTES..]);
    batch[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Rebuilds a batch with its records compressed by `target`, keeping every header field.
pub fn recompress(
    batch: &[u8],
    header: &BatchHeader,
    target: Compression,
) -> Result<BytesMut, BatchError> {
    let records = inflate_records(batch, header)?;
    let body = crate::protocol::compression::compress(target, &records)?;
    let mut out = BytesMut::with_capacity(BATCH_HEADER_BYTES + body.len());
    out.extend_from_slice(&batch[..BATCH_HEADER_BYTES]);
    out.extend_from_slice(&body);
    let batch_length = (out.len() - LOG_OVERHEAD) as i32;
    out[OFFSET_LENGTH..OFFSET_LENGTH + 4].copy_from_slice(&batch_length.to_be_bytes());
    let attributes = (header.attributes & !ATTR_COMPRESSION_MASK) | target as i16;
    out[OFFSET_ATTRIBUTES..OFFSET_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    reseal_crc(&mut out);
    Ok(out)
}

/// Rebuilds a stored batch keeping only `retained` records (raw bytes from
/// [`RecordView::raw`]), with the same base offset, offset span, producer fields and codec,
/// as the log cleaner writes them. Offsets of kept records do not change.
pub fn rebuild_retained(
    batch: &[u8],
    header: &BatchHeader,
    retained: &[&[u8]],
    max_timestamp: i64,
) -> Result<BytesMut, BatchError> {
    let mut records = BytesMut::new();
    for raw in retained {
        put_varlong(&mut records, raw.len() as i64);
        records.put_slice(raw);
    }
    let body = crate::protocol::compression::compress(header.compression()?, &records)?;
    let mut out = BytesMut::with_capacity(BATCH_HEADER_BYTES + body.len());
    out.extend_from_slice(&batch[..BATCH_HEADER_BYTES]);
    out.extend_from_slice(&body);
    let batch_length = (out.len() - LOG_OVERHEAD) as i32;
    out[OFFSET_LENGTH..OFFSET_LENGTH + 4].copy_from_slice(&batch_length.to_be_bytes());
    out[OFFSET_MAX_TIMESTAMP..OFFSET_MAX_TIMESTAMP + 8]
        .copy_from_slice(&max_timestamp.to_be_bytes());
    out[OFFSET_RECORD_COUNT..OFFSET_RECORD_COUNT + 4]
        .copy_from_slice(&(retained.len() as i32).to_be_bytes());
    reseal_crc(&mut out);
    Ok(out)
}

/// Calls `visit(offset, timestamp)` for every record of a stored batch. Records are
/// walked even for LogAppendTime batches: after compaction the base offset may belong to
/// a record that is gone.
fn for_each_record_time(
    batch: &[u8],
    header: &BatchHeader,
    mut visit: impl FnMut(i64, i64),
) -> Result<(), BatchError> {
    let records = inflate_records(batch, header)?;
    walk_records(
        &records,
        header.record_count,
        OffsetDeltas::Increasing,
        |r| {
            visit(
                header.base_offset + r.offset_delta as i64,
                header.record_timestamp(r.timestamp_delta),
            );
            Ok(())
        },
    )
}

/// Finds the first record with a timestamp at or after `target_ms`, as (offset, timestamp).
pub fn find_timestamp(
    batch: &[u8],
    header: &BatchHeader,
    target_ms: i64,
) -> Result<Option<(i64, i64)>, BatchError> {
    let mut found = None;
    for_each_record_time(batch, header, |offset, ts| {
        if found.is_none() && ts >= target_ms {
            found = Some((offset, ts));
        }
    })?;
    Ok(found)
}

/// The offset of the (first) record holding the batch's max timestamp.
pub fn offset_of_max_timestamp(batch: &[u8], header: &BatchHeader) -> Result<i64, BatchError> {
    let mut best = (i64::MIN, header.base_offset);
    for_each_record_time(batch, header, |offset, ts| {
        if ts > best.0 {
            best = (ts, offset);
        }
    })?;
    Ok(best.1)
}

/// Appends one record (v2 framing) to `out`; used by tests and tools that build batches.
pub fn write_record(
    out: &mut BytesMut,
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) {
    let mut body = BytesMut::new();
    body.put_u8(0);
    put_varlong(&mut body, timestamp_delta);
    put_varlong(&mut body, offset_delta as i64);
    for field in [key, value] {
        match field {
            Some(f) => {
                put_varlong(&mut body, f.len() as i64);
                body.put_slice(f);
            }
            None => put_varlong(&mut body, -1),
        }
    }
    put_varlong(&mut body, 0);
    put_varlong(out, body.len() as i64);
    out.put_slice(&body);
}

fn put_varlong(out: &mut BytesMut, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.put_u8((zigzag as u8) | 0x80);
        zigzag >>= 7;
    }
    out.put_u8(zigzag as u8);
}

/// A record to build: optional key, optional value.
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// Builds an uncompressed batch of `values` (no keys) with the given producer fields.
pub fn build_batch(values: &[&[u8]], timestamp_ms: i64, producer: (i64, i16, i32)) -> BytesMut {
    let records: Vec<KeyValue> = values.iter().map(|v| (None, Some(*v))).collect();
    build_keyed_batch(&records, timestamp_ms, producer)
}

/// Builds an uncompressed batch of (key, value) records; used by tests and tools.
pub fn build_keyed_batch(
    entries: &[KeyValue],
    timestamp_ms: i64,
    producer: (i64, i16, i32),
) -> BytesMut {
    let mut records = BytesMut::new();
    for (i, (key, value)) in entries.iter().enumerate() {
        write_record(&mut records, i as i32, 0, *key, *value);
    }
    let mut out = seal_batch(
        &records,
        entries.len() as i32,
        timestamp_ms,
        timestamp_ms,
        Compression::None,
    )
    .expect("an uncompressed batch needs no codec");
    out[OFFSET_PRODUCER_ID..OFFSET_PRODUCER_ID + 8].copy_from_slice(&producer.0.to_be_bytes());
    out[OFFSET_PRODUCER_EPOCH..OFFSET_PRODUCER_EPOCH + 2]
        .copy_from_slice(&producer.1.to_be_bytes());
    out[OFFSET_BASE_SEQUENCE..OFFSET_BASE_SEQUENCE + 4].copy_from_slice(&producer.2.to_be_bytes());
    reseal_crc(&mut out);
    out
}

/// Puts a v2 batch header (base offset 0, no producer, CreateTime) in front of `count`
/// records written with offset deltas 0.., compressing them with `codec`.
pub fn seal_batch(
    records: &[u8],
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    codec: Compression,
) -> Result<BytesMut, BatchError> {
    let compressed;
    let body = if codec == Compression::None {
        records
    } else {
        compressed = crate::protocol::compression::compress(codec, records)?;
        &compressed
    };
    let batch_length = i32::try_from(BATCH_HEADER_BYTES - LOG_OVERHEAD + body.len())
        .map_err(|_| BatchError::Corrupt("batch larger than 2 GiB"))?;
    let mut out = BytesMut::with_capacity(BATCH_HEADER_BYTES + body.len());
    out.put_i64(0);
    out.put_i32(batch_length);
    out.put_i32(-1);
    out.put_i8(2);
    out.put_u32(0);
    out.put_i16(codec as i16);
    out.put_i32(count - 1);
    out.put_i64(base_timestamp);
    out.put_i64(max_timestamp);
    out.put_i64(-1);
    out.put_i16(-1);
    out.put_i32(-1);
    out.put_i32(count);
    out.put_slice(body);
    reseal_crc(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_batch_validates_and_corruption_is_caught() {
        let batch = build_batch(&[b"a", b"bc"], 1000, (-1, -1, -1));
        let headers = validate_record_set(&batch).unwrap();
        assert_eq!(headers[0].record_count, 2);
        let mut bad = batch.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert_eq!(
            validate_record_set(&bad),
            Err(BatchError::Corrupt("CRC32C mismatch"))
        );
        assert!(validate_record_set(&batch[..batch.len() - 1]).is_err());
    }

    fn with_attributes(batch: &BytesMut, attributes: i16) -> BytesMut {
        let mut changed = batch.clone();
        changed[OFFSET_ATTRIBUTES..OFFSET_ATTRIBUTES + 2]
            .copy_from_slice(&attributes.to_be_bytes());
        reseal_crc(&mut changed);
        changed
    }

    #[test]
    fn client_rules_refuse_control_batches_and_missing_sequences() {
        let batch = build_batch(&[b"a"], 1000, (-1, -1, -1));
        assert!(matches!(
            validate_record_set(&with_attributes(&batch, ATTR_CONTROL)),
            Err(BatchError::InvalidRecord(_))
        ));
        let unsequenced = build_batch(&[b"a"], 1000, (7, 0, -1));
        assert!(matches!(
            validate_record_set(&unsequenced),
            Err(BatchError::InvalidRecord(_))
        ));
        let transactional = with_attributes(&batch, ATTR_TRANSACTIONAL);
        assert!(!has_transactional_batch(&batch));
        let mut two = batch.clone();
        two.extend_from_slice(&transactional);
        assert!(matches!(
            validate_record_set(&two),
            Err(BatchError::InvalidRecord(_))
        ));
        assert!(has_transactional_batch(&two));
        assert!(!has_transactional_batch(&two[..batch.len() + 10]));
        // What a compaction leaves (gaps in the offset span) passes only the stored rules.
        let mut gapped = build_batch(&[b"a"], 1000, (-1, -1, -1));
        gapped[OFFSET_LAST_DELTA..OFFSET_LAST_DELTA + 4].copy_from_slice(&3i32.to_be_bytes());
        reseal_crc(&mut gapped);
        assert!(validate_record_set(&gapped).is_err());
        assert_eq!(
            validate_stored_record_set(&gapped).unwrap()[0].last_offset_delta,
            3
        );
    }

    #[test]
    fn recompression_round_trips() {
        let batch = build_batch(&[b"hello", b"world"], 5, (-1, -1, -1));
        let header = BatchHeader::parse(&batch).unwrap();
        for codec in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let packed = recompress(&batch, &header, codec).unwrap();
            let h = validate_record_set(&packed).unwrap()[0];
            assert_eq!(h.compression().unwrap(), codec);
            let records = inflate_records(&packed, &h).unwrap();
            let mut values = Vec::new();
            walk_records(&records, h.record_count, OffsetDeltas::Dense, |r| {
                values.push(r.value.unwrap().to_vec());
                Ok(())
            })
            .unwrap();
            assert_eq!(values, vec![b"hello".to_vec(), b"world".to_vec()]);
        }
    }

    #[test]
    fn sequence_wraps() {
        let mut batch = build_batch(&[b"a", b"b"], 0, (1, 0, i32::MAX));
        let header = BatchHeader::parse(&batch).unwrap();
        assert_eq!(header.last_sequence(), 0);
        stamp_log_append_time(&mut batch, 42);
        let header = validate_record_set(&batch).unwrap()[0];
        assert!(header.is_log_append_time());
        assert_eq!(header.max_timestamp, 42);
    }
}
