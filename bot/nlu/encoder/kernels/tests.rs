//! The kernels against plain loops and against each other.

use super::*;

fn naive(x: &[f32], w: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
    let mut y = vec![0f32; m * n];
    for r in 0..m {
        for c in 0..n {
            let mut s = b[c] as f64;
            for kk in 0..k {
                s += x[r * k + kk] as f64 * w[c * k + kk] as f64;
            }
            y[r * n + c] = s as f32;
        }
    }
    y
}

pub(super) fn pseudo(len: usize, seed: u32) -> Vec<f32> {
    let mut s = seed;
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
        .collect()
}

#[test]
fn gelu_and_residual_epilogues_apply_per_element() {
    let (m, n, k) = (30, 100, 64);
    let x = pseudo(m * k, 4);
    let w = pseudo(n * k, 5);
    let b = pseudo(n, 6);
    let r = pseudo(m * n, 7);
    let lin = PackedLinear::new(&w, &b, n, k, WeightFormat::F32);
    let mut plain = vec![0f32; m * n];
    lin.forward(&x, m, &mut plain, Epilogue::Bias);
    let mut gelu = vec![0f32; m * n];
    lin.forward(&x, m, &mut gelu, Epilogue::BiasGelu);
    let mut res = vec![0f32; m * n];
    lin.forward(&x, m, &mut res, Epilogue::BiasResidual(&r));
    for i in 0..m * n {
        let mut g = [plain[i]];
        math::gelu_inplace(&mut g);
        assert!((gelu[i] - g[0]).abs() < 1e-6);
        assert!((res[i] - plain[i] - r[i]).abs() < 1e-6);
    }
}

#[test]
fn choices_parse_from_config_words() {
    assert_eq!("f32".parse::<WeightFormat>(), Ok(WeightFormat::F32));
    assert_eq!("F16".parse::<WeightFormat>(), Ok(WeightFormat::F16));
    assert!("f8".parse::<WeightFormat>().unwrap_err().contains("f16"));
    assert_eq!("avx2".parse::<IsaChoice>(), Ok(IsaChoice::Avx2));
    assert_eq!("portable".parse::<IsaChoice>(), Ok(IsaChoice::Portable));
    assert!("sse".parse::<IsaChoice>().is_err());
    assert_eq!(detect(IsaChoice::Portable), Isa::Portable);
}

#[test]
fn packed_product_matches_naive_for_odd_shapes() {
    for &(m, n, k) in &[(1, 384, 384), (13, 50, 7), (25, 1536, 384), (3, 17, 1536)] {
        let x = pseudo(m * k, 1);
        let w = pseudo(n * k, 2);
        let b = pseudo(n, 3);
        let want = naive(&x, &w, &b, m, n, k);
        for (format, tol) in [(WeightFormat::F32, 1e-4), (WeightFormat::F16, 2e-2)] {
            let lin = PackedLinear::new(&w, &b, n, k, format);
            let mut got = vec![0f32; m * n];
            lin.forward(&x, m, &mut got, Epilogue::Bias);
            let mut port = vec![0f32; m * n];
            let out = SharedOut::new(&mut port);
            linear_portable(&lin, &x, 0..m, &out, Epilogue::Bias, 0..lin.panel_count());
            for i in 0..m * n {
                assert!(
                    (got[i] - want[i]).abs() < tol,
                    "{format:?} {m}x{n}x{k} at {i}"
                );
                // The vector paths and the fallback see the same rounded weights.
                assert!(
                    (port[i] - got[i]).abs() < 1e-4,
                    "portable {m}x{n}x{k} at {i}"
                );
            }
        }
    }
}

/// Every x86 kernel this CPU can run, whatever `isa()` picked, on every tile height
/// (1 to 13 rows) and a ragged last panel, against the portable fallback.
#[cfg(target_arch = "x86_64")]
#[test]
fn every_x86_kernel_matches_the_fallback_on_every_tile_height() {
    let avx2 = is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c");
    let avx512 = avx2 && is_x86_feature_detected!("avx512f");
    type Kernel =
        unsafe fn(&PackedLinear, &[f32], Range<usize>, &SharedOut, Epilogue, Range<usize>);
    let (n, k) = (72, 40);
    let w = pseudo(n * k, 5);
    let b = pseudo(n, 6);
    for m in 1..=13 {
        let x = pseudo(m * k, 7);
        for format in [WeightFormat::F32, WeightFormat::F16] {
            let lin = PackedLinear::new(&w, &b, n, k, format);
            let np = lin.panel_count();
            let mut want = vec![0f32; m * n];
            linear_portable(
                &lin,
                &x,
                0..m,
                &SharedOut::new(&mut want),
                Epilogue::Bias,
                0..np,
            );
            for (name, kernel, runs) in [
                ("avx2", x86::linear_avx2 as Kernel, avx2),
                ("avx512", x86::linear_avx512 as Kernel, avx512),
            ] {
                if !runs {
                    continue;
                }
                let mut got = vec![0f32; m * n];
                // SAFETY: the kernel's features were detected above; `x` holds m * k
                // values, `got` m * n, and this call is the only writer.
                let out = SharedOut::new(&mut got);
                unsafe { kernel(&lin, &x, 0..m, &out, Epilogue::Bias, 0..np) };
                for i in 0..m * n {
                    assert!(
                        (got[i] - want[i]).abs() < 1e-4,
                        "{name} {format:?} m={m} at {i}: {} vs {}",
                        got[i],
                        want[i]
                    );
                }
            }
        }
    }
}

