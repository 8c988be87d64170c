//! Attention for one (message, head) in AVX-512 registers, for heads 32 wide (MiniLM's): the
//! keys transposed once into rows of 16 lanes, so a query's scores against 16 keys are 32
//! fused multiply-adds kept in one register; softmax and the weighted sum of the values stay
//! in registers too. Other head widths run the portable [`super::attention::attend`].
//!
//! Safety contract: the CPU has avx512f, avx2 and fma (the caller checked through `isa`),
//! and `qkv` holds the rows `start..start + len` of `3 * dim` values each.

use std::arch::x86_64::*;

use super::SharedOut;

/// Head width this kernel handles.
pub(super) const HEAD: usize = 32;

/// `e^x` on 16 lanes, the same steps as [`super::math::exp_f32`].
#[inline(always)]
unsafe fn exp16(x: __m512) -> __m512 {
    let x = _mm512_min_ps(
        _mm512_max_ps(x, _mm512_set1_ps(-87.0)),
        _mm512_set1_ps(88.0),
    );
    let magic = _mm512_set1_ps(12_582_912.0);
    let n = _mm512_sub_ps(
        _mm512_fmadd_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E), magic),
        magic,
    );
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_145_75), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428_606_8e-6), r);
    let mut p = _mm512_set1_ps(1.0 / 5040.0);
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    let e = _mm512_slli_epi32::<23>(_mm512_add_epi32(
        _mm512_cvttps_epi32(n),
        _mm512_set1_epi32(127),
    ));
    _mm512_mul_ps(p, _mm512_castsi512_ps(e))
}

/// # Safety
/// See the module's contract; `dim / heads == HEAD`.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn head32_avx512(
    qkv: &[f32],
    start: usize,
    len: usize,
    head: usize,
    dim: usize,
    out: &SharedOut,
) {
    let ld = 3 * dim;
    assert!(qkv.len() >= (start + len) * ld);
    let at = |t: usize, part: usize| {
        qkv.as_ptr()
            .add((start + t) * ld + part * dim + head * HEAD)
    };
    let blocks = len.div_ceil(16);
    let lp = blocks * 16;
    // keys[d * lp + j]: key j's value d; lanes past `len` stay 0 and are masked out below.
    let mut keys = vec![0f32; HEAD * lp];
    for j in 0..len {
        let k = at(j, 1);
        for d in 0..HEAD {
            keys[d * lp + j] = *k.add(d);
        }
    }
    let scale = 1.0 / (HEAD as f32).sqrt();
    let tail: u16 = if len.is_multiple_of(16) {
        0xffff
    } else {
        ((1u32 << (len % 16)) - 1) as u16
    };
    let mut scores = vec![0f32; lp];
    for i in 0..len {
        let q = at(i, 0);
        let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
        for b in 0..blocks {
            let mut acc = _mm512_setzero_ps();
            for d in 0..HEAD {
                let qd = _mm512_set1_ps(*q.add(d) * scale);
                acc = _mm512_fmadd_ps(qd, _mm512_loadu_ps(keys.as_ptr().add(d * lp + b * 16)), acc);
            }
            let live = if b + 1 == blocks { tail } else { 0xffff };
            let acc = _mm512_mask_mov_ps(_mm512_set1_ps(f32::NEG_INFINITY), live, acc);
            max = _mm512_max_ps(max, acc);
            _mm512_storeu_ps(scores.as_mut_ptr().add(b * 16), acc);
        }
        let max = _mm512_set1_ps(_mm512_reduce_max_ps(max));
        let mut sum = _mm512_setzero_ps();
        for b in 0..blocks {
            let p = scores.as_mut_ptr().add(b * 16);
            // exp(-inf - max) is 0: padding lanes add nothing.
            let e = exp16(_mm512_sub_ps(_mm512_loadu_ps(p), max));
            let live = if b + 1 == blocks { tail } else { 0xffff };
            let e = _mm512_maskz_mov_ps(live, e);
            sum = _mm512_add_ps(sum, e);
            _mm512_storeu_ps(p, e);
        }
        let inv = 1.0 / _mm512_reduce_add_ps(sum);
        let (mut c0, mut c1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        for (j, &s) in scores[..len].iter().enumerate() {
            let p = _mm512_set1_ps(s * inv);
            let v = at(j, 2);
            c0 = _mm512_fmadd_ps(p, _mm512_loadu_ps(v), c0);
            c1 = _mm512_fmadd_ps(p, _mm512_loadu_ps(v.add(16)), c1);
        }
        let o = out.ptr((start + i) * dim + head * HEAD, HEAD);
        _mm512_storeu_ps(o, c0);
        _mm512_storeu_ps(o.add(16), c1);
    }
}
