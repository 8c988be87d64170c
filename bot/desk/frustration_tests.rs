use super::*;
use crate::nlu::{Entity, EntityKind, FrustrationScores, Sentiment, SentimentScores};

fn msg(text: &str, intent: &str, negative: f32) -> Analysis {
    Analysis {
        text: text.into(),
        intent: intent.into(),
        intent_confidence: 0.9,
        sentiment: if negative >= 0.5 {
            Sentiment::Negative
        } else {
            Sentiment::Neutral
        },
        sentiment_scores: SentimentScores {
            negative,
            neutral: 1.0 - negative,
            positive: 0.0,
        },
        anger: 0.0,
        frustration: FrustrationScores::default(),
        stakes: Default::default(),
        entities: vec![],
    }
}

fn score(messages: &[Analysis]) -> Frustration {
    assess(&Context {
        messages,
        earlier_conversations: 0,
        waited_secs: 0,
        unresolved_turns: 0,
    })
}

fn with_order(mut a: Analysis, number: &str) -> Analysis {
    a.entities.push(Entity {
        kind: EntityKind::OrderNumber,
        text: number.into(),
        value: number.into(),
        start: 0,
        end: 0,
    });
    a
}

/// A question, then the order number the bot asked for (same intent, new information).
fn calm_baseline() -> Vec<Analysis> {
    vec![
        msg("hi, where is my parcel", "track_order", 0.1),
        with_order(msg("it is order 10022", "track_order", 0.1), "10022"),
    ]
}

#[test]
fn calm_routine_conversation_scores_zero() {
    let f = score(&calm_baseline());
    assert_eq!(f.score, 0.0, "{f:?}");
    assert!(f.reasons.is_empty());
}

#[test]
fn the_frustration_head_moves_it() {
    let mut m = calm_baseline();
    m.last_mut().unwrap().frustration = FrustrationScores {
        calm: 0.1,
        frustrated: 0.2,
        angry: 0.7,
    };
    let f = score(&m);
    assert!(f.score > 0.6, "{f:?}");
    assert_eq!(f.reasons[0], "sounds angry");
}

#[test]
fn negative_sentiment_and_anger_move_it() {
    let mut m = calm_baseline();
    let base = score(&m).score;
    m.last_mut().unwrap().sentiment_scores.negative = 0.6;
    let negative = score(&m).score;
    m.last_mut().unwrap().anger = 0.9;
    let angry = score(&m);
    assert!(base < negative && negative < angry.score, "{angry:?}");
    assert_eq!(angry.reasons, vec!["angry words".to_string()]);
    m.last_mut().unwrap().sentiment_scores.negative = 0.95;
    let very = score(&m);
    assert!(very.score > angry.score, "{very:?}");
    // one tone, read three ways: a single message stays below a souring conversation
    assert!(very.score < 0.5, "{very:?}");
}

#[test]
fn asking_the_same_question_again_moves_it() {
    let m = vec![
        msg("where is my parcel please", "track_order", 0.2),
        msg("ok thanks", "thanks", 0.0),
        msg("where is my parcel, it is not here", "track_order", 0.2),
    ];
    let f = score(&m);
    assert!(f.score >= 0.25, "{f:?}");
    assert!(f
        .reasons
        .contains(&"asked the same question twice".to_string()));
    // small talk twice is no repetition
    let hello = vec![
        msg("hello there you", "greet", 0.0),
        msg("hello there again", "greet", 0.0),
    ];
    assert!(!score(&hello)
        .reasons
        .iter()
        .any(|r| r.contains("same question")));
}

#[test]
fn repetition_markers_move_it() {
    let f = score(&[msg(
        "this is the third time I'm asking about my parcel",
        "track_order",
        0.3,
    )]);
    assert!(f.score >= 0.4, "{f:?}");
    assert_eq!(f.reasons, vec!["third time asking".to_string()]);
    let weak = score(&[msg("it's late again", "track_order", 0.3)]);
    assert!(weak.score > 0.0 && weak.score < f.score, "{weak:?}");
}

#[test]
fn context_moves_it() {
    let m = calm_baseline();
    let with = |earlier, waited, unresolved| {
        assess(&Context {
            messages: &m,
            earlier_conversations: earlier,
            waited_secs: waited,
            unresolved_turns: unresolved,
        })
    };
    let contacts = with(2, 0, 0);
    assert!(contacts.score > 0.0);
    assert_eq!(contacts.reasons, vec!["3rd contact".to_string()]);
    let waited = with(0, 720, 0);
    assert!(waited.score > 0.0);
    assert_eq!(waited.reasons, vec!["waited 12 min".to_string()]);
    let failed = with(0, 0, 2);
    assert!(failed.score > 0.0);
    assert_eq!(failed.reasons, vec!["bot could not help twice".to_string()]);
    assert!(with(2, 720, 2).score > failed.score);
}

