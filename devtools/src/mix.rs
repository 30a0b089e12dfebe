//! The generators' hash: a record's fields follow from its seed and id alone, so a
//! topic can be produced again record for record.

/// A 64-bit finaliser (MurmurHash3's): nearby ids give unrelated values.
pub(crate) fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}
