//! Every sentence the bot says on its own (as opposed to the intents' answers, which support
//! leads write in `intents/`). Kept in one file so they can be read, reviewed and
//! translated together.

/// The customer has just been put in a queue.
pub fn queued(position: usize) -> String {
    format!(
        "I'm passing you to a person from our team; they will see everything we've written so far. \
         You are number {position} in the queue."
    )
}

/// The customer wrote again while waiting.
pub fn still_waiting(position: usize) -> String {
    format!(
        "Thanks, I've added that for our team. You are number {position} in the queue; someone \
         will be with you as soon as possible."
    )
}

/// The customer's place in the queue changed (chat platforms; the widget shows it itself).
pub fn queue_position(position: usize) -> String {
    if position <= 1 {
        "You are next in the queue; a person from our team will be with you shortly.".to_string()
    } else {
        format!("You are now number {position} in the queue.")
    }
}

/// An agent took the conversation.
pub fn agent_joined(agent: &str) -> String {
    format!("{agent} from our team has joined the conversation.")
}

/// The agent gave the conversation back to the bot.
pub fn handed_back(agent: &str) -> String {
    format!(
        "{agent} handed you back to the assistant. Ask me anything about your orders, or say \
         \"agent\" to talk to a person again."
    )
}

/// The conversation was closed.
pub fn closed() -> String {
    "This conversation is now closed. Thanks for contacting us! Write again any time.".to_string()
}

/// The owning agent stayed silent too long; the customer goes back to the queue.
pub fn agent_idle_requeued(position: usize) -> String {
    format!(
        "Sorry for the wait: I'm finding another person from our team for you. You are number \
         {position} in the queue."
    )
}

/// `/link`: a code was issued.
pub fn link_code_issued(code: &str) -> String {
    format!(
        "Your link code is {code}. Within 10 minutes, send \"/link {code}\" from the other app \
         where you talk to us, and we will know it is you there too."
    )
}

/// `/link`: no code could be issued.
pub fn link_code_unavailable(error: &str) -> String {
    format!("Sorry, no code right now ({error}). Please try again.")
}

/// `/link CODE`: the identities are linked.
pub fn linked_with(channel: &str) -> String {
    format!(
        "Done: this chat is now linked with your {channel} account. Our team sees one history \
         for you."
    )
}

/// `/link CODE`: the code could not be used.
pub fn link_failed(error: &str) -> String {
    format!("I could not link this chat: {error}.")
}

/// The bot cannot help with this (when `intents/` defines no out-of-scope answer).
pub fn out_of_scope() -> String {
    "Sorry, that's not something I can help with here: I handle orders, deliveries, refunds, \
     payments and accounts. Would you like me to put you in touch with a person from our team?"
        .to_string()
}

/// The LLM judged the question one for a person, and no rule names a queue for that.
pub fn llm_handoff() -> String {
    "I'd rather not guess on this one. Would you like me to put you in touch with a person \
     from our team?"
        .to_string()
}

/// An intent without a response in `intents/`.
pub fn generic_help() -> String {
    "I can help with orders, deliveries, returns, refunds, payments and your account. What \
     would you like to do?"
        .to_string()
}

/// The shop could not be reached for an order look-up or request.
pub fn shop_unreachable() -> String {
    "I can't reach our order system right now, sorry. Please try again in a few minutes, or \
     say \"agent\" and a person from our team will look it up."
        .to_string()
}

/// The shop has no order with this number.
pub fn unknown_order(number: &str) -> String {
    format!(
        "I couldn't find an order with the number {number}. Could you check it? It's in your \
         order confirmation email, for example 10234."
    )
}

/// The shop refused a refund or cancellation, and says why.
pub fn shop_refused(number: &str, why: &str) -> String {
    format!("Order {number}: {why}")
}

/// Detail of an accepted refund request.
pub fn refund_covers(total: f64, currency: &str) -> String {
    format!("It covers the full amount of {total:.2} {currency}.")
}

/// Detail of an accepted cancellation.
pub fn order_cancelled() -> String {
    "I've cancelled it, and you won't be charged.".to_string()
}

/// An order the conversation may not see yet (or that does not exist: the words are the
/// same, so they tell nothing): the bot asks what only the buyer knows.
pub fn verify_order(number: &str) -> String {
    format!(
        "To keep your orders private, I first need to check that order {number} is yours. \
         What is the email address or the postcode on that order?"
    )
}

/// The answer to the check did not match (never which part, never whether the order exists).
pub fn check_failed() -> String {
    "Sorry, that doesn't match what we have for that order. Please try again with the email \
     address or the postcode on the order."
        .to_string()
}

/// The order's checks are paused for the day after too many wrong answers, from anywhere
/// (the shop was asked to email the order's owner a sign-in link when they paused).
pub fn order_checks_paused(number: &str) -> String {
    format!(
        "For your security, I can't check order {number} here right now: there were too many \
         wrong answers for it today. If it's your order, sign in on our website and open this \
         chat from there, or use the sign-in link we email to the address on the order. \
         Everything else I can help with as usual."
    )
}

/// Said in the conversation when the agent's check of an order was confirmed by the shop.
pub fn agent_verified_order(agent: &str, number: &str) -> String {
    format!("{agent} checked order {number} with you, and the shop confirmed it: we can talk about that order here now.")
}

