//! bf16 panels for [`super::PackedLinear`]: under `weights = "int8"`, the one product int8
//! loses too much on (the one after GELU) runs in bf16 for batches of at least
//! [`super::AMX_MIN_ROWS`] rows where the CPU has Intel AMX-BF16 — weights and activations
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

/// Whether bf16 panels can run here: AMX-BF16 granted (see [`super::int8::dot`]).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        super::int8::dot() == super::int8::Dot::Amx && super::x86_amx::has_amx_bf16()
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
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

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::tests::pseudo;
    use super::super::{Epilogue, PackedLinear, WeightFormat};
    use super::*;

    /// Against the f32 product of the same bf16-rounded inputs, from the first size that takes
    /// them, with partial last tiles and a partial last panel.
    #[test]
    fn bf16_products_match_f32_of_the_rounded_inputs() {
        if !available() {
            // Only CPUs without AMX-BF16 (or without the tile state) skip this.
            assert!(
                !(super::super::x86_amx::has_amx_bf16()
                    && super::super::int8::dot() == super::super::int8::Dot::Amx)
            );
            return;
        }
        for &(n, k) in &[(100usize, 64usize), (32, 384), (40, 1536)] {
            let w = pseudo(n * k, 51);
            let b = pseudo(n, 52);
            let wr: Vec<f32> = w.iter().map(|&v| from_bf16(to_bf16(v))).collect();
            let exact = PackedLinear::new(&wr, &b, n, k, WeightFormat::F32);
            let lin = PackedLinear::new(&w, &b, n, k, WeightFormat::F32).with_large_bf16(&w);
            for m in [64, 65, 80, 113] {
                let x = pseudo(m * k, 53 + m as u32);
                let xr: Vec<f32> = x.iter().map(|&v| from_bf16(to_bf16(v))).collect();
                let mut want = vec![0f32; m * n];
                exact.forward(&xr, m, &mut want, Epilogue::BiasGelu);
                let mut got = vec![0f32; m * n];
                lin.forward(&x, m, &mut got, Epilogue::BiasGelu);
                for (g, e) in got.iter().zip(&want) {
                    assert!(
                        (g - e).abs() < 1e-4 * (1.0 + e.abs()),
                        "m={m} n={n} k={k}: {g} vs {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        // 1 + 2^-8 is halfway between two bf16 values: ties go to the even one (1.0).
        assert_eq!(to_bf16(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(to_bf16(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
    }
}
