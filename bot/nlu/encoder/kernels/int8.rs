//! 8-bit integer products for [`super::PackedLinear`] (`weights = "int8"`).
//!
//! Weights are quantised once, symmetrically, with one scale per output column; activations
//! are quantised per token (row) on every product, from the row's lowest to its highest
//! value onto unsigned bytes (the x86 dot-product instructions multiply unsigned by signed
//! bytes, and a row after GELU is mostly positive: its whole range gets all 256 steps).
//! With `x = low + scale_x * u` and `w = scale_w * q`, a 32-bit accumulator sums `u * q`
//! exactly and the epilogue makes `scale_w * (scale_x * acc + low * sum(q)) + bias` of it.
//! Integer sums are exact, so every instruction set gives the same accumulators for the same
//! quantised inputs: the kernels differ only in the last rounding of the rescale.
//!
//! Panels keep the f32 layout's 32 columns, with the reduction dimension in groups of four
//! bytes per column (one 32-bit lane of `vpdpbusd` / `vpmaddubsw`+`vpmaddwd`): a group row is
//! 128 bytes, two AVX-512 registers or four AVX2 ones.

use std::ops::Range;
use std::sync::OnceLock;

pub(crate) use super::int8_layout::{quantize_row, Dot, Panels, Rows, GROUP};
use super::{finish, isa, Epilogue, Isa, PackedLinear, SharedOut, NR};

static DOT: OnceLock<Dot> = OnceLock::new();

/// The dot product int8 weights run with on this CPU, within the kernels' instruction set
/// ([`isa`]).
pub fn dot() -> Dot {
    *DOT.get_or_init(|| detect(isa()))
}

/// Whether batches' product after GELU can run in bf16 on AMX-BF16 ([`super::bf16`]): int8
/// runs on AMX here and the CPU has AMX-BF16.
pub fn bf16_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        dot() == Dot::Amx && super::x86_amx::has_amx_bf16()
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[allow(unused_variables)]
fn detect(isa: Isa) -> Dot {
    #[cfg(target_arch = "x86_64")]
    {
        if isa == Isa::Avx512 && std::arch::is_x86_feature_detected!("avx512vnni") {
            if super::x86_amx::has_amx_int8() && super::x86_amx::request_tiles() {
                return Dot::Amx;
            }
            return Dot::Avx512Vnni;
        }
        if matches!(isa, Isa::Avx512 | Isa::Avx2) {
            return if std::arch::is_x86_feature_detected!("avxvnni") {
                Dot::AvxVnni
            } else {
                Dot::Avx2
            };
        }
    }
    Dot::Portable
}

impl Panels {
    /// `w` is `[n, k]` row-major; `smooth`, if given, has `k` positive factors (see
    /// [`PackedLinear::new_int8`]).
    pub fn pack(w: &[f32], n: usize, k: usize, smooth: Option<&[f32]>) -> Self {
        match smooth {
            None => Self::pack_for(w, n, k, dot()),
            Some(s) => {
                assert_eq!(s.len(), k, "one smoothing factor per input");
                let mut scaled = w.to_vec();
                for row in scaled.chunks_exact_mut(k) {
                    row.iter_mut().zip(s).for_each(|(v, f)| *v *= f);
                }
                let mut p = Self::pack_for(&scaled, n, k, dot());
                p.unsmooth = Some(s.iter().map(|f| 1.0 / f).collect());
                p
            }
        }
    }

    pub(super) fn pack_for(w: &[f32], n: usize, k: usize, dot: Dot) -> Self {
        let np = n.div_ceil(NR);
        let groups = k.div_ceil(4);
        let mut data = vec![0i8; np * groups * GROUP];
        let mut scale = vec![0f32; np * NR];
        let mut colsum = vec![0f32; np * NR];
        for col in 0..n {
            let row = &w[col * k..(col + 1) * k];
            let amax = row.iter().fold(0f32, |a, v| a.max(v.abs()));
            let s = if amax > 0.0 { amax / 127.0 } else { 0.0 };
            let inv = if amax > 0.0 { 127.0 / amax } else { 0.0 };
            let (p, j) = (col / NR, col % NR);
            let mut sum = 0i32;
            for (kk, &v) in row.iter().enumerate() {
                let q = (v * inv).round().clamp(-127.0, 127.0) as i8;
                data[(p * groups + kk / 4) * GROUP + j * 4 + kk % 4] = q;
                sum += q as i32;
            }
            scale[col] = s;
            colsum[col] = sum as f32;
        }
        Self {
            data,
            scale,
            colsum,
            groups,
            dot,
            unsmooth: None,
        }
    }
}

