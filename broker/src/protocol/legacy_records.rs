//! Message sets of magic 0 and 1 (Kafka's formats before 0.11), for the request versions
//! that carry them: Produce v0-2 in, Fetch v0-3 out.
//!
//! Weir stores only v2 batches, as Kafka 4 does. A legacy message set produced by an old
//! client is converted on the way in ([`up_convert`]): every message is checked (CRC32,
//! framing, compressed wrappers inflated) and the records are rebuilt as one v2 batch,
//! compressed with the wrapper's codec if the client compressed. A fetch at a version that
//! predates v2 gets the stored records converted on the way out ([`down_convert`]), as
//! Kafka 3's brokers did: uncompressed messages of the magic that version reads, without
//! the records before the fetch offset, control records or headers (magic 0/1 has none).
//!
//! A legacy message: offset i64, size i32, then crc u32 (CRC32 over the rest), magic i8,
//! attributes i8 (codec in the low three bits, LogAppendTime in bit 3 for magic 1),
//! timestamp i64 (magic 1 only), key and value as i32-length bytes (-1: null). A
//! compressed message's value is an inner message set; magic 1 inner offsets are relative
//! to the wrapper's, which carries the last inner offset.

use bytes::{BufMut, Bytes, BytesMut};

use super::compression;
use super::records::{self, BatchError, BatchHeader, Compression, OffsetDeltas};

/// Magic byte of a record set: the same position in v0, v1 and v2 framing.
const MAGIC_POSITION: usize = 16;
/// offset i64 + size i32.
const ENTRY_OVERHEAD: usize = 12;
/// crc + magic + attributes + key length + value length.
const MESSAGE_MIN_V0: usize = 4 + 1 + 1 + 4 + 4;
const ATTR_CODEC_MASK: u8 = 0x07;
const ATTR_LOG_APPEND_TIME: u8 = 0x08;
/// The records of a batch with no timestamp (magic 0 messages).
const NO_TIMESTAMP: i64 = -1;

/// Whether `records` start with a message of magic 0 or 1.
pub fn is_legacy(records: &[u8]) -> bool {
    records.len() > MAGIC_POSITION && records[MAGIC_POSITION] < 2
}

/// One message taken out of a legacy set.
struct Message<'a> {
    magic: u8,
    attributes: u8,
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

/// Reads the messages of a legacy set in order, checking each one's CRC and framing.
fn read_messages<'a>(
    mut set: &'a [u8],
    mut visit: impl FnMut(Message<'a>) -> Result<(), BatchError>,
) -> Result<(), BatchError> {
    if set.is_empty() {
        return Err(BatchError::Corrupt("empty message set"));
    }
    while !set.is_empty() {
        if set.len() < ENTRY_OVERHEAD {
            return Err(BatchError::Corrupt("truncated message header"));
        }
        let size = i32::from_be_bytes(set[8..12].try_into().expect("4 bytes"));
        if size < MESSAGE_MIN_V0 as i32 || size as usize > set.len() - ENTRY_OVERHEAD {
            return Err(BatchError::Corrupt("message size beyond the message set"));
        }
        let end = ENTRY_OVERHEAD + size as usize;
        let message = &set[ENTRY_OVERHEAD..end];
        set = &set[end..];
        visit(parse_message(message)?)?;
    }
    Ok(())
}

fn parse_message(message: &[u8]) -> Result<Message<'_>, BatchError> {
    let crc = u32::from_be_bytes(message[..4].try_into().expect("4 bytes"));
    if crc32fast::hash(&message[4..]) != crc {
        return Err(BatchError::Corrupt("message CRC mismatch"));
    }
    let magic = message[4];
    let attributes = message[5];
    let mut rest = &message[6..];
    let timestamp = match magic {
        0 => NO_TIMESTAMP,
        1 => {
            let (ts, tail) = split(rest, 8)?;
            rest = tail;
            i64::from_be_bytes(ts.try_into().expect("8 bytes"))
        }
        other => return Err(BatchError::UnsupportedMagic(other as i8)),
    };
    let key = read_bytes(&mut rest)?;
    let value = read_bytes(&mut rest)?;
    if !rest.is_empty() {
        return Err(BatchError::Corrupt("trailing bytes in a message"));
    }
    Ok(Message {
        magic,
        attributes,
        timestamp,
        key,
        value,
    })
}

