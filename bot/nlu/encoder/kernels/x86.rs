//! x86-64 micro-kernels for [`super::PackedLinear`]: a tile of rows times one 32-column
//! panel held in registers while the panel streams through once. Weights are read either as
//! f32 or as f16 widened to f32 on the fly (`vcvtph2ps`), which halves the bytes a pass pulls
//! from memory; all arithmetic is f32 with fused multiply-add.
//!
//! Safety contract of every function here: it runs only on a CPU whose features its
//! `#[target_feature]` names (the caller checked them through `super::isa`), and the raw
//! pointers it gets stay inside the packed panels, the activations and the output, whose
//! sizes `PackedLinear::forward` asserted. Each call writes only its own rows x panels of the
//! shared output, so concurrent calls never write the same value.

use std::arch::x86_64::*;

use std::ops::Range;

use super::{finish, Epilogue, PackedLinear, Panels, SharedOut, NR};

/// Rows per AVX-512 tile: 12 rows x 2 registers = 24 accumulators of 32.
const MR512: usize = 12;
/// Rows per AVX2 tile: 6 rows x 2 registers (half a panel, 16 columns) = 12 accumulators
/// of 8, with 2 registers of weights and 1 broadcast: 15 of the 16 registers. Half a panel
/// per tile converts each f16 weight row once per 6 rows instead of once per 3 (`vcvtph2ps`
/// competes with the FMAs for the same ports).
const MR256: usize = 6;
/// Columns per AVX2 tile.
const NR256: usize = NR / 2;

/// How one panel row (32 weights) becomes registers.
trait PanelRow512 {
    /// # Safety
    /// `p` must point at a panel with `(kk + 1) * NR` readable weights, on a CPU with the
    /// features of the calling kernel.
    unsafe fn row(p: *const Self, kk: usize) -> (__m512, __m512);
}

// SAFETY (both impls): loads 32 values from row `kk` of the panel, in bounds per the trait's
// contract; unaligned loads, so any alignment of the panel is fine.
impl PanelRow512 for f32 {
    #[inline(always)]
    unsafe fn row(p: *const f32, kk: usize) -> (__m512, __m512) {
        let p = p.add(kk * NR);
        (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16)))
    }
}

impl PanelRow512 for u16 {
    #[inline(always)]
    unsafe fn row(p: *const u16, kk: usize) -> (__m512, __m512) {
        let p = p.add(kk * NR);
        (
            _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i)),
            _mm512_cvtph_ps(_mm256_loadu_si256(p.add(16) as *const __m256i)),
        )
    }
}

/// `out[rows, panels' columns] = epilogue(x W^T + b)`.
///
/// # Safety
/// The CPU must support avx512f, avx2, fma and f16c. `x` must hold `rows.end * w.k` values, `out` `rows.end * w.n`,
/// `panels` must lie within `w.panel_count()`, and no other thread may touch those rows x
/// panels of `out` during the call.
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
pub(super) unsafe fn linear_avx512(
    w: &PackedLinear,
    x: &[f32],
    rows: Range<usize>,
    out: &SharedOut,
    epi: Epilogue,
    panels: Range<usize>,
) {
    match &w.panels {
        Panels::F32(p) => panels512(w, p.as_ptr(), x, rows, out, epi, panels),
        Panels::F16(p) => panels512(w, p.as_ptr(), x, rows, out, epi, panels),
        Panels::I8(_) => unreachable!("int8 panels run through int8::block"),
    }
}

