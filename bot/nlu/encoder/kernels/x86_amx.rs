//! Intel AMX for int8 panels ([`super::int8`]): a 16 x 32 block of 32-bit sums held in two
//! tile registers, fed 64 inputs per step (one 16 x 64 tile of activation bytes, two 16 x 64
//! tiles of the panel, whose groups of four inputs per column are already the layout
//! `tdpbusd` wants), then rescaled to f32 as the AVX-512 VNNI kernel does. One `tdpbusd`
//! does 16,384 multiply-adds. Linux hands out the tile state only on request
//! ([`request_tiles`]).
//!
//! Safety contract: the CPU has AMX-TILE, AMX-INT8 and AVX-512, the process was granted the
//! tile state, `p` and `q` were packed for `w` with `w.k` a multiple of 64 and `q` holding
//! whole tiles of 16 rows (`Rows::quantize` pads them), and each call writes only its own rows
//! x panels of the shared output.

use std::arch::asm;
use std::arch::x86_64::*;
use std::ops::Range;

use super::int8_layout::{Panels, Rows, GROUP};
use super::x86::masks;
use super::{finish, Epilogue, PackedLinear, SharedOut, NR};

/// Rows of one tile.
pub(crate) const TILE_ROWS: usize = 16;
/// Inputs per step: 64 bytes of a tile row.
pub(super) const STEP: usize = 64;

/// Whether this CPU has AMX-TILE and AMX-INT8 (CPUID leaf 7, EDX bits 24 and 25).
pub(super) fn has_amx_int8() -> bool {
    // CPUID leaf 7 exists on every x86-64 CPU with AVX-512 (the caller's check).
    let edx = __cpuid_count(7, 0).edx;
    edx & (1 << 24) != 0 && edx & (1 << 25) != 0
}

/// Asks Linux for the AMX tile data state (`arch_prctl(ARCH_REQ_XCOMP_PERM,
/// XFEATURE_XTILEDATA)`), once per process, for every thread; false if refused, and on other
/// systems (whose system call numbers differ: AMX stays off there).
#[cfg(not(target_os = "linux"))]
pub(super) fn request_tiles() -> bool {
    false
}

/// See the other `request_tiles`.
#[cfg(target_os = "linux")]
pub(super) fn request_tiles() -> bool {
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let ret: i64;
    // SAFETY: a plain system call with integer arguments; it reads and writes no memory of
    // ours. rcx and r11 are clobbered by `syscall`.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => ret,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack)
        );
    }
    ret == 0
}

/// The tile shapes: tmm0 and tmm1 the sums (16 rows x 16 columns of i32), tmm2 the
/// activations (16 rows x 64 bytes), tmm3 and tmm4 the panel's halves (16 groups x 16 columns
/// x 4 bytes).
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

fn config() -> TileConfig {
    let mut c = TileConfig([0; 64]);
    c.0[0] = 1; // palette 1
    for t in 0..5 {
        c.0[16 + 2 * t..18 + 2 * t].copy_from_slice(&64u16.to_le_bytes());
        c.0[48 + t] = TILE_ROWS as u8;
    }
    c
}

/// Stores the two sum tiles (tmm0, tmm1: 16 rows x 16 four-byte sums each) side by side as
/// 16 rows of `NR` sums at `sums`.
///
/// # Safety
/// The tiles are configured as [`config`] says, and `sums` points at `TILE_ROWS * NR` writable
/// four-byte values.
#[inline(always)]
unsafe fn store_sums(sums: *mut u8) {
    asm!(
        "tilestored [{c} + {s}*1], tmm0",
        "tilestored [{c2} + {s}*1], tmm1",
        c = in(reg) sums,
        c2 = in(reg) sums.add(64),
        s = in(reg) NR * 4,
        options(nostack)
    );
}

