-- 001_init.sql: the whole store of Pick My Brain.
-- Times are Unix seconds (UTC) in INTEGER columns, throughout.
-- Money is an INTEGER count of minor units (pence, cents) plus an
-- ISO 4217 currency code; balances are derived from the ledger.

-- An order: one paid question and its life.
CREATE TABLE orders (
  id                 INTEGER PRIMARY KEY,   -- internal id; in signed links
  number             TEXT GENERATED ALWAYS AS (printf('PMB-%06d', id)) VIRTUAL,
                                            -- the human number, PMB-000123
  form_token         TEXT NOT NULL UNIQUE,  -- nonce of the form that made it:
                                            -- a resubmitted form finds it
  name               TEXT NOT NULL,         -- the client's name
  email              TEXT NOT NULL,         -- the client's address
  company            TEXT NOT NULL DEFAULT '',
  website            TEXT NOT NULL DEFAULT '',
  topic              TEXT NOT NULL DEFAULT '',
  price              INTEGER NOT NULL CHECK (price >= 0),
                                            -- copied from the settings
  currency           TEXT NOT NULL CHECK (length(currency) = 3),
  status             TEXT NOT NULL DEFAULT 'awaiting_payment' CHECK (status IN
                     ('awaiting_payment', 'paid', 'answered', 'followup',
                      'refund_requested', 'refunded', 'cancelled')),
  created_at         INTEGER NOT NULL,      -- received
  due_at             INTEGER NOT NULL,      -- answer promised by (reset
                                            -- to paid time + promise)
  paid_at            INTEGER,               -- first payment recorded
  answered_at        INTEGER,               -- first answer sent
  last_answered_at   INTEGER,               -- latest answer sent
  answer_viewed_at   INTEGER,               -- client first saw an answer
  refund_requested_at INTEGER,
  refunded_at        INTEGER,
  cancelled_at       INTEGER,
  followups_used     INTEGER NOT NULL DEFAULT 0,
  claimed_by         INTEGER REFERENCES users(id),
                                            -- staff member working on it
  reply_draft        TEXT NOT NULL DEFAULT '', -- unsent reply (Markdown)
  rating             TEXT CHECK (rating IN ('yes', 'no')),
  rated_at           INTEGER,
  client_ip          TEXT NOT NULL DEFAULT '', -- for abuse review
  updated_at         INTEGER NOT NULL
);
CREATE INDEX orders_email ON orders(email, created_at);
CREATE INDEX orders_queue ON orders(status, due_at, id);
CREATE INDEX orders_created ON orders(created_at, id);

-- The thread of an order, oldest first.
CREATE TABLE messages (
  id          INTEGER PRIMARY KEY,
  order_id    INTEGER NOT NULL REFERENCES orders(id),
  kind        TEXT NOT NULL CHECK (kind IN
              ('question', 'reply', 'followup', 'note')),
                                   -- note: internal, never shown to client
  body        TEXT NOT NULL,       -- plain text (client) or Markdown (reply)
  user_id     INTEGER REFERENCES users(id), -- staff author, NULL for client
  created_at  INTEGER NOT NULL
);
CREATE INDEX messages_order ON messages(order_id, id);

