//! The encoder, on the kernels this CPU runs, reproduces sentence-transformers'
//! all-MiniLM-L6-v2 embeddings for the texts of `shared/data/minilm/reference.jsonl`, with
//! f16 and f32 weights, batched and one at a time.
//!
//! It is the crate's own end-to-end check of its matrix kernels: on x86 it runs the
//! AVX-512 / AVX2 ones, and `tests/cross/aarch64.sh` runs it under qemu-user for the NEON
//! one. It stays to the reference file's 26 texts because under emulation every encoder
//! pass is slow.

use frontdesk_nlu::encoder::{Encoder, ModelFiles};
use frontdesk_nlu::{EncoderOptions, NluOptions, WeightFormat};

#[derive(serde::Deserialize)]
struct Reference {
    text: String,
    tokens: usize,
    embedding: Vec<f32>,
}

/// The reference texts and embeddings (sentence-transformers, f32).
fn references() -> Vec<Reference> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/minilm/reference.jsonl"
    );
    let refs: Vec<Reference> = std::fs::read_to_string(path)
        .unwrap_or_else(|e| {
            panic!(
                "cannot read {path} ({e}): the reference data lives in ../shared/data, next \
                 to the repository"
            )
        })
        .lines()
        .map(|l| serde_json::from_str(l).expect("a reference line is JSON"))
        .collect();
    assert!(refs.len() >= 10, "{path} holds {} lines", refs.len());
    refs
}

/// The default model in the default cache (fetched there once; the cross-compiled run
/// expects it there already).
fn encoder(weights: WeightFormat) -> Encoder {
    let files = ModelFiles::resolve(None, &NluOptions::default().cache_dir)
        .expect("model resolves (fetched into the cache once)");
    let opts = EncoderOptions {
        weights,
        ..EncoderOptions::default()
    };
    Encoder::load(&files, &opts).expect("the default model loads")
}

/// The kernels `EncoderOptions::default()` (isa `auto`) must give on this CPU: the vector
/// ones wherever the CPU has them, so this test checks those and not the fallback.
fn expected_kernels() -> &'static str {
    #[cfg(target_arch = "aarch64")]
    {
        "Neon"
    }
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c");
        if avx2 && is_x86_feature_detected!("avx512f") {
            "Avx512"
        } else if avx2 {
            "Avx2"
        } else {
            "Portable"
        }
    }
    #[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
    {
        "Portable"
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb).max(1e-12)
}

/// Every reference text, in one batch and alone, at cosine >= 0.9999 to the reference.
fn matches_reference(weights: WeightFormat) {
    let refs = references();
    let enc = encoder(weights);
    let kernels = frontdesk_nlu::bench::kernels();
    assert_eq!(kernels, expected_kernels(), "kernels in use");
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    let batched = enc.encode(&texts).unwrap();
    assert_eq!(batched.len(), refs.len());
    let mut worst = (1f32, "");
    for (r, e) in refs.iter().zip(&batched) {
        assert_eq!(
            enc.token_count(&r.text).unwrap(),
            r.tokens,
            "token count of {:?}",
            r.text
        );
        let single = &enc.encode(&[r.text.as_str()]).unwrap()[0];
        let c = cosine(e, &r.embedding);
        assert!(
            c >= 0.9999,
            "{weights:?} batched cosine {c} for {:?}",
            r.text
        );
        let c1 = cosine(single, &r.embedding);
        assert!(
            c1 >= 0.9999,
            "{weights:?} single cosine {c1} for {:?}",
            r.text
        );
        if c.min(c1) < worst.0 {
            worst = (c.min(c1), &r.text);
        }
    }
    eprintln!(
        "kernels {kernels}, {weights:?} weights, {} texts: lowest cosine to the reference \
         {:.7} ({:?})",
        refs.len(),
        worst.0,
        worst.1
    );
}

#[test]
fn f16_weights_match_the_reference_embeddings() {
    matches_reference(WeightFormat::F16);
}

#[test]
fn f32_weights_match_the_reference_embeddings() {
    matches_reference(WeightFormat::F32);
}
