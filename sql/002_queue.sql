-- 002_queue.sql: an index for the admin queue's "all orders" view, so
-- that keyset paging over every order reads only the rows it shows.
CREATE INDEX orders_due ON orders(due_at, id);
