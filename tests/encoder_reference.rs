//! The encoder reproduces sentence-transformers' all-MiniLM-L6-v2 embeddings.
use frontdesk::nlu::{encoder::Encoder, model::ModelFiles};

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
    let files = ModelFiles::resolve(None).expect("model resolves (fetched into the cache once)");
    let enc = Encoder::load(&files).unwrap();
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    // Batched and one at a time must both match.
    let batched = enc.encode(&texts).unwrap();
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
    }
}
