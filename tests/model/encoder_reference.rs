//! The encoder reproduces sentence-transformers' all-MiniLM-L6-v2 embeddings.
use frontdesk::nlu::encoder::{Encoder, ModelFiles};
use frontdesk::nlu::{EncoderOptions, NluOptions, WeightFormat};

/// The default model in the default cache (fetched there once).
fn model() -> ModelFiles {
    ModelFiles::resolve(None, &NluOptions::default().cache_dir)
        .expect("model resolves (fetched into the cache once)")
}

fn encoder(weights: WeightFormat) -> Encoder {
    let opts = EncoderOptions {
        weights,
        ..EncoderOptions::default()
    };
    Encoder::load(&model(), &opts).unwrap()
}

#[derive(serde::Deserialize)]
struct Reference {
    text: String,
    tokens: usize,
    embedding: Vec<f32>,
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb).max(1e-12)
}

#[test]
fn encoder_matches_sentence_transformers_reference() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/minilm/reference.jsonl"
    );
    let refs: Vec<Reference> = std::fs::read_to_string(path)
        .expect("../shared/data/minilm/reference.jsonl is readable")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(refs.len() >= 10);
    let enc = encoder(WeightFormat::F16);
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    // Batched and one at a time must both match.
    let batched = enc.encode(&texts).unwrap();
    let mut worst = 1f32;
    for (r, e) in refs.iter().zip(&batched) {
        let single = &enc.encode(&[r.text.as_str()]).unwrap()[0];
        assert_eq!(
            enc.token_count(&r.text).unwrap(),
            r.tokens,
            "token count of {:?}",
            r.text
        );
        let c = cosine(e, &r.embedding);
        assert!(c >= 0.9999, "batched cosine {c} for {:?}", r.text);
        let c1 = cosine(single, &r.embedding);
        assert!(c1 >= 0.9999, "single cosine {c1} for {:?}", r.text);
        worst = worst.min(c).min(c1);
    }
    eprintln!("lowest cosine to the reference: {worst:.7}");
}

#[test]
fn one_pass_yields_embedding_layer_means_and_max_pool() {
    let enc = encoder(WeightFormat::F16);
    let texts = [
        "Where is my parcel? Order #4411 never arrived!!",
        "",
        "thanks a lot",
    ];
    let feats = enc.encode_features(&texts).unwrap();
    let embs = enc.encode(&texts).unwrap();
    let d = enc.dim();
    assert_eq!(feats.len(), texts.len());
    for (f, e) in feats.iter().zip(&embs) {
        assert_eq!(f.embedding.len(), d);
        assert_eq!(f.layer_means.len(), enc.layers() * d);
        assert_eq!(f.max_pool.len(), d);
        assert!(cosine(&f.embedding, e) > 0.99999);
        // The embedding is the normalised mean of the last layer.
        let last = &f.layer_means[(enc.layers() - 1) * d..];
        assert!(cosine(last, &f.embedding) > 0.99999);
        // A max over tokens is never below their mean.
        assert!(f.max_pool.iter().zip(last).all(|(m, a)| m + 1e-5 >= *a));
        // Layers differ from one another.
        assert!(cosine(&f.layer_means[..d], last) < 0.999);
    }
}

/// Tweets of every length, from the shared sentiment validation set.
fn tweets(n: usize) -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/tweeteval/sentiment/val.tsv"
    );
    std::fs::read_to_string(path)
        .expect("../shared/data/tweeteval/sentiment/val.tsv is readable")
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once('\t').map(|(_, t)| t.to_string()))
        .take(n)
        .collect()
}

#[test]
fn half_precision_weights_keep_every_embedding() {
    let half = encoder(WeightFormat::F16);
    let full = encoder(WeightFormat::F32);
    let texts = tweets(400);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let a = half.encode_features(&refs).unwrap();
    let b = full.encode_features(&refs).unwrap();
    let mut worst = 1f32;
    for ((x, y), t) in a.iter().zip(&b).zip(&texts) {
        let c = cosine(&x.embedding, &y.embedding);
        assert!(c >= 0.9999, "f16 vs f32 cosine {c} for {t:?}");
        assert!(
            cosine(&x.max_pool, &y.max_pool) >= 0.9999,
            "max pool of {t:?}"
        );
        worst = worst.min(c);
    }
    eprintln!(
        "lowest f16/f32 cosine over {} tweets: {worst:.7}",
        texts.len()
    );
}

#[test]
fn concurrent_callers_get_the_same_embeddings() {
    let enc = encoder(WeightFormat::F16);
    let texts = tweets(40);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let alone = enc.encode(&refs).unwrap();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    refs.iter()
                        .map(|t| enc.encode(&[t]).unwrap().remove(0))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            for (got, want) in h.join().unwrap().iter().zip(&alone) {
                assert!(cosine(got, want) > 0.99999);
            }
        }
    });
}
