//! Hand-written sentiment cues that a sentence embedding blurs: polarity words with negation
//! and intensity, emoji and emoticons, shouting, repeated punctuation, profanity. They are
//! appended to the encoder features of the sentiment and anger heads (`lexicon` part).

/// Number of values `lexicon_features` returns.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const LEXICON_DIM: usize = 14;

#[rustfmt::skip]
const POSITIVE: &[&str] = &[
    "good", "great", "love", "loved", "loves", "loving", "lovely", "like", "liked", "nice",
    "awesome", "amazing", "excellent", "best", "better", "happy", "glad", "thanks", "thank",
    "thx", "perfect", "wonderful", "fantastic", "beautiful", "cool", "fun", "funny", "enjoy",
    "enjoyed", "enjoying", "excited", "exciting", "brilliant", "congrats", "congratulations",
    "win", "won", "winning", "proud", "cute", "sweet", "super", "yay", "hope", "hopefully",
    "favorite", "favourite", "incredible", "impressive", "recommend", "pleased", "delighted",
    "helpful", "fast", "quick", "easy", "smooth", "fine", "ok", "okay", "well", "wow", "lol",
    "haha", "hahaha", "lmao", "blessed", "grateful", "thankful", "appreciate", "appreciated",
    "beautifully", "superb", "gorgeous", "stunning", "success", "successful", "worth",
    "positive", "fabulous", "legend", "legendary", "epic", "yes", "yeah", "ready", "hooray",
    "celebrate", "celebrating", "birthday", "victory", "champion", "champions", "inspiring",
    "kind", "friendly", "support", "solved", "resolved", "fixed", "works", "working", "pretty",
    "peace", "smile", "smiling", "laugh", "laughing",
];

#[rustfmt::skip]
const NEGATIVE: &[&str] = &[
    "bad", "worst", "worse", "hate", "hated", "hates", "terrible", "horrible", "awful", "sad",
    "angry", "mad", "annoyed", "annoying", "disappointed", "disappointing", "disappointment",
    "poor", "sucks", "suck", "sucked", "stupid", "idiot", "idiots", "dumb", "ridiculous",
    "useless", "broken", "fail", "failed", "fails", "failure", "wrong", "problem", "problems",
    "issue", "issues", "never", "cant", "can't", "wont", "won't", "unfortunately", "sorry",
    "sick", "tired", "hurt", "pain", "cry", "crying", "died", "dead", "death", "die", "kill",
    "killed", "killing", "war", "attack", "attacks", "terror", "terrorist", "racist", "crap",
    "shit", "shitty", "fuck", "fucking", "damn", "wtf", "ugh", "scam", "fraud", "lies", "liar",
    "lying", "disgusting", "disgrace", "shame", "shameful", "pathetic", "rude", "slow", "late",
    "delayed", "delay", "missing", "lost", "waste", "wasted", "refund", "complaint", "furious",
    "outraged", "outrage", "upset", "worried", "worry", "scared", "afraid", "fear", "lonely",
    "boring", "bored", "mess", "nightmare", "ruined", "ruin", "trash", "garbage",
    "unacceptable", "incompetent", "ignored", "ignore", "blame", "evil", "corrupt", "violence",
    "crisis", "bullshit", "hell", "screw", "screwed", "pissed", "rip", "tragic", "tragedy",
];

#[rustfmt::skip]
const INTENSIFIERS: &[&str] = &[
    "very", "so", "really", "extremely", "totally", "absolutely", "super", "too", "incredibly",
    "completely", "utterly", "fucking", "freaking", "most", "such", "truly", "seriously",
];

const DIMINISHERS: &[&str] = &["slightly", "somewhat", "kinda", "bit", "little", "barely"];

