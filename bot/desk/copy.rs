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
