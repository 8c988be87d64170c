//! CPU kernels for the encoder: a matrix multiply against weights packed once at load time,
//! and the element-wise steps of a BERT layer (GELU, softmax, layer norm).
//!
//! At batch 1 a message is 10-20 tokens, so every product is a thin matrix (M small) against
//! a fixed weight matrix. Packing the weights into 32-column panels once means each call only
//! streams the panels through registers; the x86 paths use AVX-512 or AVX2+FMA chosen at run
//! time, with a portable fallback that gives the same numbers up to rounding.

use std::sync::OnceLock;

#[cfg(target_arch = "x86_64")]
mod x86;

/// Columns per packed panel.
pub const NR: usize = 32;

/// How packed weights are stored. Arithmetic is f32 either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightFormat {
    F32,
    /// IEEE half precision, widened on load: half the memory traffic, about 3 decimal digits
    /// per weight (embeddings stay at cosine > 0.99999 to f32 for MiniLM).
    F16,
}

impl WeightFormat {
    /// f16 unless `FRONTDESK_WEIGHTS=f32`.
    pub fn from_env() -> Self {
        match std::env::var("FRONTDESK_WEIGHTS").as_deref() {
            Ok("f32") => Self::F32,
            _ => Self::F16,
        }
    }
}

pub(crate) enum Panels {
    F32(Vec<f32>),
    F16(Vec<u16>),
}

/// A `[n, k]` weight matrix (PyTorch Linear layout: out x in) with its bias, stored as
/// `ceil(n / 32)` panels of `k x 32`, zero-padded, so the kernel reads it front to back.
pub struct PackedLinear {
    pub n: usize,
    pub k: usize,
    panels: Panels,
    bias: Vec<f32>,
}

/// What happens to a tile of `x W^T + b` before it is stored.
#[derive(Clone, Copy)]
pub enum Epilogue<'a> {
    /// `y = x W^T + b`
    Bias,
    /// `y = gelu(x W^T + b)` (exact, erf-based)
    BiasGelu,
    /// `y = x W^T + b + r`, `r` shaped like `y`
    BiasResidual(&'a [f32]),
}

impl PackedLinear {
    /// `w` is `[n, k]` row-major, `bias` is `[n]`.
    pub fn new(w: &[f32], bias: &[f32], n: usize, k: usize, format: WeightFormat) -> Self {
        assert_eq!(w.len(), n * k, "weight shape");
        assert_eq!(bias.len(), n, "bias shape");
        let np = n.div_ceil(NR);
        let mut panels = vec![0f32; np * k * NR];
        for col in 0..n {
            let (p, j) = (col / NR, col % NR);
            let base = p * k * NR;
            for kk in 0..k {
                panels[base + kk * NR + j] = w[col * k + kk];
            }
        }
        let mut b = bias.to_vec();
        b.resize(np * NR, 0.0);
        let panels = match format {
            WeightFormat::F32 => Panels::F32(panels),
            WeightFormat::F16 => Panels::F16(panels.iter().map(|&v| f32_to_f16(v)).collect()),
        };
        Self {
            n,
            k,
            panels,
            bias: b,
        }
    }

    pub fn panel_count(&self) -> usize {
        self.n.div_ceil(NR)
    }

    /// `out[m, n] = epilogue(x[m, k] W^T + b)` for all panels.
    pub fn forward(&self, x: &[f32], m: usize, out: &mut [f32], epi: Epilogue) {
        self.forward_panels(x, m, out, epi, 0, self.panel_count());
    }

