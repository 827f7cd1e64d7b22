-- 003_search.sql: full-text search for the staff (GET /admin/search).
-- One FTS5 document per order, its rowid the order's id, so that a hit is
-- an order and bm25 ranks orders against each other. Triggers keep it in
-- step with orders and messages; the backfill at the end indexes the
-- orders that exist already.

-- The text of one order's document as it is now: the client's name and
-- address from orders, the thread from messages (oldest first). Triggers
-- read it for one order at a time (orders' primary key, messages_order).
CREATE VIEW search_docs AS
SELECT
  o.id    AS id,        -- the order, and the document's rowid
  o.name  AS name,      -- the client's name
  o.email AS email,     -- the client's address
  (SELECT coalesce(group_concat(body, char(10)), '') FROM
    (SELECT m.body FROM messages m WHERE m.order_id = o.id AND
     m.kind = 'question' ORDER BY m.id))
          AS question,  -- the question
  (SELECT coalesce(group_concat(body, char(10)), '') FROM
    (SELECT m.body FROM messages m WHERE m.order_id = o.id AND
     m.kind IN ('reply', 'followup') ORDER BY m.id))
          AS replies,   -- the answers and the client's follow-ups
  (SELECT coalesce(group_concat(body, char(10)), '') FROM
    (SELECT m.body FROM messages m WHERE m.order_id = o.id AND
     m.kind = 'note' ORDER BY m.id))
          AS notes      -- internal notes (the search page is staff only)
FROM orders o;

-- The index. Tokens are Unicode words, case- and accent-folded, so
-- "Zoë" finds "zoe"; an address is found by its parts ("ada",
-- "bakery") or whole, as a phrase.
CREATE VIRTUAL TABLE search_fts USING fts5(
  name,                 -- orders.name
  email,                -- orders.email
  question,             -- messages of kind question
  replies,              -- messages of kind reply and followup
  notes,                -- messages of kind note
  tokenize = 'unicode61 remove_diacritics 2'
);

-- Keeping it in step: each change rewrites the document of the orders it
-- touched from search_docs (delete, then insert the current text).
CREATE TRIGGER search_order_insert AFTER INSERT ON orders BEGIN
  INSERT INTO search_fts (rowid, name, email, question, replies, notes)
  SELECT id, name, email, question, replies, notes FROM search_docs
  WHERE id = new.id;
END;
CREATE TRIGGER search_order_update AFTER UPDATE OF id, name, email ON orders
BEGIN
  DELETE FROM search_fts WHERE rowid IN (old.id, new.id);
  INSERT INTO search_fts (rowid, name, email, question, replies, notes)
  SELECT id, name, email, question, replies, notes FROM search_docs
  WHERE id = new.id;
END;
CREATE TRIGGER search_order_delete AFTER DELETE ON orders BEGIN
  DELETE FROM search_fts WHERE rowid = old.id;
END;
CREATE TRIGGER search_message_insert AFTER INSERT ON messages BEGIN
  DELETE FROM search_fts WHERE rowid = new.order_id;
  INSERT INTO search_fts (rowid, name, email, question, replies, notes)
  SELECT id, name, email, question, replies, notes FROM search_docs
  WHERE id = new.order_id;
END;
CREATE TRIGGER search_message_update AFTER UPDATE OF order_id, kind, body
ON messages BEGIN
  DELETE FROM search_fts WHERE rowid IN (old.order_id, new.order_id);
  INSERT INTO search_fts (rowid, name, email, question, replies, notes)
  SELECT id, name, email, question, replies, notes FROM search_docs
  WHERE id IN (old.order_id, new.order_id);
END;
CREATE TRIGGER search_message_delete AFTER DELETE ON messages BEGIN
  DELETE FROM search_fts WHERE rowid = old.order_id;
  INSERT INTO search_fts (rowid, name, email, question, replies, notes)
  SELECT id, name, email, question, replies, notes FROM search_docs
  WHERE id = old.order_id;
END;

-- Backfill: every order that exists already.
INSERT INTO search_fts (rowid, name, email, question, replies, notes)
SELECT id, name, email, question, replies, notes FROM search_docs;
