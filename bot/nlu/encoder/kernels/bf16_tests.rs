//! bf16 panels on AMX against f32 of the same rounded inputs.

use super::bf16::{from_bf16, to_bf16};
use super::tests::pseudo;
use super::{Epilogue, PackedLinear, WeightFormat};

/// Against the f32 product of the same bf16-rounded inputs, from the first size that takes
/// them, with partial last tiles and a partial last panel.
#[test]
fn bf16_products_match_f32_of_the_rounded_inputs() {
    if !super::int8::bf16_available() {
        // Only CPUs without AMX-BF16 (or without the tile state) skip this.
        assert!(!(super::x86_amx::has_amx_bf16() && super::int8::dot() == super::int8::Dot::Amx));
        return;
    }
    for &(n, k) in &[(100usize, 64usize), (32, 384), (40, 1536)] {
        let w = pseudo(n * k, 51);
        let b = pseudo(n, 52);
        let wr: Vec<f32> = w.iter().map(|&v| from_bf16(to_bf16(v))).collect();
        let exact = PackedLinear::new(&wr, &b, n, k, WeightFormat::F32);
        let lin = PackedLinear::new(&w, &b, n, k, WeightFormat::F32).with_large_bf16(&w);
        for m in [64, 65, 80, 113] {
            let x = pseudo(m * k, 53 + m as u32);
            let xr: Vec<f32> = x.iter().map(|&v| from_bf16(to_bf16(v))).collect();
            let mut want = vec![0f32; m * n];
            exact.forward(&xr, m, &mut want, Epilogue::BiasGelu);
            let mut got = vec![0f32; m * n];
            lin.forward(&x, m, &mut got, Epilogue::BiasGelu);
            for (g, e) in got.iter().zip(&want) {
                assert!(
                    (g - e).abs() < 1e-4 * (1.0 + e.abs()),
                    "m={m} n={n} k={k}: {g} vs {e}"
                );
            }
        }
    }
}

#[test]
fn rounding_is_to_nearest_even() {
    assert_eq!(to_bf16(1.0), 0x3f80);
    // 1 + 2^-8 is halfway between two bf16 values: ties go to the even one (1.0).
    assert_eq!(to_bf16(1.0 + 1.0 / 256.0), 0x3f80);
    assert_eq!(to_bf16(1.0 + 3.0 / 256.0), 0x3f82);
    assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
}
