//! Orders are private: the check that lets an anonymous customer see one order (email or
//! postcode, checked by the shop), the ownership test before any order is read or changed,
//! and the restated action that is done only on a yes, once (idempotency key).

use super::*;

impl Dialogue {
    /// The customer's answer to the check of `check.order`: right, the order is theirs to
    /// ask about and the intent is answered; wrong, another try, or after [`MAX_CHECKS`] a
    /// person. Never which part was wrong, never whether the order exists.
    pub(super) async fn check(
        &self,
        check: PendingCheck,
        analysis: &Analysis,
        record: &mut ConversationRecord,
    ) -> Answer {
        record
            .slots
            .insert("order_number".into(), check.order.clone());
        match self
            .check_order(&check.order, &check_answer(analysis))
            .await
        {
            Ok(CheckVerdict::Confirmed) => {
                let access = &mut record.access;
                if !access.verified_orders.contains(&check.order) {
                    access.verified_orders.push(check.order.clone());
                }
                if access.level == IdentityLevel::Anonymous {
                    access.level = IdentityLevel::Verified;
                }
                self.answer_intent(&check.intent, analysis, record, false)
                    .await
            }
            Ok(CheckVerdict::Paused) => {
                record.access.checking = None;
                said(copy::order_checks_paused(&check.order), None)
            }
            Ok(CheckVerdict::Wrong) => {
                record.access.failed_checks += 1;
                if record.access.failed_checks >= MAX_CHECKS {
                    return offer_person(copy::check_failed_offer_person());
                }
                let intent = check.intent.clone();
                record.access.checking = Some(check);
                said(
                    copy::check_failed(),
                    Some(PendingSlot {
                        intent,
                        slot: CHECK_SLOT.into(),
                    }),
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, "order check failed");
                offer_person(copy::shop_unreachable())
            }
        }
    }

    /// Does the action the customer said yes to, once: the shop gets an idempotency key
    /// made of the conversation, the action, the order and the question's message index.
    pub(super) async fn perform(
        &self,
        action: &PendingAction,
        record: &mut ConversationRecord,
    ) -> Answer {
        let caller = caller(&record.access);
        let key = format!(
            "{}:{}:{}:{}",
            record.id, action.action, action.order, action.asked_at
        );
        let number = &action.order;
        let outcome = match action.action.as_str() {
            "cancel_order" => self.commerce.cancel_order(number, &caller, &key).await,
            _ => self.commerce.request_refund(number, &caller, &key).await,
        };
        let values = match outcome {
            Ok(Some(RequestOutcome::Accepted { order })) => match action.action.as_str() {
                "cancel_order" => values("cancelled".into(), copy::order_cancelled()),
                _ => values(
                    order.state.words().into(),
                    copy::refund_covers(order.total, &order.currency),
                ),
            },
            Ok(Some(RequestOutcome::Refused { why })) => {
                return said(copy::shop_refused(number, &why), None)
            }
            Ok(None) => return said(copy::order_gone(number), None),
            Err(e) => {
                tracing::warn!(action = action.action, error = %e, "shop action failed");
                return offer_person(copy::shop_unreachable());
            }
        };
        record.slots.insert("order_number".into(), number.clone());
        let template = self
            .response(&action.intent)
            .map(|r| r.text.clone())
            .unwrap_or_default();
        said(render(&template, &record.slots, &values), None)
    }

    /// The order the conversation is about, for the order-value rule: only one the
    /// conversation may see.
    pub async fn order(
        &self,
        number: &str,
        access: &Access,
    ) -> Result<Option<Order>, CommerceError> {
        let caller = caller(access);
        if caller.customer_id.is_none() && !caller.verified_orders.iter().any(|n| n == number) {
            return Ok(None);
        }
        self.commerce.order(number, &caller).await
    }

