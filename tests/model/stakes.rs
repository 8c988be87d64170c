//! Escalation by stakes with the real heads (issue 20): the calm-stakes messages reach
//! a person with the stake shown; its look-alikes stay with the bot; the commonest request, a
//! first mild "my parcel still hasn't arrived", gets the bot's look-up whether or not it is
//! written with apostrophes, and reads the same both ways.

use crate::support::desk::*;
use crate::support::server::real_nlu;
use frontdesk::message::Status;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calm_stakes_reach_a_person_and_look_alikes_stay_with_the_bot() {
    let nlu = tokio::task::spawn_blocking(real_nlu).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let desk = TestDesk::new().nlu(nlu).open(dir.path());
    // the examples: no angry word in any of them (the medicine message reaches a
    // person through its tone: the head reads a complaint 0.54 with money 0.37)
    let stakes = [
        ("safety", true, "The heater I bought sparked and smoked when I turned it on last night."),
        ("money", true, "You took the payment twice and because of that my account went into overdraft, the bank charged me a fee."),
        ("vulnerability", false, "The refund is still not here and that money was for my son's medicine."),
        ("vulnerability", true, "My mother passed away in March but her account with you is still being charged every month."),
        ("business", true, "We ordered 240 chairs for our restaurant, half of them are missing and some of the rest are faulty."),
        ("money", true, "you send me wrong item and now you ask me to pay 24 EUR for return it, this is not correct"),
    ];
    for (i, (kind, by_stake, text)) in stakes.iter().enumerate() {
        let turn = say(&desk, &format!("s{i}"), text).await;
        assert_eq!(
            turn.status,
            Status::Queued,
            "{kind}: {text} → {}",
            reply(&turn)
        );
        let c = desk
            .conversation(&turn.conversation_id)
            .await
            .unwrap()
            .unwrap();
        assert!(
            !by_stake || c.escalation.iter().any(|r| r.when == "stakes"),
            "{text}: a stake is the reason agents see: {:?}",
            c.escalation
        );
    }
    let look_alikes = [
        "I typed my own postcode wrong at checkout, classic me. Can I still change it?",
        "what a week, a storm took half our fence down. anyway, do you deliver on saturdays?",
        "my bank is useless, they blocked my card again. can I pay with paypal?",
        "ignore my last message, the parcel was with my neighbour all along. all sorted, thanks!",
        "is this heater safe to use in a child's bedroom?",
    ];
    for (i, text) in look_alikes.iter().enumerate() {
        let turn = say(&desk, &format!("l{i}"), text).await;
        assert_eq!(turn.status, Status::Bot, "{text} → {}", reply(&turn));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_mild_late_parcel_is_the_bots_with_or_without_apostrophes() {
    let nlu = tokio::task::spawn_blocking(real_nlu).await.unwrap();
    let written = [
        "hi! my parcel 10002 still hasn't arrived, it's been 2 weeks",
        "hi! my parcel 10002 still hasnt arrived, its been 2 weeks",
    ];
    let readings: Vec<_> = {
        let nlu = nlu.clone();
        tokio::task::spawn_blocking(move || nlu.nlu().analyze(&written).unwrap())
            .await
            .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let desk = TestDesk::new().nlu(nlu).open(dir.path());
    for (i, text) in written.iter().enumerate() {
        // 10002 is C1014's: the bot looks it up and says what the carrier says
        let turn = say_verified(&desk, &format!("p{i}"), text, "C1014").await;
        assert_eq!(turn.status, Status::Bot, "{text} → {}", reply(&turn));
        assert!(reply(&turn).contains("10002"), "{}", reply(&turn));
    }
    // the same reading: the stakes head's top label, and within 0.1 on each
    let (a, b) = (&readings[0].stakes, &readings[1].stakes);
    assert!(
        a.late_parcel_mild >= 0.5 && b.late_parcel_mild >= 0.5,
        "{a:?} / {b:?}"
    );
    assert!(
        (a.late_parcel_mild - b.late_parcel_mild).abs() < 0.1,
        "{a:?} / {b:?}"
    );
    assert!((a.at_stake() - b.at_stake()).abs() < 0.1, "{a:?} / {b:?}");
}