impl Rows {
    /// Quantise `m` rows of `k` values of `x` for panels `p`.
    pub fn quantize(x: &[f32], m: usize, k: usize, p: &Panels) -> Self {
        let dot = p.dot;
        let stride = k.div_ceil(4) * 4;
        // Whole 16-row tiles, for AMX (the rows past `m` stay 0 and are never stored).
        let padded = m.div_ceil(16) * 16;
        let mut rows = Self {
            data: vec![0u8; padded * stride],
            scale: vec![0f32; m],
            low: vec![0f32; m],
            stride,
        };
        let levels = dot.levels() as f32;
        // Evened rows for the kernels without a fused quantiser (AVX-512 needs none).
        let mut even = Vec::new();
        for r in 0..m {
            let src = &x[r * k..(r + 1) * k];
            let dst = &mut rows.data[r * stride..r * stride + k];
            #[cfg(target_arch = "x86_64")]
            if matches!(dot, Dot::Avx512Vnni | Dot::Amx) {
                // SAFETY: these are detected only with avx512f (see `detect`); `unsmooth`
                // has `k` factors (`pack` asserted it).
                (rows.scale[r], rows.low[r]) = unsafe {
                    super::x86_int8::quantize_avx512(src, p.unsmooth.as_deref(), dst, levels)
                };
                continue;
            }
            let src = match &p.unsmooth {
                Some(u) => {
                    even.resize(k, 0.0);
                    even.iter_mut()
                        .zip(src)
                        .zip(u)
                        .for_each(|((e, v), f)| *e = v * f);
                    &even
                }
                None => src,
            };
            (rows.scale[r], rows.low[r]) = match dot {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: AvxVnni and Avx2 are detected only with avx2 and fma.
                Dot::AvxVnni | Dot::Avx2 => unsafe {
                    super::x86_int8::quantize_avx2(src, dst, levels)
                },
                _ => quantize_row(src, dst, levels),
            };
        }
        rows
    }
}

/// Rows `rows` times panels `panels` of `w` (whose int8 panels are `p`), activations `q`.
pub(super) fn block(
    w: &PackedLinear,
    p: &Panels,
    q: &Rows,
    rows: Range<usize>,
    out: &SharedOut,
    epi: Epilogue,
    panels: Range<usize>,
) {
    match p.dot {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `dot()` gives Amx only after detecting AMX-TILE, AMX-INT8, avx512f and
        // avx512vnni and being granted the tile state; the width is checked here, and `Rows`
        // pads whole tiles; sizes and writes as below.
        Dot::Amx
            if w.k.is_multiple_of(super::x86_amx::STEP)
                && q.stride == w.k
                && q.scale.len() >= super::AMX_MIN_ROWS =>
        unsafe { super::x86_amx::block_amx(w, p, q, rows, out, epi, panels) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Amx implies Avx512Vnni's features (short products and other widths run here).
        Dot::Amx => unsafe { super::x86_int8::block_vnni512(w, p, q, rows, out, epi, panels) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `dot()` gives Avx512Vnni only after detecting avx512f and avx512vnni; the
        // packing functions sized `p` and `q` for `w`, which `forward` checked against `out`,
        // and each call writes only its own rows x panels.
        Dot::Avx512Vnni => unsafe {
            super::x86_int8::block_vnni512(w, p, q, rows, out, epi, panels)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AvxVnni only after detecting avx2, fma and avxvnni; sizes as above.
        Dot::AvxVnni => unsafe { super::x86_int8::block_avxvnni(w, p, q, rows, out, epi, panels) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Avx2 only after detecting avx2 and fma; sizes as above.
        Dot::Avx2 => unsafe { super::x86_int8::block_avx2(w, p, q, rows, out, epi, panels) },
        _ => block_portable(w, p, q, rows, out, epi, panels),
    }
}

pub(super) fn block_portable(
    w: &PackedLinear,
    p: &Panels,
    q: &Rows,
    rows: Range<usize>,
    out: &SharedOut,
    epi: Epilogue,
    panels: Range<usize>,
) {
    let n = w.n;
    for pi in panels {
        let panel = &p.data[pi * p.groups * GROUP..(pi + 1) * p.groups * GROUP];
        let cols = NR.min(n - pi * NR);
        for r in rows.clone() {
            let mut acc = [0i32; NR];
            let xr = &q.data[r * q.stride..(r + 1) * q.stride];
            for (g, xg) in xr.chunks_exact(4).enumerate() {
                let wg = &panel[g * GROUP..(g + 1) * GROUP];
                for (j, a) in acc.iter_mut().enumerate() {
                    for b in 0..4 {
                        *a += xg[b] as i32 * wg[j * 4 + b] as i32;
                    }
                }
            }
            let off = r * n + pi * NR;
            // SAFETY: this call alone writes rows `rows` x the columns of panels `panels`
            // (`forward` gives every chunk its own), and `slice` checks the bounds.
            let o = unsafe { out.slice(off, cols) };
            for (j, v) in o.iter_mut().enumerate() {
                let c = pi * NR + j;
                *v = acc[j] as f32 * (q.scale[r] * p.scale[c])
                    + q.low[r] * p.scale[c] * p.colsum[c]
                    + w.bias[c];
            }
            finish(o, epi, off);
        }
    }
}

#[cfg(test)]
mod tests;
