-- 020_testimonials.sql: the landing page's proof (issue 16): quotes of
-- happy clients, shown only with both consents, and the count of
-- ratings that its "96% of clients were happy" is worked out from.

-- A client's words about their answer: one per order. Written from the
-- thank-you page of a "yes" rating (POST /o/TOKEN/testimonial, with the
-- client's consent ticked); shown on the landing page only once the
-- consultant has approved it (/admin/testimonials). The landing page
-- shows name_shown and the order's company, never the email or the
-- order.
CREATE TABLE testimonials (
  id          INTEGER PRIMARY KEY,
  order_id    INTEGER NOT NULL UNIQUE REFERENCES orders(id),
                                   -- one per order; a second post updates
                                   -- it while it is pending
  sentence    TEXT NOT NULL DEFAULT '', -- plain text, as the client
                                   -- typed it; may be empty (the client
                                   -- agreed to be named as happy)
  name_shown  TEXT NOT NULL,       -- the first word of the client's name,
                                   -- until the consultant edits it
  status      TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
              ('pending', 'approved', 'rejected')),
  created_at  INTEGER NOT NULL,    -- the client's first consent
  updated_at  INTEGER NOT NULL,    -- the last change, by either side
  decided_at  INTEGER,             -- approved or rejected (the latest)
  decided_by  INTEGER REFERENCES users(id)
);
-- The landing page's newest approved quotes (TESTIMONIALS_SHOWN) and the
-- admin page's lists by status (TESTIMONIALS_BY_STATUS): one range each.
CREATE INDEX testimonials_status ON testimonials(status, decided_at, id);

-- How many orders hold each rating: the landing page's share of happy
-- ratings reads these two rows instead of counting orders. Triggers on
-- orders keep it, whatever statement changes a rating.
CREATE TABLE rating_counts (
  rating  TEXT PRIMARY KEY CHECK (rating IN ('yes', 'no')),
  n       INTEGER NOT NULL DEFAULT 0 CHECK (n >= 0)
);
INSERT INTO rating_counts (rating, n)
  SELECT 'yes', count(*) FROM orders WHERE rating = 'yes';
INSERT INTO rating_counts (rating, n)
  SELECT 'no', count(*) FROM orders WHERE rating = 'no';
CREATE TRIGGER rating_counts_update AFTER UPDATE OF rating ON orders
  WHEN OLD.rating IS NOT NEW.rating BEGIN
  UPDATE rating_counts SET n = n - 1 WHERE rating = OLD.rating;
  UPDATE rating_counts SET n = n + 1 WHERE rating = NEW.rating;
END;
CREATE TRIGGER rating_counts_insert AFTER INSERT ON orders
  WHEN NEW.rating IS NOT NULL BEGIN
  UPDATE rating_counts SET n = n + 1 WHERE rating = NEW.rating;
END;
CREATE TRIGGER rating_counts_delete AFTER DELETE ON orders
  WHEN OLD.rating IS NOT NULL BEGIN
  UPDATE rating_counts SET n = n - 1 WHERE rating = OLD.rating;
END;
