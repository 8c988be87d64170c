//! Element-wise steps of a BERT layer (GELU, softmax, layer norm) written so they vectorise,
//! and the f32 <-> IEEE half conversions used for packed weights.

use super::isa;
#[cfg(target_arch = "x86_64")]
use super::Isa;

/// Round an f32 to the nearest IEEE half (ties to even), as bits.
pub(crate) fn f32_to_f16(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let man = b & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        let m = man | 0x80_0000;
        let shift = (14 - e) as u32;
        let mut r = m >> shift;
        let rem = m & ((1 << shift) - 1);
        let half = 1 << (shift - 1);
        if rem > half || (rem == half && r & 1 == 1) {
            r += 1;
        }
        return sign | r as u16;
    }
    let mut r = ((e as u32) << 10) | (man >> 13);
    let rem = man & 0x1fff;
    if rem > 0x1000 || (rem == 0x1000 && r & 1 == 1) {
        r += 1; // a carry into the exponent is still the right rounding
    }
    sign | r as u16
}

/// Widen IEEE half bits to f32 (exact).
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    let v = match exp {
        0 => {
            let magnitude = man as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -magnitude } else { magnitude };
        }
        0x1f => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 112) << 23) | (man << 13),
    };
    f32::from_bits(v)
}

/// `e^x` for f32 to about 2 ulp, written branch-free so it vectorises.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + MAGIC) - MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r / 5040.0))))));
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

/// erf(x), absolute error below 2e-7 (Abramowitz & Stegun 7.1.26 refined with 7.1.28 style
/// coefficients is not needed at f32: 7.1.26 is 1.5e-7).
#[inline(always)]
pub(crate) fn erf_f32(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A1: f32 = 0.254_829_6;
    const A2: f32 = -0.284_496_74;
    const A3: f32 = 1.421_413_7;
    const A4: f32 = -1.453_152_1;
    const A5: f32 = 1.061_405_4;
    let a = x.abs();
    let t = 1.0 / (1.0 + P * a);
    let y = 1.0 - (((((A5 * t + A4) * t) + A3) * t + A2) * t + A1) * t * exp_f32(-a * a);
    y.copysign(x)
}

