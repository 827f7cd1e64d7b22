-- 009_email_nocase.sql: orders are found by their client's address
-- without regard to case (GET and POST /lost), as every mail provider a
-- client uses treats addresses: Ann@x.com and ann@x.com are one client.
-- The address stays as typed in orders.email, for display and sending;
-- the statement compares lower(email) with the address lowered by
-- email_addr_key (src/email_addr.c), and this index serves it.
-- SQLite's lower() folds ASCII only, which is all an address may hold
-- (email_addr_check).
DROP INDEX orders_email;    -- case-sensitive; no statement reads it now
CREATE INDEX orders_email_lower ON orders(
  lower(email),             -- orders.email with A-Z lowered: the key
  created_at,               -- newest first, as ORDERS_BY_EMAIL lists them
  id                        -- ties of created_at, also newest first
);
