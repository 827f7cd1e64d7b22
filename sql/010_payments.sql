-- 010_payments.sql: card payments through Stripe Checkout, and refunds
-- paid back to the card (issue 15). Money still enters the ledger only
-- when it has moved: a card payment when Stripe says the session is paid,
-- a card refund when Stripe says it succeeded. What is on its way lives
-- in card_refunds and pay_jobs until then.

-- refund_requests gains 'pending': the money is on its way back to the
-- card and the request may no longer be declined. SQLite cannot change a
-- CHECK constraint in place, so the table is rebuilt with every row kept
-- (nothing references it by foreign key).
CREATE TABLE refund_requests_new (
  id            INTEGER PRIMARY KEY,
  order_id      INTEGER NOT NULL UNIQUE REFERENCES orders(id),
  reason        TEXT NOT NULL DEFAULT '',  -- "what could have been better"
  status        TEXT NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'pending', 'refunded', 'declined')),
  requested_at  INTEGER NOT NULL,
  resolved_at   INTEGER,
  resolved_by   INTEGER REFERENCES users(id),
  decline_reason TEXT NOT NULL DEFAULT ''
);
INSERT INTO refund_requests_new (id, order_id, reason, status, requested_at,
  resolved_at, resolved_by, decline_reason)
  SELECT id, order_id, reason, status, requested_at, resolved_at,
         resolved_by, decline_reason FROM refund_requests;
DROP TABLE refund_requests;
ALTER TABLE refund_requests_new RENAME TO refund_requests;
CREATE INDEX refund_requests_open ON refund_requests(status, requested_at);

-- A Stripe Checkout Session that pmb opened for an order. The row is
-- committed before Stripe is called; its id makes the Idempotency-Key
-- ("pmb-checkout-<id>"), so a retried call can never open two sessions.
CREATE TABLE checkout_sessions (
  id             INTEGER PRIMARY KEY,
  order_id       INTEGER NOT NULL REFERENCES orders(id),
  stripe_id      TEXT UNIQUE,           -- cs_...; NULL until Stripe answered
  url            TEXT NOT NULL DEFAULT '', -- Stripe's hosted payment page
  amount         INTEGER NOT NULL CHECK (amount > 0), -- minor units asked
  currency       TEXT NOT NULL CHECK (length(currency) = 3),
  status         TEXT NOT NULL DEFAULT 'creating' CHECK (status IN
                 ('creating',             -- committed, Stripe not yet asked
                  'open',                 -- the client may pay
                  'complete',             -- paid (or payment on its way)
                  'expired',              -- expired or expired by us
                  'failed')),             -- Stripe refused to open it
  payment_intent TEXT,                   -- pi_..., once Stripe names it
  last_error     TEXT NOT NULL DEFAULT '', -- Stripe's message on failure
  created_at     INTEGER NOT NULL,
  expires_at     INTEGER,               -- Stripe's expires_at
  completed_at   INTEGER
);
CREATE INDEX checkout_sessions_order ON checkout_sessions(order_id, id);
CREATE INDEX checkout_sessions_pi ON checkout_sessions(payment_intent)
  WHERE payment_intent IS NOT NULL;

-- Every Stripe event received, once by its id, stored in the transaction
-- of what it caused: a redelivered event finds its row and changes
-- nothing.
CREATE TABLE stripe_events (
  id           TEXT PRIMARY KEY,        -- evt_...
  type         TEXT NOT NULL,           -- e.g. checkout.session.completed
  order_id     INTEGER REFERENCES orders(id), -- NULL: not one of ours
  created      INTEGER NOT NULL,        -- Stripe's time of the event
  received_at  INTEGER NOT NULL,
  outcome      TEXT NOT NULL DEFAULT '' -- what pmb did with it, in words
);
CREATE INDEX stripe_events_order ON stripe_events(order_id)
  WHERE order_id IS NOT NULL;