-- Every change of an order's status, with its time.
CREATE TABLE status_history (
  id          INTEGER PRIMARY KEY,
  order_id    INTEGER NOT NULL REFERENCES orders(id),
  status      TEXT NOT NULL,       -- the status entered
  at          INTEGER NOT NULL,
  user_id     INTEGER REFERENCES users(id), -- NULL: the client or system
  note        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX status_history_order ON status_history(order_id, id);

-- Money in and out: the only source of truth for balances.
CREATE TABLE ledger (
  id          INTEGER PRIMARY KEY,
  order_id    INTEGER NOT NULL REFERENCES orders(id),
  kind        TEXT NOT NULL CHECK (kind IN ('payment', 'refund')),
  amount      INTEGER NOT NULL CHECK (amount > 0), -- minor units
  currency    TEXT NOT NULL CHECK (length(currency) = 3),
  method      TEXT NOT NULL DEFAULT '',  -- bank transfer, card, ...
  reference   TEXT NOT NULL DEFAULT '',  -- bank or processor reference
  at          INTEGER NOT NULL,
  user_id     INTEGER REFERENCES users(id)
);
CREATE INDEX ledger_order ON ledger(order_id, id);
CREATE INDEX ledger_at ON ledger(at);

-- A client's request for their money back: at most one per order.
CREATE TABLE refund_requests (
  id            INTEGER PRIMARY KEY,
  order_id      INTEGER NOT NULL UNIQUE REFERENCES orders(id),
  reason        TEXT NOT NULL DEFAULT '',  -- "what could have been better"
  status        TEXT NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'refunded', 'declined')),
  requested_at  INTEGER NOT NULL,
  resolved_at   INTEGER,
  resolved_by   INTEGER REFERENCES users(id),
  decline_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX refund_requests_open ON refund_requests(status, requested_at);

-- Staff: the consultant and assistants.
CREATE TABLE users (
  id            INTEGER PRIMARY KEY,
  username      TEXT NOT NULL UNIQUE,
  pwhash        TEXT NOT NULL,           -- crypto_pwhash_str (Argon2id)
  disabled      INTEGER NOT NULL DEFAULT 0,
  created_at    INTEGER NOT NULL,
  last_login_at INTEGER
);

-- Signed-in sessions; the id itself is never stored, only its hash.
CREATE TABLE sessions (
  id            INTEGER PRIMARY KEY,
  id_hash       BLOB NOT NULL UNIQUE,    -- crypto_generichash of the id
  user_id       INTEGER NOT NULL REFERENCES users(id),
  csrf          TEXT NOT NULL,           -- the forms' CSRF token
  created_at    INTEGER NOT NULL,
  last_seen_at  INTEGER NOT NULL,
  ip            TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions(user_id);

-- Every email, written in the transaction that caused it.
CREATE TABLE outbox (
  id            INTEGER PRIMARY KEY,
  kind          TEXT NOT NULL,           -- confirmation, answer, ...
  order_id      INTEGER REFERENCES orders(id),
  to_addr       TEXT NOT NULL,           -- one address, no display name
  to_name       TEXT NOT NULL DEFAULT '',
  subject       TEXT NOT NULL,
  body_text     TEXT NOT NULL,           -- rendered plain-text part
  body_html     TEXT NOT NULL DEFAULT '',-- rendered HTML part
  status        TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
  attempts      INTEGER NOT NULL DEFAULT 0,
  next_at       INTEGER NOT NULL,        -- due for the next attempt
  claimed_until INTEGER,                 -- a sender holds it until then
  last_error    TEXT NOT NULL DEFAULT '',
  created_at    INTEGER NOT NULL,
  sent_at       INTEGER
);
CREATE INDEX outbox_due ON outbox(status, next_at);
CREATE INDEX outbox_order ON outbox(order_id);

-- Who did what, when and from where.
CREATE TABLE audit (
  id          INTEGER PRIMARY KEY,
  at          INTEGER NOT NULL,
  user_id     INTEGER REFERENCES users(id), -- NULL: a client or the system
  action      TEXT NOT NULL,
  order_id    INTEGER REFERENCES orders(id),
  ip          TEXT NOT NULL DEFAULT '',
  detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_order ON audit(order_id, id);

-- Rate-limit events: one row per counted attempt, pruned as they age.
CREATE TABLE rate_events (
  key         TEXT NOT NULL,   -- e.g. "ask-ip:203.0.113.9"
  at          INTEGER NOT NULL
);
CREATE INDEX rate_events_key ON rate_events(key, at);

-- Reply snippets the consultant inserts often.
CREATE TABLE snippets (
  id          INTEGER PRIMARY KEY,
  title       TEXT NOT NULL,
  body        TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);
