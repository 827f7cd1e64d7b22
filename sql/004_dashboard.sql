-- 004_dashboard.sql: indexes for the dashboard (GET /admin/dashboard), so
-- that its time windows read index ranges and its counts and percentiles
-- read indexes rather than the tables.

-- Answered orders by first answer time (answers per week); paid_at makes
-- it cover the count of answered orders with a payment time.
CREATE INDEX orders_answered ON orders(answered_at, paid_at)
  WHERE answered_at IS NOT NULL;

-- Time from payment to first answer, in seconds, in order: the median and
-- the 90th percentile are read at an offset, "within the promise" is a
-- range count. The WHERE of the queries must repeat this one.
CREATE INDEX orders_answer_time ON orders(answered_at - paid_at)
  WHERE answered_at IS NOT NULL AND paid_at IS NOT NULL;

-- Ledger rows by kind: orders with a payment or a refund (refund rate).
CREATE INDEX ledger_kind_order ON ledger(kind, order_id);
-- Ledger rows by kind and time: refunds per week.
CREATE INDEX ledger_kind_at ON ledger(kind, at);
-- Revenue per currency, read from the index alone.
CREATE INDEX ledger_currency ON ledger(currency, kind, amount);
