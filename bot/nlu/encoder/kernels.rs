//! CPU kernels for the encoder: a matrix multiply against weights packed once at load time,
//! self-attention, and the element-wise steps of a BERT layer.
//!
//! At batch 1 a message is 10-20 tokens, so every product is a thin matrix (M small) against
//! a fixed weight matrix, and its cost is streaming the weights. They are packed once into
//! 32-column panels (f16 by default: half the bytes) so each call reads them front to back;
//! the x86 paths use AVX-512 or AVX2+FMA+F16C chosen at run time, aarch64 uses NEON for the
//! products (`neon.rs`; its other steps are the portable code, which LLVM vectorises with
//! NEON), and a portable fallback gives the same numbers up to rounding. Products and
//! attention are split into chunks shared with helper threads ([`team`]).

use std::ops::Range;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

mod attention;
#[cfg(target_arch = "x86_64")]
mod attention_x86;
pub(crate) mod bf16;
pub(crate) mod int8;
mod int8_layout;
pub(crate) mod math;
#[cfg(target_arch = "aarch64")]
mod neon;
pub(crate) mod team;
#[cfg(target_arch = "x86_64")]
mod x86;
#[cfg(target_arch = "x86_64")]
mod x86_amx;
#[cfg(target_arch = "x86_64")]
mod x86_int8;

pub(crate) use attention::attention;
pub(crate) use math::{f16_to_f32, f32_to_f16, layer_norm};

use crate::EncoderOptions;

/// Columns per packed panel.
pub(crate) const NR: usize = 32;
/// Rows per chunk of a product: a block of activations that stays in L2 while panels pass.
const ROW_BLOCK: usize = 96;
/// Products smaller than this many multiply-adds run on the calling thread alone.
const PARALLEL_MIN_MACS: usize = 200_000;

/// How packed weights are stored. Parsed from `f16` / `f32` / `int8`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightFormat {
    F32,
    /// IEEE half precision, widened on load: half the memory traffic, about 3 decimal digits
    /// per weight (MiniLM embeddings stay at cosine > 0.99999 to f32). Arithmetic is f32.
    F16,
    /// 8-bit integers with one scale per output column, multiplied by activations quantised
    /// per token to 8 bits (7 on AVX2 CPUs without VNNI) in integer dot products, rescaled to
    /// f32 before the epilogue ([`int8`]). Only used when the encoder's accuracy check holds.
    Int8,
}

impl FromStr for WeightFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f16" => Ok(Self::F16),
            "f32" => Ok(Self::F32),
            "int8" => Ok(Self::Int8),
            other => Err(format!("weights `{other}`: use `f16`, `f32` or `int8`")),
        }
    }
}

/// Which matrix kernels to use. Parsed from `auto` / `avx512` / `avx2` / `neon` /
/// `portable`.
///
/// A choice narrows, never widens: it is a ceiling on vector width (`avx512` 512 bits >
/// `avx2` 256 > `neon` 128 > `portable`), and the kernels used are the widest this CPU has
/// under it, so the vector code only ever runs where its features exist and one config
/// serves every machine: `avx512` on a CPU without it gets AVX2, `avx512` or `avx2` on
/// aarch64 get NEON, and `neon` on x86 (which has no 128-bit kernels here) gets the
/// portable code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IsaChoice {
    /// The widest this CPU offers.
    #[default]
    Auto,
    Avx512,
    Avx2,
    /// 128-bit vectors at most: NEON on aarch64, the portable code on x86.
    Neon,
    /// Plain Rust, no vector intrinsics (for testing the fallback).
    Portable,
}

impl FromStr for IsaChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "avx512" => Ok(Self::Avx512),
            "avx2" => Ok(Self::Avx2),
            "neon" => Ok(Self::Neon),
            "portable" => Ok(Self::Portable),
            other => Err(format!(
                "isa `{other}`: use `auto`, `avx512`, `avx2`, `neon` or `portable` (a \
                 ceiling: the widest kernels this CPU has under it run)"
            )),
        }
    }
}

