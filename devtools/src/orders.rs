//! The orders the quickstart and the tests produce: deterministic from a seed, a
//! partition and an index, so that a topic can be rebuilt record for record up to the
//! offsets a table has committed.

use std::fmt::Write;

const CURRENCIES: [&str; 6] = ["EUR", "usd", " GBP", "eur ", "USD", "gbp"];
/// 2026-11-01T00:00:00Z in milliseconds.
const BASE_MS: i64 = 1_793_491_200_000;

/// One generated order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    /// `index * partitions + partition + 1`.
    pub id: u64,
    /// 0..10 000.
    pub customer: u64,
    /// The amount in cents (about one order in 50 is not positive).
    pub cents: i64,
    /// Currency code, sometimes in lower case or padded (for jobs to clean).
    pub currency: &'static str,
    /// Order time, epoch milliseconds.
    pub ts_ms: i64,
}

/// Order `index` of `partition`.
pub fn order(seed: u64, partitions: u32, partition: u32, index: u64) -> Order {
    let id = index * u64::from(partitions) + u64::from(partition) + 1;
    let h = crate::mix::mix(seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    // About one order in 50 has a non-positive amount, which jobs usually filter out.
    let cents = if h.is_multiple_of(50) {
        -(((h >> 8) % 1000) as i64)
    } else {
        ((h >> 8) % 100_000) as i64 + 1
    };
    Order {
        id,
        customer: h % 10_000,
        cents,
        currency: CURRENCIES[((h >> 24) % CURRENCIES.len() as u64) as usize],
        ts_ms: BASE_MS + (id as i64) * 37,
    }
}

/// Writes the JSON of order `index` of `partition` into `out`; returns its order id.
pub fn order_json(seed: u64, partitions: u32, partition: u32, index: u64, out: &mut String) -> u64 {
    out.clear();
    let o = order(seed, partitions, partition, index);
    let secs = o.ts_ms.div_euclid(1000);
    let ts = chrono::DateTime::from_timestamp(secs, (o.ts_ms.rem_euclid(1000) as u32) * 1_000_000)
        .unwrap_or_default();
    let cents = o.cents;
    let _ = write!(
        out,
        r#"{{"order_id":{},"customer_id":{},"amount":{}.{:02},"currency":"{}","order_ts":"{}"}}"#,
        o.id,
        o.customer,
        if cents < 0 {
            format!("-{}", (-cents) / 100)
        } else {
            (cents / 100).to_string()
        },
        cents.abs() % 100,
        o.currency,
        ts.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
    );
    o.id
}
