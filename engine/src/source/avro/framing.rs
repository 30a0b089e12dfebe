//! The Confluent wire format around an Avro datum: magic byte 0, then the writer
//! schema's global id as 4 big-endian bytes, then the datum.

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
}