/// `out[rows, panels' columns] = epilogue(dequantised x W^T + b)` with AMX.
///
/// # Safety
/// See the module's contract.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn block_amx(
    w: &PackedLinear,
    p: &Panels,
    q: &Rows,
    rows: Range<usize>,
    out: &SharedOut,
    epi: Epilogue,
    panels: Range<usize>,
) {
    let (n, m) = (w.n, rows.end);
    assert!(w.k.is_multiple_of(STEP) && q.stride == w.k);
    assert!(q.data.len() >= m.div_ceil(TILE_ROWS) * TILE_ROWS * q.stride);
    assert!(p.data.len() >= panels.end * p.groups * GROUP);
    let cfg = config();
    asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack));
    let mut sums = [0i32; TILE_ROWS * NR];
    for pi in panels {
        let panel = p.data.as_ptr().add(pi * p.groups * GROUP);
        let cols = NR.min(n - pi * NR);
        let c0 = pi * NR;
        let mut r0 = rows.start;
        while r0 < m {
            asm!("tilezero tmm0", "tilezero tmm1", options(nostack));
            for s in 0..w.k / STEP {
                let a = q.data.as_ptr().add(r0 * q.stride + s * STEP);
                // 16 groups of four inputs make one step.
                let b = panel.add(s * (STEP / 4) * GROUP);
                asm!(
                    "tileloadd tmm2, [{a} + {sa}*1]",
                    "tileloadd tmm3, [{b} + {sb}*1]",
                    "tileloadd tmm4, [{b2} + {sb}*1]",
                    "tdpbusd tmm0, tmm2, tmm3",
                    "tdpbusd tmm1, tmm2, tmm4",
                    a = in(reg) a,
                    sa = in(reg) q.stride,
                    b = in(reg) b,
                    b2 = in(reg) b.add(64),
                    sb = in(reg) GROUP,
                    options(nostack)
                );
            }
            store_sums(sums.as_mut_ptr() as *mut u8);
            let h = TILE_ROWS.min(m - r0);
            rescale(w, p, q, &sums, r0, h, c0, cols, out, n);
            for r in r0..r0 + h {
                let off = r * n + c0;
                finish(out.slice(off, cols), epi, off);
            }
            r0 += h;
        }
    }
    asm!("tilerelease", options(nostack));
}

/// `y = scale_w * (scale_x * sum + low * sum(q)) + bias` for `h` rows of `sums` (16 x 32).
///
/// # Safety
/// AVX-512 (as the caller); rows `r0..r0 + h` and columns `c0..c0 + cols` are the caller's.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn rescale(
    w: &PackedLinear,
    p: &Panels,
    q: &Rows,
    sums: &[i32; TILE_ROWS * NR],
    r0: usize,
    h: usize,
    c0: usize,
    cols: usize,
    out: &SharedOut,
    n: usize,
) {
    let ws = [
        _mm512_loadu_ps(p.scale.as_ptr().add(c0)),
        _mm512_loadu_ps(p.scale.as_ptr().add(c0 + 16)),
    ];
    let b = [
        _mm512_loadu_ps(w.bias.as_ptr().add(c0)),
        _mm512_loadu_ps(w.bias.as_ptr().add(c0 + 16)),
    ];
    let wl = [
        _mm512_mul_ps(ws[0], _mm512_loadu_ps(p.colsum.as_ptr().add(c0))),
        _mm512_mul_ps(ws[1], _mm512_loadu_ps(p.colsum.as_ptr().add(c0 + 16))),
    ];
    let (m0, m1) = masks(cols);
    for r in 0..h {
        let xs = _mm512_set1_ps(q.scale[r0 + r]);
        let xl = _mm512_set1_ps(q.low[r0 + r]);
        let o = out.ptr((r0 + r) * n + c0, cols);
        for (half, mask) in [(0, m0), (1, m1)] {
            let a = _mm512_loadu_si512(sums.as_ptr().add(r * NR + half * 16) as *const __m512i);
            let y = _mm512_fmadd_ps(
                _mm512_cvtepi32_ps(a),
                _mm512_mul_ps(xs, ws[half]),
                _mm512_fmadd_ps(xl, wl[half], b[half]),
            );
            _mm512_mask_storeu_ps(o.add(half * 16), mask, y);
        }
    }
}

/// Whether this CPU has AMX-BF16 (CPUID leaf 7, EDX bit 22).
pub(super) fn has_amx_bf16() -> bool {
    __cpuid_count(7, 0).edx & (1 << 22) != 0
}

