-- 016_chase.sql: unpaid orders chased and closed, and the daily digest
-- (issue 16). The mail daemon finds the orders due a reminder or a
-- cancellation through two partial indexes that hold only unpaid orders,
-- so a pass reads the few that are due, never every order.

-- When the payment reminder went to the client (Unix seconds); NULL: not
-- yet. Set by the guarded UPDATE that decides the reminder (ORDER_REMIND),
-- so that it goes once.
ALTER TABLE orders ADD COLUMN reminded_at INTEGER;

-- Unpaid orders still to remind, oldest first (CHASE_REMIND_DUE).
CREATE INDEX orders_unreminded ON orders(
  created_at,               -- the reminder is due this long after it
  id                        -- the keyset's tie-break
) WHERE status = 'awaiting_payment' AND reminded_at IS NULL;

-- Unpaid orders by age, oldest first (CHASE_CANCEL_DUE).
CREATE INDEX orders_unpaid_age ON orders(
  created_at,               -- cancelled unpaid_cancel_days after it
  id                        -- the keyset's tie-break
) WHERE status = 'awaiting_payment';

-- The days the consultant's digest was queued: one row per calendar day
-- in time_zone, inserted in the transaction that queues the digest, so
-- that however many daemons or passes run, a day has one digest.
CREATE TABLE digest_days (
  day      INTEGER PRIMARY KEY,  -- the day's first second (Unix seconds)
  sent_at  INTEGER NOT NULL      -- when the digest was queued
);