-- A refund to the card: written (pending) by the transaction that decides
-- it, paid back by a pay job after COMMIT, settled when Stripe confirms.
-- Its id makes the Idempotency-Key ("pmb-refund-<id>"). While pending,
-- its amount counts against what may still be refunded.
CREATE TABLE card_refunds (
  id             INTEGER PRIMARY KEY,
  order_id       INTEGER NOT NULL REFERENCES orders(id),
  request_id     INTEGER REFERENCES refund_requests(id), -- NULL: not asked
                                        -- for by the client (e.g. surplus)
  payment_intent TEXT NOT NULL,         -- pi_... of the payment refunded
  amount         INTEGER NOT NULL CHECK (amount > 0), -- minor units
  currency       TEXT NOT NULL CHECK (length(currency) = 3),
  status         TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                 ('pending',              -- not yet confirmed by Stripe
                  'succeeded',            -- Stripe paid it back: in ledger
                  'failed')),             -- Stripe refused: see last_error
  stripe_id      TEXT UNIQUE,           -- re_..., once Stripe names it
  last_error     TEXT NOT NULL DEFAULT '',
  ledger_id      INTEGER REFERENCES ledger(id), -- set when it succeeded
  user_id        INTEGER REFERENCES users(id),  -- NULL: automatic
  created_at     INTEGER NOT NULL,
  settled_at     INTEGER                -- succeeded or failed
);
CREATE INDEX card_refunds_order ON card_refunds(order_id, id);
CREATE INDEX card_refunds_status ON card_refunds(status, created_at);

-- Calls to Stripe that a committed change owes: carried out after COMMIT
-- by "pmbctl pay send" / "pmbctl pay run", as the outbox carries mail.
CREATE TABLE pay_jobs (
  id             INTEGER PRIMARY KEY,
  kind           TEXT NOT NULL CHECK (kind IN
                 ('refund',               -- POST /v1/refunds for card_refund
                  'expire')),             -- expire checkout_session
  order_id       INTEGER NOT NULL REFERENCES orders(id),
  card_refund_id INTEGER REFERENCES card_refunds(id),      -- kind refund
  session_id     INTEGER REFERENCES checkout_sessions(id), -- kind expire
  status         TEXT NOT NULL DEFAULT 'queued' CHECK (status IN
                 ('queued', 'sending', 'done', 'failed')),
  attempts       INTEGER NOT NULL DEFAULT 0,
  next_at        INTEGER NOT NULL,      -- due for the next attempt
  claimed_until  INTEGER,               -- a worker holds it until then
  last_error     TEXT NOT NULL DEFAULT '',
  created_at     INTEGER NOT NULL,
  done_at        INTEGER
);
CREATE INDEX pay_jobs_due ON pay_jobs(status, next_at);
CREATE INDEX pay_jobs_order ON pay_jobs(order_id);

-- What the consultant must look at on an order: set by payments and
-- disputes, never silently accepted.
CREATE TABLE order_flags (
  id           INTEGER PRIMARY KEY,
  order_id     INTEGER NOT NULL REFERENCES orders(id),
  kind         TEXT NOT NULL CHECK (kind IN
               ('amount_mismatch',        -- paid amount/currency differ
                'paid_after_cancel',      -- money for a cancelled order
                'overpaid',               -- paid twice (card and bank...)
                'disputed')),             -- a chargeback was opened
  ref          TEXT NOT NULL DEFAULT '', -- pi_..., du_...: what it is about
  detail       TEXT NOT NULL DEFAULT '', -- in words, for the order page
  created_at   INTEGER NOT NULL,
  resolved_at  INTEGER,                  -- e.g. the dispute closed
  resolution   TEXT NOT NULL DEFAULT ''  -- e.g. "won", "lost"
);
CREATE INDEX order_flags_order ON order_flags(order_id, id);
CREATE UNIQUE INDEX order_flags_once ON order_flags(order_id, kind, ref);

-- A card payment or refund is recorded once, by Stripe's id (pi_... for
-- a payment, cs_... when Stripe named no PaymentIntent, re_... for a
-- refund), however many events mention it. Only Stripe's ids: a payment
-- the consultant records by hand may say "card" too, with any reference
-- ("Visa", twice), and must not be refused, here or when this migration
-- meets such rows.
CREATE UNIQUE INDEX ledger_card_once ON ledger(kind, reference)
  WHERE method = 'card' AND (reference GLOB 'pi_?*' OR
                             reference GLOB 'cs_?*' OR
                             reference GLOB 're_?*');