#[test]
fn sarcasm_moves_it() {
    let f = score(&[msg(
        "cheers for absolutely nothing then",
        "out_of_scope",
        0.4,
    )]);
    assert_eq!(f.reasons, vec!["sarcasm".to_string()]);
    let praise = score(&[msg(
        "brilliant, the parcel is late again",
        "track_order",
        0.3,
    )]);
    assert!(
        praise.reasons.contains(&"sarcasm".to_string()),
        "{praise:?}"
    );
    let genuine = score(&[msg("brilliant, thanks a lot", "thanks", 0.0)]);
    assert_eq!(genuine.score, 0.0, "{genuine:?}");
    assert!(score(&[msg("wrong colour, again 🙄", "complaint", 0.3)]).score >= 0.45);
}

#[test]
fn caps_and_punctuation_move_it_more_when_they_are_new() {
    let shout = msg("GIVE ME BACK MY MONEY NOW", "get_refund", 0.4);
    let alone = score(std::slice::from_ref(&shout));
    assert_eq!(alone.reasons, vec!["all caps".to_string()]);
    let louder = score(&[
        msg("you charged me twice for it", "payment_issue", 0.4),
        shout,
    ]);
    assert!(louder.reasons.contains(&"switched to all caps".to_string()));
    assert!(louder.score > alone.score);
    let marks = score(&[msg("where is it???", "track_order", 0.3)]);
    assert_eq!(marks.reasons, vec!["\"???\"".to_string()]);
}

#[test]
fn a_grumble_then_a_routine_question_stays_low() {
    let m = vec![
        msg(
            "mondays should be illegal lol, so tired. anyway any news on 10022?",
            "track_order",
            0.85,
        ),
        msg("ok thanks", "thanks", 0.02),
    ];
    let f = score(&m);
    assert!(f.score < 0.2, "{f:?}");
}

#[test]
fn a_souring_conversation_climbs() {
    let mut m = vec![msg("can you check order 10012?", "track_order", 0.1)];
    let mut last = score(&m).score;
    for (text, neg) in [
        ("it said it would arrive on tuesday, it's thursday", 0.7),
        (
            "this is starting to annoy me, nobody has told me anything",
            0.9,
        ),
        ("honestly this is ridiculous, I want it sorted today", 0.95),
    ] {
        m.push(msg(text, "complaint", neg));
        let now = score(&m).score;
        assert!(now > last, "{text}: {now} <= {last}");
        last = now;
    }
    assert!(last >= 0.6, "{last}");
}

#[test]
fn a_grumble_about_something_else_weighs_half() {
    let mut about_us = msg("this service is a nightmare", "complaint", 0.85);
    about_us.frustration.angry = 0.9;
    let mut elsewhere = msg("honestly my boss is a nightmare", OUT_OF_SCOPE, 0.85);
    elsewhere.frustration.angry = 0.9;
    let mut own_fault = msg("damn, locked myself out again", "recover_password", 0.85);
    own_fault.frustration.angry = 0.9;
    let us = score(&[about_us]).score;
    assert!(us >= 0.6, "{us}");
    for m in [elsewhere, own_fault] {
        let other = score(std::slice::from_ref(&m)).score;
        assert!(other < 0.6 && other > 0.2, "{}: {other}", m.text);
    }
}

#[test]
fn sarcasm_after_a_problem_counts_and_twice_sours_the_conversation() {
    // praise with no trouble word of its own, after a message about something gone wrong
    let m = vec![
        msg("my order is delayed again", "track_order", 0.4),
        msg(
            "top notch service, nearly a month now 👏",
            "out_of_scope",
            0.2,
        ),
    ];
    let once = score(&m);
    assert!(once.reasons.contains(&"sarcasm".to_string()), "{once:?}");
    let mut twice = m.clone();
    twice.push(msg(
        "refreshing the tracking page is really the highlight of my day",
        "out_of_scope",
        0.2,
    ));
    let f = score(&twice);
    assert!(f.score >= 0.6, "{f:?}");
    assert!(
        f.reasons.contains(&"sarcastic, more than once".to_string()),
        "{f:?}"
    );
}

#[test]
fn thanks_after_a_problem_is_no_sarcasm() {
    let m = vec![
        msg("my parcel hasn't arrived", "track_order", 0.4),
        msg("great", "out_of_scope", 0.0),
        msg("perfect, thank you so much", "thanks", 0.0),
    ];
    let f = score(&m);
    assert!(!f.reasons.iter().any(|r| r.contains("sarcas")), "{f:?}");
    assert!(f.score < 0.3, "{f:?}");
}

