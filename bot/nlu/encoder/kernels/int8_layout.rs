//! What the int8 kernels share: the panels' and the quantised rows' layout, the dot products
//! and the plain quantiser (kept apart from `int8.rs`, which chooses among the kernels, so the
//! x86 kernels depend on this file only).

use super::NR;

/// Bytes of one group row of a panel: 32 columns x 4 consecutive inputs.
pub(crate) const GROUP: usize = NR * 4;

/// Which integer dot product runs, which also fixes how wide quantised activations are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub enum Dot {
    /// Intel AMX `tdpbusd` on 16-row tiles (products whose width is a multiple of 64; others
    /// take AVX-512 VNNI), with AVX-512 VNNI's quantisation.
    Amx,
    /// AVX-512 VNNI `vpdpbusd`: four u8 x s8 products summed into each 32-bit lane.
    Avx512Vnni,
    /// AVX-VNNI: the same instruction on 256-bit registers.
    AvxVnni,
    /// AVX2 `vpmaddubsw` then `vpmaddwd`: pairs are summed in 16 bits first, so activations
    /// keep 7 bits (0..=127) to stay clear of saturation (2 x 127 x 127 < 32768).
    Avx2,
    /// Plain Rust integer loops.
    Portable,
}

impl Dot {
    /// Largest quantised activation (the lowest is 0).
    pub fn levels(self) -> u8 {
        match self {
            Dot::Avx2 => 127,
            _ => 255,
        }
    }
}

/// Quantised weights of one `PackedLinear`.
#[derive(Clone)]
pub(crate) struct Panels {
    /// `panels x groups x GROUP` bytes.
    pub(crate) data: Vec<i8>,
    /// Per column (padded to whole panels): the weight that one step of `q_w` stands for.
    pub(crate) scale: Vec<f32>,
    /// Per column: `sum(q_w)`, what each row's lowest value is multiplied by.
    pub(crate) colsum: Vec<f32>,
    /// Groups of four inputs: `ceil(k / 4)`.
    pub(crate) groups: usize,
    /// The dot product these panels were packed for (it fixes the activations' zero).
    pub(crate) dot: Dot,
    /// Per input: what activations are multiplied by before they are quantised (the inverse
    /// of the factor the weights were multiplied by); `None`: left as they are.
    pub(crate) unsmooth: Option<Vec<f32>>,
}

/// Activations of one product quantised per row, as unsigned bytes.
pub(crate) struct Rows {
    /// `m x stride` bytes; columns past `k` hold 0.
    pub(crate) data: Vec<u8>,
    /// Per row: the activation that one step of `u` stands for.
    pub(crate) scale: Vec<f32>,
    /// Per row: its lowest value, what `u = 0` stands for.
    pub(crate) low: Vec<f32>,
    /// Bytes per row: `k` rounded up to whole groups of four.
    pub(crate) stride: usize,
}

/// Quantise one row onto `0..=levels`: returns its scale and its lowest value. Written to
/// vectorise when inlined into a function compiled for a vector instruction set.
#[inline(always)]
pub(crate) fn quantize_row(x: &[f32], out: &mut [u8], levels: f32) -> (f32, f32) {
    let (lo, hi) = x.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| {
        (if v < lo { v } else { lo }, if v > hi { v } else { hi })
    });
    let range = hi - lo;
    if x.is_empty() || !range.is_finite() || range <= 0.0 {
        out.fill(0);
        return (
            0.0,
            if x.is_empty() || !lo.is_finite() {
                0.0
            } else {
                lo
            },
        );
    }
    let inv = levels / range;
    for (o, v) in out.iter_mut().zip(x) {
        *o = ((v - lo) * inv).round_ties_even().min(levels) as i32 as u8;
    }
    (range / levels, lo)
}
