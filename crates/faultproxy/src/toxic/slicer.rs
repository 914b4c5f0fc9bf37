//! `slicer`: data is passed on in small slices of about `average_size` ±
//! `size_variation` bytes, each followed by a pause of `delay` µs
//! (Toxiproxy's `toxics/slicer.go`) — what a client sees over a path that
//! fragments and trickles a reply. No byte is dropped or reordered; removing
//! the toxic passes what is left of a chunk at once, as Toxiproxy does when
//! its slicer is interrupted.
//!
//! Toxiproxy halves a chunk recursively until every piece is within
//! `size_variation` of `average_size`; here each slice is cut from the head
//! of the chunk with a size drawn uniformly in `average_size` ±
//! `size_variation`, and a rest no longer than `average_size +
//! size_variation` is passed whole. Both give slices in the same range.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{ChunkView, MAX_WAIT_MS, StageState, Toxic, Verdict};
use crate::error::{Error, Result};
use crate::splitmix::{mix, unit};

/// Slice sizes and the pause after each slice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Slicer {
    /// Average slice, bytes; 0 passes chunks unsliced.
    pub average_size: u64,
    /// Slices vary by up to ± this many bytes; at most `average_size`.
    pub size_variation: u64,
    /// Pause after each slice, **microseconds** (Toxiproxy's unit).
    pub delay: u64,
}

impl Slicer {
    /// The size of the next slice for a draw `random` in 0..1: uniform in
    /// `average_size` ± `size_variation`, never 0.
    pub fn slice_size(&self, random: f64) -> u64 {
        let spread = self.size_variation.saturating_mul(2).saturating_add(1);
        let offset = ((random * spread as f64) as u64).min(spread - 1);
        (self.average_size.saturating_sub(self.size_variation))
            .saturating_add(offset)
            .max(1)
    }
}

impl Toxic for Slicer {
    fn validate(&self) -> Result<()> {
        // `delay` is in microseconds.
        if self.delay > MAX_WAIT_MS.saturating_mul(1000) {
            return Err(Error::InvalidValue(format!(
                "slicer: delay must be at most {} µs (a day), got {}",
                MAX_WAIT_MS.saturating_mul(1000),
                self.delay
            )));
        }
        if self.size_variation > self.average_size {
            return Err(Error::InvalidValue(format!(
                "slicer: size_variation ({}) must not exceed average_size ({})",
                self.size_variation, self.average_size
            )));
        }
        Ok(())
    }

    fn on_chunk(&self, chunk: ChunkView, state: &mut StageState, now: Instant) -> Verdict {
        if self.average_size == 0 {
            return Verdict::Pass;
        }
        if let Some(free) = state.next_free
            && now < free
        {
            return Verdict::WaitUntil(free);
        }
        let len = chunk.len as u64;
        let n = if len <= self.average_size.saturating_add(self.size_variation) {
            len
        } else {
            // The chunk's own draw, varied by how far the link has got, so
            // the slices of one chunk differ and re-deciding is stable.
            let random = unit(mix(chunk.random.to_bits() ^ mix(state.bytes)));
            self.slice_size(random).min(len)
        };
        state.bytes = state.bytes.saturating_add(n);
        if self.delay > 0 {
            state.next_free = Some(now + Duration::from_micros(self.delay));
        }
        if n == len {
            Verdict::Pass
        } else {
            Verdict::PassSome(n as usize)
        }
    }
}
