//! x86-64 micro-kernels for int8 panels ([`super::int8`]): a tile of rows times one panel
//! (AVX-512: 12 rows x 32 columns; AVX2: 6 or 4 rows x 16 columns) of 32-bit accumulators,
//! fed one group of four inputs per step: each row's four activation bytes are broadcast
//! and multiplied with the panel's group row by `vpdpbusd` (VNNI) or by `vpmaddubsw` +
//! `vpmaddwd` (plain AVX2), then the accumulators are rescaled to f32 with fused
//! multiply-adds that also add the row's offset and the bias.
//!
//! Safety contract of every function here: it runs only on a CPU whose features its
//! `#[target_feature]` names (the caller checked them through `int8::dot`), `p` and `q` were
//! packed for `w` (`p.groups` groups per panel column, `q.stride = 4 * p.groups` bytes per
//! row), and each call writes only its own rows x panels of the shared output.

use std::arch::x86_64::*;
use std::ops::Range;

use super::int8_layout::{quantize_row, Panels, Rows, GROUP};
use super::x86::masks;
use super::{finish, Epilogue, PackedLinear, SharedOut, NR};

/// Rows per AVX-512 tile: 12 rows x 2 registers = 24 accumulators, 2 of weights, 1 broadcast.
const MR512: usize = 12;

/// [`quantize_row`] in AVX-512, with the channel evening (`x[j] * unsmooth[j]`) fused in:
/// one pass for the row's range, one to scale, round (to nearest even), clamp and narrow.
///
/// # Safety
/// The CPU must support avx512f; `unsmooth`, if given, holds `x.len()` values and `out` at
/// least `x.len()`.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn quantize_avx512(
    x: &[f32],
    unsmooth: Option<&[f32]>,
    out: &mut [u8],
    levels: f32,
) -> (f32, f32) {
    let k = x.len();
    assert!(out.len() >= k && unsmooth.is_none_or(|u| u.len() >= k));
    let load = |i: usize, mask: u16| {
        let v = _mm512_maskz_loadu_ps(mask, x.as_ptr().add(i));
        match unsmooth {
            Some(u) => _mm512_mul_ps(v, _mm512_maskz_loadu_ps(mask, u.as_ptr().add(i))),
            None => v,
        }
    };
    let mask_at = |i: usize| {
        if k - i >= 16 {
            0xffff
        } else {
            ((1u32 << (k - i)) - 1) as u16
        }
    };
    let (mut lo, mut hi) = (_mm512_set1_ps(f32::MAX), _mm512_set1_ps(f32::MIN));
    let mut i = 0;
    while i < k {
        let m = mask_at(i);
        let v = load(i, m);
        lo = _mm512_mask_min_ps(lo, m, lo, v);
        hi = _mm512_mask_max_ps(hi, m, hi, v);
        i += 16;
    }
    let (lo, hi) = (_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi));
    let range = hi - lo;
    if k == 0 || !range.is_finite() || range <= 0.0 {
        out[..k].fill(0);
        return (0.0, if k == 0 || !lo.is_finite() { 0.0 } else { lo });
    }
    let (vlo, inv) = (_mm512_set1_ps(lo), _mm512_set1_ps(levels / range));
    let top = _mm512_set1_epi32(levels as i32);
    let mut i = 0;
    while i < k {
        let m = mask_at(i);
        let q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_sub_ps(load(i, m), vlo), inv));
        let q = _mm512_max_epi32(_mm512_min_epi32(q, top), _mm512_setzero_si512());
        _mm512_mask_cvtusepi32_storeu_epi8(out.as_mut_ptr().add(i) as *mut i8, m, q);
        i += 16;
    }
    (range / levels, lo)
}

/// [`quantize_row`] compiled for AVX2.
///
/// # Safety
/// The CPU must support avx2 and fma.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn quantize_avx2(x: &[f32], out: &mut [u8], levels: f32) -> (f32, f32) {
    quantize_row(x, out, levels)
}

