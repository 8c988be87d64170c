//! The accuracy check that `weights = "int8"` must pass before it is used: the int8 model and
//! the f32 model embed the same messages at load time, and int8 stays only if the mean
//! cosine between their embeddings is at least [`MIN_MEAN_COSINE`] and none is below
//! [`MIN_COSINE`]; otherwise the encoder says so and uses the default f16 weights. The
//! shipped tests hold int8 to the same floors on sentence-transformers' reference texts and tweets, and to at most
//! 0.3 points lost on each head's validation set (`tests/model/int8_accuracy.rs`).

/// How int8 quantises on this CPU, named in the keys of cached features: change it with the
/// scheme.
pub fn scheme() -> String {
    format!(
        "int8 v3: weights per column, activations per token from low to high, channels evened \
         (SmoothQuant 0.5) on CALIBRATION_TEXTS, the product after GELU in {}",
        if super::kernels::int8::bf16_available() {
            "bf16 (AMX)"
        } else {
            "f16"
        }
    )
}

/// Mean cosine to the f32 embeddings that int8 must reach over the check messages.
pub const MIN_MEAN_COSINE: f32 = 0.999;
/// Lowest cosine to the f32 embedding that int8 may give on any one check message: a
/// message of two or three word pieces averages no rounding away, so one may dip below the
/// mean's floor, never this far.
pub const MIN_COSINE: f32 = 0.995;

/// Messages the check embeds: our own, of the lengths and tones customers write, from a
/// two-word greeting to a long complaint (the longer a message, the more rounding adds up).
pub(super) const CHECK_TEXTS: &[&str] = &[
    "hi",
    "where is my order?",
    "I want a refund for order 58213, the blender arrived cracked",
    "can you change the delivery address to 14 Harbour Road please",
    "this is the third time I am asking. NOBODY answers. cancel everything now!!!",
    "thanks, that sorted it :)",
    "How do I reset my password? The link in the email has expired",
    "my card was charged twice for the same subscription this month",
    "do you ship to Norway and how long does it take",
    "The parcel says delivered but it is not at my door or with my neighbours, \
     I have checked everywhere and I need those shoes for a wedding on Saturday",
    "ok",
    "Bonjour, je voudrais annuler ma commande",
    "what's the status of #A-99310-X ???",
    "I'd like to speak to a human, the bot keeps misunderstanding me",
    "Your app crashes every time I open my account page on Android 14",
    "love the new jacket, fits perfectly, will order again",
];

/// Messages the int8 products are calibrated on (each input channel's largest value), apart
/// from the check messages so the check is not marked on its own homework.
pub(super) const CALIBRATION_TEXTS: &[&str] = &[
    "hello there",
    "where's my package, it was due yesterday",
    "I need to return a pair of trainers that are too small",
    "Can I get my money back? The headphones stopped working after two days",
    "please update the phone number on my account to 07700 900123",
    "WHY IS THIS SO HARD. I have been waiting 40 minutes for someone to reply!!",
    "cheers, all good now",
    "I can't log in, it says my account is locked",
    "you charged me 49.99 but the price on the site was 39.99",
    "how much is shipping to Canada?",
    "My order #88412 shows as cancelled but the money left my bank account. I never cancelled \
     anything and now the sale is over, so I want it sorted today or I am going elsewhere",
    "yes",
    "hola, necesito ayuda con mi pedido",
    "is there a discount code for first orders",
    "The checkout page freezes when I press pay on Safari",
    "great service, the courier was really friendly",
    "can I pick it up from the store instead",
    "terrible. just terrible. never again",
    "what are your opening hours on Sunday?",
    "I was sent the wrong colour, I ordered navy and got black",
];

/// How close int8 embeddings came to f32 ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Check {
    pub mean: f32,
    pub lowest: f32,
}

impl Check {
    /// Compare paired embeddings (each L2-normalised).
    pub fn of(exact: &[Vec<f32>], int8: &[Vec<f32>]) -> Self {
        let cos: Vec<f32> = exact
            .iter()
            .zip(int8)
            .map(|(x, y)| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>())
            .collect();
        Self {
            mean: cos.iter().sum::<f32>() / cos.len().max(1) as f32,
            lowest: cos.iter().copied().fold(1f32, f32::min),
        }
    }

    pub fn holds(&self) -> bool {
        self.mean >= MIN_MEAN_COSINE && self.lowest >= MIN_COSINE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_floors_must_hold() {
        let e = |v: &[f32]| v.to_vec();
        let exact = [e(&[1.0, 0.0]), e(&[0.0, 1.0])];
        assert!(Check::of(&exact, &exact).holds());
        // One embedding turned by ~5.7 degrees: cosine 0.995, the mean 0.9975.
        let c = 0.995f32;
        let turned = [e(&[c, (1.0 - c * c).sqrt()]), e(&[0.0, 1.0])];
        let got = Check::of(&exact, &turned);
        assert!((got.lowest - c).abs() < 1e-6 && got.mean < MIN_MEAN_COSINE);
        assert!(!got.holds(), "a mean under 0.999 refuses int8");
        // Many close ones and one at 0.994: the mean holds, the lowest does not.
        let mut many = vec![e(&[1.0, 0.0]); 99];
        let mut near = many.clone();
        many.push(e(&[1.0, 0.0]));
        near.push(e(&[0.994, (1.0f32 - 0.994 * 0.994).sqrt()]));
        let got = Check::of(&many, &near);
        assert!(got.mean >= MIN_MEAN_COSINE && !got.holds());
    }
}