fn split(bytes: &[u8], n: usize) -> Result<(&[u8], &[u8]), BatchError> {
    if bytes.len() < n {
        return Err(BatchError::Corrupt("message shorter than its fields"));
    }
    Ok(bytes.split_at(n))
}

fn read_bytes<'a>(bytes: &mut &'a [u8]) -> Result<Option<&'a [u8]>, BatchError> {
    let (length, rest) = split(bytes, 4)?;
    let length = i32::from_be_bytes(length.try_into().expect("4 bytes"));
    *bytes = rest;
    if length < 0 {
        return Ok(None);
    }
    let (field, rest) = split(bytes, length as usize)?;
    *bytes = rest;
    Ok(Some(field))
}

fn codec(attributes: u8) -> Result<Compression, BatchError> {
    match attributes & ATTR_CODEC_MASK {
        0 => Ok(Compression::None),
        1 => Ok(Compression::Gzip),
        2 => Ok(Compression::Snappy),
        3 => Ok(Compression::Lz4),
        other => Err(BatchError::UnsupportedCompression(other as i16)),
    }
}

/// Converts a legacy message set from a producer into one v2 batch (base offset 0, no
/// producer id), compressed with the producer's codec if it compressed. The records of the
/// whole set may take at most [`compression::INFLATED_BYTES_MAX`], as one v2 batch may.
pub fn up_convert(set: &[u8]) -> Result<Bytes, BatchError> {
    let mut records = BytesMut::new();
    let mut count = 0i32;
    let mut timestamps: Option<(i64, i64)> = None;
    let mut batch_codec = Compression::None;
    let mut add = |message: &Message| -> Result<(), BatchError> {
        let (base, _) = *timestamps.get_or_insert((message.timestamp, message.timestamp));
        if let Some((_, max)) = timestamps.as_mut() {
            *max = (*max).max(message.timestamp);
        }
        // Wrapping, as Kafka's Java arithmetic: hostile timestamps must not panic.
        let delta = message.timestamp.wrapping_sub(base);
        records::write_record(&mut records, count, delta, message.key, message.value);
        if records.len() as u64 > compression::INFLATED_BYTES_MAX {
            return Err(BatchError::Corrupt(
                "message set inflates beyond the batch limit",
            ));
        }
        count = count
            .checked_add(1)
            .ok_or(BatchError::Corrupt("too many messages"))?;
        Ok(())
    };
    read_messages(set, |message| match codec(message.attributes)? {
        Compression::None => add(&message),
        wrapper_codec => {
            batch_codec = wrapper_codec;
            let body = message
                .value
                .ok_or(BatchError::Corrupt("compressed message without a value"))?;
            let inner = inflate(wrapper_codec, message.magic, body)?;
            read_messages(&inner, |inner_message| {
                // Kafka's LogValidator refuses both.
                if inner_message.magic != message.magic {
                    return Err(BatchError::InvalidRecord(
                        "Log record magic does not match outer magic",
                    ));
                }
                if codec(inner_message.attributes)? != Compression::None {
                    return Err(BatchError::InvalidRecord(
                        "Compressed outer record should not have an inner record with a \
                         compression attribute set",
                    ));
                }
                add(&inner_message)
            })
        }
    })?;
    let (base_timestamp, max_timestamp) = timestamps.expect("a non-empty set was read");
    records::seal_batch(&records, count, base_timestamp, max_timestamp, batch_codec)
        .map(BytesMut::freeze)
}

/// Inflates a compressed message's value. Kafka's first LZ4 producers (magic 0) wrote the
/// frame's header checksum over the wrong bytes; Kafka reads those frames, so it is
/// recomputed here before the frame is read.
fn inflate(codec: Compression, magic: u8, body: &[u8]) -> Result<Bytes, BatchError> {
    if codec == Compression::Lz4 && magic == 0 {
        let mut fixed = body.to_vec();
        fix_lz4_header_checksum(&mut fixed)?;
        return compression::decompress(codec, &fixed);
    }
    compression::decompress(codec, body)
}

