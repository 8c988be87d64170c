//! Scaled dot-product self-attention within each message, one (message, head) pair per
//! chunk of work, so the heads of even one short message are shared between threads.

use super::math::softmax_inplace;
use super::team;
#[cfg(target_arch = "x86_64")]
use super::Isa;
use super::{isa, SharedOut};

/// `qkv` is `[rows, 3 * dim]` (query | key | value per token, messages one after the other,
/// `lens` tokens each); writes the attended values to `context`, `[rows, dim]`.
pub(crate) fn attention(
    qkv: &[f32],
    lens: &[usize],
    heads: usize,
    dim: usize,
    context: &mut [f32],
) {
    let rows: usize = lens.iter().sum();
    assert!(qkv.len() >= rows * 3 * dim && context.len() >= rows * dim);
    assert!(dim.is_multiple_of(heads));
    let starts: Vec<usize> = lens
        .iter()
        .scan(0, |acc, &l| {
            let s = *acc;
            *acc += l;
            Some(s)
        })
        .collect();
    let out = SharedOut::new(context);
    let chunk = |c: usize| {
        let (msg, head) = (c / heads, c % heads);
        let (start, len) = (starts[msg], lens[msg]);
        match isa() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `isa` returns Avx512 only after detecting avx512f, avx2 and fma; `attention`
            // asserted `qkv` holds every row, and each chunk writes its own (message, head).
            Isa::Avx512 if dim / heads == super::attention_x86::HEAD => unsafe {
                super::attention_x86::head32_avx512(qkv, start, len, head, dim, &out)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above; the body is `attend`.
            Isa::Avx512 => unsafe { head_avx512(qkv, start, len, head, heads, dim, &out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `isa` returns Avx2 only after detecting avx2 and fma; the body is `attend`.
            Isa::Avx2 => unsafe { head_avx2(qkv, start, len, head, heads, dim, &out) },
            _ => attend(qkv, start, len, head, heads, dim, &out),
        }
    };
    team::for_each_chunk(lens.len() * heads, &chunk);
}

/// [`attend`] compiled for AVX-512.
///
/// # Safety
/// The CPU must support avx512f, avx2 and fma.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn head_avx512(
    qkv: &[f32],
    start: usize,
    len: usize,
    head: usize,
    heads: usize,
    dim: usize,
    out: &SharedOut,
) {
    attend(qkv, start, len, head, heads, dim, out)
}

/// [`attend`] compiled for AVX2 (its loops vectorise 8 wide, with fused multiply-adds).
///
/// # Safety
/// The CPU must support avx2 and fma.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn head_avx2(
    qkv: &[f32],
    start: usize,
    len: usize,
    head: usize,
    heads: usize,
    dim: usize,
    out: &SharedOut,
) {
    attend(qkv, start, len, head, heads, dim, out)
}

/// One head of one message: each query row's softmax over that message's keys, times values.
#[inline(always)]
pub(super) fn attend(
    qkv: &[f32],
    start: usize,
    len: usize,
    head: usize,
    heads: usize,
    dim: usize,
    out: &SharedOut,
) {
    let dh = dim / heads;
    let scale = 1.0 / (dh as f32).sqrt();
    let ld = 3 * dim;
    let row = |t: usize, part: usize| &qkv[(start + t) * ld + part * dim + head * dh..][..dh];
    // The keys transposed (`dh` rows of `len`), so one query's scores against every key are
    // sums of whole rows, which vectorise, instead of `len` dot products each ending in a
    // horizontal sum.
    let mut keys = vec![0f32; dh * len];
    for j in 0..len {
        for (d, &k) in row(j, 1).iter().enumerate() {
            keys[d * len + j] = k;
        }
    }
    let mut scores = vec![0f32; len];
    let mut ctx = vec![0f32; dh];
    for i in 0..len {
        scores.fill(0.0);
        for (d, &q) in row(i, 0).iter().enumerate() {
            let q = q * scale;
            for (s, &k) in scores.iter_mut().zip(&keys[d * len..(d + 1) * len]) {
                *s += q * k;
            }
        }
        softmax_inplace(&mut scores);
        ctx.fill(0.0);
        for (j, &p) in scores.iter().enumerate() {
            for (c, v) in ctx.iter_mut().zip(row(j, 2)) {
                *c += p * v;
            }
        }
        // SAFETY: chunk (message, head) alone writes these columns of these rows.
        unsafe { out.write((start + i) * dim + head * dh, &ctx) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_attends_only_within_its_message() {
        // Two messages of one token each: softmax over one key is 1, so context = value.
        let dim = 4;
        let mut qkv = vec![0f32; 2 * 3 * dim];
        for t in 0..2 {
            for i in 0..dim {
                qkv[t * 3 * dim + i] = 1.0; // query
                qkv[t * 3 * dim + dim + i] = (t + 1) as f32; // key
                qkv[t * 3 * dim + 2 * dim + i] = (10 * (t + 1) + i) as f32; // value
            }
        }
        let mut ctx = vec![0f32; 2 * dim];
        attention(&qkv, &[1, 1], 2, dim, &mut ctx);
        assert_eq!(ctx, vec![10.0, 11.0, 12.0, 13.0, 20.0, 21.0, 22.0, 23.0]);
    }

    #[test]
    fn equal_keys_average_the_values() {
        let dim = 2;
        let mut qkv = vec![0f32; 3 * 3 * dim];
        for t in 0..3 {
            qkv[t * 3 * dim + 2 * dim] = t as f32; // value, column 0
            qkv[t * 3 * dim + 2 * dim + 1] = 1.0;
        }
        let mut ctx = vec![0f32; 3 * dim];
        attention(&qkv, &[3], 1, dim, &mut ctx);
        for t in 0..3 {
            assert!((ctx[t * dim] - 1.0).abs() < 1e-6 && (ctx[t * dim + 1] - 1.0).abs() < 1e-6);
        }
    }

    /// The AVX-512 kernel for 32-wide heads gives the portable numbers, for messages of
    /// every length around its 16-key blocks.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx512_heads_match_the_portable_ones() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return;
        }
        let (heads, dim) = (3, 96);
        let lens = [1usize, 2, 15, 16, 17, 31, 32, 40];
        let rows: usize = lens.iter().sum();
        let mut s = 7u32;
        let qkv: Vec<f32> = (0..rows * 3 * dim)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((s >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 4.0
            })
            .collect();
        let mut start = 0;
        for &len in &lens {
            for head in 0..heads {
                let mut want = vec![0f32; rows * dim];
                let mut got = vec![0f32; rows * dim];
                attend(
                    &qkv,
                    start,
                    len,
                    head,
                    heads,
                    dim,
                    &SharedOut::new(&mut want),
                );
                // SAFETY: avx512f detected above; qkv holds every row.
                unsafe {
                    crate::encoder::kernels::attention_x86::head32_avx512(
                        &qkv,
                        start,
                        len,
                        head,
                        dim,
                        &SharedOut::new(&mut got),
                    )
                };
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() < 1e-5, "len {len} head {head}: {g} vs {w}");
                }
            }
            start += len;
        }
    }
}
