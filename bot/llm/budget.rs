//! Token budgets: how many tokens (prompt + completion, as the endpoint reports them) one
//! conversation, and all conversations together per UTC day, may spend. A call is refused
//! once a budget is spent; a call that starts under a budget may end a little over it.

use chrono::NaiveDate;
use std::collections::HashMap;
use std::sync::Mutex;

/// Which budget is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetScope {
    Conversation,
    Day,
}

impl std::fmt::Display for BudgetScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BudgetScope::Conversation => "this conversation's tokens (llm.tokens_per_conversation)",
            BudgetScope::Day => "today's tokens (llm.tokens_per_day)",
        })
    }
}

#[derive(Debug)]
struct Spent {
    day: NaiveDate,
    today: u64,
    /// Tokens by conversation, forgotten at the turn of the day so the map stays bounded
    /// (a conversation that spans midnight gets a fresh allowance).
    conversations: HashMap<String, u64>,
}

/// The two budgets and what was spent against them.
#[derive(Debug)]
pub struct TokenBudget {
    per_conversation: u64,
    per_day: u64,
    spent: Mutex<Spent>,
}

impl TokenBudget {
    pub fn new(per_conversation: u64, per_day: u64) -> Self {
        TokenBudget {
            per_conversation,
            per_day,
            spent: Mutex::new(Spent {
                day: today(),
                today: 0,
                conversations: HashMap::new(),
            }),
        }
    }

    /// Whether `conversation` may make another call now.
    pub fn check(&self, conversation: &str) -> Result<(), BudgetScope> {
        self.check_on(today(), conversation)
    }

    /// Counts the tokens a call spent.
    pub fn record(&self, conversation: &str, tokens: u64) {
        self.record_on(today(), conversation, tokens)
    }

    /// Tokens spent by `conversation` (today).
    pub fn spent_by(&self, conversation: &str) -> u64 {
        let spent = self.spent.lock().expect("budget lock");
        spent.conversations.get(conversation).copied().unwrap_or(0)
    }

    fn check_on(&self, day: NaiveDate, conversation: &str) -> Result<(), BudgetScope> {
        let mut spent = self.spent.lock().expect("budget lock");
        roll(&mut spent, day);
        if spent.today >= self.per_day {
            return Err(BudgetScope::Day);
        }
        if spent.conversations.get(conversation).copied().unwrap_or(0) >= self.per_conversation {
            return Err(BudgetScope::Conversation);
        }
        Ok(())
    }

    fn record_on(&self, day: NaiveDate, conversation: &str, tokens: u64) {
        let mut spent = self.spent.lock().expect("budget lock");
        roll(&mut spent, day);
        spent.today = spent.today.saturating_add(tokens);
        let c = spent
            .conversations
            .entry(conversation.to_string())
            .or_default();
        *c = c.saturating_add(tokens);
    }
}

fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

fn roll(spent: &mut Spent, day: NaiveDate) {
    if spent.day != day {
        spent.day = day;
        spent.today = 0;
        spent.conversations.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, d).unwrap()
    }

    #[test]
    fn a_conversation_is_refused_once_its_tokens_are_spent() {
        let budget = TokenBudget::new(100, 10_000);
        assert_eq!(budget.check_on(day(1), "c1"), Ok(()));
        budget.record_on(day(1), "c1", 60);
        assert_eq!(budget.check_on(day(1), "c1"), Ok(()));
        budget.record_on(day(1), "c1", 60);
        assert_eq!(
            budget.check_on(day(1), "c1"),
            Err(BudgetScope::Conversation)
        );
        // Another conversation still has its own allowance.
        assert_eq!(budget.check_on(day(1), "c2"), Ok(()));
    }

    #[test]
    fn the_day_budget_stops_every_conversation_until_the_next_day() {
        let budget = TokenBudget::new(1_000, 150);
        budget.record_on(day(1), "c1", 80);
        budget.record_on(day(1), "c2", 80);
        assert_eq!(budget.check_on(day(1), "c3"), Err(BudgetScope::Day));
        assert_eq!(budget.check_on(day(2), "c3"), Ok(()));
        assert_eq!(budget.check_on(day(2), "c1"), Ok(()));
    }
}