fn fix_lz4_header_checksum(frame: &mut [u8]) -> Result<(), BatchError> {
    let corrupt = BatchError::Corrupt("LZ4 frame header too short");
    // magic (4), FLG, BD, optional content size (8, FLG bit 3), optional dict id (4, bit 0).
    let flags = *frame.get(4).ok_or(corrupt.clone())?;
    let mut checksum_at = 6;
    if flags & 0x08 != 0 {
        checksum_at += 8;
    }
    if flags & 0x01 != 0 {
        checksum_at += 4;
    }
    if frame.len() <= checksum_at {
        return Err(corrupt);
    }
    let hash = twox_hash::XxHash32::oneshot(0, &frame[4..checksum_at]);
    frame[checksum_at] = (hash >> 8) as u8;
    Ok(())
}

/// Rewrites stored v2 batches as a message set of `magic` (0 or 1) for an old fetch:
/// records from `fetch_offset` on, uncompressed, stopping before a message that would take
/// the set past `bytes_max`; the first message is always whole.
pub fn down_convert(
    stored: &[u8],
    magic: u8,
    fetch_offset: i64,
    bytes_max: usize,
) -> Result<Bytes, BatchError> {
    assert!(magic < 2, "down-conversion is to magic 0 or 1");
    let mut out = BytesMut::new();
    let mut rest = stored;
    'batches: while !rest.is_empty() {
        let header = BatchHeader::parse(rest)?;
        let total = header.total_bytes();
        if total > rest.len() {
            return Err(BatchError::Corrupt("stored batch beyond the read"));
        }
        let (batch, tail) = rest.split_at(total);
        rest = tail;
        if header.is_control() || header.last_offset() < fetch_offset {
            continue;
        }
        let inflated = records::inflate_records(batch, &header)?;
        let log_append_time = header.is_log_append_time();
        let mut full = false;
        records::walk_records(
            &inflated,
            header.record_count,
            OffsetDeltas::Increasing,
            |record| {
                let offset = header.base_offset + record.offset_delta as i64;
                if full || offset < fetch_offset {
                    return Ok(());
                }
                let before = out.len();
                write_message(
                    &mut out,
                    offset,
                    magic,
                    log_append_time,
                    header.record_timestamp(record.timestamp_delta),
                    record.key,
                    record.value,
                );
                if before > 0 && out.len() > bytes_max {
                    out.truncate(before);
                    full = true;
                }
                Ok(())
            },
        )?;
        if full {
            break 'batches;
        }
    }
    Ok(out.freeze())
}

