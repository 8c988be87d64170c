use super::*;
use crate::training::{ClassWeights, TrainOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Three well-separated blobs in 4-d, with a little deterministic jitter.
fn blobs(per_class: usize) -> (Vec<Vec<f32>>, Vec<usize>) {
    let centres = [[3.0f32, 0., 0., 1.], [0., 3., 0., 1.], [0., 0., 3., 1.]];
    let mut rng = StdRng::seed_from_u64(1);
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for (c, centre) in centres.iter().enumerate() {
        for _ in 0..per_class {
            xs.push(
                centre
                    .iter()
                    .map(|v| v + rng.gen_range(-0.8..0.8))
                    .collect(),
            );
            ys.push(c);
        }
    }
    (xs, ys)
}

fn labels() -> Vec<String> {
    vec!["a".into(), "b".into(), "c".into()]
}

#[test]
fn logistic_regression_learns_separable_classes() {
    let (xs, ys) = blobs(30);
    let head = Head::fit(&xs, &ys, &labels(), "toy", &TrainOptions::default()).unwrap();
    let correct = xs
        .iter()
        .zip(&ys)
        .filter(|(x, &y)| head.predict(x).0 == y)
        .count();
    assert_eq!(correct, xs.len());
    // a fresh point near the second centre
    assert_eq!(head.predict(&[0.2, 2.7, -0.1, 1.0]).0, 1);
}

#[test]
fn mlp_learns_xor() {
    // not linearly separable: only the hidden layer can get all four right
    let xs: Vec<Vec<f32>> = (0..40)
        .map(|i| {
            let (a, b) = ((i % 2) as f32, ((i / 2) % 2) as f32);
            vec![a, b]
        })
        .collect();
    let ys: Vec<usize> = xs.iter().map(|x| ((x[0] + x[1]) as usize) % 2).collect();
    let opts = TrainOptions {
        hidden: 16,
        epochs: 400,
        learning_rate: 0.05,
        l2: 0.0,
        ..Default::default()
    };
    let head = Head::fit(&xs, &ys, &["even".into(), "odd".into()], "toy", &opts).unwrap();
    for (x, &y) in xs.iter().zip(&ys).take(4) {
        assert_eq!(head.predict(x).0, y, "xor of {x:?}");
    }
}

#[test]
fn probabilities_sum_to_one() {
    let (xs, ys) = blobs(10);
    let mut head = Head::fit(&xs, &ys, &labels(), "toy", &TrainOptions::default()).unwrap();
    for t in [0.3, 1.0, 4.0] {
        head.temperature = t;
        for x in &xs {
            let p = head.probabilities(x);
            assert_eq!(p.len(), 3);
            assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
        }
    }
}

#[test]
fn calibration_softens_an_overconfident_head() {
    // overlapping classes: a lightly regularised head is too sure of itself on new points
    let mut rng = StdRng::seed_from_u64(3);
    let mut sample = |n: usize| {
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for i in 0..n {
            let y = i % 2;
            let c = if y == 0 { -0.5 } else { 0.5 };
            xs.push(
                (0..20)
                    .map(|_| c * 0.3 + rng.gen_range(-1.0f32..1.0))
                    .collect(),
            );
            ys.push(y);
        }
        (xs, ys)
    };
    let (xs, ys) = sample(60);
    let (vx, vy) = sample(400);
    let opts = TrainOptions {
        l2: 0.0,
        epochs: 500,
        learning_rate: 0.05,
        ..Default::default()
    };
    let mut head = Head::fit(&xs, &ys, &["x".into(), "y".into()], "toy", &opts).unwrap();
    let logits: Vec<Vec<f32>> = vx.iter().map(|x| head.logits(x)).collect();
    let t = head.calibrate_logits(&logits, &vy);
    assert!(t > 1.0, "expected a softening temperature, got {t}");
}

#[test]
fn balanced_weights_raise_recall_of_the_rare_class() {
    let mut rng = StdRng::seed_from_u64(5);
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for i in 0..400 {
        let y = usize::from(i % 10 == 0); // 10% rare class
        let c = if y == 1 { 0.6 } else { -0.6 };
        xs.push(vec![
            c + rng.gen_range(-1.5f32..1.5),
            rng.gen_range(-1.0f32..1.0),
        ]);
        ys.push(y);
    }
    let labels = ["common".to_string(), "rare".to_string()];
    let recall = |h: &Head| {
        let hits = xs
            .iter()
            .zip(&ys)
            .filter(|(x, &y)| y == 1 && h.predict(x).0 == 1);
        hits.count() as f32 / 40.0
    };
    let plain = Head::fit(&xs, &ys, &labels, "toy", &TrainOptions::default()).unwrap();
    let opts = TrainOptions {
        class_weights: ClassWeights::Balanced,
        ..Default::default()
    };
    let balanced = Head::fit(&xs, &ys, &labels, "toy", &opts).unwrap();
    assert!(recall(&balanced) > recall(&plain) + 0.2);
}

#[test]
fn save_and_load_round_trip() {
    let (xs, ys) = blobs(10);
    let opts = TrainOptions {
        hidden: 8,
        epochs: 50,
        ..Default::default()
    };
    let mut head = Head::fit(&xs, &ys, &labels(), "embedding", &opts).unwrap();
    head.temperature = 1.7;
    head.threshold = Some(0.42);
    head.notes.insert("intents_hash".into(), "abc".into());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/head.safetensors");
    head.save(&path).unwrap();
    let back = Head::load(&path).unwrap();
    assert_eq!(back.labels(), head.labels());
    assert_eq!(back.feature_spec, "embedding");
    assert_eq!(back.temperature, 1.7);
    assert_eq!(back.threshold, Some(0.42));
    assert_eq!(
        back.notes.get("intents_hash").map(String::as_str),
        Some("abc")
    );
    for x in &xs {
        assert_eq!(back.probabilities(x), head.probabilities(x));
    }
}

fn toy_adapter(dim: usize, width: usize, labels: usize) -> super::TokenAdapter {
    let mut rng = StdRng::seed_from_u64(9);
    let mut v = |n: usize| {
        (0..n)
            .map(|_| rng.gen_range(-1.0f32..1.0))
            .collect::<Vec<_>>()
    };
    super::TokenAdapter {
        project: Dense {
            w: v(width * dim),
            b: v(width),
            inputs: dim,
            outputs: width,
        },
        score: v(width),
        out: Dense {
            w: v(2 * width * labels),
            b: v(labels),
            inputs: 2 * width,
            outputs: labels,
        },
        packed: Default::default(),
    }
}

#[test]
fn a_token_adapter_is_saved_with_its_head_and_adds_to_its_logits() {
    let (xs, ys) = blobs(10);
    let mut head = Head::fit(&xs, &ys, &labels(), "embedding", &TrainOptions::default()).unwrap();
    let plain = head.clone();
    head.adapter = Some(toy_adapter(4, 3, 3));
    assert!(head.needs_tokens() && !plain.needs_tokens());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("adapted.safetensors");
    head.save(&path).unwrap();
    let back = Head::load(&path).unwrap();
    let tokens = [0.5f32, -1.0, 2.0, 0.1, 1.5, 0.3, -0.2, 0.9];
    for x in &xs {
        assert_eq!(back.logits_with(x, &tokens), head.logits_with(x, &tokens));
        // the adapter's part is really added: the head without it scores differently
        assert_ne!(back.logits_with(x, &tokens), plain.logits_with(x, &tokens));
        assert_eq!(plain.logits_with(x, &tokens), plain.logits(x));
    }
}

#[test]
fn a_head_whose_adapter_does_not_fit_is_refused_at_load() {
    let (xs, ys) = blobs(10);
    let mut head = Head::fit(&xs, &ys, &labels(), "embedding", &TrainOptions::default()).unwrap();
    // the adapter answers 2 labels, the head has 3
    head.adapter = Some(toy_adapter(4, 3, 2));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.safetensors");
    head.save(&path).unwrap();
    let msg = crate::error::chain(&Head::load(&path).unwrap_err());
    assert!(
        msg.contains("bad.safetensors") && msg.contains("adapter's shapes do not fit"),
        "{msg}"
    );
}

#[test]
fn loading_garbage_names_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.safetensors");
    std::fs::write(&path, b"not a head").unwrap();
    let msg = Head::load(&path).unwrap_err().to_string();
    assert!(
        msg.contains("broken.safetensors") && msg.contains("frontdesk train"),
        "{msg}"
    );
}

#[test]
fn bad_training_input_is_refused() {
    let xs = vec![vec![1.0f32, 2.0]];
    assert!(Head::fit(&xs, &[0, 1], &labels(), "toy", &TrainOptions::default()).is_err());
    assert!(Head::fit(&xs, &[5], &labels(), "toy", &TrainOptions::default()).is_err());
    assert!(Head::fit(&xs, &[0], &["only".into()], "toy", &TrainOptions::default()).is_err());
}
