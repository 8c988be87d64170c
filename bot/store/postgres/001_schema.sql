-- frontdesk's PostgreSQL schema, version 1: one table per table of the Store (the same
-- names as sled's trees, see TABLES in bot/store/mod.rs). Records are the JSON the Rust
-- types serialise to (`body`); the columns beside it are what the store looks records up
-- by. Applied at start inside one transaction, under an advisory lock, so two nodes
-- starting at once do not race.

-- A person, whatever channels they write from.
CREATE TABLE customers (
    id               text PRIMARY KEY,
    shop_customer_id text,                    -- the shop's id (export and erase find by it)
    body             jsonb NOT NULL
);
CREATE INDEX customers_by_shop_id ON customers (shop_customer_id)
    WHERE shop_customer_id IS NOT NULL;

-- "channel:user" -> the customer it belongs to.
CREATE TABLE identities (
    identity    text PRIMARY KEY,
    customer_id text NOT NULL
);
CREATE INDEX identities_by_customer ON identities (customer_id);

CREATE TABLE conversations (
    id          text PRIMARY KEY,
    customer_id text NOT NULL,
    identity    text NOT NULL,                -- "channel:user" of the conversation
    status      text NOT NULL,                -- bot, queued, with_agent, closed
    updated     timestamptz NOT NULL,
    body        jsonb NOT NULL
);
CREATE INDEX conversations_by_customer ON conversations (customer_id);
CREATE INDEX conversations_by_identity ON conversations (identity);
CREATE INDEX conversations_closed_by_age ON conversations (updated) WHERE status = 'closed';

CREATE TABLE messages (
    conversation_id text NOT NULL,
    seq             bigint NOT NULL,          -- the message's place in its conversation
    body            jsonb NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

-- The conversation an identity currently writes into.
CREATE TABLE open (
    identity        text PRIMARY KEY,
    conversation_id text NOT NULL
);
CREATE INDEX open_by_conversation ON open (conversation_id);

CREATE TABLE queue (
    queue           text NOT NULL,
    conversation_id text NOT NULL,
    body            jsonb NOT NULL,
    PRIMARY KEY (queue, conversation_id)
);
CREATE INDEX queue_by_conversation ON queue (conversation_id);

CREATE TABLE assignments (
    agent           text NOT NULL,
    conversation_id text NOT NULL,
    PRIMARY KEY (agent, conversation_id)
);
CREATE INDEX assignments_by_conversation ON assignments (conversation_id);

CREATE TABLE link_codes (
    code     text PRIMARY KEY,
    identity text NOT NULL,
    expires  timestamptz NOT NULL,
    body     jsonb NOT NULL
);

-- One counter for both outbox tables: an id is never reused, and ids increase in the order
-- records were written.
CREATE SEQUENCE outbox_ids;

-- Messages on their way to a chat platform, written in the same transaction as the turn
-- that caused them; a courier deletes each once the platform took it.
CREATE TABLE outbox (
    id              bigint PRIMARY KEY DEFAULT nextval('outbox_ids'),
    channel         text NOT NULL,
    conversation_id text NOT NULL,
    identity        text NOT NULL,
    body            jsonb NOT NULL            -- Parcel
);
CREATE INDEX outbox_by_channel ON outbox (channel, id);
CREATE INDEX outbox_by_conversation ON outbox (conversation_id);
CREATE INDEX outbox_by_identity ON outbox (identity);

-- Messages a platform refused for good (shown to the agent).
CREATE TABLE outbox_failed (
    id              bigint PRIMARY KEY,
    channel         text NOT NULL,
    conversation_id text NOT NULL,
    identity        text NOT NULL,
    body            jsonb NOT NULL            -- FailedDelivery
);
CREATE INDEX outbox_failed_by_conversation ON outbox_failed (conversation_id);
CREATE INDEX outbox_failed_by_identity ON outbox_failed (identity);

-- What a channel adapter keeps (Discord: "user:ID" -> route, "thread:ID" -> user,
-- "seen:CHANNEL" -> the last message read).
CREATE TABLE channel_state (
    channel text NOT NULL,
    key     text NOT NULL,
    value   text NOT NULL,
    PRIMARY KEY (channel, key)
);

-- API keys: the SHA-256 of the secret part, never the key.
CREATE TABLE api_keys (
    id   text PRIMARY KEY,
    body jsonb NOT NULL
);

CREATE TABLE sessions (
    id      text PRIMARY KEY,
    expires timestamptz NOT NULL,
    body    jsonb NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires);

-- The privacy audit (no personal data: a hash of the customer id, the actor, the action).
CREATE TABLE audit (
    nanos bigint NOT NULL,                    -- nanoseconds since 1970
    seq   bigserial,                          -- orders lines of the same instant
    body  jsonb NOT NULL,
    PRIMARY KEY (nanos, seq)
);

-- Failure times per guarded key ("channel:user", "order:N", "shop:ID", "link-addr:IP", ...).
CREATE TABLE link_attempts (
    key    text PRIMARY KEY,
    times  jsonb NOT NULL,                    -- at most MAX_NOTED_FAILURES timestamps
    newest timestamptz NOT NULL
);
CREATE INDEX link_attempts_by_age ON link_attempts (newest);

-- Inbound message ids already handled, with the outcome a repeat gets back.
CREATE TABLE inbound (
    identity   text NOT NULL,
    message_id text NOT NULL,
    time       timestamptz NOT NULL,
    body       jsonb NOT NULL,                -- SeenInbound
    PRIMARY KEY (identity, message_id)
);
CREATE INDEX inbound_by_age ON inbound (time);

-- Conversations whose latest customer message waits for an LLM answer.
CREATE TABLE awaiting (
    conversation_id text PRIMARY KEY
);
