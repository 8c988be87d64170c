//! aarch64 micro-kernel for [`super::PackedLinear`], the counterpart of the AVX2 one in
//! `x86.rs`.
//!
//! Tile shape: up to 6 rows of `x` times half a panel (16 columns). A row's 16 accumulators
//! are 4 q-registers, so a full tile holds 24 accumulators, plus 4 registers for the half
//! panel row of weights, 1 or 2 for broadcast activations and, for f16, the widening's
//! constant: up to 31 of the 32 NEON registers, with nothing spilled in the inner loop.
//! A whole 32-column panel per tile would leave room for only 3 rows (8 registers each), so
//! each weight would be loaded (and for f16, widened) once per 3 rows instead of once per 6;
//! half a panel per tile is the same trade the AVX2 kernel makes. Tiles go through a small
//! buffer so both halves of a row are stored, cut to the panel's real columns and finished
//! (epilogue) together.
//!
//! f16 panels are widened with integer NEON operations, because Rust's NEON half-precision
//! conversion intrinsics are not stable: the sign and the 15 magnitude bits moved into place
//! are an f32 whose exponent is 112 too small, and one multiply by 2^112 fixes it, exactly,
//! for normal and subnormal halves alike ([`widen_f16`]). Infinities and NaNs would come out
//! as finite values (2^16 and up), which never happens for packed weights: `f32_to_f16` only
//! gives those for weights beyond ±65504 or NaN, which no usable model has.
//!
//! Safety contract of every function here: the raw pointers it gets stay inside the packed
//! panels, the activations and the output, whose sizes `PackedLinear::forward` asserted, and
//! each call writes only its own rows x panels of the shared output, so concurrent calls
//! never write the same value. NEON itself is part of every aarch64 CPU this builds for (and
//! `super::detect` checks it anyway).

use std::arch::aarch64::*;

use std::ops::Range;

use super::{finish, Epilogue, PackedLinear, Panels, SharedOut, NR};

/// Rows per tile: 6 rows x 4 registers of accumulators = 24 of the 32 registers.
const MR: usize = 6;
/// Columns per tile: half a panel.
const NRH: usize = NR / 2;

/// How half a panel row (16 weights) becomes 4 registers of f32.
pub(super) trait HalfRow {
    /// The 16 weights of row `kk` from column `half * 16`.
    ///
    /// # Safety
    /// `p` must point at a panel with `(kk + 1) * NR` readable weights and `half` be 0 or 1.
    unsafe fn half_row(p: *const Self, kk: usize, half: usize) -> [float32x4_t; 4];
}

// SAFETY (both impls): 16 in-bounds loads from row `kk` of the panel, per the trait's
// contract; `vld1q` has no alignment requirement beyond the element's.
impl HalfRow for f32 {
    #[inline(always)]
    unsafe fn half_row(p: *const f32, kk: usize, half: usize) -> [float32x4_t; 4] {
        let p = p.add(kk * NR + half * NRH);
        [
            vld1q_f32(p),
            vld1q_f32(p.add(4)),
            vld1q_f32(p.add(8)),
            vld1q_f32(p.add(12)),
        ]
    }
}

impl HalfRow for u16 {
    #[inline(always)]
    unsafe fn half_row(p: *const u16, kk: usize, half: usize) -> [float32x4_t; 4] {
        let p = p.add(kk * NR + half * NRH) as *const i16;
        let (lo, hi) = widen_f16(vld1q_s16(p));
        let (lo2, hi2) = widen_f16(vld1q_s16(p.add(8)));
        [lo, hi, lo2, hi2]
    }
}

