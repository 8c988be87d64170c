//! Int8 products against f32 and against each other.

use super::super::tests::pseudo;
use super::super::{Epilogue, PackedLinear, Panels as AnyPanels, WeightFormat};
use super::*;

/// Every dot product this CPU can run.
fn dots() -> Vec<Dot> {
    #[allow(unused_mut)]
    let mut v = vec![Dot::Portable];
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx2") && has!("fma") {
            v.push(Dot::Avx2);
            if has!("avxvnni") {
                v.push(Dot::AvxVnni);
            }
            if has!("avx512f") && has!("avx512vnni") {
                v.push(Dot::Avx512Vnni);
                if super::super::x86_amx::has_amx_int8() && super::super::x86_amx::request_tiles() {
                    v.push(Dot::Amx);
                }
            }
        }
    }
    v
}

fn int8_linear(w: &[f32], b: &[f32], n: usize, k: usize, dot: Dot) -> PackedLinear {
    let mut lin = PackedLinear::new(w, b, n, k, WeightFormat::F32);
    lin.panels = AnyPanels::I8(Panels::pack_for(w, n, k, dot));
    lin
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb).max(1e-12)
}

/// Every kernel on every tile height, a partial last panel and an input width that is not
/// a multiple of four: the same integers as the plain loops, and close to the f32 product.
#[test]
fn every_kernel_matches_the_plain_loops_and_stays_near_f32() {
    for &(n, k) in &[(100usize, 64usize), (40, 70), (32, 384), (70, 1536)] {
        let w = pseudo(n * k, 11);
        let b = pseudo(n, 12);
        let exact = PackedLinear::new(&w, &b, n, k, WeightFormat::F32);
        for m in (1..=13).chain([30, 64, 65, 80]) {
            let x = pseudo(m * k, 13 + m as u32);
            let mut want = vec![0f32; m * n];
            exact.forward(&x, m, &mut want, Epilogue::Bias);
            for dot in dots() {
                let lin = int8_linear(&w, &b, n, k, dot);
                let mut got = vec![0f32; m * n];
                lin.forward(&x, m, &mut got, Epilogue::Bias);
                // The same quantised inputs through the plain integer loops.
                let AnyPanels::I8(p) = &lin.panels else {
                    unreachable!()
                };
                let q = Rows::quantize(&x, m, k, p);
                let mut plain = vec![0f32; m * n];
                let out = SharedOut::new(&mut plain);
                block_portable(
                    &lin,
                    p,
                    &q,
                    0..m,
                    &out,
                    Epilogue::Bias,
                    0..lin.panel_count(),
                );
                for r in 0..m {
                    let (g, e, f) = (
                        &got[r * n..(r + 1) * n],
                        &plain[r * n..(r + 1) * n],
                        &want[r * n..(r + 1) * n],
                    );
                    for (a, c) in g.iter().zip(e) {
                        assert!(
                            (a - c).abs() <= 1e-5 * (1.0 + c.abs()),
                            "{dot:?} m={m} n={n} k={k}: {a} vs {c}"
                        );
                    }
                    let cos = cosine(g, f);
                    let floor = if dot == Dot::Avx2 { 0.999 } else { 0.9998 };
                    assert!(
                        cos >= floor,
                        "{dot:?} m={m} n={n} k={k}: cosine {cos} to f32"
                    );
                }
            }
        }
    }
}

#[test]
fn epilogues_apply_after_the_rescale() {
    let (m, n, k) = (7, 50, 48);
    let w = pseudo(n * k, 21);
    let b = pseudo(n, 22);
    let x = pseudo(m * k, 23);
    let r = pseudo(m * n, 24);
    for dot in dots() {
        let lin = int8_linear(&w, &b, n, k, dot);
        let mut plain = vec![0f32; m * n];
        lin.forward(&x, m, &mut plain, Epilogue::Bias);
        let mut gelu = vec![0f32; m * n];
        lin.forward(&x, m, &mut gelu, Epilogue::BiasGelu);
        let mut res = vec![0f32; m * n];
        lin.forward(&x, m, &mut res, Epilogue::BiasResidual(&r));
        for i in 0..m * n {
            let mut g = [plain[i]];
            crate::encoder::kernels::math::gelu_inplace(&mut g);
            assert!((gelu[i] - g[0]).abs() < 1e-6, "{dot:?}");
            assert!((res[i] - plain[i] - r[i]).abs() < 1e-6, "{dot:?}");
        }
    }
}