/// The checks are used up: a person can help.
pub fn check_failed_offer_person() -> String {
    "Sorry, I can't confirm that order with you here. A person from our team can help you \
     with it: would you like me to put you in touch?"
        .to_string()
}

fn amount(total: f64, currency: &str) -> String {
    match currency {
        "EUR" => format!("€{total:.2}"),
        "GBP" => format!("£{total:.2}"),
        "USD" => format!("${total:.2}"),
        other => format!("{total:.2} {other}"),
    }
}

fn items(order: &crate::commerce::Order) -> String {
    let n: u32 = order.items.iter().map(|i| i.quantity).sum();
    if n == 1 {
        "1 item".to_string()
    } else {
        format!("{n} items")
    }
}

/// The action restated, waiting for a yes: "Cancel order 10009, 2 items, €958.00? Reply
/// yes or no."
pub fn confirm_action(action: &str, order: &crate::commerce::Order) -> String {
    let what = match action {
        "cancel_order" => "Cancel order",
        _ => "Refund order",
    };
    format!(
        "{what} {}, {}, {}? Reply yes or no.",
        order.number,
        items(order),
        amount(order.total, &order.currency)
    )
}

/// The answer to "can I still cancel / get a refund for ...?", before the action is offered.
pub fn action_possible(action: &str, order: &crate::commerce::Order) -> String {
    match action {
        "cancel_order" => format!(
            "Yes: order {} hasn't shipped yet, so it can still be cancelled.",
            order.number
        ),
        _ => format!(
            "Yes: order {} is {}, and I can ask for a refund of the full amount.",
            order.number,
            order.state.words()
        ),
    }
}

/// Why the action cannot be done on this order, when it clearly cannot.
pub fn action_impossible(action: &str, order: &crate::commerce::Order) -> Option<String> {
    use crate::commerce::OrderState::*;
    let n = &order.number;
    match (action, order.state) {
        ("cancel_order", Paid) => None,
        ("cancel_order", Shipped | Delayed) => Some(format!(
            "Order {n} has already shipped, so it can't be cancelled any more; once it arrives \
             you can send it back for free within 30 days."
        )),
        ("cancel_order", Cancelled) => Some(format!("Order {n} is already cancelled.")),
        ("cancel_order", state) => Some(format!(
            "Order {n} is {} already, so there is nothing left to cancel.",
            state.words()
        )),
        (_, RefundPending) => Some(format!(
            "Order {n}: a refund for this order is already in progress."
        )),
        (_, Refunded) => Some(format!("Order {n} has already been refunded.")),
        (_, Cancelled) => Some(format!(
            "Order {n} was cancelled before it shipped, so nothing was charged."
        )),
        _ => None,
    }
}

/// Anything but a yes to a restated action: nothing was done.
pub fn action_dropped(action: &str, number: &str) -> String {
    match action {
        "cancel_order" => format!("OK, I haven't cancelled order {number}."),
        _ => format!("OK, I haven't asked for a refund of order {number}."),
    }
}

/// The shop no longer lets the conversation act on the order it confirmed.
pub fn order_gone(number: &str) -> String {
    format!(
        "Sorry, I can't do that for order {number} any more. Say \"agent\" and a person from \
         our team will help."
    )
}

/// The human queue the customer would join is full.
pub fn queue_full() -> String {
    "I'd like to pass you to a person, but our team is fully booked right now and the queue is \
     full. Please write again in a few minutes, and I'll put you through as soon as there is \
     room. Meanwhile I can still help with orders, deliveries, returns and your account."
        .to_string()
}

/// Too many anonymous chats from the customer's network are waiting already.
pub fn queue_address_full() -> String {
    "I'd like to pass you to a person, but several chats from your network are already waiting \
     for our team. If you sign in on our website, or give me your order number and the email \
     on it, I can put you through right away. Meanwhile I can still help with orders, \
     deliveries, returns and your account."
        .to_string()
}

/// An anonymous customer waited in a queue without writing for a long time.
pub fn queue_expired() -> String {
    "You've been waiting a long time without writing, so I've taken you out of the queue for \
     now. Just write \"agent\" when you're back and I'll put you through again."
        .to_string()
}

/// A Telegram or Discord customer writes faster than their allowance.
pub fn too_fast() -> String {
    "You're sending messages faster than I can read them, so I skipped some. Please wait a \
     minute, then send what you need in one message."
        .to_string()
}

/// The agent blocked the customer.
pub fn blocked() -> String {
    "This conversation has been closed by our team.".to_string()
}

/// The customer was queued while the team is away (`back`: "Monday at 09:00 (Europe/Berlin)",
/// None when no opening is set): when a person will be back, and that a message is kept.
pub fn queued_out_of_hours(back: Option<&str>, position: usize) -> String {
    let away = match back {
        Some(when) => format!("Our team is away right now and back {when}."),
        None => "Our team is away right now, and no return time is set yet.".to_string(),
    };
    format!(
        "{away} I've put you in their queue, so nothing is lost: leave a message here with \
         anything they should know, and they will see it first when they are back. You are \
         number {position} in the queue. Meanwhile I can still help with orders, deliveries, \
         refunds and your account."
    )
}

/// The customer wrote again while the team is away: the message is kept for it.
pub fn kept_for_team(back: Option<&str>, position: usize) -> String {
    let when = back.map_or(String::new(), |w| format!(" (back {w})"));
    format!(
        "Thanks, I've kept that for our team{when}; they will see it first thing. You are \
         number {position} in the queue."
    )
}
