-- Who created each object the upstream account keeps (files, uploads,
-- vector stores, stored responses and chat completions, conversations):
-- one upstream account serves every user, so the gateway keeps them apart.
CREATE TABLE objects (
    id         TEXT NOT NULL PRIMARY KEY,
    kind       TEXT NOT NULL,
    user_name  TEXT NOT NULL,
    upstream   TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX objects_user_kind ON objects (user_name, kind);