/// A row of zeros (an empty state) gives the bias, not a division by zero; one huge value
/// in a row costs the others precision but never overflows the bytes.
#[test]
fn flat_rows_and_outliers_quantise_safely() {
    let k = 12;
    let mut x = vec![0f32; 2 * k];
    x[k] = 1e6;
    x[k + 1] = -3.0;
    for dot in dots() {
        let q = Rows::quantize(&x, 2, k, &Panels::pack_for(&vec![0.1; k], 1, k, dot));
        assert_eq!((q.scale[0], q.low[0]), (0.0, 0.0));
        assert!(q.data[..k].iter().all(|&v| v == 0));
        assert_eq!(q.data[k], dot.levels());
        assert_eq!(q.data[k + 1], 0);
        assert_eq!(q.low[1], -3.0);
        assert!((q.scale[1] * dot.levels() as f32 - 1e6 - 3.0).abs() < 1.0);
        let w = pseudo(3 * k, 5);
        let b = [0.5, -0.25, 2.0];
        let lin = int8_linear(&w, &b, 3, k, dot);
        let mut y = vec![0f32; 6];
        lin.forward(&x, 2, &mut y, Epilogue::Bias);
        assert_eq!(&y[..3], &b);
        assert!(y[3..].iter().all(|v| v.is_finite()));
    }
}

/// A row of one value repeated (every input the same) is exact: only its offset remains.
#[test]
fn a_constant_row_is_carried_by_its_offset() {
    let (n, k) = (5, 16);
    let w = pseudo(n * k, 31);
    let b = pseudo(n, 32);
    let x = vec![0.75f32; k];
    let exact = PackedLinear::new(&w, &b, n, k, WeightFormat::F32);
    let mut want = vec![0f32; n];
    exact.forward(&x, 1, &mut want, Epilogue::Bias);
    for dot in dots() {
        let mut got = vec![0f32; n];
        int8_linear(&w, &b, n, k, dot).forward(&x, 1, &mut got, Epilogue::Bias);
        for (g, e) in got.iter().zip(&want) {
            // Only the weights' own rounding (half a step of max|w| / 127 per input) is left.
            assert!(
                (g - e).abs() < 0.75 * k as f32 * 0.5 / 127.0,
                "{dot:?}: {g} vs {e}"
            );
        }
    }
}

#[test]
fn the_word_parses_and_only_narrows() {
    assert_eq!("int8".parse::<WeightFormat>(), Ok(WeightFormat::Int8));
    assert!("i4".parse::<WeightFormat>().unwrap_err().contains("int8"));
    assert_eq!(detect(Isa::Portable), Dot::Portable);
    assert!(dots().contains(&dot()));
}

/// Every quantiser (with channel evening, ragged widths) gives the plain loop's bytes.
#[test]
fn every_quantiser_gives_the_plain_bytes() {
    for k in [1usize, 15, 16, 17, 70, 384] {
        let m = 3;
        let x = pseudo(m * k, 41 + k as u32);
        let smooth: Vec<f32> = pseudo(k, 42).iter().map(|v| 0.5 + v.abs() * 4.0).collect();
        let w = pseudo(2 * k, 43);
        for dot in dots() {
            let mut p = Panels::pack_for(&w, 2, k, dot);
            p.unsmooth = Some(smooth.iter().map(|f| 1.0 / f).collect());
            let q = Rows::quantize(&x, m, k, &p);
            let u = p.unsmooth.as_ref().unwrap();
            for r in 0..m {
                let even: Vec<f32> = x[r * k..(r + 1) * k]
                    .iter()
                    .zip(u)
                    .map(|(v, f)| v * f)
                    .collect();
                let mut want = vec![0u8; k];
                let (scale, low) = quantize_row(&even, &mut want, dot.levels() as f32);
                assert_eq!(
                    &q.data[r * q.stride..r * q.stride + k],
                    &want[..],
                    "{dot:?} k={k}"
                );
                assert_eq!((q.scale[r], q.low[r]), (scale, low), "{dot:?} k={k}");
            }
        }
    }
}
