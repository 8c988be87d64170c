//! Fans the desk's events out to the widget sockets that watch each conversation, so that
//! one task reads the desk's broadcast instead of every open socket waking for every event.

use crate::desk::{Desk, DeskEvent, DeskEventKind};
use crate::message::ConversationId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, watch};

/// Socket id and its event channel.
type Socket = (u64, mpsc::Sender<DeskEvent>);
type Watchers = HashMap<ConversationId, Vec<Socket>>;

#[derive(Default)]
pub struct Hub {
    watchers: Mutex<Watchers>,
    /// Sockets by the customer they serve (`Identity::key`), for the LLM's drafts: a
    /// conversation that is new in this turn has no id the socket could follow yet.
    customers: Mutex<HashMap<String, Vec<Socket>>>,
    next: AtomicU64,
}

/// One socket's view: the events of the conversations it watches, in order. Dropping it
/// stops the watching.
pub struct Watch {
    hub: Arc<Hub>,
    id: u64,
    sender: mpsc::Sender<DeskEvent>,
    pub events: mpsc::Receiver<DeskEvent>,
    watching: Vec<ConversationId>,
    customer: Option<String>,
}

/// Events buffered per socket; a socket that falls this far behind misses events (the
/// widget re-reads history on its next connect).
const PER_SOCKET: usize = 256;

impl Hub {
    /// Starts the task that forwards the desk's events until `stopping` flips.
    pub fn start(desk: &Desk, mut stopping: watch::Receiver<bool>) -> Arc<Hub> {
        let hub = Arc::new(Hub::default());
        let mut events = desk.subscribe();
        let weak = Arc::downgrade(&hub);
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    e = events.recv() => e,
                    _ = super::until_stopped(&mut stopping) => break,
                };
                let Some(hub) = weak.upgrade() else { break };
                match event {
                    Ok(event) => hub.dispatch(event),
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "widget sockets missed desk events")
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
        hub
    }

    fn dispatch(&self, event: DeskEvent) {
        // Drafts and delivered lines go to the customer's sockets, whatever they follow.
        if let DeskEventKind::BotDraft { customer, .. }
        | DeskEventKind::BotDraftCleared { customer }
        | DeskEventKind::Line { customer, .. } = &event.kind
        {
            let customers = self.customers.lock().expect("hub lock");
            for (_, tx) in customers.get(customer).into_iter().flatten() {
                let _ = tx.try_send(event.clone());
            }
            return;
        }
        let watchers = self.watchers.lock().expect("hub lock");
        if event.kind == DeskEventKind::Resync {
            // Every socket, once (a socket may watch several conversations).
            let mut told = std::collections::HashSet::new();
            let customers = self.customers.lock().expect("hub lock");
            for (id, tx) in watchers.values().chain(customers.values()).flatten() {
                if told.insert(*id) {
                    let _ = tx.try_send(event.clone());
                }
            }
            return;
        }
        if let Some(list) = watchers.get(&event.conversation_id) {
            for (_, tx) in list {
                // A full socket buffer drops the event rather than stalling every socket.
                let _ = tx.try_send(event.clone());
            }
        }
    }

    pub fn open(self: &Arc<Self>) -> Watch {
        let (sender, events) = mpsc::channel(PER_SOCKET);
        Watch {
            hub: self.clone(),
            id: self.next.fetch_add(1, Ordering::Relaxed),
            sender,
            events,
            watching: Vec::new(),
            customer: None,
        }
    }
}

impl Watch {
    /// Also receive the events of `conversation` (no-op when already watched).
    pub fn follow(&mut self, conversation: &ConversationId) {
        if self.watching.contains(conversation) {
            return;
        }
        self.watching.push(conversation.clone());
        let mut watchers = self.hub.watchers.lock().expect("hub lock");
        watchers
            .entry(conversation.clone())
            .or_default()
            .push((self.id, self.sender.clone()));
    }
}

impl Watch {
    /// Also receive the LLM's drafts for the customer with this channel identity key
    /// (replaces an earlier one).
    pub fn serve_customer(&mut self, key: &str) {
        let mut customers = self.hub.customers.lock().expect("hub lock");
        if let Some(old) = self.customer.take() {
            forget(&mut customers, &old, self.id);
        }
        customers
            .entry(key.to_string())
            .or_default()
            .push((self.id, self.sender.clone()));
        self.customer = Some(key.to_string());
    }
}

fn forget<K: std::hash::Hash + Eq + Clone>(map: &mut HashMap<K, Vec<Socket>>, key: &K, id: u64) {
    if let Some(list) = map.get_mut(key) {
        list.retain(|(i, _)| *i != id);
        if list.is_empty() {
            map.remove(key);
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(key) = self.customer.take() {
            forget(
                &mut self.hub.customers.lock().expect("hub lock"),
                &key,
                self.id,
            );
        }
        let mut watchers = self.hub.watchers.lock().expect("hub lock");
        for conversation in &self.watching {
            if let Some(list) = watchers.get_mut(conversation) {
                list.retain(|(id, _)| *id != self.id);
                if list.is_empty() {
                    watchers.remove(conversation);
                }
            }
        }
    }
}