#[rustfmt::skip]
const NEGATORS: &[&str] = &[
    "not", "no", "never", "dont", "don't", "doesnt", "doesn't", "didnt", "didn't", "isnt",
    "isn't", "wasnt", "wasn't", "arent", "aren't", "cant", "can't", "cannot", "wont", "won't",
    "without", "nothing", "nobody", "neither", "nor", "hardly", "aint", "ain't", "havent",
    "haven't", "shouldnt", "shouldn't", "wouldnt", "wouldn't", "couldnt", "couldn't",
];

#[rustfmt::skip]
const PROFANITY: &[&str] = &[
    "fuck", "fucking", "fucked", "shit", "shitty", "damn", "crap", "bullshit", "wtf", "pissed",
    "ass", "asshole", "bitch", "bastard", "hell", "stfu", "goddamn",
];

#[rustfmt::skip]
const POSITIVE_EMOJI: &[char] = &[
    '😀', '😃', '😄', '😁', '😆', '😊', '🙂', '😍', '🥰', '😘', '😎', '🤩', '😂', '🤣', '❤', '💕',
    '💖', '💗', '💙', '💚', '💛', '💜', '👍', '👏', '🙌', '🎉', '🎊', '✨', '🔥', '💯', '😉', '😋',
    '🙏', '💪', '🌟', '⭐', '🥳', '😌', '☺',
];

#[rustfmt::skip]
const NEGATIVE_EMOJI: &[char] = &[
    '😠', '😡', '🤬', '😤', '😞', '😔', '😟', '😢', '😭', '😩', '😫', '😒', '🙄', '😣', '😖', '💔',
    '👎', '😱', '😨', '😰', '🤮', '🤢', '😕', '🙁', '☹', '😑', '😐',
];

const POSITIVE_EMOTICONS: &[&str] = &[":)", ":-)", ":d", ";)", ";-)", "<3", ":p", "=)", "xd"];
const NEGATIVE_EMOTICONS: &[&str] = &[":(", ":-(", ":'(", ">:(", ":/", ":-/", "d:"];

fn contains(list: &[&str], w: &str) -> bool {
    list.contains(&w)
}

/// Word-level polarity of a token after light normalisation ("sooo" -> "so", "#love" -> "love").
fn polarity(word: &str) -> f32 {
    if contains(POSITIVE, word) {
        1.0
    } else if contains(NEGATIVE, word) {
        -1.0
    } else {
        0.0
    }
}

/// Collapse letters repeated three or more times to one ("soooo" -> "so").
fn squeeze(word: &str) -> (String, bool) {
    let mut out = String::with_capacity(word.len());
    let mut prev = None;
    let mut run = 0;
    let mut elongated = false;
    for c in word.chars() {
        if Some(c) == prev {
            run += 1;
            if run >= 2 {
                elongated = true;
                continue;
            }
        } else {
            run = 0;
        }
        if run < 2 {
            out.push(c);
        }
        prev = Some(c);
    }
    if elongated {
        // "sooo" became "soo": drop the remaining double when the single form is a word
        let mut single = String::new();
        let mut last = None;
        for c in out.chars() {
            if Some(c) != last {
                single.push(c);
            }
            last = Some(c);
        }
        if polarity(&single) != 0.0 || contains(INTENSIFIERS, &single) {
            return (single, true);
        }
    }
    (out, elongated)
}