/// `neon` is a 128-bit ceiling: NEON where the CPU has it, else the portable code; the x86
/// words narrow to NEON on aarch64.
#[test]
fn neon_choice_parses_and_narrows() {
    assert_eq!("neon".parse::<IsaChoice>(), Ok(IsaChoice::Neon));
    assert_eq!(" NEON ".parse::<IsaChoice>(), Ok(IsaChoice::Neon));
    assert!("sse".parse::<IsaChoice>().unwrap_err().contains("`neon`"));
    #[cfg(target_arch = "x86_64")]
    {
        assert_eq!(detect(IsaChoice::Neon), Isa::Portable);
    }
    #[cfg(target_arch = "aarch64")]
    {
        for choice in [
            IsaChoice::Auto,
            IsaChoice::Avx512,
            IsaChoice::Avx2,
            IsaChoice::Neon,
        ] {
            assert_eq!(detect(choice), Isa::Neon, "{choice:?}");
        }
        assert_eq!(detect(IsaChoice::Portable), Isa::Portable);
    }
}

/// The NEON widening of f16 weights against `f16_to_f32`, bit for bit, on every finite
/// half of both signs (subnormals and zeros included).
#[cfg(target_arch = "aarch64")]
#[test]
fn neon_widens_every_finite_half_exactly() {
    use std::arch::aarch64::{vld1q_s16, vst1q_f32};
    let halves: Vec<u16> = (0u16..0x7c00).flat_map(|h| [h, h | 0x8000]).collect();
    for eight in halves.chunks_exact(8) {
        let mut got = [0f32; 8];
        // SAFETY: `eight` holds 8 halves and `got` 8 f32; NEON is baseline on aarch64.
        unsafe {
            let (lo, hi) = neon::widen_f16(vld1q_s16(eight.as_ptr() as *const i16));
            vst1q_f32(got.as_mut_ptr(), lo);
            vst1q_f32(got.as_mut_ptr().add(4), hi);
        }
        for (g, &h) in got.iter().zip(eight) {
            let want = f16_to_f32(h);
            assert_eq!(g.to_bits(), want.to_bits(), "half {h:#06x}: {g} vs {want}");
        }
    }
}

/// The NEON kernel on every tile height (1 to 13 rows: two full 6-row tiles, then every
/// remainder), f32 and f16 panels and a ragged last panel, against the plain loops (over
/// the same f16-rounded weights for f16 panels, so the tolerance stays tight); then on a
/// block that starts past the first row and panel, which must write nothing else.
#[cfg(target_arch = "aarch64")]
#[test]
fn neon_kernel_matches_naive_on_every_tile_height() {
    let (n, k) = (72, 40);
    let w = pseudo(n * k, 5);
    let b = pseudo(n, 6);
    let rounded: Vec<f32> = w.iter().map(|&v| f16_to_f32(f32_to_f16(v))).collect();
    for m in 1..=13 {
        let x = pseudo(m * k, 7);
        for (format, weights) in [(WeightFormat::F32, &w), (WeightFormat::F16, &rounded)] {
            let want = naive(&x, weights, &b, m, n, k);
            let lin = PackedLinear::new(&w, &b, n, k, format);
            let np = lin.panel_count();
            let mut got = vec![0f32; m * n];
            let out = SharedOut::new(&mut got);
            // SAFETY: NEON is baseline on aarch64; `x` holds m * k values, `got` m * n, and
            // this call is the only writer.
            unsafe { neon::linear_neon(&lin, &x, 0..m, &out, Epilogue::Bias, 0..np) };
            for i in 0..m * n {
                assert!(
                    (got[i] - want[i]).abs() < 1e-5,
                    "neon {format:?} m={m} at {i}: {} vs {}",
                    got[i],
                    want[i]
                );
            }
            let (rows, panels) = (m / 2..m, 1..np);
            let mut part = vec![0f32; m * n];
            let out = SharedOut::new(&mut part);
            // SAFETY: as above, for a sub-block of the same product.
            unsafe { neon::linear_neon(&lin, &x, rows.clone(), &out, Epilogue::Bias, panels) };
            for i in 0..m * n {
                let inside = rows.contains(&(i / n)) && i % n >= NR;
                let expected = if inside { want[i] } else { 0.0 };
                assert!(
                    (part[i] - expected).abs() < 1e-5,
                    "neon {format:?} m={m} block at {i}: {} vs {expected}",
                    part[i]
                );
            }
        }
    }
}
