//! bf16 panels for [`super::PackedLinear`]: under `weights = "int8"`, the one product int8
//! loses too much on (the one after GELU) runs in bf16 for batches of at least
//! [`super::AMX_MIN_ROWS`] rows where the CPU has Intel AMX-BF16
//! ([`super::int8::bf16_available`]) — weights and activations
//! rounded to bf16 (8 bits of mantissa, f32's range), multiplied in pairs into f32 sums by
//! `tdpbf16ps` ([`super::x86_amx`]). Shorter products, and other CPUs, keep its f16 panels.
//!
//! Panels keep the f32 layout's 32 columns with the inputs in pairs: a pair row is 32 columns
//! x 2 values, 64 `u16` (128 bytes), the layout the tile instruction reads.

use super::NR;

/// `u16`s of one pair row of a panel.
pub(crate) const PAIR: usize = NR * 2;

/// f32 to bf16 bits, rounding to nearest even (as `vcvtneps2bf16`; inputs are finite).
pub(crate) fn to_bf16(v: f32) -> u16 {
    let b = v.to_bits();
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}

#[cfg(test)]
pub(crate) fn from_bf16(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// Weights of one [`super::PackedLinear`] as bf16 pairs.
#[derive(Clone)]
pub(crate) struct Panels {
    /// `panels x pairs x PAIR`.
    pub(crate) data: Vec<u16>,
    /// Pairs of inputs: `ceil(k / 2)`.
    pub(crate) pairs: usize,
}

impl Panels {
    /// `w` is `[n, k]` row-major.
    pub fn pack(w: &[f32], n: usize, k: usize) -> Self {
        let np = n.div_ceil(NR);
        let pairs = k.div_ceil(2);
        let mut data = vec![0u16; np * pairs * PAIR];
        for col in 0..n {
            let (p, j) = (col / NR, col % NR);
            for kk in 0..k {
                data[(p * pairs + kk / 2) * PAIR + j * 2 + kk % 2] = to_bf16(w[col * k + kk]);
            }
        }
        Self { data, pairs }
    }
}
