//! frontdesk: a self-hosted customer-support chatbot with local NLU.
pub mod nlu;
pub mod replay;
pub mod server;
pub mod telemetry;
