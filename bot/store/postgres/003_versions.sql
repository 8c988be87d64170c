-- Version 3: every applied version of a lead's editable files (the escalation rules), kept
-- whole: compared, rolled back, and applied by every node (the newest of a kind wins).
CREATE TABLE versions (
    kind text NOT NULL,                       -- "rules"
    id   bigint NOT NULL,                     -- 1, 2, 3... per kind, in the order applied
    body jsonb NOT NULL,                      -- ConfigVersion (text, sha256, author, time, summary)
    PRIMARY KEY (kind, id)
);