#[test]
fn a_plan_to_check_again_is_no_repetition() {
    let f = score(&[msg("ok, I'll check again next week", "out_of_scope", 0.1)]);
    assert!(f.reasons.is_empty(), "{f:?}");
    // "still" in a complaint still counts
    let g = score(&[msg("it still hasn't arrived", "track_order", 0.3)]);
    assert!(!g.reasons.is_empty(), "{g:?}");
}

#[test]
fn having_contacted_us_before_and_heard_nothing_sours_the_conversation() {
    let m = vec![
        msg("hi, this is about order 10016", "track_order", 0.1),
        msg(
            "I emailed on monday and friday about it",
            "track_order",
            0.3,
        ),
        msg("nobody has replied to any of it", "complaint", 0.5),
    ];
    let f = score(&m);
    assert!(f.score >= 0.6, "{f:?}");
    assert!(f.reasons.contains(&"contacted before".to_string()), "{f:?}");
    assert!(
        f.reasons.contains(&"nobody answered before".to_string()),
        "{f:?}"
    );
    // the claim stays: a calm message after it does not undo it
    let mut later = m.clone();
    later.push(msg("it is order 10016", "track_order", 0.1));
    assert!(score(&later).score >= 0.5, "{:?}", score(&later));
}

#[test]
fn advice_that_did_not_work_and_impatience_count() {
    let m = vec![
        msg("how do I close my account", "delete_account", 0.1),
        msg(
            "I've done that, but my card is still saved",
            "delete_account",
            0.3,
        ),
        msg("please just close it properly", "delete_account", 0.3),
    ];
    let f = score(&m);
    assert!(
        f.reasons
            .contains(&"the suggested fix did not work".to_string()),
        "{f:?}"
    );
    assert!(
        f.reasons
            .contains(&"asked the same question 3 times".to_string()),
        "{f:?}"
    );
    assert!(f.score >= 0.6, "{f:?}");
}

#[test]
fn a_customer_stopped_on_the_way_out_is_frustrated() {
    // the button does nothing, then a plain push: leaving friction, named
    let m = vec![
        msg("how do i cancel my membership", "delete_account", 0.1),
        msg(
            "the cancel button doesnt do anything",
            "delete_account",
            0.3,
        ),
    ];
    let f = score(&m);
    assert!(f.score >= 0.45, "{f:?}");
    assert!(
        f.reasons
            .contains(&"trying to leave, the way out is blocked".to_string()),
        "{f:?}"
    );
    // with a negative word it sours the conversation
    let mut sour = m.clone();
    sour.push(msg(
        "this feels deliberate. i want it cancelled today",
        "delete_account",
        0.7,
    ));
    assert!(score(&sour).score >= 0.6, "{:?}", score(&sour));
    // a request overdue in the first breath counts too
    let overdue = score(&[msg(
        "i asked for account deletion under gdpr six weeks ago",
        "delete_account",
        0.3,
    )]);
    assert!(
        overdue
            .reasons
            .contains(&"the way out is blocked".to_string()),
        "{overdue:?}"
    );
}

#[test]
fn a_calm_question_about_leaving_is_no_friction() {
    // asking how, and a follow-up about what happens to the data: below even a high-value
    // customer's first-signs rule (0.3)
    let m = vec![
        msg("how do I delete my account?", "delete_account", 0.1),
        msg(
            "will my order history be removed too?",
            "delete_account",
            0.1,
        ),
        msg("great, thanks", "thanks", 0.0),
    ];
    let f = score(&m);
    assert!(f.score < 0.3, "{f:?}");
    // asking once, however it is put, is nothing
    assert_eq!(score(&m[..1]).score, 0.0);
}

#[test]
fn what_a_single_messages_tone_is_about() {
    // taking the bot's answer, however long, is no complaint; "thanks for nothing" is one
    assert!(acknowledges(&msg(
        "oh ok, so it's just a bit delayed",
        OUT_OF_SCOPE,
        0.4
    )));
    assert!(acknowledges(&msg(
        "Ah OK, so it's normal over the weekend. Thanks for explaining.",
        OUT_OF_SCOPE,
        0.3
    )));
    assert!(!acknowledges(&msg("thanks for nothing", OUT_OF_SCOPE, 0.8)));
    assert!(!acknowledges(&msg(
        "thanks, but where is it?",
        "track_order",
        0.5
    )));
    // the customer's day vs the situation with us
    assert!(aimed_elsewhere(&msg(
        "my kids are driving me mad today",
        OUT_OF_SCOPE,
        0.9
    )));
    assert!(aimed_elsewhere(&msg(
        "locked myself out again",
        OUT_OF_SCOPE,
        0.7
    )));
    assert!(!aimed_elsewhere(&msg(
        "this is SO frustrating",
        OUT_OF_SCOPE,
        0.8
    )));
}