/// `out[rows, panels' columns] = epilogue(dequantised x W^T + b)` with AVX-512 VNNI.
///
/// # Safety
/// See the module's contract; the CPU must support avx512f, avx512vnni, avx2 and fma.
#[target_feature(enable = "avx512f,avx512vnni,avx2,fma")]
pub(super) unsafe fn block_vnni512(
    w: &PackedLinear,
    p: &Panels,
    q: &Rows,
    rows: Range<usize>,
    out: &SharedOut,
    epi: Epilogue,
    panels: Range<usize>,
) {
    let n = w.n;
    let m = rows.end;
    for pi in panels {
        let panel = p.data.as_ptr().add(pi * p.groups * GROUP);
        let cols = NR.min(n - pi * NR);
        let c0 = pi * NR;
        let mut r0 = rows.start;
        while r0 < m {
            let h = MR512.min(m - r0);
            let t = Tile::at(w, p, q, panel, c0, r0);
            let op = out.ptr(r0 * n + c0, (h - 1) * n + cols);
            match h {
                12 => tile512::<12>(&t, op, n, cols),
                11 => tile512::<11>(&t, op, n, cols),
                10 => tile512::<10>(&t, op, n, cols),
                9 => tile512::<9>(&t, op, n, cols),
                8 => tile512::<8>(&t, op, n, cols),
                7 => tile512::<7>(&t, op, n, cols),
                6 => tile512::<6>(&t, op, n, cols),
                5 => tile512::<5>(&t, op, n, cols),
                4 => tile512::<4>(&t, op, n, cols),
                3 => tile512::<3>(&t, op, n, cols),
                2 => tile512::<2>(&t, op, n, cols),
                _ => tile512::<1>(&t, op, n, cols),
            }
            for r in r0..r0 + h {
                let off = r * n + c0;
                finish(out.slice(off, cols), epi, off);
            }
            r0 += h;
        }
    }
}

/// Where one tile reads from: its first row of activations and its panel's column data.
struct Tile {
    x: *const u8,
    stride: usize,
    groups: usize,
    panel: *const i8,
    colsum: *const f32,
    wscale: *const f32,
    bias: *const f32,
    xscale: *const f32,
    xlow: *const f32,
}

impl Tile {
    /// The tile whose first row is `r0` and first column `c` (its column data at `panel`).
    ///
    /// # Safety
    /// `panel` must point into `p.data`, `c` be a column and `r0` a row of the product.
    #[inline(always)]
    unsafe fn at(
        w: &PackedLinear,
        p: &Panels,
        q: &Rows,
        panel: *const i8,
        c: usize,
        r0: usize,
    ) -> Self {
        Self {
            x: q.data.as_ptr().add(r0 * q.stride),
            stride: q.stride,
            groups: p.groups,
            panel,
            colsum: p.colsum.as_ptr().add(c),
            wscale: p.scale.as_ptr().add(c),
            bias: w.bias.as_ptr().add(c),
            xscale: q.scale.as_ptr().add(r0),
            xlow: q.low.as_ptr().add(r0),
        }
    }
}

/// The four activation bytes of row `r`, group `g`, in every 32-bit lane.
#[inline(always)]
unsafe fn broadcast4_512(t: &Tile, r: usize, g: usize) -> __m512i {
    _mm512_set1_epi32((t.x.add(r * t.stride + g * 4) as *const i32).read_unaligned())
}