/// Eight IEEE halves (as bits) as two registers of f32, exact for every finite half (see
/// the module header).
///
/// Sign-extending each half to 32 bits while shifting it left by 13 (one `sshll`) puts its
/// 15 magnitude bits where an f32's go and copies its sign into bits 28 to 31; clearing bits
/// 28 to 30 (one `bic`) leaves the sign alone in bit 31. The multiply by 2^112 then fixes
/// the exponent with the sign untouched. Three instructions per four weights and a single
/// constant register: the 6-row tile needs 24 accumulators, and a separate sign path (mask,
/// shift, OR) needs enough temporaries to make the compiler spill them.
#[inline(always)]
pub(super) fn widen_f16(h: int16x8_t) -> (float32x4_t, float32x4_t) {
    // 2^112: the difference between the f32 and f16 exponent biases (127 - 15).
    const SCALE: f32 = f32::from_bits((127 + 112) << 23);
    // SAFETY: register-only NEON arithmetic, no memory access; NEON is baseline on aarch64.
    unsafe {
        let extra_sign = vdupq_n_s32(0x7000_0000);
        let lo = vbicq_s32(vshll_n_s16::<13>(vget_low_s16(h)), extra_sign);
        let hi = vbicq_s32(vshll_high_n_s16::<13>(h), extra_sign);
        (
            vmulq_n_f32(vreinterpretq_f32_s32(lo), SCALE),
            vmulq_n_f32(vreinterpretq_f32_s32(hi), SCALE),
        )
    }
}

/// `out[rows, panels' columns] = epilogue(x W^T + b)`.
///
/// # Safety
/// The CPU must support NEON (every aarch64 Linux CPU does). `x` must hold `rows.end * w.k`
/// values, `out` `rows.end * w.n`, `panels` must lie within `w.panel_count()`, and no other
/// thread may touch those rows x panels of `out` during the call.
#[target_feature(enable = "neon")]
pub(super) unsafe fn linear_neon(
    w: &PackedLinear,
    x: &[f32],
    rows: Range<usize>,
    out: &SharedOut,
    epi: Epilogue,
    panels: Range<usize>,
) {
    match &w.panels {
        Panels::F32(p) => panels_neon(w, p.as_ptr(), x, rows, out, epi, panels),
        Panels::F16(p) => panels_neon(w, p.as_ptr(), x, rows, out, epi, panels),
        Panels::I8(_) => unreachable!("int8 panels run through int8::block"),
    }
}

/// # Safety
/// As [`linear_neon`], with `panels` pointing at the start of `w`'s packed weights.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn panels_neon<T: HalfRow>(
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
    let mut tmp = [0f32; MR * NR];
    for p in panels_range.clone() {
        let panel = panels.add(p * k * NR);
        let bias = w.bias.as_ptr().add(p * NR);
        let cols = NR.min(n - p * NR);
        let mut r0 = rows.start;
        while r0 < m {
            let rows = MR.min(m - r0);
            let xp = x.as_ptr().add(r0 * k);
            for half in 0..2 {
                let b = bias.add(half * NRH);
                let t = tmp.as_mut_ptr().add(half * NRH);
                match rows {
                    6 => tile::<T, 6>(xp, k, panel, half, b, t),
                    5 => tile::<T, 5>(xp, k, panel, half, b, t),
                    4 => tile::<T, 4>(xp, k, panel, half, b, t),
                    3 => tile::<T, 3>(xp, k, panel, half, b, t),
                    2 => tile::<T, 2>(xp, k, panel, half, b, t),
                    _ => tile::<T, 1>(xp, k, panel, half, b, t),
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
/// `x` must point at `R` rows of `k` values, `panel` at `k * NR` weights, `half` be 0 or 1,
/// `bias` point at 16 values and `out` at `R` rows of `NR` values of which the first 16 are
/// written.
#[inline(always)]
unsafe fn tile<T: HalfRow, const R: usize>(
    x: *const f32,
    k: usize,
    panel: *const T,
    half: usize,
    bias: *const f32,
    out: *mut f32,
) {
    let b = [
        vld1q_f32(bias),
        vld1q_f32(bias.add(4)),
        vld1q_f32(bias.add(8)),
        vld1q_f32(bias.add(12)),
    ];
    let mut acc = [b; R];
    for kk in 0..k {
        let w = T::half_row(panel, kk, half);
        for (r, a) in acc.iter_mut().enumerate() {
            let xv = *x.add(r * k + kk);
            a[0] = vfmaq_n_f32(a[0], w[0], xv);
            a[1] = vfmaq_n_f32(a[1], w[1], xv);
            a[2] = vfmaq_n_f32(a[2], w[2], xv);
            a[3] = vfmaq_n_f32(a[3], w[3], xv);
        }
    }
    for (r, a) in acc.iter().enumerate() {
        let o = out.add(r * NR);
        vst1q_f32(o, a[0]);
        vst1q_f32(o.add(4), a[1]);
        vst1q_f32(o.add(8), a[2]);
        vst1q_f32(o.add(12), a[3]);
    }
}
