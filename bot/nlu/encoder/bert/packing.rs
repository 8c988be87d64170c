//! Packing a layer's products for the kernels: as stored (f32, f16), or int8 with its input
//! channels evened out by what a calibration pass recorded.

use super::super::kernels::{PackedLinear, WeightFormat};

/// Pack one product; int8 with input statistics gets its channels evened out first
/// (SmoothQuant: `smooth[j] = sqrt(max|x_j| / max|w_.j|)`), int8 without them does not.
pub(super) fn pack(
    weight: &[f32],
    bias: &[f32],
    n: usize,
    k: usize,
    format: WeightFormat,
    input_max: Option<&[f32]>,
) -> PackedLinear {
    match (format, input_max) {
        (WeightFormat::Int8, Some(xmax)) => {
            let mut wmax = vec![0f32; k];
            for row in weight.chunks_exact(k) {
                wmax.iter_mut()
                    .zip(row)
                    .for_each(|(m, v)| *m = m.max(v.abs()));
            }
            let smooth: Vec<f32> = xmax
                .iter()
                .zip(&wmax)
                .map(|(x, w)| (x.max(1e-5) / w.max(1e-5)).sqrt())
                .collect();
            PackedLinear::new_int8(weight, bias, n, k, &smooth)
        }
        _ => PackedLinear::new(weight, bias, n, k, format),
    }
}

/// Per layer, the largest |value| each input of its four products took on some messages:
/// what int8 packing needs to even out the inputs' channels.
pub struct Calibration {
    /// qkv, attention output, intermediate and output inputs, per layer.
    pub(super) layers: Vec<[Vec<f32>; 4]>,
}

pub(super) fn record_max(x: &[f32], k: usize, into: &mut Vec<f32>) {
    into.resize(k, 0.0);
    for row in x.chunks_exact(k) {
        into.iter_mut()
            .zip(row)
            .for_each(|(m, v)| *m = m.max(v.abs()));
    }
}
