-- 021_inbound.sql: replies by email land in the order (issue 18). Mail
-- that comes in (pmbctl mail receive from a mail server's pipe, pmbctl
-- mail fetch from an IMAP mailbox) is kept whole in `inbound`; a client's
-- reply becomes a message of its order, anything else waits in the
-- consultant's inbox (/admin/inbox); a bounce marks the outbox row it
-- names. SQLite cannot change a CHECK constraint in place, so messages
-- and outbox are rebuilt with every row kept (nothing references either
-- by foreign key; the view and triggers that name messages are dropped
-- first and made again, as SQLite's ALTER TABLE page advises).

-- One received message, kept whole, once (by its Message-ID).
CREATE TABLE inbound (
  id            INTEGER PRIMARY KEY,
  message_key   TEXT NOT NULL UNIQUE,      -- its Message-ID without "<>";
                                           -- "sha256:HEX" of the raw bytes
                                           -- when it has none: the same
                                           -- message delivered twice is
                                           -- stored once
  via           TEXT NOT NULL CHECK (via IN ('pipe', 'imap')),
  received_at   INTEGER NOT NULL,
  from_addr     TEXT NOT NULL DEFAULT '',  -- From's address, as parsed
  from_name     TEXT NOT NULL DEFAULT '',
  subject       TEXT NOT NULL DEFAULT '',
  body          TEXT NOT NULL DEFAULT '',  -- what the sender wrote: the
                                           -- text part (or the HTML part
                                           -- made text), quotes and
                                           -- signature cut
  attachments   TEXT NOT NULL DEFAULT '',  -- one line per attachment:
                                           -- name, type, bytes (listed,
                                           -- not kept apart from raw)
  status        TEXT NOT NULL CHECK (status IN
                ('routed',      -- became a message of order_id by itself
                 'inbox',       -- waits for the consultant
                 'attached',    -- the consultant put it on order_id
                 'discarded',   -- the consultant threw it away
                 'bounce')),    -- a bounce of outbox_id (order_id: its
                                -- order, if any)
  reason        TEXT NOT NULL DEFAULT '',  -- why it is in the inbox, in
                                           -- words; a bounce's diagnostic
  order_id      INTEGER REFERENCES orders(id),
  suggested_id  INTEGER REFERENCES orders(id), -- the order its token,
                                           -- thread or subject names,
                                           -- offered in the inbox
  outbox_id     INTEGER REFERENCES outbox(id), -- a bounce's message
  decided_at    INTEGER,                   -- attached or discarded
  decided_by    INTEGER REFERENCES users(id),
  raw_size      INTEGER NOT NULL,          -- bytes received
  raw           BLOB NOT NULL              -- the message as received
                                           -- (last: listing never reads it)
);
-- The inbox page, newest first, by status; and the per-sender rate.
CREATE INDEX inbound_status ON inbound(status, id);
CREATE INDEX inbound_from ON inbound(from_addr, received_at);
CREATE INDEX inbound_order ON inbound(order_id) WHERE order_id IS NOT NULL;

-- Messages dropped on purpose, counted (the inbox page's footer): never
-- stored, never silently.
CREATE TABLE inbound_drops (
  reason   TEXT PRIMARY KEY CHECK (reason IN
           ('auto_submitted',   -- Auto-Submitted other than "no" (RFC 3834)
            'precedence',       -- Precedence: bulk, junk or list
            'loop',             -- one of our own messages come back
            'rate',             -- over inbound_sender_hourly from one sender
            'bounce_unknown',   -- a bounce of no message of ours
            'empty')),          -- no message at all
  n        INTEGER NOT NULL DEFAULT 0 CHECK (n >= 0),
  last_at  INTEGER                          -- the latest drop
);
INSERT INTO inbound_drops (reason) VALUES ('auto_submitted'), ('precedence'),
  ('loop'), ('rate'), ('bounce_unknown'), ('empty');

-- messages: kinds 'info' (more information the client sent before the
-- answer; shown on the status page) and 'extra' (a message the client sent
-- after the follow-ups were used up: the consultant sees it, no new due
-- time); inbound_id: the email a message came in (its raw is kept there).
DROP VIEW search_docs;
DROP TRIGGER search_message_insert;
DROP TRIGGER search_message_update;
DROP TRIGGER search_message_delete;
CREATE TABLE messages_new (
  id          INTEGER PRIMARY KEY,
  order_id    INTEGER NOT NULL REFERENCES orders(id),
  kind        TEXT NOT NULL CHECK (kind IN
              ('question', 'reply', 'followup', 'note', 'info', 'extra')),
                                   -- note: internal, never shown to client
                                   -- extra: the client's, outside the
                                   -- allowance, shown to the consultant
  body        TEXT NOT NULL,       -- plain text (client) or Markdown (reply)
  user_id     INTEGER REFERENCES users(id), -- staff author, NULL for client
  created_at  INTEGER NOT NULL,
  html        TEXT,                -- see 006_message_html.sql
  inbound_id  INTEGER REFERENCES inbound(id) -- came by email: that one
);
INSERT INTO messages_new (id, order_id, kind, body, user_id, created_at, html)
  SELECT id, order_id, kind, body, user_id, created_at, html FROM messages;
DROP TABLE messages;
ALTER TABLE messages_new RENAME TO messages;
CREATE INDEX messages_order ON messages(order_id, id);

-- The search document: more information goes with the question, a
-- message outside the allowance with the follow-ups.
CREATE VIEW search_docs AS
SELECT
  o.id    AS id,
  o.name  AS name,
  o.email AS email,
  (SELECT coalesce(group_concat(body, char(10)), '') FROM
    (SELECT m.body FROM messages m WHERE m.order_id = o.id AND
     m.kind IN ('question', 'info') ORDER BY m.id))
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
CREATE TRIGGER search_message_insert AFTER INSERT ON messages BEGIN
  INSERT INTO search_pending (order_id) VALUES (new.order_id)
    ON CONFLICT (order_id) DO NOTHING;
END;
CREATE TRIGGER search_message_update AFTER UPDATE OF order_id, kind, body
ON messages BEGIN
  INSERT INTO search_pending (order_id) VALUES (old.order_id)
    ON CONFLICT (order_id) DO NOTHING;
  INSERT INTO search_pending (order_id) VALUES (new.order_id)
    ON CONFLICT (order_id) DO NOTHING;
END;
CREATE TRIGGER search_message_delete AFTER DELETE ON messages BEGIN
  INSERT INTO search_pending (order_id) VALUES (old.order_id)
    ON CONFLICT (order_id) DO NOTHING;
END;

-- outbox: status 'bounced' (a bounce named the message: bounced_at and
-- the diagnostic in bounce), so the order page and the queue can say the
-- client did not get it.
CREATE TABLE outbox_new (
  id            INTEGER PRIMARY KEY,
  kind          TEXT NOT NULL,
  order_id      INTEGER REFERENCES orders(id),
  to_addr       TEXT NOT NULL,
  to_name       TEXT NOT NULL DEFAULT '',
  subject       TEXT NOT NULL,
  body_text     TEXT NOT NULL,
  body_html     TEXT NOT NULL DEFAULT '',
  status        TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'sending', 'sent', 'failed',
                                  'bounced')),
  attempts      INTEGER NOT NULL DEFAULT 0,
  next_at       INTEGER NOT NULL,
  claimed_until INTEGER,
  last_error    TEXT NOT NULL DEFAULT '',
  created_at    INTEGER NOT NULL,
  sent_at       INTEGER,
  bounced_at    INTEGER,                 -- when its bounce came in
  bounce        TEXT NOT NULL DEFAULT '' -- the bounce's status and
                                         -- diagnostic: "5.1.1 smtp; 550 ..."
);
INSERT INTO outbox_new (id, kind, order_id, to_addr, to_name, subject,
  body_text, body_html, status, attempts, next_at, claimed_until, last_error,
  created_at, sent_at)
  SELECT id, kind, order_id, to_addr, to_name, subject, body_text, body_html,
         status, attempts, next_at, claimed_until, last_error, created_at,
         sent_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_due ON outbox(status, next_at);
CREATE INDEX outbox_order ON outbox(order_id);
CREATE INDEX outbox_status ON outbox(status);
-- The orders whose client's email bounced (queue and order page): a few
-- rows, looked up per order shown.
CREATE INDEX outbox_bounced ON outbox(order_id) WHERE status = 'bounced';