/// Set up the process-wide kernels from `opts`: the instruction set and the helper team.
/// The first call (or the first kernel run, which takes the defaults) wins; later calls with
/// other settings change nothing, since threads already started and products already
/// dispatched must agree.
pub(crate) fn configure(opts: &EncoderOptions) {
    ISA.get_or_init(|| detect(opts.isa));
    team::configure(opts.threads, Duration::from_micros(opts.spin_us));
}

#[derive(Clone)]
enum Panels {
    F32(Vec<f32>),
    F16(Vec<u16>),
    I8(int8::Panels),
}

/// A `[n, k]` weight matrix (PyTorch Linear layout: out x in) with its bias, stored as
/// `ceil(n / 32)` panels of `k x 32`, zero-padded, so the kernel reads it front to back.
#[derive(Clone)]
pub(crate) struct PackedLinear {
    pub n: usize,
    pub k: usize,
    panels: Panels,
    bias: Vec<f32>,
    /// The same weights as bf16 for products of at least [`AMX_MIN_ROWS`] rows, where the CPU
    /// has AMX-BF16 (see [`bf16`]).
    large: Option<bf16::Panels>,
}

/// Products with fewer rows (one message, or a few) stay on the vector kernels: AMX's tiles
/// of 16 rows would be mostly padding, and switching the tile unit on and off for short
/// products cost more in the latency tail (p99 1.95x p50 against 1.25x) than it saved.
pub(crate) const AMX_MIN_ROWS: usize = 64;

/// What happens to a tile of `x W^T + b` before it is stored.
#[derive(Clone, Copy)]
pub(crate) enum Epilogue<'a> {
    /// `y = x W^T + b`
    Bias,
    /// `y = gelu(x W^T + b)` (exact, erf-based)
    BiasGelu,
    /// `y = x W^T + b + r`, `r` shaped like `y`
    BiasResidual(&'a [f32]),
}