/// # Safety
/// As [`linear_avx512`], with `panels` pointing at the start of `w`'s packed weights.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn panels512<T: PanelRow512>(
    w: &PackedLinear,
    panels: *const T,
    x: &[f32],
    rows: Range<usize>,
    out: &SharedOut,
    epi: Epilogue,
    panels_range: Range<usize>,
) {
    let (k, n) = (w.k, w.n);
    let m = rows.end;
    for p in panels_range.clone() {
        let panel = panels.add(p * k * NR);
        let bias = w.bias.as_ptr().add(p * NR);
        let cols = NR.min(n - p * NR);
        let mut r0 = rows.start;
        while r0 < m {
            let rows = MR512.min(m - r0);
            let xp = x.as_ptr().add(r0 * k);
            let op = out.ptr(r0 * n + p * NR, (rows - 1) * n + cols);
            match rows {
                12 => tile512::<T, 12>(xp, k, panel, bias, op, n, cols),
                11 => tile512::<T, 11>(xp, k, panel, bias, op, n, cols),
                10 => tile512::<T, 10>(xp, k, panel, bias, op, n, cols),
                9 => tile512::<T, 9>(xp, k, panel, bias, op, n, cols),
                8 => tile512::<T, 8>(xp, k, panel, bias, op, n, cols),
                7 => tile512::<T, 7>(xp, k, panel, bias, op, n, cols),
                6 => tile512::<T, 6>(xp, k, panel, bias, op, n, cols),
                5 => tile512::<T, 5>(xp, k, panel, bias, op, n, cols),
                4 => tile512::<T, 4>(xp, k, panel, bias, op, n, cols),
                3 => tile512::<T, 3>(xp, k, panel, bias, op, n, cols),
                2 => tile512::<T, 2>(xp, k, panel, bias, op, n, cols),
                _ => tile512::<T, 1>(xp, k, panel, bias, op, n, cols),
            }
            for r in r0..r0 + rows {
                let off = r * n + p * NR;
                finish(out.slice(off, cols), epi, off);
            }
            r0 += rows;
        }
    }
}

/// `R` rows of `x` times one panel, plus bias, stored to `cols` columns of `R` output rows.
///
/// # Safety
/// AVX-512 (as the caller). `x` must point at `R` rows of `k` values, `panel` at `k * NR`
/// weights, `bias` at `NR` values, and `out` at `R` rows `ldo` apart with `cols` writable
/// values each (the masked stores write no further).
#[inline(always)]
unsafe fn tile512<T: PanelRow512, const R: usize>(
    x: *const f32,
    k: usize,
    panel: *const T,
    bias: *const f32,
    out: *mut f32,
    ldo: usize,
    cols: usize,
) {
    let b0 = _mm512_loadu_ps(bias);
    let b1 = _mm512_loadu_ps(bias.add(16));
    let mut acc = [[b0, b1]; R];
    for kk in 0..k {
        let (w0, w1) = T::row(panel, kk);
        for (r, a) in acc.iter_mut().enumerate() {
            let xv = _mm512_set1_ps(*x.add(r * k + kk));
            a[0] = _mm512_fmadd_ps(xv, w0, a[0]);
            a[1] = _mm512_fmadd_ps(xv, w1, a[1]);
        }
    }
    let (m0, m1) = masks(cols);
    for (r, a) in acc.iter().enumerate() {
        let o = out.add(r * ldo);
        _mm512_mask_storeu_ps(o, m0, a[0]);
        _mm512_mask_storeu_ps(o.add(16), m1, a[1]);
    }
}

#[inline(always)]
pub(super) fn masks(cols: usize) -> (u16, u16) {
    let lo = if cols >= 16 {
        0xffff
    } else {
        ((1u32 << cols) - 1) as u16
    };
    let hi = if cols >= 32 {
        0xffff
    } else if cols > 16 {
        ((1u32 << (cols - 16)) - 1) as u16
    } else {
        0
    };
    (lo, hi)
}

trait PanelRow256 {
    /// Half a panel row: the 16 weights of row `kk` from column `half * 16`.
    ///
    /// # Safety
    /// `p` must point at a panel with `(kk + 1) * NR` readable weights, `half` be 0 or 1, on
    /// a CPU with the features of the calling kernel.
    unsafe fn half_row(p: *const Self, kk: usize, half: usize) -> [__m256; 2];
}

// SAFETY (both impls): as for PanelRow512: 16 in-bounds unaligned loads from row `kk`.
impl PanelRow256 for f32 {
    #[inline(always)]
    unsafe fn half_row(p: *const f32, kk: usize, half: usize) -> [__m256; 2] {
        let p = p.add(kk * NR + half * NR256);
        [_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))]
    }
}

