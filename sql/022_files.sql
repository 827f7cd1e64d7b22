-- 022_files.sql: files with questions, follow-ups, replies and notes
-- (issue 19), kept in the database itself (so pmbctl backup carries
-- them), written with incremental blob I/O after the upload was spooled,
-- read the same way when served.

CREATE TABLE files (
  id          INTEGER PRIMARY KEY,
  order_id    INTEGER NOT NULL REFERENCES orders(id),
  message_id  INTEGER REFERENCES messages(id), -- the message it came with;
                                   -- NULL: on the order's reply draft,
                                   -- until the reply is sent
  name        TEXT NOT NULL,       -- its name as sent, cleaned: shown and
                                   -- offered when downloaded, never used
                                   -- to decide anything
  kind        TEXT NOT NULL,       -- pdf, png, jpeg, ... from its content
                                   -- (src/filekind.c)
  size        INTEGER NOT NULL CHECK (size > 0),
  sha256      BLOB NOT NULL CHECK (length(sha256) = 32), -- of data
  user_id     INTEGER REFERENCES users(id), -- staff who attached it;
                                   -- NULL: the client
  created_at  INTEGER NOT NULL,
  data        BLOB NOT NULL        -- the bytes (last: listing never reads
                                   -- them)
);
CREATE INDEX files_message ON files(message_id) WHERE message_id IS NOT NULL;
CREATE INDEX files_order ON files(order_id, id);

-- What the files take, for the dashboard: one row, kept by triggers (no
-- scan of the files).
CREATE TABLE files_usage (
  id     INTEGER PRIMARY KEY CHECK (id = 1),
  files  INTEGER NOT NULL DEFAULT 0 CHECK (files >= 0),
  bytes  INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0)
);
INSERT INTO files_usage (id) VALUES (1);
CREATE TRIGGER files_usage_insert AFTER INSERT ON files BEGIN
  UPDATE files_usage SET files = files + 1, bytes = bytes + new.size
    WHERE id = 1;
  INSERT INTO search_pending (order_id) VALUES (new.order_id)
    ON CONFLICT (order_id) DO NOTHING;
END;
CREATE TRIGGER files_usage_delete AFTER DELETE ON files BEGIN
  UPDATE files_usage SET files = files - 1, bytes = bytes - old.size
    WHERE id = 1;
  INSERT INTO search_pending (order_id) VALUES (old.order_id)
    ON CONFLICT (order_id) DO NOTHING;
END;

-- Search finds an order by a file's name: the names go with the
-- question's text.
DROP VIEW search_docs;
CREATE VIEW search_docs AS
SELECT
  o.id    AS id,
  o.name  AS name,
  o.email AS email,
  (SELECT coalesce(group_concat(body, char(10)), '') FROM
    (SELECT m.body FROM messages m WHERE m.order_id = o.id AND
     m.kind IN ('question', 'info') ORDER BY m.id)) ||
  (SELECT coalesce(char(10) || group_concat(name, char(10)), '') FROM
    (SELECT f.name FROM files f WHERE f.order_id = o.id ORDER BY f.id))
          AS question,
  (SELECT coalesce(group_concat(body, char(10)), '') FROM
    (SELECT m.body FROM messages m WHERE m.order_id = o.id AND
     m.kind IN ('reply', 'followup', 'extra') ORDER BY m.id))
          AS replies,
  (SELECT coalesce(group_concat(body, char(10)), '') FROM
    (SELECT m.body FROM messages m WHERE m.order_id = o.id AND
     m.kind = 'note' ORDER BY m.id))
          AS notes
FROM orders o;
