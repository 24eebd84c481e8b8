DROP TABLE sessions;
DROP TABLE sign_ins;