/// Appends one uncompressed legacy message with its offset and size.
fn write_message(
    out: &mut BytesMut,
    offset: i64,
    magic: u8,
    log_append_time: bool,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) {
    let field = |f: Option<&[u8]>| 4 + f.map_or(0, <[u8]>::len);
    let size = MESSAGE_MIN_V0 - 8 + if magic == 1 { 8 } else { 0 } + field(key) + field(value);
    out.reserve(ENTRY_OVERHEAD + size);
    out.put_i64(offset);
    out.put_i32(size as i32);
    let crc_at = out.len();
    out.put_u32(0);
    out.put_u8(magic);
    out.put_u8(if magic == 1 && log_append_time {
        ATTR_LOG_APPEND_TIME
    } else {
        0
    });
    if magic == 1 {
        out.put_i64(timestamp);
    }
    for f in [key, value] {
        match f {
            Some(bytes) => {
                out.put_i32(bytes.len() as i32);
                out.put_slice(bytes);
            }
            None => out.put_i32(-1),
        }
    }
    let crc = crc32fast::hash(&out[crc_at + 4..]);
    out[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// offset, timestamp, key, value.
    type Entry<'a> = (i64, i64, Option<&'a [u8]>, Option<&'a [u8]>);
    /// offset delta, timestamp, key, value.
    type Record = (i32, i64, Option<Vec<u8>>, Option<Vec<u8>>);

    fn message_set(magic: u8, entries: &[Entry]) -> BytesMut {
        let mut out = BytesMut::new();
        for &(offset, ts, key, value) in entries {
            write_message(&mut out, offset, magic, false, ts, key, value);
        }
        out
    }

    fn wrap(magic: u8, codec: Compression, inner: &[u8], last_offset: i64) -> BytesMut {
        let body = compression::compress(codec, inner).unwrap();
        let mut out = BytesMut::new();
        write_message(
            &mut out,
            last_offset,
            magic,
            false,
            1_000,
            None,
            Some(&body),
        );
        // Set the codec bits, then reseal the CRC.
        let attributes_at = ENTRY_OVERHEAD + 5;
        out[attributes_at] |= codec as u8;
        let crc = crc32fast::hash(&out[ENTRY_OVERHEAD + 4..]);
        out[ENTRY_OVERHEAD..ENTRY_OVERHEAD + 4].copy_from_slice(&crc.to_be_bytes());
        out
    }

    fn records_of(batch: &[u8]) -> (BatchHeader, Vec<Record>) {
        let header = records::validate_produced(batch).unwrap().header;
        let inflated = records::inflate_records(batch, &header).unwrap();
        let mut out = Vec::new();
        records::walk_records(&inflated, header.record_count, OffsetDeltas::Dense, |r| {
            out.push((
                r.offset_delta,
                header.record_timestamp(r.timestamp_delta),
                r.key.map(<[u8]>::to_vec),
                r.value.map(<[u8]>::to_vec),
            ));
            Ok(())
        })
        .unwrap();
        (header, out)
    }

    #[test]
    fn magic_1_messages_become_one_v2_batch() {
        let set = message_set(
            1,
            &[(0, 5_000, Some(b"k"), Some(b"a")), (1, 4_000, None, None)],
        );
        assert!(is_legacy(&set));
        let batch = up_convert(&set).unwrap();
        assert!(!is_legacy(&batch));
        let (header, records) = records_of(&batch);
        assert_eq!(header.base_timestamp, 5_000);
        assert_eq!(header.max_timestamp, 5_000);
        assert_eq!(header.producer_id, -1);
        assert_eq!(
            records,
            vec![
                (0, 5_000, Some(b"k".to_vec()), Some(b"a".to_vec())),
                (1, 4_000, None, None)
            ]
        );
    }

    #[test]
    fn magic_0_messages_have_no_timestamp() {
        let set = message_set(0, &[(0, 0, None, Some(b"x"))]);
        let (header, records) = records_of(&up_convert(&set).unwrap());
        assert_eq!(header.max_timestamp, NO_TIMESTAMP);
        assert_eq!(records[0].1, NO_TIMESTAMP);
    }

    #[test]
    fn compressed_wrappers_keep_their_codec() {
        for codec in [Compression::Gzip, Compression::Snappy, Compression::Lz4] {
            for magic in [0u8, 1] {
                let inner = message_set(
                    magic,
                    &[(0, 7, None, Some(b"one")), (1, 8, None, Some(b"two"))],
                );
                let set = wrap(magic, codec, &inner, 1);
                let batch = up_convert(&set).unwrap();
                let (header, records) = records_of(&batch);
                assert_eq!(
                    header.compression().unwrap(),
                    codec,
                    "{codec:?} magic {magic}"
                );
                assert_eq!(records.len(), 2);
                assert_eq!(records[1].3.as_deref(), Some(&b"two"[..]));
            }
        }
    }

    #[test]
    fn magic_0_lz4_with_kafkas_old_header_checksum_is_read() {
        let inner = message_set(0, &[(0, 0, None, Some(b"old lz4"))]);
        let mut frame = compression::compress(Compression::Lz4, &inner).unwrap();
        // The 0.8/0.9 producers hashed the frame magic too.
        let checksum_at = 6 + if frame[4] & 0x08 != 0 { 8 } else { 0 };
        frame[checksum_at] = (twox_hash::XxHash32::oneshot(0, &frame[..checksum_at]) >> 8) as u8;
        let mut set = BytesMut::new();
        write_message(&mut set, 0, 0, false, 0, None, Some(&frame));
        set[ENTRY_OVERHEAD + 5] |= Compression::Lz4 as u8;
        let crc = crc32fast::hash(&set[ENTRY_OVERHEAD + 4..]);
        set[ENTRY_OVERHEAD..ENTRY_OVERHEAD + 4].copy_from_slice(&crc.to_be_bytes());
        let (_, records) = records_of(&up_convert(&set).unwrap());
        assert_eq!(records[0].3.as_deref(), Some(&b"old lz4"[..]));
    }

    #[test]
    fn bad_sets_are_refused() {
        let set = message_set(1, &[(0, 1, None, Some(b"a"))]);
        let mut bad_crc = set.clone();
        let last = bad_crc.len() - 1;
        bad_crc[last] ^= 1;
        assert!(matches!(up_convert(&bad_crc), Err(BatchError::Corrupt(_))));
        assert!(matches!(
            up_convert(&set[..set.len() - 1]),
            Err(BatchError::Corrupt(_))
        ));
        assert!(matches!(up_convert(&[]), Err(BatchError::Corrupt(_))));
        let nested = wrap(
            1,
            Compression::Gzip,
            &wrap(1, Compression::Gzip, &set, 0),
            0,
        );
        assert!(matches!(
            up_convert(&nested),
            Err(BatchError::InvalidRecord(_))
        ));
        let mismatched = wrap(0, Compression::Gzip, &set, 0);
        assert_eq!(
            up_convert(&mismatched),
            Err(BatchError::InvalidRecord(
                "Log record magic does not match outer magic"
            ))
        );
        let mut huge = set.clone();
        huge[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(up_convert(&huge), Err(BatchError::Corrupt(_))));
    }

    fn stored(first: i64, values: &[&[u8]]) -> BytesMut {
        let mut batch = records::build_batch(values, 9_000, (-1, -1, -1));
        records::assign_offset(&mut batch, first, 0);
        batch
    }

    fn read_back(set: &[u8]) -> Vec<(i64, u8, i64, Option<Vec<u8>>)> {
        let mut out = Vec::new();
        let mut rest = set;
        while !rest.is_empty() {
            let offset = i64::from_be_bytes(rest[..8].try_into().unwrap());
            let size = i32::from_be_bytes(rest[8..12].try_into().unwrap()) as usize;
            let m = parse_message(&rest[12..12 + size]).unwrap();
            out.push((offset, m.magic, m.timestamp, m.value.map(<[u8]>::to_vec)));
            rest = &rest[12 + size..];
        }
        out
    }

    #[test]
    fn stored_batches_are_served_as_old_messages_from_the_fetch_offset() {
        let mut log = stored(10, &[b"a", b"b", b"c"]);
        log.extend_from_slice(&stored(13, &[b"d"]));
        let v1 = read_back(&down_convert(&log, 1, 11, usize::MAX).unwrap());
        assert_eq!(
            v1.iter().map(|m| (m.0, m.1, m.2)).collect::<Vec<_>>(),
            vec![(11, 1, 9_000), (12, 1, 9_000), (13, 1, 9_000)]
        );
        let v0 = read_back(&down_convert(&log, 0, 0, usize::MAX).unwrap());
        assert_eq!(v0.len(), 4);
        assert!(v0.iter().all(|m| m.1 == 0 && m.2 == NO_TIMESTAMP));
        assert_eq!(v0[3].3.as_deref(), Some(&b"d"[..]));
        // A limit below one message still returns the first one whole, and no more.
        let one = read_back(&down_convert(&log, 1, 10, 1).unwrap());
        assert_eq!(one.len(), 1);
        // Converting back up gives the same records.
        let again = up_convert(&down_convert(&log, 1, 10, usize::MAX).unwrap()).unwrap();
        assert_eq!(records_of(&again).1.len(), 4);
    }
}
