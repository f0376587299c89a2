//! Where the workload's randomness comes from.
//!
//! Write command n draws from a small [`SplitMix64`] seeded with two words of the ChaCha8
//! stream of the run's seed at a position derived from n alone: stream `n / 16`, words
//! `4 * (n % 16) .. 4 * (n % 16) + 4`. So command n is a pure function of (seed, n), and a
//! writer that handles consecutive LSNs pays for one ChaCha8 refill (64 words) per 16 commands.
//! Reads draw from a ChaCha8 stream per writer (`READ_STREAM_BASE + writer`), sequentially.

use rand::{Rng, SeedableRng, TryRng};
use rand_chacha::ChaCha8Rng;

/// Write commands per ChaCha8 refill (64 u32 words, 4 per command).
const COMMANDS_PER_WINDOW: u64 = 16;

/// First stream number used for reads; write windows stay far below it.
pub const READ_STREAM_BASE: u64 = 1 << 63;

/// The ChaCha8 key for `seed`: the seed's SplitMix64 expansion, so nearby seeds give
/// unrelated keys.
pub fn chacha_for(seed: u64) -> ChaCha8Rng {
    let mut sm = SplitMix64::new(seed);
    let mut key = [0u8; 32];
    for chunk in key.chunks_exact_mut(8) {
        chunk.copy_from_slice(&sm.next_u64().to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

/// Derives the per-command generator of write command n; caches one ChaCha8 window.
#[derive(Debug, Clone)]
pub struct CommandSeeds {
    chacha: ChaCha8Rng,
    window: u64,
    words: [u64; 2 * COMMANDS_PER_WINDOW as usize],
}

impl CommandSeeds {
    /// Seeds for the run seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        CommandSeeds {
            chacha: chacha_for(seed),
            window: u64::MAX,
            words: [0; 32],
        }
    }

    /// The generator for write command `n` (the same for every call with the same seed and n).
    #[inline]
    pub fn for_command(&mut self, n: u64) -> SplitMix64 {
        let window = n / COMMANDS_PER_WINDOW;
        if window != self.window {
            self.chacha.set_stream(window);
            self.chacha.set_word_pos(0);
            for w in &mut self.words {
                *w = self.chacha.next_u64();
            }
            self.window = window;
        }
        let i = (n % COMMANDS_PER_WINDOW) as usize * 2;
        SplitMix64::from_words(self.words[i], self.words[i + 1])
    }
}

/// The sequential read generator of writer `writer`.
pub fn read_rng(seed: u64, writer: u32) -> ChaCha8Rng {
    let mut rng = chacha_for(seed);
    rng.set_stream(READ_STREAM_BASE + u64::from(writer));
    rng
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny and fast; good enough for drawing the parts of
/// one command once seeded from ChaCha8.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
    mix: u64,
}

impl SplitMix64 {
    /// A generator with `state`.
    pub fn new(state: u64) -> Self {
        SplitMix64 { state, mix: 0 }
    }

    /// A generator from two random words (the second whitens every output).
    pub fn from_words(a: u64, b: u64) -> Self {
        SplitMix64 { state: a, mix: b }
    }
}

impl TryRng for SplitMix64 {
    type Error = std::convert::Infallible;

    #[inline]
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok((self.try_next_u64()? >> 32) as u32)
    }

    #[inline]
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state ^ self.mix;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Ok(z ^ (z >> 31))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        let mut chunks = dst.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.try_next_u64()?.to_le_bytes());
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let w = self.try_next_u64()?.to_le_bytes();
            rest.copy_from_slice(&w[..rest.len()]);
        }
        Ok(())
    }
}

/// Fills `buf` with bytes from `rng` (helper so callers need not import the trait).
pub fn fill(rng: &mut impl Rng, buf: &mut [u8]) {
    rng.fill_bytes(buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_seeds_do_not_depend_on_order() {
        let mut a = CommandSeeds::new(7);
        let mut b = CommandSeeds::new(7);
        let forward: Vec<u64> = (1..100).map(|n| a.for_command(n).next_u64()).collect();
        let backward: Vec<u64> = (1..100)
            .rev()
            .map(|n| b.for_command(n).next_u64())
            .collect();
        let backward: Vec<u64> = backward.into_iter().rev().collect();
        assert_eq!(forward, backward);
    }

    #[test]
    fn different_commands_and_seeds_differ() {
        let mut a = CommandSeeds::new(7);
        let mut b = CommandSeeds::new(8);
        assert_ne!(a.for_command(1).next_u64(), a.for_command(2).next_u64());
        assert_ne!(a.for_command(1).next_u64(), b.for_command(1).next_u64());
    }
}
