//! The Confluent wire format around a record value: magic byte 0, then the writer
//! schema's global id as 4 big-endian bytes, then the datum (Avro, JSON). Protobuf puts
//! the message-index path between id and message: which message of the schema's
//! `.proto` file was written, as zigzag varints (the count, then the indexes, outermost
//! first), with the first message written as the single byte 0.

/// Bytes before the datum.
pub const HEADER_LEN: usize = 5;

/// The schema id of a framed value, or why the value is not framed.
pub fn schema_id(value: &[u8]) -> Result<u32, String> {
    let Some(header) = value.get(..HEADER_LEN) else {
        return Err(format!(
            "the value has {} bytes, too few for the Confluent wire format (a 5-byte header, then the datum)",
            value.len()
        ));
    };
    if header[0] != 0 {
        return Err(format!(
            "the value starts with byte 0x{:02x}, not the Confluent wire format's magic byte 0",
            header[0]
        ));
    }
    Ok(u32::from_be_bytes([
        header[1], header[2], header[3], header[4],
    ]))
}

/// Longest message-index path read (nesting deeper than this is not a real schema).
const MAX_PATH: usize = 64;

/// The message-index path of a framed Protobuf value (after its 5-byte header) and where
/// the message starts, or why the path cannot be read.
pub fn message_path(value: &[u8]) -> Result<(Vec<u32>, usize), String> {
    let mut at = HEADER_LEN;
    let count = zigzag(value, &mut at)?;
    if count == 0 {
        return Ok((vec![0], at));
    }
    let count = usize::try_from(count)
        .ok()
        .filter(|c| (1..=MAX_PATH).contains(c))
        .ok_or_else(|| {
            format!(
                "the Protobuf message-index path claims {count} indexes; it must be 1 to {MAX_PATH}"
            )
        })?;
    let mut path = Vec::with_capacity(count);
    for _ in 0..count {
        let index = zigzag(value, &mut at)?;
        path.push(
            u32::try_from(index)
                .map_err(|_| format!("the Protobuf message index {index} is negative"))?,
        );
    }
    Ok((path, at))
}

/// A zigzag-encoded varint at `*at`, advancing past it.
fn zigzag(value: &[u8], at: &mut usize) -> Result<i64, String> {
    let raw = varint(value, at).ok_or_else(|| {
        "the Protobuf message-index path is cut off or not a varint after the 5-byte header"
            .to_string()
    })?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

/// A base-128 varint at `*at`, advancing past it; None when cut off or over 10 bytes.
pub fn varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut out = 0u64;
    for shift in (0..70).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_gives_the_schema_id() {
        assert_eq!(schema_id(&[0, 0, 0, 1, 2, 42]), Ok(258));
        assert_eq!(schema_id(&[0, 0, 0, 0, 7]), Ok(7));
    }

    #[test]
    fn bad_framing_is_described() {
        let short = schema_id(&[0, 0, 1]).expect_err("short");
        assert!(short.contains("3 bytes, too few"), "{short}");
        let json = schema_id(b"{\"id\": 1}").expect_err("json");
        assert!(json.contains("byte 0x7b"), "{json}");
    }

    #[test]
    fn message_paths_are_zigzag_varints() {
        // The first message: one 0 byte.
        assert_eq!(message_path(&[0, 0, 0, 0, 1, 0, 8, 1]), Ok((vec![0], 6)));
        // Two indexes [1, 2]: count 2 → 4, 1 → 2, 2 → 4 in zigzag.
        assert_eq!(
            message_path(&[0, 0, 0, 0, 1, 4, 2, 4, 8]),
            Ok((vec![1, 2], 8))
        );
        // Index 64 is zigzag 128: a two-byte varint.
        assert_eq!(
            message_path(&[0, 0, 0, 0, 1, 2, 0x80, 0x01]),
            Ok((vec![64], 8))
        );
    }

    #[test]
    fn bad_message_paths_are_described() {
        let cut = message_path(&[0, 0, 0, 0, 1]).expect_err("cut off");
        assert!(cut.contains("cut off"), "{cut}");
        let negative = message_path(&[0, 0, 0, 0, 1, 1]).expect_err("count -1");
        assert!(negative.contains("claims -1 indexes"), "{negative}");
        let index = message_path(&[0, 0, 0, 0, 1, 2, 1]).expect_err("index -1");
        assert!(index.contains("index -1 is negative"), "{index}");
    }
}