/// BERT's exact GELU: `x/2 (1 + erf(x/sqrt 2))`.
#[inline(always)]
pub(crate) fn gelu_inplace(v: &mut [f32]) {
    for x in v.iter_mut() {
        *x = 0.5 * *x * (1.0 + erf_f32(*x * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// In-place softmax of one row.
#[inline(always)]
pub(crate) fn softmax_inplace(v: &mut [f32]) {
    // Three separate passes, each of which vectorises: a running max or sum across the
    // exponentials in one loop would keep the whole loop scalar.
    let max = max16(v);
    for x in v.iter_mut() {
        *x = exp_f32(*x - max);
    }
    let inv = 1.0 / sum(v);
    for x in v.iter_mut() {
        *x *= inv;
    }
}

/// Largest value, with 16 independent lanes so it vectorises (NaN-free input).
#[inline(always)]
pub(crate) fn max16(v: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 16];
    let chunks = v.chunks_exact(16);
    let rest = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
    for c in chunks {
        for i in 0..16 {
            acc[i] = if c[i] > acc[i] { c[i] } else { acc[i] };
        }
    }
    acc.iter().fold(rest, |a, &b| if b > a { b } else { a })
}

/// Sum with 16 independent lanes, so it vectorises without reassociation flags.
#[inline(always)]
pub(crate) fn sum(v: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let chunks = v.chunks_exact(16);
    let rest: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for i in 0..16 {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + rest
}

/// In-place layer norm of each `dim`-wide row of `x`.
#[inline(always)]
pub(crate) fn layer_norm_rows(x: &mut [f32], dim: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    for row in x.chunks_exact_mut(dim) {
        let mean = sum(row) / dim as f32;
        let mut acc = [0f32; 16];
        let chunks = row.chunks_exact(16);
        let rest: f32 = chunks
            .remainder()
            .iter()
            .map(|v| (v - mean) * (v - mean))
            .sum();
        for c in chunks {
            for i in 0..16 {
                acc[i] += (c[i] - mean) * (c[i] - mean);
            }
        }
        let var = (acc.iter().sum::<f32>() + rest) / dim as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

/// [`layer_norm_rows`] compiled for the widest vector unit available.
pub(crate) fn layer_norm(x: &mut [f32], dim: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    match isa() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` returns Avx512 only after detecting avx512f, avx2 and fma at run time;
        // the body is safe Rust (slices, checked indexing), only compiled for those features.
        Isa::Avx512 => unsafe { layer_norm_avx512(x, dim, gamma, beta, eps) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Avx2 only after detecting avx2 and fma; safe body as above.
        Isa::Avx2 => unsafe { layer_norm_avx2(x, dim, gamma, beta, eps) },
        _ => layer_norm_rows(x, dim, gamma, beta, eps),
    }
}

/// # Safety
/// The CPU must support avx512f, avx2 and fma.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn layer_norm_avx512(x: &mut [f32], dim: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    layer_norm_rows(x, dim, gamma, beta, eps)
}

/// # Safety
/// The CPU must support avx2 and fma.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn layer_norm_avx2(x: &mut [f32], dim: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    layer_norm_rows(x, dim, gamma, beta, eps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_and_exp_match_libm() {
        for i in -4000..4000 {
            let x = i as f32 / 500.0;
            let e = exp_f32(x);
            assert!((e - x.exp()).abs() <= 3e-7 * x.exp(), "exp({x})");
            let mut g = [x];
            gelu_inplace(&mut g);
            let want = 0.5
                * x as f64
                * (1.0 + candle_core::cpu::erf::erf_f64(x as f64 / std::f64::consts::SQRT_2));
            assert!(
                (g[0] as f64 - want).abs() < 1e-6,
                "gelu({x}) {} vs {want}",
                g[0]
            );
        }
    }

    #[test]
    fn half_precision_round_trips() {
        for &(x, bits) in &[
            (0.0f32, 0u16),
            (1.0, 0x3c00),
            (-2.0, 0xc000),
            (65504.0, 0x7bff),
            (1e6, 0x7c00),
            (5.960_464_5e-8, 0x0001),
            (0.333_333_34, 0x3555),
        ] {
            assert_eq!(f32_to_f16(x), bits, "{x}");
            if bits != 0x7c00 {
                assert!((f16_to_f32(bits) - x).abs() <= x.abs() * 1e-3, "{x}");
            }
        }
        for i in 0..=0xffffu16 {
            let v = f16_to_f32(i);
            if v.is_finite() {
                assert_eq!(f32_to_f16(v), i, "{i:#x}");
            }
        }
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let mut v = [1.0f32, 2.0, 3.0, -50.0];
        softmax_inplace(&mut v);
        assert!((v.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(v[2] > v[1] && v[1] > v[0] && v[3] < 1e-20);
    }

    #[test]
    fn layer_norm_gives_zero_mean_unit_variance() {
        let mut x: Vec<f32> = (0..40).map(|i| (i * i) as f32 * 0.1 - 3.0).collect();
        let (g, b) = (vec![1f32; 20], vec![0f32; 20]);
        layer_norm(&mut x, 20, &g, &b, 1e-12);
        for row in x.chunks(20) {
            let mean = row.iter().sum::<f32>() / 20.0;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / 20.0;
            assert!(
                mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4,
                "{mean} {var}"
            );
        }
        let a: Vec<f32> = (0..37).map(|i| i as f32).collect();
        assert_eq!(sum(&a), (0..37).sum::<i32>() as f32);
        assert_eq!(max16(&a), 36.0);
        let mut p = vec![1.0f32, 2.0, 3.0];
        softmax_inplace(&mut p);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6 && p[2] > p[1] && p[1] > p[0]);
    }
}