impl std::fmt::Debug for PackedLinear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedLinear({} x {})", self.n, self.k)
    }
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
            WeightFormat::Int8 => Panels::I8(int8::Panels::pack(w, n, k, None)),
        };
        Self {
            n,
            k,
            panels,
            bias: b,
            large: None,
        }
    }

    /// Int8 weights whose input channels are first evened out: `w[:, j] * smooth[j]` is
    /// quantised and every activation `x[j]` is divided by `smooth[j]` before it is, which
    /// moves a channel's outliers from the activations (quantised per token) into the
    /// weights (quantised per column), where they cost less precision.
    pub fn new_int8(w: &[f32], bias: &[f32], n: usize, k: usize, smooth: &[f32]) -> Self {
        let mut lin = Self::new(&[], &[], 0, 0, WeightFormat::F32);
        lin.panels = Panels::I8(int8::Panels::pack(w, n, k, Some(smooth)));
        lin.n = n;
        lin.k = k;
        lin.bias = bias.to_vec();
        lin.bias.resize(n.div_ceil(NR) * NR, 0.0);
        lin
    }

    /// Adds bf16 panels of the same weights `w` for products of at least [`AMX_MIN_ROWS`]
    /// rows; only where [`int8::bf16_available`].
    pub fn with_large_bf16(mut self, w: &[f32]) -> Self {
        assert!(
            int8::bf16_available(),
            "bf16 panels are only packed where they can run"
        );
        self.large = Some(bf16::Panels::pack(w, self.n, self.k));
        self
    }

    pub fn panel_count(&self) -> usize {
        self.n.div_ceil(NR)
    }

    /// `out[m, n] = epilogue(x[m, k] W^T + b)`, shared between the caller and the helper
    /// threads when the product is big enough to be worth it.
    pub fn forward(&self, x: &[f32], m: usize, out: &mut [f32], epi: Epilogue) {
        assert!(x.len() >= m * self.k && out.len() >= m * self.n);
        if let Epilogue::BiasResidual(r) = epi {
            assert!(r.len() >= m * self.n);
        }
        let np = self.panel_count();
        let out = SharedOut::new(out);
        if let Panels::I8(p) = &self.panels {
            // Activations are quantised once per product, by the caller, then shared.
            let q = int8::Rows::quantize(x, m, self.k, p);
            return self.chunks(m, np, &|rows, panels| {
                int8::block(self, p, &q, rows, &out, epi, panels)
            });
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(p) = self.large.as_ref().filter(|_| m >= AMX_MIN_ROWS) {
            // SAFETY: bf16 panels exist only where `int8::bf16_available` (AMX-BF16, AVX-512 BF16
            // conversions: every AMX CPU has them, and the tile state was granted).
            let xb = unsafe { x86_amx::bf16_rows(x, m, self.k, p.pairs) };
            return self.chunks(m, np, &|rows, panels| {
                // SAFETY: as above; `xb` was made for these panels; each chunk writes its own
                // rows x panels.
                unsafe { x86_amx::block_amx_bf16(self, p, &xb, rows, &out, epi, panels) }
            });
        }
        self.chunks(m, np, &|rows, panels| {
            self.block(x, rows, &out, epi, panels)
        });
    }

    /// Runs `run(rows, panels)` over all `m` rows and `np` panels, on the calling thread alone
    /// for small products, else split into chunks shared with the helper threads.
    fn chunks(&self, m: usize, np: usize, run: &(dyn Fn(Range<usize>, Range<usize>) + Sync)) {
        let threads = team::threads();
        if threads == 1 || m * self.k * self.n < PARALLEL_MIN_MACS {
            run(0..m, 0..np);
            return;
        }
        // About six chunks per thread: small enough to even out, big enough to stream.
        let row_blocks = m.div_ceil(ROW_BLOCK);
        let groups_wanted = (6 * threads).div_ceil(row_blocks).max(1);
        let per_group = np.div_ceil(groups_wanted);
        let groups = np.div_ceil(per_group);
        team::for_each_chunk(row_blocks * groups, &|c| {
            let (rb, g) = (c / groups, c % groups);
            let rows = rb * ROW_BLOCK..((rb + 1) * ROW_BLOCK).min(m);
            let panels = g * per_group..((g + 1) * per_group).min(np);
            run(rows, panels);
        });
    }

    /// Rows `rows` times panels `panels`: writes only those rows and those panels' columns.
    fn block(
        &self,
        x: &[f32],
        rows: Range<usize>,
        out: &SharedOut,
        epi: Epilogue,
        panels: Range<usize>,
    ) {
        match isa() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `isa` returns Avx512 only after detecting avx512f, avx2, fma and f16c at
            // run time. `forward` asserted `x` holds `m * k` values and `out` `m * n`, and
            // hands each call its own rows x panels, so no two calls write the same values.
            Isa::Avx512 => unsafe { x86::linear_avx512(self, x, rows, out, epi, panels) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Avx2 only after detecting avx2, fma and f16c; bounds and disjoint
            // writes as for Avx512 above.
            Isa::Avx2 => unsafe { x86::linear_avx2(self, x, rows, out, epi, panels) },
            #[cfg(target_arch = "aarch64")]
            // SAFETY: Neon only after detecting neon; bounds and disjoint writes as for
            // Avx512 above.
            Isa::Neon => unsafe { neon::linear_neon(self, x, rows, out, epi, panels) },
            _ => linear_portable(self, x, rows, out, epi, panels),
        }
    }
}

/// An output matrix that several threads write disjoint parts of. It borrows the slice it
/// was made from for as long as it is used: `for_each_chunk` returns only after every chunk
/// that writes through it has finished.
pub(crate) struct SharedOut {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: a SharedOut is only a pointer and a length into a `&mut [f32]` the creating thread
// gave up for the duration; the only ways to write through it (`slice`, `write`, `ptr`) are
// unsafe or raw and require each thread to write a region no other thread touches, so
// sending or sharing the handle itself cannot create a data race.
unsafe impl Send for SharedOut {}
// SAFETY: as for Send: shared access only hands out disjoint regions, per the callers' contract.
unsafe impl Sync for SharedOut {}

impl SharedOut {
    pub fn new(out: &mut [f32]) -> Self {
        Self {
            ptr: out.as_mut_ptr(),
            len: out.len(),
        }
    }

    /// # Safety
    /// No other thread may touch `offset..offset + len` while the slice lives.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn slice(&self, offset: usize, len: usize) -> &mut [f32] {
        assert!(offset + len <= self.len, "write outside the output");
        // SAFETY: in bounds (asserted above) of the live slice this was made from; the
        // caller guarantees no other thread uses the range while the slice lives.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(offset), len) }
    }

