//! frontdesk: a self-hosted customer-support chatbot with local NLU.
pub mod channels;
pub mod commerce;
pub mod config;
pub mod desk;
pub mod dialogue;
pub mod message;
pub mod nlu;
pub mod policy;
pub mod queue;
pub mod replay;
pub mod router;
pub mod server;
pub mod store;
pub mod telemetry;
