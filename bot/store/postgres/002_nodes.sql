-- Version 2: what the nodes of one deployment agree on.

-- Who runs what: "stripe:N" (the customers whose identity hashes to stripe N are handled by
-- this node now), "telegram:poller", "discord:gateway", "courier:CHANNEL", "timers".
-- A node renews its leases while it runs them; a dead node's run out.
CREATE TABLE leases (
    name   text PRIMARY KEY,
    holder text NOT NULL,                     -- the node (see /health)
    until  timestamptz NOT NULL
);

-- Values every node must share, decided by the first node that asks ("secret": the master
-- secret that signs widget tokens, customer tokens and sessions, when the config sets none).
CREATE TABLE settings (
    name  text PRIMARY KEY,
    value text NOT NULL
);