/// Activations for bf16 panels: `m` rows as bf16, padded to whole 16-row tiles and to an even
/// width (`2 * pairs`), rounded to nearest even by `vcvtneps2bf16`.
///
/// # Safety
/// The CPU must support avx512f and avx512bf16.
#[target_feature(enable = "avx512f,avx512bf16,avx2,fma")]
pub(super) unsafe fn bf16_rows(x: &[f32], m: usize, k: usize, pairs: usize) -> Vec<u16> {
    let stride = 2 * pairs;
    let mut out = vec![0u16; m.div_ceil(TILE_ROWS) * TILE_ROWS * stride];
    assert!(x.len() >= m * k);
    for r in 0..m {
        let (src, dst) = (x.as_ptr().add(r * k), out.as_mut_ptr().add(r * stride));
        let mut i = 0;
        while i < k {
            let mask: u16 = if k - i >= 16 {
                0xffff
            } else {
                ((1u32 << (k - i)) - 1) as u16
            };
            let v = _mm512_maskz_loadu_ps(mask, src.add(i));
            let h: __m256i = std::mem::transmute(_mm512_cvtneps_pbh(v));
            _mm256_mask_storeu_epi16(dst.add(i) as *mut i16, mask, h);
            i += 16;
        }
    }
    out
}

/// `out[rows, panels' columns] = epilogue(x W^T + b)` with bf16 panels on AMX-BF16.
///
/// # Safety
/// As the module's contract, for bf16: the CPU has AMX-BF16 and the tile state was granted,
/// `xb` came from [`bf16_rows`] for `w` (`2 * p.pairs` a multiple of 32 values).
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn block_amx_bf16(
    w: &PackedLinear,
    p: &super::bf16::Panels,
    xb: &[u16],
    rows: Range<usize>,
    out: &SharedOut,
    epi: Epilogue,
    panels: Range<usize>,
) {
    use super::bf16::PAIR;
    let (n, m) = (w.n, rows.end);
    let stride = 2 * p.pairs;
    assert!(stride.is_multiple_of(32));
    assert!(xb.len() >= m.div_ceil(TILE_ROWS) * TILE_ROWS * stride);
    assert!(p.data.len() >= panels.end * p.pairs * PAIR);
    let cfg = config();
    asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack));
    let mut sums = [0f32; TILE_ROWS * NR];
    for pi in panels {
        let panel = p.data.as_ptr().add(pi * p.pairs * PAIR);
        let cols = NR.min(n - pi * NR);
        let c0 = pi * NR;
        let (m0, m1) = masks(cols);
        let b = [
            _mm512_loadu_ps(w.bias.as_ptr().add(c0)),
            _mm512_loadu_ps(w.bias.as_ptr().add(c0 + 16)),
        ];
        let mut r0 = rows.start;
        while r0 < m {
            asm!("tilezero tmm0", "tilezero tmm1", options(nostack));
            // 32 inputs (16 pairs) a step.
            for s in 0..stride / 32 {
                let a = xb.as_ptr().add(r0 * stride + s * 32);
                let bp = panel.add(s * 16 * PAIR);
                asm!(
                    "tileloadd tmm2, [{a} + {sa}*1]",
                    "tileloadd tmm3, [{b} + {sb}*1]",
                    "tileloadd tmm4, [{b2} + {sb}*1]",
                    "tdpbf16ps tmm0, tmm2, tmm3",
                    "tdpbf16ps tmm1, tmm2, tmm4",
                    a = in(reg) a,
                    sa = in(reg) stride * 2,
                    b = in(reg) bp,
                    b2 = in(reg) bp.add(32),
                    sb = in(reg) PAIR * 2,
                    options(nostack)
                );
            }
            store_sums(sums.as_mut_ptr() as *mut u8);
            let h = TILE_ROWS.min(m - r0);
            for r in 0..h {
                let off = (r0 + r) * n + c0;
                let o = out.ptr(off, cols);
                for (half, mask) in [(0, m0), (1, m1)] {
                    let y = _mm512_add_ps(
                        _mm512_loadu_ps(sums.as_ptr().add(r * NR + half * 16)),
                        b[half],
                    );
                    _mm512_mask_storeu_ps(o.add(half * 16), mask, y);
                }
                finish(out.slice(off, cols), epi, off);
            }
            r0 += h;
        }
    }
    asm!("tilerelease", options(nostack));
}
