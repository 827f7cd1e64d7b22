-- 017_outbox_paging.sql: the admin outbox pages by id, newest first,
-- with or without a status filter (issue 16): "older than message N" is
-- one range of an index, however many messages were ever sent.

-- The messages of one status by id (OUTBOX_LIST_STATUS): SQLite keeps
-- the rowid (id) after the indexed column, so within one status the
-- entries are in id order. outbox_due (status, next_at) cannot serve
-- that order.
CREATE INDEX outbox_status ON outbox(
  status                    -- queued, sending, sent or failed
);