/// # Safety
/// AVX-512 VNNI (as the caller); `t` points at `R` rows and one panel; `out` at `R` rows
/// `ldo` apart with `cols` writable values each (the masked stores write no further).
#[inline(always)]
unsafe fn tile512<const R: usize>(t: &Tile, out: *mut f32, ldo: usize, cols: usize) {
    let mut acc = [[_mm512_setzero_si512(); 2]; R];
    for g in 0..t.groups {
        let wp = t.panel.add(g * GROUP);
        let w0 = _mm512_loadu_si512(wp as *const __m512i);
        let w1 = _mm512_loadu_si512(wp.add(64) as *const __m512i);
        for (r, a) in acc.iter_mut().enumerate() {
            let xv = broadcast4_512(t, r, g);
            a[0] = _mm512_dpbusd_epi32(a[0], xv, w0);
            a[1] = _mm512_dpbusd_epi32(a[1], xv, w1);
        }
    }
    let (m0, m1) = masks(cols);
    let ws = [_mm512_loadu_ps(t.wscale), _mm512_loadu_ps(t.wscale.add(16))];
    let b = [_mm512_loadu_ps(t.bias), _mm512_loadu_ps(t.bias.add(16))];
    // scale_w * sum(q): what one unit of a row's lowest value adds.
    let wl = [
        _mm512_mul_ps(ws[0], _mm512_loadu_ps(t.colsum)),
        _mm512_mul_ps(ws[1], _mm512_loadu_ps(t.colsum.add(16))),
    ];
    for (r, a) in acc.iter().enumerate() {
        let xs = _mm512_set1_ps(*t.xscale.add(r));
        let xl = _mm512_set1_ps(*t.xlow.add(r));
        let o = out.add(r * ldo);
        let y0 = _mm512_fmadd_ps(
            _mm512_cvtepi32_ps(a[0]),
            _mm512_mul_ps(xs, ws[0]),
            _mm512_fmadd_ps(xl, wl[0], b[0]),
        );
        let y1 = _mm512_fmadd_ps(
            _mm512_cvtepi32_ps(a[1]),
            _mm512_mul_ps(xs, ws[1]),
            _mm512_fmadd_ps(xl, wl[1], b[1]),
        );
        _mm512_mask_storeu_ps(o, m0, y0);
        _mm512_mask_storeu_ps(o.add(16), m1, y1);
    }
}

/// How four u8 x s8 products per 32-bit lane are added to an accumulator on 256-bit registers.
trait Dot256 {
    /// # Safety
    /// The CPU must have the instructions of the implementation.
    unsafe fn dot(acc: __m256i, x: __m256i, w: __m256i) -> __m256i;
}

struct Vnni256;
struct Madd256;

impl Dot256 for Vnni256 {
    #[inline(always)]
    unsafe fn dot(acc: __m256i, x: __m256i, w: __m256i) -> __m256i {
        _mm256_dpbusd_avx_epi32(acc, x, w)
    }
}

impl Dot256 for Madd256 {
    /// Pairs summed in 16 bits (no saturation: x <= 127 and |w| <= 127 give at most
    /// 32,258), then pairs of pairs in 32 bits.
    #[inline(always)]
    unsafe fn dot(acc: __m256i, x: __m256i, w: __m256i) -> __m256i {
        let pairs = _mm256_maddubs_epi16(x, w);
        _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
    }
}

/// [`block_avx2`] with AVX-VNNI dot products.
///
/// # Safety
/// See the module's contract; the CPU must support avx2, fma and avxvnni.
#[target_feature(enable = "avx2,fma,avxvnni")]
pub(super) unsafe fn block_avxvnni(
    w: &PackedLinear,
    p: &Panels,
    q: &Rows,
    rows: Range<usize>,
    out: &SharedOut,
    epi: Epilogue,
    panels: Range<usize>,
) {
    block256::<Vnni256, 6>(w, p, q, rows, out, epi, panels)
}

/// `out[rows, panels' columns] = epilogue(dequantised x W^T + b)` with AVX2 alone.
///
/// # Safety
/// See the module's contract; the CPU must support avx2 and fma.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn block_avx2(
    w: &PackedLinear,
    p: &Panels,
    q: &Rows,
    rows: Range<usize>,
    out: &SharedOut,
    epi: Epilogue,
    panels: Range<usize>,
) {
    // Two more registers per step (the ones and the pair sums): four rows fit in sixteen.
    block256::<Madd256, 4>(w, p, q, rows, out, epi, panels)
}

