-- 012_revenue_by_method.sql: the dashboard splits revenue by the way the
-- money moved (issue 15: card through Stripe, bank transfer, ...), so its
-- revenue query groups the ledger by currency and method and reads the
-- sums from this index alone, as ledger_currency served it by currency.
DROP INDEX ledger_currency;  -- (currency, kind, amount): superseded
CREATE INDEX ledger_revenue ON ledger(
  currency,                  -- one group per currency...
  method,                    -- ...and per method within it
  kind,                      -- payment or refund: which sum
  amount                     -- the minor units summed
);