impl PanelRow256 for u16 {
    #[inline(always)]
    unsafe fn half_row(p: *const u16, kk: usize, half: usize) -> [__m256; 2] {
        let p = p.add(kk * NR + half * NR256) as *const __m128i;
        [
            _mm256_cvtph_ps(_mm_loadu_si128(p)),
            _mm256_cvtph_ps(_mm_loadu_si128(p.add(1))),
        ]
    }
}

/// `out[rows, panels' columns] = epilogue(x W^T + b)`.
///
/// # Safety
/// The CPU must support avx2, fma and f16c. `x` must hold `rows.end * w.k` values, `out` `rows.end * w.n`,
/// `panels` must lie within `w.panel_count()`, and no other thread may touch those rows x
/// panels of `out` during the call.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn linear_avx2(
    w: &PackedLinear,
    x: &[f32],
    rows: Range<usize>,
    out: &SharedOut,
    epi: Epilogue,
    panels: Range<usize>,
) {
    match &w.panels {
        Panels::F32(p) => panels256(w, p.as_ptr(), x, rows, out, epi, panels),
        Panels::F16(p) => panels256(w, p.as_ptr(), x, rows, out, epi, panels),
        Panels::I8(_) => unreachable!("int8 panels run through int8::block"),
    }
}

/// # Safety
/// As [`linear_avx2`], with `panels` pointing at the start of `w`'s packed weights.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn panels256<T: PanelRow256>(
    w: &PackedLinear,
    panels: *const T,
    x: &[f32],
    rows: Range<usize>,
    out: &SharedOut,
    epi: Epilogue,
    panels_range: Range<usize>,
) {
    let (k, n) = (w.k, w.n);
    let m = rows.end;
    let mut tmp = [0f32; MR256 * NR];
    for p in panels_range.clone() {
        let panel = panels.add(p * k * NR);
        let bias = w.bias.as_ptr().add(p * NR);
        let cols = NR.min(n - p * NR);
        let mut r0 = rows.start;
        while r0 < m {
            let rows = MR256.min(m - r0);
            let xp = x.as_ptr().add(r0 * k);
            for half in 0..2 {
                let b = bias.add(half * NR256);
                let t = tmp.as_mut_ptr().add(half * NR256);
                match rows {
                    6 => tile256::<T, 6>(xp, k, panel, half, b, t),
                    5 => tile256::<T, 5>(xp, k, panel, half, b, t),
                    4 => tile256::<T, 4>(xp, k, panel, half, b, t),
                    3 => tile256::<T, 3>(xp, k, panel, half, b, t),
                    2 => tile256::<T, 2>(xp, k, panel, half, b, t),
                    _ => tile256::<T, 1>(xp, k, panel, half, b, t),
                }
            }
            for i in 0..rows {
                let off = (r0 + i) * n + p * NR;
                let o = out.slice(off, cols);
                o.copy_from_slice(&tmp[i * NR..i * NR + cols]);
                finish(o, epi, off);
            }
            r0 += rows;
        }
    }
}

/// `R` rows of `x` times half a panel (columns `half * 16..`), plus bias, stored to 16
/// columns of `R` rows `NR` apart at `out`.
///
/// # Safety
/// AVX2 (as the caller). `x` must point at `R` rows of `k` values, `panel` at `k * NR`
/// weights, `half` be 0 or 1, `bias` point at 16 values and `out` at `R` rows of `NR`
/// values of which the first 16 are written.
#[inline(always)]
unsafe fn tile256<T: PanelRow256, const R: usize>(
    x: *const f32,
    k: usize,
    panel: *const T,
    half: usize,
    bias: *const f32,
    out: *mut f32,
) {
    let b = [_mm256_loadu_ps(bias), _mm256_loadu_ps(bias.add(8))];
    let mut acc = [b; R];
    for kk in 0..k {
        let w = T::half_row(panel, kk, half);
        for (r, a) in acc.iter_mut().enumerate() {
            let xv = _mm256_set1_ps(*x.add(r * k + kk));
            a[0] = _mm256_fmadd_ps(xv, w[0], a[0]);
            a[1] = _mm256_fmadd_ps(xv, w[1], a[1]);
        }
    }
    for (r, a) in acc.iter().enumerate() {
        _mm256_storeu_ps(out.add(r * NR), a[0]);
        _mm256_storeu_ps(out.add(r * NR + 8), a[1]);
    }
}
