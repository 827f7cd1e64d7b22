-- 015_feedback.sql: what a client who was not happy with the answer says
-- was missing, from the rating page (POST /o/TOKEN/rating, field
-- feedback), without asking for their money back (issue 16). For the
-- consultant's order page only: a table of its own, so that no query of
-- the client's thread (messages) can ever show it.
CREATE TABLE feedback (
  id          INTEGER PRIMARY KEY,
  order_id    INTEGER NOT NULL REFERENCES orders(id),
  body        TEXT NOT NULL,       -- plain text, as the client typed it
  created_at  INTEGER NOT NULL     -- Unix seconds, UTC
);
-- One order's feedback, oldest first (FEEDBACK_BY_ORDER).
CREATE INDEX feedback_order ON feedback(order_id, id);
