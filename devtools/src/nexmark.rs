//! Nexmark events (bids, auctions, persons) as JSON, a pure function of seed and index.
//!
//! The shapes and proportions follow the Nexmark benchmark: a bid names an auction and a
//! bidder, a price in cents, a channel, a URL and a time; auctions and persons are the
//! less frequent dimension streams. A bid is 140–155 bytes of JSON.

use std::fmt::Write as _;

/// 2026-11-01T00:00:00Z in milliseconds.
const BASE_MS: i64 = 1_793_491_200_000;
/// Events per simulated millisecond.
const EVENTS_PER_MS: u64 = 10;
const CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
const CITIES: [&str; 8] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
];
const STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const FIRST: [&str; 6] = ["Peter", "Paul", "Luke", "John", "Saul", "Vicky"];
const LAST: [&str; 6] = ["Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton"];

fn timestamp(id: u64, out: &mut String) {
    let ms = BASE_MS + (id / EVENTS_PER_MS) as i64;
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    let _ = write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%S%.3fZ"));
}

/// One Nexmark bid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bid {
    /// The auction bid on.
    pub auction: u64,
    /// Who bids.
    pub bidder: u64,
    /// Price in cents.
    pub price: u64,
    /// Where the bid came from.
    pub channel: &'static str,
    /// The bid's page.
    pub url: String,
    /// When, epoch milliseconds.
    pub date_time_ms: i64,
}

/// Bid `id`.
pub fn bid(seed: u64, id: u64) -> Bid {
    let h = crate::mix::mix(seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    Bid {
        auction: 1000 + (h % 10_000),
        bidder: 1000 + ((h >> 16) % 100_000),
        price: 100 + ((h >> 32) % 1_000_000),
        channel: CHANNELS[((h >> 8) % CHANNELS.len() as u64) as usize],
        url: format!("https://nexmark.com/{:x}?q={}", h & 0xffff, (h >> 40) % 100),
        date_time_ms: BASE_MS + (id / EVENTS_PER_MS) as i64,
    }
}

/// Writes bid `id` as JSON into `out`.
pub fn bid_json(seed: u64, id: u64, out: &mut String) {
    out.clear();
    let b = bid(seed, id);
    let _ = write!(
        out,
        r#"{{"auction":{},"bidder":{},"price":{},"channel":"{}","url":"{}","dateTime":""#,
        b.auction, b.bidder, b.price, b.channel, b.url,
    );
    timestamp(id, out);
    out.push_str(r#"","extra":""}"#);
}

/// Writes auction `id` as JSON into `out`.
pub fn auction_json(seed: u64, id: u64, out: &mut String) {
    out.clear();
    let h = crate::mix::mix(seed ^ id.wrapping_mul(0xc2b2_ae3d_27d4_eb4f));
    let initial = 100 + h % 10_000;
    let _ = write!(
        out,
        r#"{{"id":{},"itemName":"item-{:x}","description":"lot {} of the day","initialBid":{initial},"reserve":{},"dateTime":""#,
        1000 + id,
        h & 0xfffff,
        h % 97,
        initial + (h >> 20) % 5_000,
    );
    timestamp(id, out);
    let _ = write!(
        out,
        r#"","expires":"2026-12-01T00:00:00.000Z","seller":{},"category":{},"extra":""}}"#,
        1000 + (h >> 8) % 100_000,
        10 + (h >> 30) % 5,
    );
}

/// Writes person `id` as JSON into `out`.
pub fn person_json(seed: u64, id: u64, out: &mut String) {
    out.clear();
    let h = crate::mix::mix(seed ^ id.wrapping_mul(0x1656_67b1_9e37_79f9));
    let first = FIRST[(h % FIRST.len() as u64) as usize];
    let last = LAST[((h >> 8) % LAST.len() as u64) as usize];
    let _ = write!(
        out,
        r#"{{"id":{},"name":"{first} {last}","emailAddress":"{}@example.com","creditCard":"{:04} {:04} {:04} {:04}","city":"{}","state":"{}","dateTime":""#,
        1000 + id,
        first.to_ascii_lowercase(),
        h % 10_000,
        (h >> 14) % 10_000,
        (h >> 28) % 10_000,
        (h >> 42) % 10_000,
        CITIES[((h >> 16) % CITIES.len() as u64) as usize],
        STATES[((h >> 24) % STATES.len() as u64) as usize],
    );
    timestamp(id, out);
    out.push_str(r#"","extra":""}"#);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_json_of_the_expected_size() {
        let mut s = String::new();
        bid_json(1, 12345, &mut s);
        let v: serde_json::Value = serde_json::from_str(&s).expect("bid JSON");
        assert!(v["price"].as_u64().is_some(), "{s}");
        assert!((100..=160).contains(&s.len()), "{} bytes: {s}", s.len());
        auction_json(1, 7, &mut s);
        serde_json::from_str::<serde_json::Value>(&s).expect("auction JSON");
        person_json(1, 7, &mut s);
        serde_json::from_str::<serde_json::Value>(&s).expect("person JSON");
    }
}