    /// Order `number` when the conversation may see it; otherwise the bot asks for the
    /// email or postcode on it (the same words whether it exists or not), or, once the
    /// checks are used up, offers a person.
    pub(super) async fn owned_order(
        &self,
        intent: &str,
        number: &str,
        record: &mut ConversationRecord,
    ) -> Result<Owned, CommerceError> {
        if let Some(order) = self.order(number, &record.access).await? {
            return Ok(Owned::Yes(order));
        }
        let checked = record.access.verified_orders.iter().any(|n| n == number);
        if checked || record.access.shop_customer_id.is_some() {
            // Not among the signed-in customer's orders (someone else's, or none: the same
            // words), or checked yet gone from the shop: the number is asked again.
            record.slots.remove("order_number");
            return Ok(Owned::Ask(Answer {
                text: copy::unknown_order(number),
                resolved: false,
                pending: Some(PendingSlot {
                    intent: intent.to_string(),
                    slot: "order_number".into(),
                }),
                offered_human: false,
            }));
        }
        if record.access.failed_checks >= MAX_CHECKS {
            return Ok(Owned::Ask(offer_person(copy::check_failed_offer_person())));
        }
        if self.checks_paused(&self.guarded_keys(number).await).await {
            crate::metrics::guess_refused("order_check_locked");
            record.slots.remove("order_number");
            return Ok(Owned::Ask(said(copy::order_checks_paused(number), None)));
        }
        record.access.checking = Some(PendingCheck {
            intent: intent.to_string(),
            order: number.to_string(),
        });
        Ok(Owned::Ask(said(
            copy::verify_order(number),
            Some(PendingSlot {
                intent: intent.to_string(),
                slot: CHECK_SLOT.into(),
            }),
        )))
    }

    /// Restates the action on `order` and waits for a yes; a question is answered first.
    pub(super) fn confirm(
        &self,
        intent: &str,
        action: &str,
        order: &Order,
        analysis: &Analysis,
        record: &mut ConversationRecord,
    ) -> Answer {
        if let Some(why) = copy::action_impossible(action, order) {
            return said(why, None);
        }
        record.access.pending_action = Some(PendingAction {
            action: action.to_string(),
            intent: intent.to_string(),
            order: order.number.clone(),
            asked_at: record.message_count,
        });
        let restated = copy::confirm_action(action, order);
        let text = if is_question(&analysis.text) {
            format!("{} {restated}", copy::action_possible(action, order))
        } else {
            restated
        };
        said(
            text,
            Some(PendingSlot {
                intent: intent.to_string(),
                slot: CONFIRM_SLOT.into(),
            }),
        )
    }

    pub(super) async fn act(
        &self,
        response: &Response,
        slots: &BTreeMap<String, String>,
        access: &Access,
    ) -> Result<Acted, CommerceError> {
        let caller = caller(access);
        let Some(action) = response.action.as_deref() else {
            return Ok(Acted::Fill(BTreeMap::new()));
        };
        let number = slots.get("order_number").cloned().unwrap_or_default();
        let fill = |status: String, detail: String| Acted::Fill(values(status, detail));
        Ok(match action {
            "order_status" => match self.commerce.order(&number, &caller).await? {
                Some(o) => fill(o.state.words().into(), o.status_detail()),
                None => Acted::UnknownOrder(number),
            },
            "refund_status" => match self.commerce.order(&number, &caller).await? {
                Some(o) => {
                    let (status, detail) = o.refund_detail();
                    fill(status, detail)
                }
                None => Acted::UnknownOrder(number),
            },
            // Done only on a yes (`perform`).
            "refund_request" | "cancel_order" => Acted::Fill(BTreeMap::new()),
            other => {
                tracing::debug!(action = other, "action needs no shop call");
                Acted::Fill(BTreeMap::new())
            }
        })
    }
}

/// Whether the conversation may see an order.
pub(super) enum Owned {
    Yes(Order),
    /// It may not (or the order does not exist): say this instead.
    Ask(Answer),
}

/// Wrong checks of one order, from every conversation and address together, in
/// [`CHECK_WINDOW`] before its checks pause (the arithmetic is in the README's security
/// section: 5 guesses a day against at least 10^4 postcodes).
pub const ORDER_CHECK_FAILURES: usize = 5;
/// Wrong checks of any of one shop customer's orders in [`CHECK_WINDOW`] before all their
/// orders' checks pause (a customer with many orders is no bigger target).
pub const CUSTOMER_CHECK_FAILURES: usize = 10;
/// The window of the two limits above.
pub const CHECK_WINDOW: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The failure keys that guard a check of order `number`, each with its limit: the order's
/// own, and its owner's when the shop names them.
struct Guarded(Vec<(String, usize)>);

/// What came of a check of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckVerdict {
    Confirmed,
    Wrong,
    /// Too many wrong answers for this order (or its owner's orders) today.
    Paused,
}

