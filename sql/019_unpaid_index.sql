-- 019_unpaid_index.sql: one partial index of the unpaid orders where
-- there were two (014's orders_unpaid for the dashboard, 016's
-- orders_unpaid_age for the chase's cancellations). Every index a new
-- order enters is one more page in the WAL at each commit of POST /ask
-- (bench/README.md, fix 24): a new order is unpaid, so it entered both.
-- The dashboard's count and value per currency still read this index
-- alone (it holds currency and price); the cancellations read a range of
-- it by age, oldest first.
DROP INDEX orders_unpaid;
DROP INDEX orders_unpaid_age;
CREATE INDEX orders_unpaid ON orders(
  status,                   -- always awaiting_payment: without it here
                            -- SQLite 3.40 reads the table for the WHERE
  created_at,               -- cancelled unpaid_cancel_days after it
  id,                       -- the keyset's tie-break
  currency,                 -- the dashboard: one group per currency...
  price                     -- ...and the value summed (minor units)
) WHERE status = 'awaiting_payment';
