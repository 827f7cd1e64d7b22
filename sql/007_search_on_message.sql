-- 007_search_on_message.sql: an order enters the search index (003) with
-- its first message, not when the order row is inserted. POST /ask writes
-- the order and its question in one transaction; indexing the order alone
-- first, then deleting and re-indexing it with its question, doubled the
-- full-text work of every new order (measured with bench/run: a third of
-- the orders per second). Every order the site makes has its question, so
-- none is missing from search; changes of name or email still re-index
-- (search_order_update) and every later message rewrites the entry.
DROP TRIGGER search_order_insert;