/// # Safety
/// As the two callers; `MR` is at most 6.
#[inline(always)]
unsafe fn block256<D: Dot256, const MR: usize>(
    w: &PackedLinear,
    p: &Panels,
    q: &Rows,
    rows: Range<usize>,
    out: &SharedOut,
    epi: Epilogue,
    panels: Range<usize>,
) {
    let n = w.n;
    let m = rows.end;
    let mut tmp = [0f32; 6 * NR];
    for pi in panels {
        let panel = p.data.as_ptr().add(pi * p.groups * GROUP);
        let cols = NR.min(n - pi * NR);
        let c0 = pi * NR;
        let mut r0 = rows.start;
        while r0 < m {
            let h = MR.min(m - r0);
            for half in 0..2 {
                let c = c0 + half * 16;
                let t = Tile::at(w, p, q, panel.add(half * 64), c, r0);
                let o = tmp.as_mut_ptr().add(half * 16);
                match h {
                    6 => tile256::<D, 6>(&t, o),
                    5 => tile256::<D, 5>(&t, o),
                    4 => tile256::<D, 4>(&t, o),
                    3 => tile256::<D, 3>(&t, o),
                    2 => tile256::<D, 2>(&t, o),
                    _ => tile256::<D, 1>(&t, o),
                }
            }
            for i in 0..h {
                let off = (r0 + i) * n + c0;
                let o = out.slice(off, cols);
                o.copy_from_slice(&tmp[i * NR..i * NR + cols]);
                finish(o, epi, off);
            }
            r0 += h;
        }
    }
}

/// `R` rows times 16 columns (`t.panel` already points at the half's first column group),
/// stored to `R` rows `NR` apart at `out`.
///
/// # Safety
/// AVX2 and the instructions of `D` (as the caller); `t` points at `R` rows and a panel.
#[inline(always)]
unsafe fn tile256<D: Dot256, const R: usize>(t: &Tile, out: *mut f32) {
    let mut acc = [[_mm256_setzero_si256(); 2]; R];
    for g in 0..t.groups {
        let wp = t.panel.add(g * GROUP);
        let w0 = _mm256_loadu_si256(wp as *const __m256i);
        let w1 = _mm256_loadu_si256(wp.add(32) as *const __m256i);
        for (r, a) in acc.iter_mut().enumerate() {
            let xv =
                _mm256_set1_epi32((t.x.add(r * t.stride + g * 4) as *const i32).read_unaligned());
            a[0] = D::dot(a[0], xv, w0);
            a[1] = D::dot(a[1], xv, w1);
        }
    }
    let ws = [_mm256_loadu_ps(t.wscale), _mm256_loadu_ps(t.wscale.add(8))];
    let b = [_mm256_loadu_ps(t.bias), _mm256_loadu_ps(t.bias.add(8))];
    let wl = [
        _mm256_mul_ps(ws[0], _mm256_loadu_ps(t.colsum)),
        _mm256_mul_ps(ws[1], _mm256_loadu_ps(t.colsum.add(8))),
    ];
    for (r, a) in acc.iter().enumerate() {
        let xs = _mm256_set1_ps(*t.xscale.add(r));
        let xl = _mm256_set1_ps(*t.xlow.add(r));
        let y0 = _mm256_fmadd_ps(
            _mm256_cvtepi32_ps(a[0]),
            _mm256_mul_ps(xs, ws[0]),
            _mm256_fmadd_ps(xl, wl[0], b[0]),
        );
        let y1 = _mm256_fmadd_ps(
            _mm256_cvtepi32_ps(a[1]),
            _mm256_mul_ps(xs, ws[1]),
            _mm256_fmadd_ps(xl, wl[1], b[1]),
        );
        _mm256_storeu_ps(out.add(r * NR), y0);
        _mm256_storeu_ps(out.add(r * NR + 8), y1);
    }
}
