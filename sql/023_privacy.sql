-- 023_privacy.sql: privacy (issue 20). A client's personal data can be
-- erased while the books stay (src/privacy.c); a client can ask for it
-- from the status page; emails that must be wiped once delivered say so.

-- When the order's personal data was erased (NULL: not erased). The
-- order's number, dates, prices, status history (without its notes) and
-- ledger stay; its status, refund and file links answer 410 Gone.
ALTER TABLE orders ADD COLUMN erased_at INTEGER;

-- The sweep (pmbctl privacy sweep) reads orders not yet erased by status
-- and time; erased ones drop out of this index.
CREATE INDEX orders_not_erased ON orders(status, updated_at)
  WHERE erased_at IS NULL;

-- A client's "Delete my data" from the status page of a closed order:
-- the consultant sees it on the order and in the queue, checks nothing
-- is owed, and erases. One open request per order.
CREATE TABLE erasure_requests (
  id            INTEGER PRIMARY KEY,
  order_id      INTEGER NOT NULL REFERENCES orders(id),
  requested_at  INTEGER NOT NULL,
  done_at       INTEGER,            -- the order was erased (NULL: open)
  done_by       INTEGER REFERENCES users(id) -- NULL: pmbctl or the sweep
);
CREATE UNIQUE INDEX erasure_requests_open ON erasure_requests(order_id)
  WHERE done_at IS NULL;

-- An email whose recipient and body are wiped once it is delivered or
-- given up (failed): the "your data is erased" email, queued in the
-- erasing transaction, is the only one. 0: kept as every other email.
ALTER TABLE outbox ADD COLUMN wipe_when_done INTEGER NOT NULL DEFAULT 0;
