-- 008_search_pending.sql: the search index (003) is brought up to date
-- when it is read, not in the transaction that changes an order.
--
-- The triggers of 003 and 007 rewrote an order's FTS5 document inside
-- the transaction of every new question, reply or note. FTS5 writes a
-- new index segment at each commit and merges segments as they pile up:
-- on a 100,000-order database that was most of the pages a new order
-- wrote (bench/README.md, fix 15), behind SQLite's one writer. Now a
-- change only notes the order as pending here (one row, on the table's
-- last page for a new order); GET /admin/search and `pmbctl search
-- index` rewrite the pending documents, many orders in one transaction
-- (src/search_index.c), before anyone reads the index. The search page
-- therefore sees every change committed before it.

-- Orders whose search document is out of date (or must be removed: an
-- id with no order left).
CREATE TABLE search_pending (
  order_id INTEGER PRIMARY KEY   -- orders.id; no foreign key: a deleted
                                 -- order waits here to leave the index
);

-- The triggers of 003 and 007 give way to ones that note the orders a
-- change touched as pending, each once: an upsert, which no conflict
-- clause of the statement that fired the trigger overrides (INSERT OR
-- IGNORE would take an outer OR ROLLBACK's), and which reads nothing
-- first (INSERT ... SELECT ... WHERE NOT IN would copy its rows into a
-- temporary table, since it reads the table it writes).
DROP TRIGGER search_order_update;
DROP TRIGGER search_order_delete;
DROP TRIGGER search_message_insert;
DROP TRIGGER search_message_update;
DROP TRIGGER search_message_delete;

CREATE TRIGGER search_order_update AFTER UPDATE OF id, name, email ON orders
BEGIN
  INSERT INTO search_pending (order_id) VALUES (old.id)
    ON CONFLICT (order_id) DO NOTHING;
  INSERT INTO search_pending (order_id) VALUES (new.id)
    ON CONFLICT (order_id) DO NOTHING;
END;
CREATE TRIGGER search_order_delete AFTER DELETE ON orders BEGIN
  INSERT INTO search_pending (order_id) VALUES (old.id)
    ON CONFLICT (order_id) DO NOTHING;
END;
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
