-- 024_erased_guard.sql: nothing personal is written into an order whose
-- personal data was erased (issue 20). The pages and the mail intake
-- already refuse (409, or the inbox); these triggers are the one place
-- that holds for every writer, later features included: such an INSERT
-- fails with a constraint error and its transaction is rolled back.
-- files has none: a trigger on it makes SQLite build the NEW row whole,
-- which expands the zeroblob an upload is written into (10 MB in a
-- worker's memory, measured by tests/uploads.py). A file comes with a
-- message, which the trigger on messages guards, or on the reply draft,
-- whose pages refuse an erased order (409).

CREATE TRIGGER messages_not_erased BEFORE INSERT ON messages
  WHEN (SELECT erased_at FROM orders WHERE id = NEW.order_id) IS NOT NULL
  BEGIN SELECT RAISE(ABORT, 'order erased'); END;
CREATE TRIGGER feedback_not_erased BEFORE INSERT ON feedback
  WHEN (SELECT erased_at FROM orders WHERE id = NEW.order_id) IS NOT NULL
  BEGIN SELECT RAISE(ABORT, 'order erased'); END;
CREATE TRIGGER testimonials_not_erased BEFORE INSERT ON testimonials
  WHEN (SELECT erased_at FROM orders WHERE id = NEW.order_id) IS NOT NULL
  BEGIN SELECT RAISE(ABORT, 'order erased'); END;
CREATE TRIGGER refund_requests_not_erased BEFORE INSERT ON refund_requests
  WHEN (SELECT erased_at FROM orders WHERE id = NEW.order_id) IS NOT NULL
  BEGIN SELECT RAISE(ABORT, 'order erased'); END;
-- The personal columns of the order itself stay empty once erased.
CREATE TRIGGER orders_stay_erased BEFORE UPDATE OF name, email, company,
  website, client_ip, reply_draft ON orders
  WHEN OLD.erased_at IS NOT NULL AND (NEW.name <> '' OR NEW.email <> '' OR
    NEW.company <> '' OR NEW.website <> '' OR NEW.client_ip <> '' OR
    NEW.reply_draft <> '')
  BEGIN SELECT RAISE(ABORT, 'order erased'); END;
