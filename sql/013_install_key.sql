-- 013_install_key.sql: a random name for this database, so that the
-- Idempotency-Keys pmb sends to Stripe ("pmb-KEY-refund-7") are unique in
-- the Stripe account, not only in this database: a second site on the same
-- account, or a fresh install, starts its rows at 1 again, and Stripe
-- keeps keys for about 24 hours. A restored backup keeps its name, so a
-- retry after a restore still finds Stripe's answer to the same call.
CREATE TABLE install (
  id    INTEGER PRIMARY KEY CHECK (id = 1),  -- one row
  key   TEXT NOT NULL                        -- 12 hex digits, random
);
INSERT INTO install (id, key) VALUES (1, lower(hex(randomblob(6))));
