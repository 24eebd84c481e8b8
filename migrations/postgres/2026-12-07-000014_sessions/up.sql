-- Sign-in with the identity provider (SPEC §9), kept in the database so
-- that every instance knows every session.
--
-- A session: the SHA-256 of the cookie's random id (a copy of the table
-- opens no browser's session), the user, the name the provider gave, and
-- whether the person is an admin.
CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL,
    username   TEXT NOT NULL,
    admin      BOOLEAN NOT NULL,
    csrf       TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
-- A sign-in under way: its state, nonce and PKCE verifier, for the
-- callback, which may reach another instance.
CREATE TABLE sign_ins (
    state        TEXT PRIMARY KEY,
    nonce        TEXT NOT NULL,
    verifier     TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    expires_at   TIMESTAMP NOT NULL
);
