-- 005_queue_waiting.sql: an index of the orders waiting for an answer
-- (paid, or with a follow-up), in the reply queue's order, for its default
-- view (GET /admin): page 1 reads its 50 rows from here and stops, where
-- it used to read and sort every waiting order, each with its question.
-- Only waiting orders are in it, so it stays as small as the queue.
CREATE INDEX orders_waiting ON orders(due_at, id)   -- the queue's order
  WHERE status IN ('paid', 'followup');             -- = QUEUE_WAITING's
