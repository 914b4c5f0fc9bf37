//! The latency histograms inside a JSON report, so that reports from
//! several generators merge exactly (`chaoslab load merge`): HdrHistogram's
//! V2 + DEFLATE encoding in base64, the form of HdrHistogram's interval
//! logs, readable by its Java, Python and Go tools.
//!
//! Decoding reads files a user hands us, so it trusts nothing: the text and
//! the inflated bytes are size-capped before anything is allocated from
//! them, the histogram must have this generator's bounds and precision, and
//! inputs the `hdrhistogram` decoder would mishandle are refused first.

use std::io::Read;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flate2::read::ZlibDecoder;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

use crate::error::LoadError;

/// Lowest latency recorded, µs.
pub const LOWEST_US: u64 = 1;
/// Highest latency recorded exactly: one hour (longer ones saturate).
pub const HIGHEST_US: u64 = 3_600_000_000;
/// 3 significant digits: every percentile within 0.1 %.
pub const SIGFIG: u8 = 3;

/// Longest base64 text accepted (a full histogram of these bounds is
/// about 30 KiB uncompressed).
const MAX_TEXT: usize = 4 << 20;
/// Most bytes inflated.
const MAX_INFLATED: u64 = 4 << 20;
/// HdrHistogram's cookies (V2 encoding, 8-byte counters flag).
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;
/// V2 header: cookie, payload length, normalizing offset, digits, lowest,
/// highest, integer-to-double ratio.
const V2_HEADER: usize = 4 + 4 + 4 + 4 + 8 + 8 + 8;

/// An empty histogram with the generator's bounds.
pub fn empty() -> Result<Histogram<u64>, LoadError> {
    Histogram::new_with_bounds(LOWEST_US, HIGHEST_US, SIGFIG)
        .map_err(|e| LoadError::Histogram(e.to_string()))
}

/// `hist` as base64 text.
pub fn encode(hist: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    match V2DeflateSerializer::new().serialize(hist, &mut bytes) {
        Ok(_) => STANDARD.encode(bytes),
        // Serialising into memory only fails on a histogram too large to
        // describe, which these bounds rule out.
        Err(_) => String::new(),
    }
}

/// Reads a histogram written by [`encode`]; why not, in words.
pub fn decode(text: &str) -> Result<Histogram<u64>, String> {
    if text.len() > MAX_TEXT {
        return Err(format!("histogram text over {MAX_TEXT} bytes"));
    }
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| format!("histogram is not base64: {e}"))?;
    let (cookie, rest) = split_u32(&bytes).ok_or("histogram shorter than its header")?;
    if cookie != V2_COMPRESSED_COOKIE {
        return Err(format!(
            "not an HdrHistogram V2 compressed histogram (cookie {cookie:#x})"
        ));
    }
    let (len, rest) = split_u32(rest).ok_or("histogram shorter than its header")?;
    if len as usize != rest.len() {
        return Err(format!(
            "histogram says {len} compressed bytes, holds {}",
            rest.len()
        ));
    }
    let mut inflated = Vec::new();
    ZlibDecoder::new(rest)
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut inflated)
        .map_err(|e| format!("histogram does not inflate: {e}"))?;
    if inflated.len() as u64 > MAX_INFLATED {
        return Err(format!("histogram inflates to over {MAX_INFLATED} bytes"));
    }
    check_v2(&inflated)?;
    Deserializer::new()
        .deserialize(&mut inflated.as_slice())
        .map_err(|e| format!("histogram does not decode: {e:?}"))
}

/// Refuses what the decoder would allocate from or panic on: a payload
/// length beyond the bytes present, bounds other than ours, and a varint
/// of 9 bytes (a count of 2^56 or more; the decoder overflows negating the
/// largest one).
fn check_v2(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < V2_HEADER {
        return Err("histogram shorter than its header".into());
    }
    let u32_at =
        |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[i..i + 8]);
        u64::from_be_bytes(b)
    };
    if u32_at(0) != V2_COOKIE {
        return Err("not an HdrHistogram V2 histogram inside".into());
    }
    let payload = u32_at(4) as usize;
    if payload != bytes.len() - V2_HEADER {
        return Err(format!(
            "histogram says {payload} payload bytes, holds {}",
            bytes.len() - V2_HEADER
        ));
    }
    let (digits, low, high) = (u32_at(12), u64_at(16), u64_at(24));
    if (digits, low, high) != (u32::from(SIGFIG), LOWEST_US, HIGHEST_US) {
        return Err(format!(
            "histogram of {low}..{high} µs with {digits} digits; chaoslab load writes \
             {LOWEST_US}..{HIGHEST_US} µs with {SIGFIG}"
        ));
    }
    if bytes[V2_HEADER..].windows(8).any(|w| w == [0xff; 8]) {
        return Err("histogram holds a count too large to be real".into());
    }
    Ok(())
}

fn split_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<4>()?;
    Some((u32::from_be_bytes(*head), rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_exactly() {
        let mut h = empty().unwrap();
        for v in [1, 2, 999, 1000, 1001, 123_456, HIGHEST_US, HIGHEST_US * 2] {
            h.saturating_record(v);
        }
        let back = decode(&encode(&h)).expect("decodes");
        assert_eq!(back, h);
        assert_eq!(back.len(), 8);
        let empty_back = decode(&encode(&empty().unwrap())).expect("decodes");
        assert!(empty_back.is_empty());
    }

    #[test]
    fn foreign_bounds_and_garbage_are_named() {
        let other = Histogram::<u64>::new_with_bounds(1, 1000, 2).unwrap();
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&other, &mut bytes)
            .unwrap();
        let err = decode(&STANDARD.encode(bytes)).unwrap_err();
        assert!(err.contains("1..1000"), "{err}");
        assert!(decode("%%%").unwrap_err().contains("base64"));
        assert!(decode("").unwrap_err().contains("shorter"));
        assert!(
            decode(&"A".repeat(MAX_TEXT + 4))
                .unwrap_err()
                .contains("over")
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any text: a histogram or a reason, never a panic.
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,200}") {
            let _ = decode(&text);
        }

        /// Any bytes, raw or behind a valid compressed header.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&STANDARD.encode(&bytes));
            let mut framed = V2_COMPRESSED_COOKIE.to_be_bytes().to_vec();
            framed.extend((bytes.len() as u32).to_be_bytes());
            framed.extend(&bytes);
            let _ = decode(&STANDARD.encode(&framed));
        }

        /// A real histogram with a byte flipped inside its inflated form.
        #[test]
        fn corrupted_payloads_never_panic(
            values in proptest::collection::vec(1u64..HIGHEST_US, 1..50),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut h = empty().unwrap();
            for v in &values { h.saturating_record(*v); }
            let mut raw = Vec::new();
            hdrhistogram::serialization::V2Serializer::new().serialize(&h, &mut raw).unwrap();
            let i = at.index(raw.len());
            raw[i] = byte;
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut z, &raw).unwrap();
            let compressed = z.finish().unwrap();
            let mut framed = V2_COMPRESSED_COOKIE.to_be_bytes().to_vec();
            framed.extend((compressed.len() as u32).to_be_bytes());
            framed.extend(&compressed);
            let _ = decode(&STANDARD.encode(&framed));
        }
    }
}