    /// Same as [`forward`](Self::forward) for the column panels `p0..p1` only: disjoint
    /// panel ranges write disjoint columns, which lets two threads share one product.
    pub fn forward_panels(
        &self,
        x: &[f32],
        m: usize,
        out: &mut [f32],
        epi: Epilogue,
        p0: usize,
        p1: usize,
    ) {
        assert!(x.len() >= m * self.k && out.len() >= m * self.n);
        if let Epilogue::BiasResidual(r) = epi {
            assert!(r.len() >= m * self.n);
        }
        match isa() {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { x86::linear_avx512(self, x, m, out, epi, p0, p1) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { x86::linear_avx2(self, x, m, out, epi, p0, p1) },
            Isa::Portable => linear_portable(self, x, m, out, epi, p0, p1),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Isa {
    Avx512,
    Avx2,
    Portable,
}

/// The widest instruction set this CPU offers, detected once. `FRONTDESK_ISA=portable|avx2`
/// forces a narrower one (for testing the fallbacks).
pub fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        let forced = std::env::var("FRONTDESK_ISA").ok();
        detect(forced.as_deref())
    })
}

#[allow(unused_variables)]
fn detect(forced: Option<&str>) -> Isa {
    if forced == Some("portable") {
        return Isa::Portable;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c");
        if forced != Some("avx2") && is_x86_feature_detected!("avx512f") && avx2 {
            return Isa::Avx512;
        }
        if avx2 {
            return Isa::Avx2;
        }
    }
    Isa::Portable
}

fn linear_portable(
    w: &PackedLinear,
    x: &[f32],
    m: usize,
    out: &mut [f32],
    epi: Epilogue,
    p0: usize,
    p1: usize,
) {
    let (k, n) = (w.k, w.n);
    let mut wide = vec![0f32; k * NR];
    for p in p0..p1 {
        let range = p * k * NR..(p + 1) * k * NR;
        let panel: &[f32] = match &w.panels {
            Panels::F32(v) => &v[range],
            Panels::F16(v) => {
                for (o, &h) in wide.iter_mut().zip(&v[range]) {
                    *o = f16_to_f32(h);
                }
                &wide
            }
        };
        let cols = NR.min(n - p * NR);
        for r in 0..m {
            let mut acc = [0f32; NR];
            acc.copy_from_slice(&w.bias[p * NR..(p + 1) * NR]);
            let xr = &x[r * k..(r + 1) * k];
            for (kk, &xv) in xr.iter().enumerate() {
                let wr = &panel[kk * NR..(kk + 1) * NR];
                for j in 0..NR {
                    acc[j] += xv * wr[j];
                }
            }
            let o = &mut out[r * n + p * NR..r * n + p * NR + cols];
            o.copy_from_slice(&acc[..cols]);
            finish(o, epi, r * n + p * NR);
        }
    }
}

/// Round an f32 to the nearest IEEE half (ties to even), as bits.
pub fn f32_to_f16(x: f32) -> u16 {
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
pub fn f16_to_f32(h: u16) -> f32 {
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

/// Apply the epilogue's non-linear part to stored values `o` that start at `offset` in `y`.
#[inline(always)]
pub(crate) fn finish(o: &mut [f32], epi: Epilogue, offset: usize) {
    match epi {
        Epilogue::Bias => {}
        Epilogue::BiasGelu => gelu_inplace(o),
        Epilogue::BiasResidual(r) => {
            let len = o.len();
            for (v, rv) in o.iter_mut().zip(&r[offset..offset + len]) {
                *v += rv;
            }
        }
    }
}

/// `e^x` for f32 to about 2 ulp, written branch-free so it vectorises.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
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
pub fn erf_f32(x: f32) -> f32 {
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
pub fn gelu_inplace(v: &mut [f32]) {
    for x in v.iter_mut() {
        *x = 0.5 * *x * (1.0 + erf_f32(*x * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// In-place softmax of one row.
#[inline(always)]
pub fn softmax_inplace(v: &mut [f32]) {
    let max = v.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let mut sum = 0f32;
    for x in v.iter_mut() {
        *x = exp_f32(*x - max);
        sum += *x;
    }
    let inv = 1.0 / sum;
    for x in v.iter_mut() {
        *x *= inv;
    }
}

/// In-place layer norm of each `dim`-wide row of `x`.
#[inline(always)]
pub fn layer_norm_rows(x: &mut [f32], dim: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    for row in x.chunks_exact_mut(dim) {
        let mean = row.iter().sum::<f32>() / dim as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / dim as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f32], w: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
        let mut y = vec![0f32; m * n];
        for r in 0..m {
            for c in 0..n {
                let mut s = b[c] as f64;
                for kk in 0..k {
                    s += x[r * k + kk] as f64 * w[c * k + kk] as f64;
                }
                y[r * n + c] = s as f32;
            }
        }
        y
    }

    fn pseudo(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    #[test]
    fn packed_product_matches_naive_for_odd_shapes() {
        for &(m, n, k) in &[(1, 384, 384), (13, 50, 7), (25, 1536, 384), (3, 17, 1536)] {
            let x = pseudo(m * k, 1);
            let w = pseudo(n * k, 2);
            let b = pseudo(n, 3);
            let want = naive(&x, &w, &b, m, n, k);
            for (format, tol) in [(WeightFormat::F32, 1e-4), (WeightFormat::F16, 2e-2)] {
                let lin = PackedLinear::new(&w, &b, n, k, format);
                let mut got = vec![0f32; m * n];
                lin.forward(&x, m, &mut got, Epilogue::Bias);
                let mut port = vec![0f32; m * n];
                linear_portable(&lin, &x, m, &mut port, Epilogue::Bias, 0, lin.panel_count());
                for i in 0..m * n {
                    assert!(
                        (got[i] - want[i]).abs() < tol,
                        "{format:?} {m}x{n}x{k} at {i}"
                    );
                    // The vector paths and the fallback see the same rounded weights.
                    assert!(
                        (port[i] - got[i]).abs() < 1e-4,
                        "portable {m}x{n}x{k} at {i}"
                    );
                }
            }
        }
    }

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
}
