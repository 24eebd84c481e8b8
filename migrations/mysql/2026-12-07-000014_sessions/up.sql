-- Sign-in with the identity provider (see sqlite).
CREATE TABLE sessions (
    id_hash    VARCHAR(64) NOT NULL PRIMARY KEY,
    user_name  VARCHAR(64) NOT NULL,
    username   VARCHAR(255) NOT NULL,
    admin      BOOLEAN NOT NULL,
    csrf       VARCHAR(64) NOT NULL,
    expires_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE sign_ins (
    state        VARCHAR(64) NOT NULL PRIMARY KEY,
    nonce        VARCHAR(64) NOT NULL,
    verifier     VARCHAR(128) NOT NULL,
    redirect_uri TEXT NOT NULL,
    expires_at   DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
