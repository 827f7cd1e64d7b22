-- 014_dashboard_money.sql: what the dashboard reads for its unpaid orders
-- and its revenue by month (issue 16), read from these indexes alone,
-- never from the tables.

-- The orders awaiting payment, counted and summed per currency
-- (DASH_UNPAID): only unpaid orders are in it, so it stays as small as
-- the orders still to be paid.
CREATE INDEX orders_unpaid ON orders(
  status,                   -- always awaiting_payment: without it here
                            -- SQLite 3.40 reads the table for the WHERE
  currency,                 -- one group per currency
  price                     -- the value summed (minor units)
) WHERE status = 'awaiting_payment';

-- The ledger by time, with what a month's revenue sums (DASH_MONTHS): the
-- last 12 months are one range of it. Its first column is ledger_at's
-- only one, so ledger_at goes.
CREATE INDEX ledger_month ON ledger(
  at,                       -- when the money moved
  currency,                 -- one group per currency...
  kind,                     -- payment or refund: which sum
  amount                    -- the minor units summed
);
DROP INDEX ledger_at;