/// The lexicon cues of one text, `LEXICON_DIM` values of moderate scale.
pub(crate) fn lexicon_features(text: &str) -> Vec<f32> {
    let lower = text.to_lowercase();
    let mut pos = 0f32;
    let mut neg = 0f32;
    let (mut n_pos, mut n_neg, mut negated, mut profane, mut elongated) = (0, 0, 0, 0, 0);
    let mut caps = 0;
    let mut words = 0;
    for raw in text.split_whitespace() {
        let letters: Vec<char> = raw.chars().filter(|c| c.is_alphabetic()).collect();
        if letters.len() >= 3 {
            words += 1;
            if letters.iter().all(|c| c.is_uppercase()) {
                caps += 1;
            }
        }
    }
    let tokens: Vec<(String, bool)> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|t| !t.is_empty() && !t.starts_with("user"))
        .map(squeeze)
        .collect();
    let mut negate_left = 0usize;
    let mut boost = 1f32;
    let mut after_but = false;
    for (tok, long) in &tokens {
        if *long {
            elongated += 1;
        }
        if contains(PROFANITY, tok) {
            profane += 1;
        }
        if tok == "but" || tok == "however" || tok == "although" {
            after_but = true;
            negate_left = 0;
            continue;
        }
        if contains(NEGATORS, tok) {
            negate_left = 3;
            if tok != "never" && tok != "cant" && tok != "can't" && tok != "wont" && tok != "won't"
            {
                continue;
            }
        }
        if contains(INTENSIFIERS, tok) {
            boost = 1.5;
            continue;
        }
        if contains(DIMINISHERS, tok) {
            boost = 0.6;
            continue;
        }
        let mut p = polarity(tok);
        if p != 0.0 {
            if negate_left > 0 && !contains(NEGATORS, tok) {
                p *= -0.7;
                negated += 1;
            }
            p *= boost * if *long { 1.3 } else { 1.0 } * if after_but { 1.5 } else { 1.0 };
            if p > 0.0 {
                pos += p;
                n_pos += 1;
            } else {
                neg -= p;
                n_neg += 1;
            }
        }
        boost = 1.0;
        negate_left = negate_left.saturating_sub(1);
    }
    let emoji_pos = lower.chars().filter(|c| POSITIVE_EMOJI.contains(c)).count()
        + POSITIVE_EMOTICONS
            .iter()
            .map(|e| lower.matches(e).count())
            .sum::<usize>();
    let emoji_neg = lower.chars().filter(|c| NEGATIVE_EMOJI.contains(c)).count()
        + NEGATIVE_EMOTICONS
            .iter()
            .map(|e| lower.matches(e).count())
            .sum::<usize>();
    let bangs = text.matches('!').count();
    let questions = text.matches('?').count();
    let l = |v: f32| v.ln_1p();
    vec![
        l(pos),
        l(neg),
        l(pos) - l(neg),
        l(n_pos as f32),
        l(n_neg as f32),
        l(negated as f32),
        l(emoji_pos as f32),
        l(emoji_neg as f32),
        l(bangs as f32),
        l(questions as f32),
        if words > 0 {
            caps as f32 / words as f32
        } else {
            0.0
        },
        l(elongated as f32),
        l(profane as f32),
        if tokens.is_empty() {
            0.0
        } else {
            l(tokens.len() as f32) / 4.0
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn balance(text: &str) -> f32 {
        lexicon_features(text)[2]
    }

    #[test]
    fn has_the_documented_width() {
        assert_eq!(lexicon_features("").len(), LEXICON_DIM);
        assert_eq!(lexicon_features("great stuff 😍").len(), LEXICON_DIM);
    }

    #[test]
    fn praise_and_complaint_point_opposite_ways() {
        assert!(balance("I love this shop, great service") > 0.5);
        assert!(balance("worst service ever, totally useless") < -0.5);
    }

    #[test]
    fn negation_flips_polarity() {
        assert!(balance("this is good") > 0.0);
        assert!(balance("this is not good") < 0.0);
        assert!(balance("not bad at all") > 0.0);
    }

    #[test]
    fn intensifiers_and_elongation_strengthen() {
        assert!(balance("very good") > balance("good"));
        assert!(balance("soooo bad") < balance("bad"));
    }

    #[test]
    fn emoji_shouting_and_swearing_are_counted() {
        let f = lexicon_features("WHERE IS MY ORDER?! 😡 wtf");
        assert!(f[7] > 0.0, "angry emoji");
        assert!(f[8] > 0.0 && f[9] > 0.0, "punctuation");
        assert!(f[10] > 0.5, "shouting");
        assert!(f[12] > 0.0, "profanity");
        assert!(lexicon_features("thanks :)")[6] > 0.0);
    }
}
