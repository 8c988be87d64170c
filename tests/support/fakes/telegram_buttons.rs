//! Inline keyboards on the fake Bot API: a customer (or anyone) presses a button, which
//! arrives as a `callback_query` update for `getUpdates`; `answerCallbackQuery` is recorded.

use serde_json::{json, Value};

use super::{ok, user_json, FakeTelegram, Sent, Shared};

impl FakeTelegram {
    /// User `from` presses the button with `data` under a message in chat `chat_id` (a
    /// forged press names any data it likes); returns the callback query's id.
    pub fn press(&self, chat_id: i64, from: i64, data: &str) -> String {
        self.with(|inner| {
            let update_id = inner.next_update_id;
            inner.next_update_id += 1;
            let message_id = inner.next_message_id;
            inner.next_message_id += 1;
            let query_id = format!("cb{update_id}");
            let update = json!({"update_id": update_id, "callback_query": {
                "id": query_id,
                "from": user_json(from),
                "message": {
                    "message_id": message_id,
                    "date": chrono::Utc::now().timestamp(),
                    "chat": {"id": chat_id, "type": "private", "first_name": "Ada"},
                    "from": {"id": super::BOT_ID, "is_bot": true, "first_name": "Frontdesk",
                             "username": "frontdesk_test_bot"},
                    "text": "How would you rate the help you got today?",
                },
                "chat_instance": format!("ci{chat_id}"),
                "data": data,
            }});
            inner.updates.push_back(update.clone());
            inner.history.insert(update_id, update);
            query_id
        })
    }

    /// The `answerCallbackQuery` calls so far: (query id, the text shown).
    pub fn callback_answers(&self) -> Vec<(String, Option<String>)> {
        self.shared.inner.lock().unwrap().callback_answers.clone()
    }

    /// Waits until the bot acknowledged callback query `id`; returns the text it showed.
    pub async fn wait_for_callback_answer(&self, id: &str) -> Option<String> {
        let what = format!("the bot to answer callback query {id}");
        self.shared
            .rec
            .until(&what, || {
                self.callback_answers()
                    .into_iter()
                    .find(|(q, _)| q == id)
                    .map(|(_, text)| text)
            })
            .await
    }
}

/// The keyboard of a sent message: rows of (label, callback data); empty when it has none.
pub fn keyboard(sent: &Sent) -> Vec<Vec<(String, String)>> {
    let rows = sent.reply_markup["inline_keyboard"].as_array().cloned();
    rows.unwrap_or_default()
        .iter()
        .map(|row| {
            row.as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|b| {
                    let label = b["text"].as_str().unwrap_or_default().to_string();
                    let data = b["callback_data"].as_str().unwrap_or_default().to_string();
                    (label, data)
                })
                .collect()
        })
        .collect()
}

pub(super) fn answer_callback_query(shared: &Shared, params: &Value) -> axum::response::Response {
    let id = params["callback_query_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let text = params["text"].as_str().map(str::to_string);
    shared
        .inner
        .lock()
        .unwrap()
        .callback_answers
        .push((id, text));
    shared.rec.bump();
    ok(json!(true))
}