impl Dialogue {
    /// Checks `proof` (the email or postcode the customer gave) against order `number`,
    /// counted with every other check of that order, whoever asks (the bot's check, or an
    /// agent typing what the customer told them): a wrong proof is one more guess.
    pub async fn check_order(
        &self,
        number: &str,
        proof: &str,
    ) -> Result<CheckVerdict, CommerceError> {
        let guarded = self.guarded_keys(number).await;
        if self.checks_paused(&guarded).await {
            crate::metrics::guess_refused("order_check_locked");
            return Ok(CheckVerdict::Paused);
        }
        if self.commerce.verify_order(number, proof).await? {
            return Ok(CheckVerdict::Confirmed);
        }
        crate::metrics::guess_refused("order_check");
        Ok(match self.note_wrong_check(number, &guarded).await {
            true => CheckVerdict::Paused,
            false => CheckVerdict::Wrong,
        })
    }

    async fn guarded_keys(&self, number: &str) -> Guarded {
        let mut keys = vec![(format!("order:{number}"), ORDER_CHECK_FAILURES)];
        if self.ledger.is_some() {
            match self.commerce.order_owner(number).await {
                Ok(Some(owner)) => keys.push((format!("shop:{owner}"), CUSTOMER_CHECK_FAILURES)),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "order owner look-up failed; counting per order only")
                }
            }
        }
        Guarded(keys)
    }

    fn window_start() -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() - chrono::Duration::from_std(CHECK_WINDOW).unwrap_or_default()
    }

    /// Whether the checks that `guarded` covers are paused. A store that cannot be read
    /// pauses them too: a check is never given away because the count is unknown.
    async fn checks_paused(&self, guarded: &Guarded) -> bool {
        let Some(store) = &self.ledger else {
            return false;
        };
        let since = Self::window_start();
        for (key, limit) in &guarded.0 {
            match store.failures(key, since).await {
                Ok(n) if n >= *limit => return true,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "check failures unreadable; check refused");
                    return true;
                }
            }
        }
        false
    }

    /// Counts a wrong check of `number`; true when its checks are now paused. The wrong
    /// answer that pauses them asks the shop, once, to email the owner a sign-in link.
    async fn note_wrong_check(&self, number: &str, guarded: &Guarded) -> bool {
        let Some(store) = &self.ledger else {
            return false;
        };
        let now = chrono::Utc::now();
        let since = Self::window_start();
        let (mut paused, mut paused_now) = (false, false);
        for (key, limit) in &guarded.0 {
            match store.note_failure(key, now, since).await {
                Ok(n) => {
                    paused |= n >= *limit;
                    paused_now |= n == *limit;
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not count a wrong check; checks refused");
                    paused = true;
                }
            }
        }
        if paused_now {
            tracing::warn!(
                order = number,
                "order checks paused after wrong answers from anywhere"
            );
            match self.commerce.send_access_link(number).await {
                Ok(sent) => tracing::info!(order = number, sent, "sign-in link asked of the shop"),
                Err(e) => tracing::warn!(error = %e, "the shop could not send a sign-in link"),
            }
        }
        paused
    }
}

/// What the customer gave as the answer to the check: the email address in the message
/// ("it is emma@example.com"), else the whole message (a postcode).
pub(super) fn check_answer(analysis: &Analysis) -> String {
    if let Some(email) = slot_value(analysis, "email") {
        return email;
    }
    analysis
        .text
        .split_whitespace()
        .find(|w| w.contains('@'))
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_string())
        .unwrap_or_else(|| analysis.text.trim().to_string())
}

/// "emma@example.com", "it's 10115", "SW1A 1AA": an email address or a short answer with
/// a digit, taken as the answer to the check whatever the intent model makes of it (a bare
/// address reads to it like a request for a person).
pub(super) fn looks_like_check_answer(text: &str) -> bool {
    let words = text.split_whitespace().count();
    text.contains('@') || (words <= 4 && text.chars().any(|c| c.is_ascii_digit()))
}

/// "can I still cancel order 10009?", "is it possible to get a refund": the customer asks
/// whether, rather than asks for. A question opening, or a question mark with a modal verb.
pub fn is_question(text: &str) -> bool {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let joined = format!(" {} ", words.join(" "));
    const OPENINGS: &[&str] = &[
        " can i ",
        " could i ",
        " may i ",
        " is it possible ",
        " is it too late ",
        " am i able ",
        " would it be possible ",
    ];
    const MODALS: &[&str] = &[
        "can", "could", "may", "might", "possible", "able", "still", "would", "should",
    ];
    OPENINGS.iter().any(|o| joined.contains(o))
        || (lower.contains('?') && words.iter().any(|w| MODALS.contains(w)))
}

pub(super) enum Acted {
    /// Fill the intent's text with these values (and the slots).
    Fill(BTreeMap<String, String>),
    UnknownOrder(String),
}