    /// Raw pointer to `offset`, for a write pattern spanning `extent` values whose untouched
    /// gaps belong to other threads (a tile of rows within a column range).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // the AVX-512 tiles' stores
    pub fn ptr(&self, offset: usize, extent: usize) -> *mut f32 {
        assert!(offset + extent <= self.len, "write outside the output");
        // SAFETY: in bounds, checked above.
        unsafe { self.ptr.add(offset) }
    }

    /// # Safety
    /// As [`slice`](Self::slice).
    pub unsafe fn write(&self, offset: usize, values: &[f32]) {
        // SAFETY: the caller's guarantee is exactly `slice`'s.
        unsafe { self.slice(offset, values.len()) }.copy_from_slice(values);
    }
}

/// The instruction set the kernels run with: one the CPU was checked to have.
#[derive(Clone, Copy, Debug, PartialEq)]
// Off x86 the x86 variants exist (code compares against them) but are never chosen.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) enum Isa {
    Avx512,
    Avx2,
    #[cfg(target_arch = "aarch64")]
    Neon,
    Portable,
}

static ISA: OnceLock<Isa> = OnceLock::new();

/// The kernels' instruction set, fixed once per process: as [`configure`] chose it, else
/// the widest this CPU offers.
pub(crate) fn isa() -> Isa {
    *ISA.get_or_init(|| detect(IsaChoice::Auto))
}

/// The widest set the CPU has, no wider than `choice`. Every vector path is reached only
/// through this check, which is what makes calling the `#[target_feature]` kernels sound.
#[allow(unused_variables)]
fn detect(choice: IsaChoice) -> Isa {
    // `neon` caps vectors at 128 bits, and no x86 kernel here is that narrow.
    let below_x86 = choice == IsaChoice::Neon && cfg!(target_arch = "x86_64");
    if choice == IsaChoice::Portable || below_x86 {
        return Isa::Portable;
    }
    #[cfg(target_arch = "aarch64")]
    {
        // Every other choice allows 128 bits, the only width aarch64 has kernels for.
        if std::arch::is_aarch64_feature_detected!("neon") {
            return Isa::Neon;
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c");
        if choice != IsaChoice::Avx2 && is_x86_feature_detected!("avx512f") && avx2 {
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
    rows: Range<usize>,
    out: &SharedOut,
    epi: Epilogue,
    panels: Range<usize>,
) {
    let (k, n) = (w.k, w.n);
    let mut wide = vec![0f32; k * NR];
    for p in panels {
        let range = p * k * NR..(p + 1) * k * NR;
        let panel: &[f32] = match &w.panels {
            Panels::F32(v) => &v[range],
            Panels::F16(v) => {
                for (o, &h) in wide.iter_mut().zip(&v[range]) {
                    *o = f16_to_f32(h);
                }
                &wide
            }
            Panels::I8(_) => unreachable!("int8 panels run through int8::block"),
        };
        let cols = NR.min(n - p * NR);
        for r in rows.clone() {
            let mut acc = [0f32; NR];
            acc.copy_from_slice(&w.bias[p * NR..(p + 1) * NR]);
            let xr = &x[r * k..(r + 1) * k];
            for (kk, &xv) in xr.iter().enumerate() {
                let wr = &panel[kk * NR..(kk + 1) * NR];
                for j in 0..NR {
                    acc[j] += xv * wr[j];
                }
            }
            let off = r * n + p * NR;
            // SAFETY: this call alone writes rows `rows` x the columns of panels `panels`
            // (`forward` gives every chunk its own), and `slice` checks the bounds.
            let o = unsafe { out.slice(off, cols) };
            o.copy_from_slice(&acc[..cols]);
            finish(o, epi, off);
        }
    }
}

/// Apply the epilogue's non-linear part to stored values `o` that start at `offset` in `y`.
#[inline(always)]
fn finish(o: &mut [f32], epi: Epilogue, offset: usize) {
    match epi {
        Epilogue::Bias => {}
        Epilogue::BiasGelu => math::gelu_inplace(o),
        Epilogue::BiasResidual(r) => {
            let len = o.len();
            for (v, rv) in o.iter_mut().zip(&r[offset..offset + len]) {
                *v += rv;
            }
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(all(test, target_arch = "x86_64"))]
mod bf16_tests;
