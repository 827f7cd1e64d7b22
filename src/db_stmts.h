/* db_stmts.h: every SQL statement of the program, in one place.
 * X(NAME, "SQL") makes ST_NAME. Bound with ?, never with printf. */

/* Transactions. */
X(BEGIN, "BEGIN IMMEDIATE")
X(COMMIT, "COMMIT")
X(ROLLBACK, "ROLLBACK")
/* A read transaction: a page's reads see one snapshot and take the WAL
 * read lock once, not once per statement. Never for a write. */
X(BEGIN_READ, "BEGIN DEFERRED")

/* Staff users. */
X(USER_INSERT,
  "INSERT INTO users (username, pwhash, created_at) VALUES (?, ?, ?)")
X(USER_BY_NAME,
  "SELECT id, pwhash, disabled FROM users WHERE username = ?")
X(USER_LIST,
  "SELECT username, disabled, created_at, last_login_at FROM users "
  "ORDER BY username")
X(USER_COUNT, "SELECT count(*) FROM users WHERE disabled = 0")
X(USER_SET_HASH, "UPDATE users SET pwhash = ? WHERE id = ?")
X(USER_SET_DISABLED, "UPDATE users SET disabled = ? WHERE id = ?")
X(USER_SET_LOGIN, "UPDATE users SET last_login_at = ? WHERE id = ?")

/* Sessions. */
X(SESSION_DELETE_USER, "DELETE FROM sessions WHERE user_id = ?")
X(SESSION_INSERT,
  "INSERT INTO sessions (id_hash, user_id, csrf, created_at, last_seen_at, "
  "ip) VALUES (?, ?, ?, ?, ?, ?)")
X(SESSION_BY_HASH,
  "SELECT s.id, s.user_id, u.username, s.csrf, s.created_at, "
  "s.last_seen_at FROM sessions s JOIN users u ON u.id = s.user_id "
  "WHERE s.id_hash = ? AND u.disabled = 0")
X(SESSION_TOUCH, "UPDATE sessions SET last_seen_at = ? WHERE id = ?")
X(SESSION_DELETE, "DELETE FROM sessions WHERE id = ?")
X(SESSION_PRUNE,
  "DELETE FROM sessions WHERE last_seen_at < ? OR created_at < ?")

/* Privacy: pages (page_privacy.c, erasure requests, 410). */
/* A client's "Delete my data": at most one open request per order (the
 * partial unique index erasure_requests_open of sql/023): a second one
 * is a constraint, answered as done. */
X(ERASURE_INSERT,
  "INSERT INTO erasure_requests (order_id, requested_at) VALUES (?, ?)")
/* The order's open request, if any: one probe of erasure_requests_open. */
X(ERASURE_OPEN_BY_ORDER,
  "SELECT requested_at FROM erasure_requests WHERE order_id = ? "
  "AND done_at IS NULL")
/* The queue's flags: the open requests of the orders from id ?1 to ?2
 * (the page's), one range of erasure_requests_open (which holds only
 * open requests), as QUEUE_BOUNCED does. */
X(ERASURE_QUEUE_FLAGS,
  "SELECT order_id, requested_at FROM erasure_requests "
  "INDEXED BY erasure_requests_open WHERE order_id BETWEEN ?1 AND ?2 "
  "AND done_at IS NULL ORDER BY order_id")
/* The queue filter's count, stopped at ?1 as QUEUE_COUNTS's are. */
X(ERASURE_COUNT,
  "SELECT count(*) FROM (SELECT 1 FROM erasure_requests "
  "INDEXED BY erasure_requests_open WHERE done_at IS NULL LIMIT ?1)")
/* Whether order ? is erased, read inside a write transaction that adds
 * text to it (a note, a follow-up): an erase may have committed since the
 * page loaded the order. */
X(ORDER_ERASED, "SELECT erased_at IS NOT NULL FROM orders WHERE id = ?")
/* Who erased order ? and when (the order page's banner): its newest
 * "privacy_erase" audit row (user NULL: pmbctl or the sweep). */
X(ERASED_BY,
  "SELECT a.at, coalesce(u.username, '') FROM audit a "
  "LEFT JOIN users u ON u.id = a.user_id "
  "WHERE a.order_id = ? AND a.action = 'privacy_erase' "
  "ORDER BY a.id DESC LIMIT 1")

/* Audit. */
X(AUDIT_INSERT,
  "INSERT INTO audit (at, user_id, action, order_id, ip, detail) "
  "VALUES (?, ?, ?, ?, ?, ?)")

/* Privacy: export (privacy_export.c). Everything held about a client,
 * read in one read transaction (BEGIN_READ). A client's orders by their
 * address in any case, oldest first: a range of orders_email_lower
 * (sql/009), no scan; erased orders hold nothing personal and are
 * left out. */
X(PEX_ORDERS,
  "SELECT id, number, status, created_at, due_at, paid_at, answered_at, "
  "last_answered_at, answer_viewed_at, refund_requested_at, refunded_at, "
  "cancelled_at, price, currency, topic, name, email, company, website, "
  "client_ip, followups_used, rating, rated_at FROM orders "
  "WHERE lower(email) = lower(?) AND erased_at IS NULL "
  "ORDER BY created_at, id")
/* The address of order ?, and whether it is erased (its number too, for
 * the download's name). */
X(PEX_ORDER_CLIENT,
  "SELECT email, erased_at IS NOT NULL, number, coalesce(erased_at, 0) "
  "FROM orders WHERE id = ?")
/* What the client may see of the thread: never a note (nor the draft,
 * which is no message). */
X(PEX_MESSAGES,
  "SELECT id, kind, created_at, body FROM messages WHERE order_id = ? "
  "AND kind IN ('question', 'followup', 'info', 'extra', 'reply') "
  "ORDER BY id")
/* The files of one message (index files_message), bytes last. */
X(PEX_FILES,
  "SELECT name, kind, size, sha256, created_at, data FROM files "
  "WHERE message_id = ? ORDER BY id")
X(PEX_HISTORY,
  "SELECT status, at FROM status_history WHERE order_id = ? ORDER BY id")
X(PEX_FEEDBACK,
  "SELECT body, created_at FROM feedback WHERE order_id = ? ORDER BY id")
X(PEX_TESTIMONIAL,
  "SELECT sentence, name_shown, status, created_at, updated_at "
  "FROM testimonials WHERE order_id = ?")
X(PEX_REFUND_REQUESTS,
  "SELECT reason, status, requested_at, resolved_at, decline_reason "
  "FROM refund_requests WHERE order_id = ? ORDER BY id")
X(PEX_LEDGER,
  "SELECT kind, amount, currency, method, reference, at FROM ledger "
  "WHERE order_id = ? ORDER BY id")
X(PEX_CARD_REFUNDS,
  "SELECT amount, currency, status, created_at, settled_at "
  "FROM card_refunds WHERE order_id = ? ORDER BY id")
/* The emails of order ?1 to its client's address ?2 (any case), not the
 * consultant's alerts about it (index outbox_order). */
X(PEX_OUTBOX,
  "SELECT kind, subject, status, created_at, sent_at, body_text "
  "FROM outbox WHERE order_id = ?1 AND lower(to_addr) = lower(?2) "
  "ORDER BY id")
/* The client's own emails kept with order ?1 (index inbound_order): from
 * their address ?2, never a bounce or another sender's mail; not raw. */
X(PEX_INBOUND,
  "SELECT from_addr, from_name, subject, received_at, body FROM inbound "
  "WHERE order_id = ?1 AND lower(from_addr) = lower(?2) AND "
  "status <> 'bounce' ORDER BY id")

/* Orders: the client's side. */
/* ORDER_INSERT returns the new id and number (a generated column), so
 * that POST /ask needs no second read for its confirmation. */
X(ORDER_INSERT,
  "INSERT INTO orders (form_token, name, email, company, website, topic, "
  "price, currency, status, created_at, due_at, client_ip, updated_at) "
  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'awaiting_payment', ?, ?, ?, ?) "
  "RETURNING id, number")
X(ORDER_BY_FORM_TOKEN, "SELECT id FROM orders WHERE form_token = ?")
/* An order's columns as order_load reads them: first those the client's
 * status page shows, then the client's details. */
#define ORDER_STATUS_COLUMNS \
  "id, number, name, price, currency, status, created_at, due_at, " \
  "paid_at, answered_at, answer_viewed_at, refund_requested_at, " \
  "refunded_at, cancelled_at, followups_used, last_answered_at, rating, " \
  "erased_at"
X(ORDER_BY_ID,
  "SELECT " ORDER_STATUS_COLUMNS ", email, company, website, topic "
  "FROM orders WHERE id = ?")
/* Whether order ? exists: the search's "PMB-000123", "#123" or "123". */
X(ORDER_EXISTS, "SELECT id FROM orders WHERE id = ?")
/* The same without the client's details, for the status page. */
X(ORDER_STATUS_BY_ID,
  "SELECT " ORDER_STATUS_COLUMNS " FROM orders WHERE id = ?")
X(ORDER_SET_VIEWED,
  "UPDATE orders SET answer_viewed_at = ? "
  "WHERE id = ? AND answer_viewed_at IS NULL AND answered_at IS NOT NULL")
X(ORDER_FOLLOWUP,
  "UPDATE orders SET status = 'followup', followups_used = "
  "followups_used + 1, due_at = ?, updated_at = ? "
  "WHERE id = ? AND status = 'answered' AND followups_used < ?")
X(ORDERS_BY_EMAIL,
  "SELECT id, number, created_at, status FROM orders "
  "WHERE lower(email) = lower(?) "
  "ORDER BY created_at DESC, id DESC LIMIT 20")
/* The other orders of order ?3's client (?1 its address, any case), the
 * newest first, and how many there are, earlier (before ?2, ?3) and in
 * all: ranges of orders_email_lower (sql/009), one client's orders. */
X(CLIENT_ORDERS,
  "SELECT id, number, created_at, status FROM orders "
  "WHERE lower(email) = lower(?1) AND id <> ?3 "
  "ORDER BY created_at DESC, id DESC LIMIT ?4")
X(CLIENT_ORDERS_COUNT,
  "SELECT count(*), coalesce(sum(created_at < ?2 OR (created_at = ?2 "
  "AND id < ?3)), 0) FROM orders "
  "WHERE lower(email) = lower(?1) AND id <> ?3")

/* Orders: the consultant's side. */
#define QUEUE_SELECT \
  "SELECT o.id, o.number, o.name, o.topic, o.status, o.created_at, " \
  "o.paid_at, o.due_at, u.username, (SELECT substr(m.body, 1, 300) " \
  "FROM messages m WHERE m.order_id = o.id AND m.kind = 'question' " \
  "ORDER BY m.id LIMIT 1), o.answered_at, o.refund_requested_at "
#define QUEUE_JOIN "LEFT JOIN users u ON u.id = o.claimed_by "
#define QUEUE_COLS QUEUE_SELECT "FROM orders o " QUEUE_JOIN
#define QUEUE_KEYSET \
  "(o.due_at > ?1 OR (o.due_at = ?1 AND o.id > ?2)) " \
  "ORDER BY o.due_at, o.id LIMIT ?3"
/* The default view walks sql/005's index of the waiting orders in order
 * and stops at the page. Left to itself (no ANALYZE statistics) the
 * planner takes orders_queue once per status and sorts every waiting
 * order, with its question, before the LIMIT. */
X(QUEUE_WAITING, QUEUE_SELECT "FROM orders o INDEXED BY orders_waiting "
  QUEUE_JOIN "WHERE o.status IN ('paid', 'followup') AND " QUEUE_KEYSET)
X(QUEUE_STATUS, QUEUE_COLS "WHERE o.status = ?4 AND " QUEUE_KEYSET)
/* The counts on the queue's filters of the statuses that ask for work:
 * each a range of orders_queue (its status first), read without the
 * table. The statuses that only grow (answered, refunded, cancelled,
 * all) are not counted: that would read every order. */
/* The filters' counts, each read from orders_queue and stopped at ?1
 * rows, so that the page costs the same at 100 orders and at 100,000. */
X(QUEUE_COUNTS,
  "SELECT (SELECT count(*) FROM (SELECT 1 FROM orders INDEXED BY "
  "orders_queue WHERE status = 'paid' LIMIT ?1)), "
  "(SELECT count(*) FROM (SELECT 1 FROM orders INDEXED BY orders_queue "
  "WHERE status = 'followup' LIMIT ?1)), "
  "(SELECT count(*) FROM (SELECT 1 FROM orders INDEXED BY orders_queue "
  "WHERE status = 'awaiting_payment' LIMIT ?1)), "
  "(SELECT count(*) FROM (SELECT 1 FROM orders INDEXED BY orders_queue "
  "WHERE status = 'refund_requested' LIMIT ?1))")
X(QUEUE_ALL, QUEUE_COLS "WHERE " QUEUE_KEYSET)
/* The orders whose client asked for their data to be erased (the
 * queue's "erasure" filter), from the open requests: few, so sorting
 * them by due time costs little. (Beside QUEUE_ALL for its macros; the
 * privacy pages' other statements are in their block above.) */
X(QUEUE_ERASURE, QUEUE_SELECT "FROM erasure_requests e "
  "INDEXED BY erasure_requests_open JOIN orders o ON o.id = e.order_id "
  QUEUE_JOIN "WHERE e.done_at IS NULL AND " QUEUE_KEYSET)
/* The rows' flags: the emails to their clients that bounced, of the
 * orders from id ?1 to ?2 (the page's), oldest first: one range of the
 * partial index outbox_bounced (sql/021), which holds only bounced
 * emails, instead of one probe per row (a probe per row cost the first
 * page 5% more instructions). */
X(QUEUE_BOUNCED,
  "SELECT b.order_id, b.subject FROM outbox b INDEXED BY outbox_bounced "
  "JOIN orders o ON o.id = b.order_id WHERE b.order_id BETWEEN ?1 AND ?2 "
  "AND b.status = 'bounced' AND b.to_addr = o.email "
  "ORDER BY b.order_id, b.id")
X(ORDER_ADMIN_EXTRA,
  "SELECT o.reply_draft, o.client_ip, u.username, o.claimed_by "
  "FROM orders o LEFT JOIN users u ON u.id = o.claimed_by WHERE o.id = ?")
X(ORDER_MARK_PAID,
  "UPDATE orders SET status = 'paid', paid_at = coalesce(paid_at, ?1), "
  "due_at = ?2, updated_at = ?1 "
  "WHERE id = ?3 AND status = 'awaiting_payment'")
/* Claims (?1 a user) or releases (?1 NULL) an order; changes nothing
 * when it is so already. */
X(ORDER_CLAIM,
  "UPDATE orders SET claimed_by = ?1, updated_at = ?2 "
  "WHERE id = ?3 AND claimed_by IS NOT ?1")
/* A draft is kept only while the order waits for an answer (sending it
 * clears the draft). */
X(ORDER_SET_DRAFT,
  "UPDATE orders SET reply_draft = ?, updated_at = ? "
  "WHERE id = ? AND status IN ('paid', 'followup')")
X(ORDER_ANSWER,
  "UPDATE orders SET status = 'answered', "
  "answered_at = coalesce(answered_at, ?1), last_answered_at = ?1, "
  "reply_draft = '', claimed_by = NULL, updated_at = ?1 "
  "WHERE id = ?2 AND status IN ('paid', 'followup')")
X(ORDER_CANCEL,
  "UPDATE orders SET status = 'cancelled', cancelled_at = ?1, "
  "updated_at = ?1 WHERE id = ?2 AND status = 'awaiting_payment' AND "
  "NOT EXISTS (SELECT 1 FROM ledger l WHERE l.order_id = orders.id)")
X(MESSAGES_ALL,
  "SELECT m.kind, m.body, m.created_at, u.username, m.html, "
  "coalesce(m.inbound_id, 0), m.id FROM messages m "
  "LEFT JOIN users u ON u.id = m.user_id WHERE m.order_id = ? ORDER BY m.id")
X(HISTORY_ADMIN,
  "SELECT h.status, h.at, u.username, h.note FROM status_history h "
  "LEFT JOIN users u ON u.id = h.user_id WHERE h.order_id = ? ORDER BY h.id")
X(AUDIT_BY_ORDER,
  "SELECT a.at, u.username, a.action, a.ip, a.detail FROM audit a "
  "LEFT JOIN users u ON u.id = a.user_id WHERE a.order_id = ? "
  "ORDER BY a.id DESC LIMIT 200")

/* Money: the ledger is the only source of truth. */
X(LEDGER_INSERT,
  "INSERT INTO ledger (order_id, kind, amount, currency, method, "
  "reference, at, user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
X(LEDGER_BY_ORDER,
  "SELECT l.kind, l.amount, l.currency, l.method, l.reference, l.at, "
  "u.username FROM ledger l LEFT JOIN users u ON u.id = l.user_id "
  "WHERE l.order_id = ? ORDER BY l.id")
X(LEDGER_BALANCE,
  "SELECT coalesce(sum(CASE kind WHEN 'payment' THEN amount END), 0), "
  "coalesce(sum(CASE kind WHEN 'refund' THEN amount END), 0) "
  "FROM ledger WHERE order_id = ?")

/* Refunds: the money-back guarantee. */
X(REFUND_BY_ORDER,
  "SELECT id, reason, status, requested_at, resolved_at, decline_reason "
  "FROM refund_requests WHERE order_id = ?")
X(REFUND_INSERT,
  "INSERT INTO refund_requests (order_id, reason, requested_at) "
  "VALUES (?, ?, ?)")
X(REFUND_BY_ID, "SELECT order_id, status FROM refund_requests WHERE id = ?")
X(REFUND_RESOLVE,
  "UPDATE refund_requests SET status = ?, resolved_at = ?, "
  "resolved_by = ?, decline_reason = ? WHERE id = ? AND status = 'open'")
/* How the order was paid: its last payment's method (ledger_order). */
X(LEDGER_LAST_METHOD,
  "SELECT method FROM ledger WHERE order_id = ? AND kind = 'payment' "
  "ORDER BY id DESC LIMIT 1")
/* Requests of status ?1 ('open', or 'pending': their money on its way to
 * the card, or refused) with the order's net paid and its last payment's
 * method and reference (ledger_order), for the refunds page. */
X(REFUNDS_BY_STATUS,
  "SELECT r.id, r.order_id, o.number, o.name, r.reason, r.requested_at, "
  "o.answered_at, o.answer_viewed_at, o.currency, "
  "(SELECT coalesce(sum(CASE l.kind WHEN 'payment' THEN l.amount "
  "ELSE -l.amount END), 0) FROM ledger l WHERE l.order_id = o.id), "
  "(SELECT l.method FROM ledger l WHERE l.order_id = o.id "
  "AND l.kind = 'payment' ORDER BY l.id DESC LIMIT 1), "
  "(SELECT l.reference FROM ledger l WHERE l.order_id = o.id "
  "AND l.kind = 'payment' ORDER BY l.id DESC LIMIT 1) "
  "FROM refund_requests r JOIN orders o ON o.id = r.order_id "
  "WHERE r.status = ?1 ORDER BY r.requested_at, r.id LIMIT 500")
X(ORDER_REFUND_REQUESTED,
  "UPDATE orders SET status = 'refund_requested', "
  "refund_requested_at = ?1, updated_at = ?1 "
  "WHERE id = ?2 AND status IN ('paid', 'answered', 'followup')")
X(ORDER_REFUNDED,
  "UPDATE orders SET status = 'refunded', refunded_at = ?1, "
  "updated_at = ?1 WHERE id = ?2 AND status = 'refund_requested'")
X(ORDER_REFUND_DECLINED,
  "UPDATE orders SET status = CASE WHEN answered_at IS NULL THEN 'paid' "
  "ELSE 'answered' END, updated_at = ?1 "
  "WHERE id = ?2 AND status = 'refund_requested'")
/* A rating of an answered order; changes nothing when it is the one
 * already given. */
X(ORDER_SET_RATING,
  "UPDATE orders SET rating = ?1, rated_at = ?2 "
  "WHERE id = ?3 AND answered_at IS NOT NULL AND rating IS NOT ?1")

/* What a client not happy with the answer said was missing (rating
 * page): the consultant's order page shows it, the client's never. */
X(FEEDBACK_INSERT,
  "INSERT INTO feedback (order_id, body, created_at) VALUES (?, ?, ?)")
X(FEEDBACK_BY_ORDER,
  "SELECT body, created_at FROM feedback WHERE order_id = ? ORDER BY id")

/* Testimonials (sql/020): a client's words after a "yes" rating, shown
 * on the landing page once the consultant approves them. */
/* The client's consent, kept or updated while pending; nothing for an
 * order not rated "yes" (0 rows changed), nor once decided. */
X(TESTIMONIAL_UPSERT,
  "INSERT INTO testimonials (order_id, sentence, name_shown, created_at, "
  "updated_at) SELECT id, ?2, ?3, ?4, ?4 FROM orders "
  "WHERE id = ?1 AND rating = 'yes' "
  "ON CONFLICT (order_id) DO UPDATE SET sentence = excluded.sentence, "
  "updated_at = excluded.updated_at WHERE testimonials.status = 'pending'")
X(TESTIMONIAL_BY_ORDER,
  "SELECT sentence, name_shown, status FROM testimonials WHERE order_id = ?")
/* A "no" rating takes back the client's consent. */
X(TESTIMONIAL_WITHDRAW, "DELETE FROM testimonials WHERE order_id = ?")
/* The consent box unticked takes it back while it is pending. */
X(TESTIMONIAL_WITHDRAW_PENDING,
  "DELETE FROM testimonials WHERE order_id = ? AND status = 'pending'")
X(TESTIMONIAL_BY_ID,
  "SELECT order_id, name_shown, status, sentence FROM testimonials "
  "WHERE id = ?")
/* Approve or reject, with the name shown as the consultant left it; only
 * the sentence the consultant read (?6) is approved. */
X(TESTIMONIAL_DECIDE,
  "UPDATE testimonials SET status = ?1, name_shown = ?2, decided_at = ?3, "
  "decided_by = ?4, updated_at = ?3 "
  "WHERE id = ?5 AND status <> ?1 AND sentence = ?6")
X(TESTIMONIAL_RENAME,
  "UPDATE testimonials SET name_shown = ?1, updated_at = ?2 "
  "WHERE id = ?3 AND name_shown <> ?1")
/* The admin page's lists, newest decision (or newest) first. */
X(TESTIMONIALS_BY_STATUS,
  "SELECT t.id, t.order_id, o.name, o.company, t.sentence, t.name_shown, "
  "t.created_at, t.decided_at FROM testimonials t "
  "JOIN orders o ON o.id = t.order_id WHERE t.status = ? "
  "ORDER BY t.decided_at DESC, t.id DESC LIMIT ?")
/* The landing page's proof in one statement (one snapshot, no BEGIN and
 * COMMIT of its own): a first row of the ratings, yes and all (two rows
 * of rating_counts, kept by triggers), then the newest approved quotes,
 * the name shown and the business only. */
X(HOME_PROOF,
  "SELECT (SELECT n FROM rating_counts WHERE rating = 'yes'), "
  "(SELECT sum(n) FROM rating_counts), NULL "
  "UNION ALL SELECT * FROM (SELECT t.name_shown, o.company, t.sentence "
  "FROM testimonials t JOIN orders o ON o.id = t.order_id "
  "WHERE t.status = 'approved' ORDER BY t.decided_at DESC, t.id DESC "
  "LIMIT ?)")

/* Snippets. */
X(SNIPPET_BY_ID, "SELECT title, body FROM snippets WHERE id = ?")
X(SNIPPETS_LIST, "SELECT id, title FROM snippets ORDER BY title, id")
X(SNIPPETS_PAGE,
  "SELECT id, title, substr(body, 1, 200), updated_at FROM snippets "
  "ORDER BY title, id LIMIT ?")
X(SNIPPET_INSERT,
  "INSERT INTO snippets (title, body, created_at, updated_at) "
  "VALUES (?1, ?2, ?3, ?3)")
X(SNIPPET_UPDATE,
  "UPDATE snippets SET title = ?, body = ?, updated_at = ? WHERE id = ?")
X(SNIPPET_DELETE, "DELETE FROM snippets WHERE id = ?")

/* Search (sql/003_search.sql): one FTS5 document per order, its rowid
 * the order's id (ids rise with time). ORDER BY rank makes FTS5 score
 * every match with bm25 before it can sort, so the page ranks a window of
 * matches, never all of them (page_admin_search.c).
 * SEARCH_WINDOW: ?1 the query, ?2 the newest id the window may hold, ?3
 * the window's size less one: the window's oldest match and, when there
 * is one, the next older match. ORDER BY rowid DESC is an order FTS5
 * reads its index in: nothing is scored or sorted, it steps ?3 + 2
 * matches and stops (after finding the end of each segment's list of
 * ids for the words, a light pass over it). */
X(SEARCH_WINDOW,
  "SELECT rowid FROM search_fts WHERE search_fts MATCH ?1 AND rowid <= ?2 "
  "ORDER BY rowid DESC LIMIT 2 OFFSET ?3")
/* SEARCH: the matches with ids from ?2 to ?3 (the window), ranked by
 * pmb_rank (src/search_rank.c: bm25 with a bounded count of each word's
 * documents) with the name and address weighted over the question, and
 * the question over the replies and notes; \1 and \2 mark the hits in
 * the excerpts (the page escapes, then turns them into <mark>). FTS5
 * applies the rowid range before it scores (no scan, no temp b-tree), so
 * it scores the window's matches, not all of them. An excerpt is made
 * only of a part of the thread with a hit (pmb_hits), and of the question
 * when no part has one; the name and address are highlighted only when
 * they hold a hit (highlight() of a column without one is its text). */
X(SEARCH,
  "SELECT search_fts.rowid, o.number, o.status, o.created_at, "
  "CASE WHEN pmb_hits(search_fts, 0) "
  "THEN highlight(search_fts, 0, char(1), char(2)) "
  "ELSE search_fts.name END, "
  "CASE WHEN pmb_hits(search_fts, 1) "
  "THEN highlight(search_fts, 1, char(1), char(2)) "
  "ELSE search_fts.email END, "
  "CASE WHEN pmb_hits(search_fts, 2) OR NOT (pmb_hits(search_fts, 3) "
  "OR pmb_hits(search_fts, 4)) "
  "THEN snippet(search_fts, 2, char(1), char(2), '…', 20) END, "
  "CASE WHEN pmb_hits(search_fts, 3) "
  "THEN snippet(search_fts, 3, char(1), char(2), '…', 20) END, "
  "CASE WHEN pmb_hits(search_fts, 4) "
  "THEN snippet(search_fts, 4, char(1), char(2), '…', 20) END "
  "FROM search_fts JOIN orders o ON o.id = search_fts.rowid "
  "WHERE search_fts MATCH ?1 AND search_fts.rowid >= ?2 "
  "AND search_fts.rowid <= ?3 "
  "AND rank MATCH 'pmb_rank(10.0, 10.0, 2.0, 1.0, 1.0)' "
  "ORDER BY rank LIMIT ?4 OFFSET ?5")
/* SEARCH_BM25: SEARCH with FTS5's own functions, for a connection where
 * pmb_rank could not be registered: the same results and excerpts, but
 * bm25 counts every match of each word once per query, for its IDF. */
X(SEARCH_BM25,
  "SELECT search_fts.rowid, o.number, o.status, o.created_at, "
  "highlight(search_fts, 0, char(1), char(2)), "
  "highlight(search_fts, 1, char(1), char(2)), "
  "snippet(search_fts, 2, char(1), char(2), '…', 20), "
  "snippet(search_fts, 3, char(1), char(2), '…', 20), "
  "snippet(search_fts, 4, char(1), char(2), '…', 20) "
  "FROM search_fts JOIN orders o ON o.id = search_fts.rowid "
  "WHERE search_fts MATCH ?1 AND search_fts.rowid >= ?2 "
  "AND search_fts.rowid <= ?3 "
  "AND rank MATCH 'bm25(10.0, 10.0, 2.0, 1.0, 1.0)' "
  "ORDER BY rank LIMIT ?4 OFFSET ?5")
/* The search index's catch-up (sql/008_search_pending.sql, src/
 * search_index.c): orders noted as pending by the triggers have their
 * documents rewritten, the lowest ids first, a chunk per transaction.
 * SEARCH_PENDING_ANY: is anything pending (one row of a small table).
 * SEARCH_PENDING_UPTO: the highest id of the ?1 lowest pending ids.
 * SEARCH_UNINDEX, SEARCH_REINDEX, SEARCH_PENDING_DONE: the documents of
 * the pending ids up to ?1 leave the index, come back from search_docs
 * (orders' primary key) if their order still exists, and are no longer
 * pending. */
X(SEARCH_PENDING_ANY, "SELECT 1 FROM search_pending LIMIT 1")
X(SEARCH_PENDING_UPTO,
  "SELECT max(order_id) FROM (SELECT order_id FROM search_pending "
  "ORDER BY order_id LIMIT ?1)")
X(SEARCH_UNINDEX,
  "DELETE FROM search_fts WHERE rowid IN "
  "(SELECT order_id FROM search_pending WHERE order_id <= ?1)")
X(SEARCH_REINDEX,
  "INSERT INTO search_fts (rowid, name, email, question, replies, notes) "
  "SELECT id, name, email, question, replies, notes FROM search_docs "
  "WHERE id IN (SELECT order_id FROM search_pending WHERE order_id <= ?1)")
X(SEARCH_PENDING_DONE, "DELETE FROM search_pending WHERE order_id <= ?1")
/* SEARCH_MERGE: FTS5's incremental merge; a negative ?1 merges segments
 * of every level toward one, writing about -?1 pages (search_optimize).
 * SEARCH_SEGMENTS: how many segments the index has (FTS5's %_idx table
 * holds the first term of each leaf page, keyed by segment id). */
X(SEARCH_MERGE, "INSERT INTO search_fts (search_fts, rank) VALUES ('merge', ?1)")
X(SEARCH_SEGMENTS, "SELECT count(DISTINCT segid) FROM search_fts_idx")
/* FTS5_API: the connection's fts5_api, through a pointer bound to ?1
 * (src/search_rank.c registers pmb_rank and pmb_hits with it). */
X(FTS5_API, "SELECT fts5(?1)")

/* Dashboard (indexes: sql/004_dashboard.sql). ?1 now, ?2 the promise in
 * seconds. */
X(DASH_COUNTS,
  "SELECT (SELECT count(*) FROM orders), "
  "(SELECT count(*) FROM orders WHERE answered_at IS NOT NULL), "
  "(SELECT count(*) FROM orders WHERE status IN ('paid', 'followup')), "
  "(SELECT count(*) FROM orders WHERE status IN ('paid', 'followup') "
  "AND due_at < ?1), "
  "(SELECT count(*) FROM orders WHERE answered_at IS NOT NULL "
  "AND paid_at IS NOT NULL), "
  "(SELECT count(*) FROM orders WHERE answered_at IS NOT NULL "
  "AND paid_at IS NOT NULL AND answered_at - paid_at <= ?2), "
  "(SELECT count(DISTINCT order_id) FROM ledger WHERE kind = 'payment'), "
  "(SELECT count(DISTINCT order_id) FROM ledger WHERE kind = 'refund')")
X(DASH_ANSWER_TIME,
  "SELECT answered_at - paid_at FROM orders WHERE answered_at IS NOT NULL "
  "AND paid_at IS NOT NULL ORDER BY answered_at - paid_at LIMIT 2 OFFSET ?")
/* Per currency and method (card, bank transfer, ...); index ledger_revenue
 * alone serves it. */
X(DASH_REVENUE,
  "SELECT currency, method, "
  "coalesce(sum(CASE kind WHEN 'payment' THEN amount END), 0), "
  "coalesce(sum(CASE kind WHEN 'refund' THEN amount END), 0) "
  "FROM ledger GROUP BY currency, method ORDER BY currency, method")
/* Orders awaiting payment per currency: how many, and their value
 * (sql/019's partial index alone). */
X(DASH_UNPAID,
  "SELECT currency, count(*), coalesce(sum(price), 0) "
  "FROM orders INDEXED BY orders_unpaid WHERE status = 'awaiting_payment' "
  "GROUP BY currency ORDER BY currency")
/* Payments and refunds per currency and calendar month (UTC; the month
 * as year * 12 + month - 1) from ?1 to ?2: a range of sql/014's
 * ledger_month, which holds every column it reads. */
X(DASH_MONTHS,
  "SELECT currency, CAST(strftime('%Y', at, 'unixepoch') AS INTEGER) * 12 "
  "+ CAST(strftime('%m', at, 'unixepoch') AS INTEGER) - 1, "
  "coalesce(sum(CASE kind WHEN 'payment' THEN amount END), 0), "
  "coalesce(sum(CASE kind WHEN 'refund' THEN amount END), 0) "
  "FROM ledger INDEXED BY ledger_month WHERE at >= ?1 AND at < ?2 "
  "GROUP BY 1, 2 ORDER BY 1, 2")
/* Per week from ?1 (a Monday) to ?2, weeks of ?3 seconds. */
X(DASH_WEEK_ORDERS,
  "SELECT (created_at - ?1) / ?3, count(*) FROM orders "
  "WHERE created_at >= ?1 AND created_at < ?2 GROUP BY 1")
X(DASH_WEEK_ANSWERS,
  "SELECT (answered_at - ?1) / ?3, count(*) FROM orders "
  "WHERE answered_at >= ?1 AND answered_at < ?2 GROUP BY 1")
X(DASH_WEEK_REFUNDS,
  "SELECT (at - ?1) / ?3, count(*) FROM ledger "
  "WHERE kind = 'refund' AND at >= ?1 AND at < ?2 GROUP BY 1")
/* The accountant's export: every order, oldest first, each followed by
 * its ledger rows in ledger order (none: one row of NULLs), which
 * page_admin_export.c sums and lists. One walk of orders by its primary
 * key and one search of index ledger_order per order, in the order of
 * that index, so no sort. */
X(EXPORT_ORDERS,
  "SELECT o.id, o.number, o.created_at, o.status, o.name, o.email, "
  "o.price, o.currency, o.topic, l.kind, l.amount, l.method, "
  "l.reference, l.at FROM orders o "
  "LEFT JOIN ledger l ON l.order_id = o.id ORDER BY o.id, l.id")
/* The accountant's ledger export: every payment and refund in ledger
 * order, with who recorded it: the staff member, else "stripe" for a
 * card row under Stripe's own id (as index ledger_card_once tells
 * them: the webhook, a refund made in Stripe or approved automatically),
 * else "system" (a row written outside a signed-in page). Index
 * ledger_order is not needed: the walk is the ledger's own order. */
X(EXPORT_LEDGER,
  "SELECT o.number, l.at, l.kind, l.amount, l.currency, l.method, "
  "l.reference, coalesce(u.username, CASE WHEN l.method = 'card' AND "
  "(l.reference GLOB 'pi_?*' OR l.reference GLOB 'cs_?*' OR "
  "l.reference GLOB 're_?*') THEN 'stripe' ELSE 'system' END) "
  "FROM ledger l JOIN orders o ON o.id = l.order_id "
  "LEFT JOIN users u ON u.id = l.user_id ORDER BY l.id")

/* The audit log, newest first, keyset paged by id (?1: below this id). */
X(AUDIT_PAGE,
  "SELECT a.id, a.at, u.username, a.action, a.order_id, o.number, a.ip, "
  "a.detail FROM audit a LEFT JOIN users u ON u.id = a.user_id "
  "LEFT JOIN orders o ON o.id = a.order_id "
  "WHERE a.id < ?1 ORDER BY a.id DESC LIMIT ?2")

/* The thread and the history. */
X(MESSAGE_INSERT,
  "INSERT INTO messages (order_id, kind, body, html, user_id, created_at) "
  "VALUES (?, ?, ?, ?, ?, ?)")
/* What the client reads: never a note, never a message outside the
 * allowance ('extra': the consultant's only). */
X(MESSAGES_PUBLIC,
  "SELECT kind, body, created_at, html, id FROM messages "
  "WHERE order_id = ? AND kind IN ('question', 'reply', 'followup', "
  "'info') ORDER BY id")
X(HISTORY_INSERT,
  "INSERT INTO status_history (order_id, status, at, user_id, note) "
  "VALUES (?, ?, ?, ?, ?)")
X(HISTORY_BY_ORDER,
  "SELECT status, at FROM status_history WHERE order_id = ? ORDER BY id")

/* Mail: the outbox. */
X(OUTBOX_INSERT,
  "INSERT INTO outbox (kind, order_id, to_addr, to_name, subject, "
  "body_text, body_html, next_at, created_at) "
  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
/* Delivery (outbox.c): claim one due message, or one whose claim
 * expired, for a sender; then mark it sent, or count the failed try and
 * queue it again after the pause (failed for good at the limit). */
X(OUTBOX_CLAIM,
  "UPDATE outbox SET status = 'sending', claimed_until = ? "
  "WHERE id = (SELECT id FROM outbox "
  "WHERE (status = 'queued' AND next_at <= ?) "
  "OR (status = 'sending' AND claimed_until <= ?) "
  "ORDER BY next_at, id LIMIT 1) "
  "RETURNING id, kind, to_addr, to_name, subject, body_text, body_html, "
  "created_at, attempts, coalesce(order_id, 0)")
X(OUTBOX_SENT,
  "UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1, "
  "claimed_until = NULL WHERE id = ? AND status = 'sending'")
X(OUTBOX_FAILED,
  "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_at = ?, "
  "claimed_until = NULL, "
  "status = CASE WHEN attempts + 1 >= ? THEN 'failed' ELSE 'queued' END "
  "WHERE id = ? AND status = 'sending' AND claimed_until = ?")
/* The admin outbox: a page of messages older than id ?2, newest first
 * (keyset paging on the rowid; per status on outbox_status), one
 * message with its text, counts, retry now. */
X(OUTBOX_LIST,
  "SELECT id, kind, order_id, to_addr, to_name, subject, status, attempts, "
  "next_at, claimed_until, last_error, created_at, sent_at, bounced_at, "
  "bounce FROM outbox "
  "WHERE id < ?1 ORDER BY id DESC LIMIT ?2")
X(OUTBOX_LIST_STATUS,
  "SELECT id, kind, order_id, to_addr, to_name, subject, status, attempts, "
  "next_at, claimed_until, last_error, created_at, sent_at, bounced_at, "
  "bounce FROM outbox "
  "WHERE status = ?3 AND id < ?1 ORDER BY id DESC LIMIT ?2")
X(OUTBOX_BY_ID,
  "SELECT id, kind, order_id, to_addr, to_name, subject, status, attempts, "
  "next_at, claimed_until, last_error, created_at, sent_at, bounced_at, "
  "bounce, body_text, body_html FROM outbox WHERE id = ?")
X(OUTBOX_COUNTS, "SELECT status, count(*) FROM outbox GROUP BY status")
X(OUTBOX_RETRY_NOW,
  "UPDATE outbox SET status = 'queued', next_at = ?, claimed_until = NULL "
  "WHERE id = ? AND status IN ('queued', 'failed')")

/* Mail that came in (sql/021, page_admin_inbox.c). The inbox: the
 * messages waiting, newest first, keyset paged on inbound_status
 * (status, id); the decided ones walk the rowid down, passing over only
 * the few that wait. Never the raw message, but for its download. */
#define INBOX_COLS \
  "SELECT i.id, i.from_addr, i.from_name, i.subject, i.received_at, " \
  "i.reason, i.status, coalesce(i.suggested_id, 0), " \
  "coalesce(i.order_id, 0), i.decided_at, u.username, i.via, " \
  "i.raw_size, coalesce(i.outbox_id, 0) "
#define INBOX_FROM \
  "FROM inbound i LEFT JOIN users u ON u.id = i.decided_by "
X(INBOX_WAITING, INBOX_COLS INBOX_FROM
  "WHERE i.status = 'inbox' AND i.id < ?1 ORDER BY i.id DESC LIMIT ?2")
X(INBOX_DONE, INBOX_COLS INBOX_FROM
  "WHERE i.id < ?1 AND i.status <> 'inbox' ORDER BY i.id DESC LIMIT ?2")
/* One message: the list's columns, then its attachments and text. */
X(INBOX_BY_ID, INBOX_COLS ", i.attachments, i.body " INBOX_FROM
  "WHERE i.id = ?1")
X(INBOX_RAW, "SELECT raw, subject FROM inbound WHERE id = ?")
X(INBOX_DROPS, "SELECT reason, n FROM inbound_drops")
/* The consultant's decision, taken only while the message still waits
 * (0 rows: someone else decided first). */
X(INBOX_ATTACH,
  "UPDATE inbound SET status = 'attached', order_id = ?1, decided_at = ?2, "
  "decided_by = ?3 WHERE id = ?4 AND status = 'inbox'")
X(INBOX_DISCARD,
  "UPDATE inbound SET status = 'discarded', decided_at = ?1, "
  "decided_by = ?2 WHERE id = ?3 AND status = 'inbox'")
/* A message of the thread that came by email (inbound ?7). */
X(MESSAGE_INSERT_INBOUND,
  "INSERT INTO messages (order_id, kind, body, html, user_id, created_at, "
  "inbound_id) VALUES (?, ?, ?, ?, ?, ?, ?)")
/* The order page's flag: the client's emails that bounced, newest first
 * (a few rows of the partial index outbox_bounced). */
X(OUTBOX_BOUNCED_BY_ORDER,
  "SELECT b.id, b.kind, b.subject, b.bounced_at, b.bounce FROM outbox b "
  "INDEXED BY outbox_bounced WHERE b.order_id = ?1 AND "
  "b.status = 'bounced' AND b.to_addr = "
  "(SELECT o.email FROM orders o WHERE o.id = ?1) ORDER BY b.id DESC "
  "LIMIT 5")

/* Card payments (Stripe Checkout, payment.c and page_pay.c). A session
 * row is committed (creating) before Stripe is asked; its id makes the
 * Idempotency-Key. */
/* Only for an order still waiting for payment, decided in the
 * transaction (0 rows: cancelled or paid since the page read it). */
X(CHECKOUT_INSERT,
  "INSERT INTO checkout_sessions (order_id, amount, currency, created_at) "
  "SELECT id, price, currency, ?2 FROM orders "
  "WHERE id = ?1 AND status = 'awaiting_payment'")
/* The order's session a click may reuse: open and not expired by ?2, or
 * still creating since after ?3 (a call that got no answer: asked again
 * with the same Idempotency-Key while Stripe keeps it). */
X(CHECKOUT_CURRENT,
  "SELECT id, status, url FROM checkout_sessions WHERE order_id = ?1 AND "
  "((status = 'open' AND expires_at > ?2) OR "
  "(status = 'creating' AND created_at > ?3)) ORDER BY id DESC LIMIT 1")
/* A session completed with the money still on its way (a bank debit:
 * CHECKOUT_SET_PI noted its PaymentIntent): a payment under way, whose
 * order takes no second one until it succeeds or fails. */
X(CHECKOUT_UNDER_WAY,
  "SELECT id FROM checkout_sessions WHERE order_id = ? AND "
  "status = 'open' AND payment_intent IS NOT NULL LIMIT 1")
/* Stripe's answer: the row opens (or was opened by a click that got the
 * same answer for the same Idempotency-Key). */
X(CHECKOUT_OPENED,
  "UPDATE checkout_sessions SET stripe_id = ?1, url = ?2, expires_at = ?3, "
  "status = 'open' WHERE id = ?4 AND (status = 'creating' OR "
  "(status = 'open' AND stripe_id = ?1))")
X(CHECKOUT_FAILED,
  "UPDATE checkout_sessions SET status = 'failed', last_error = ? "
  "WHERE id = ? AND status IN ('creating', 'open')")
X(CHECKOUT_BY_STRIPE_ID,
  "SELECT id, order_id, status FROM checkout_sessions WHERE stripe_id = ?")
/* Paid: only once (0 rows: fulfilled already). */
X(CHECKOUT_COMPLETE,
  "UPDATE checkout_sessions SET status = 'complete', payment_intent = ?, "
  "completed_at = ? WHERE id = ? AND status <> 'complete'")
/* Completed but the money is on its way (bank debits): note the
 * PaymentIntent, keep waiting. */
X(CHECKOUT_SET_PI,
  "UPDATE checkout_sessions SET payment_intent = ? "
  "WHERE id = ? AND payment_intent IS NULL")
X(CHECKOUT_EXPIRED,
  "UPDATE checkout_sessions SET status = 'expired' "
  "WHERE id = ? AND status IN ('creating', 'open')")
/* The admin order page: the order's sessions. */
X(CHECKOUT_BY_ORDER,
  "SELECT status, amount, currency, coalesce(payment_intent, ''), "
  "created_at, last_error, coalesce(stripe_id, '') FROM checkout_sessions "
  "WHERE order_id = ? ORDER BY id")
/* Cancelling an order: a job expires each of its open sessions at
 * Stripe (pay_jobs, "pmbctl pay send"). */
X(PAY_JOB_EXPIRE_SESSIONS,
  "INSERT INTO pay_jobs (kind, order_id, session_id, next_at, created_at) "
  "SELECT 'expire', order_id, id, ?2, ?2 FROM checkout_sessions "
  "WHERE order_id = ?1 AND status = 'open' AND stripe_id IS NOT NULL")
/* A session still being created when its order is cancelled or paid
 * is never offered again (?2: why, in words). */
X(CHECKOUT_CANCEL_CREATING,
  "UPDATE checkout_sessions SET status = 'failed', last_error = ?2 "
  "WHERE order_id = ?1 AND status = 'creating'")
X(ORDER_FLAG_INSERT,
  "INSERT OR IGNORE INTO order_flags (order_id, kind, ref, detail, "
  "created_at) VALUES (?, ?, ?, ?, ?)")
X(ORDER_FLAGS_BY_ORDER,
  "SELECT kind, ref, detail, created_at, coalesce(resolved_at, 0), "
  "resolution FROM order_flags WHERE order_id = ? ORDER BY id")
/* Every Stripe event once, by its id: a second insert is a
 * CONSTRAINT, the duplicate. */
X(STRIPE_EVENT_INSERT,
  "INSERT INTO stripe_events (id, type, created, received_at) "
  "VALUES (?, ?, ?, ?)")
/* 1 if event ?1 is stored: a redelivery answered without the write lock. */
X(STRIPE_EVENT_SEEN, "SELECT 1 FROM stripe_events WHERE id = ?")
X(STRIPE_EVENT_DONE,
  "UPDATE stripe_events SET order_id = ?, outcome = ? WHERE id = ?")

/* Rate limits. */
X(RATE_COUNT,
  "SELECT count(*), min(at) FROM rate_events WHERE key = ? AND at > ?")
X(RATE_INSERT, "INSERT INTO rate_events (key, at) VALUES (?, ?)")
X(RATE_PRUNE, "DELETE FROM rate_events WHERE key = ? AND at <= ?")

/* Checks. */
X(INTEGRITY, "PRAGMA integrity_check")

/* Refunds paid back to the card (card_refund.c) and the payment jobs
 * that call Stripe after COMMIT (pay_jobs.c). */
/* The card payment of an order that a refund goes back to: its
 * PaymentIntent (the first card payment; one per order but for an
 * overpaid order). */
X(CARD_PAYMENT_OF_ORDER,
  "SELECT reference FROM ledger WHERE order_id = ? AND kind = 'payment' "
  "AND method = 'card' AND reference LIKE 'pi\\_%' ESCAPE '\\' "
  "ORDER BY id LIMIT 1")
/* The order a PaymentIntent paid for, by its card payment row. The
 * GLOBs repeat the WHERE of index ledger_card_once (sql/010_payments.sql)
 * word for word, so that SQLite may search that partial index. */
X(CARD_ORDER_OF_PI,
  "SELECT order_id FROM ledger WHERE kind = 'payment' AND method = 'card' "
  "AND reference = ? AND (reference GLOB 'pi_?*' OR "
  "reference GLOB 'cs_?*' OR reference GLOB 're_?*') ORDER BY id LIMIT 1")
/* What is on its way back to the card and not yet in the ledger. */
X(CARD_REFUNDS_PENDING_SUM,
  "SELECT coalesce(sum(amount), 0) FROM card_refunds "
  "WHERE order_id = ? AND status = 'pending'")
/* A dispute still open, or lost, blocks refunds of the order's charge. */
X(CARD_DISPUTE_OPEN,
  "SELECT ref FROM order_flags WHERE order_id = ? AND kind = 'disputed' "
  "AND (resolved_at IS NULL OR resolution = 'lost') LIMIT 1")
/* The request may no longer be declined: the money is on its way. */
X(REFUND_TO_PENDING,
  "UPDATE refund_requests SET status = 'pending' "
  "WHERE id = ? AND status = 'open'")
/* Paid back by hand in full: the request open, or pending with its card
 * refund refused and nothing on its way to the card. */
X(REFUND_RESOLVE_BY_HAND,
  "UPDATE refund_requests SET status = 'refunded', resolved_at = ?, "
  "resolved_by = ? WHERE id = ?3 AND (status = 'open' OR "
  "(status = 'pending' AND NOT EXISTS (SELECT 1 FROM card_refunds c "
  "WHERE c.request_id = ?3 AND c.status = 'pending')))")
/* A partial card refund succeeded: the request is open for the rest. */
X(REFUND_PENDING_TO_OPEN,
  "UPDATE refund_requests SET status = 'open' WHERE order_id = ?1 AND "
  "status = 'pending' AND NOT EXISTS (SELECT 1 FROM card_refunds c "
  "WHERE c.order_id = ?1 AND c.status = 'pending')")
/* The order's refunds reached its payments: the request is done. */
X(REFUND_CARD_RESOLVE,
  "UPDATE refund_requests SET status = 'refunded', resolved_at = ?1, "
  "resolved_by = nullif(?2, 0) WHERE order_id = ?3 "
  "AND status IN ('open', 'pending')")
/* Refunded in full by card: from any state that held money. */
X(ORDER_REFUNDED_CARD,
  "UPDATE orders SET status = 'refunded', refunded_at = ?1, "
  "updated_at = ?1 WHERE id = ?2 AND status IN ('paid', 'answered', "
  "'followup', 'refund_requested')")
X(CARD_REFUND_INSERT,
  "INSERT INTO card_refunds (order_id, request_id, payment_intent, amount, "
  "currency, user_id, created_at) "
  "VALUES (?, nullif(?, 0), ?, ?, ?, nullif(?, 0), ?)")
X(CARD_REFUND_BY_ID,
  "SELECT order_id, coalesce(request_id, 0), payment_intent, amount, "
  "currency, status, coalesce(stripe_id, ''), coalesce(user_id, 0), "
  "created_at FROM card_refunds WHERE id = ?")
X(CARD_REFUND_BY_STRIPE_ID,
  "SELECT id FROM card_refunds WHERE stripe_id = ?")
/* Stripe named the refund (pending at Stripe): noted once. */
X(CARD_REFUND_SET_STRIPE_ID,
  "UPDATE card_refunds SET stripe_id = ? WHERE id = ? AND stripe_id IS NULL")
/* Stripe paid it back: once (0 rows: settled already). Failed is where
 * a Stripe refund ends (pending -> succeeded -> failed is the one way
 * back): a "succeeded" read after Stripe named the refund failed is an
 * older event come late and moves nothing. Only a call Stripe refused
 * (failed with no re_ id) may still turn out to be money that moved. */
X(CARD_REFUND_SUCCEEDED,
  "UPDATE card_refunds SET status = 'succeeded', settled_at = ?1, "
  "stripe_id = coalesce(stripe_id, ?2), last_error = '' "
  "WHERE id = ?3 AND (status = 'pending' OR "
  "(status = 'failed' AND stripe_id IS NULL))")
X(CARD_REFUND_SET_LEDGER,
  "UPDATE card_refunds SET ledger_id = ? WHERE id = ?")
X(CARD_REFUND_FAILED,
  "UPDATE card_refunds SET status = 'failed', settled_at = ?1, "
  "last_error = ?2, stripe_id = coalesce(stripe_id, nullif(?3, '')) "
  "WHERE id = ?4 AND status = 'pending'")
/* Stripe reports failed a refund it had reported succeeded (its one
 * way back: the money returned to the Stripe balance): once. */
X(CARD_REFUND_REVERSED,
  "UPDATE card_refunds SET status = 'failed', settled_at = ?1, "
  "last_error = ?2, ledger_id = NULL "
  "WHERE id = ?3 AND status = 'succeeded' AND stripe_id = ?4")
/* ... and its ledger row, by its re_ id: the money never left (the
 * audit trail keeps the row's story). The GLOBs are ledger_card_once's
 * WHERE, so that the index finds the row. */
X(CARD_LEDGER_REFUND_UNDO,
  "DELETE FROM ledger WHERE kind = 'refund' AND method = 'card' "
  "AND reference = ? AND (reference GLOB 'pi_?*' OR "
  "reference GLOB 'cs_?*' OR reference GLOB 're_?*')")
/* ... the order's request it settled (?2, or 0: the order's) is open
 * again for another way back. */
X(REFUND_CARD_REOPEN,
  "UPDATE refund_requests SET status = 'open', resolved_at = NULL, "
  "resolved_by = NULL WHERE order_id = ?1 AND (?2 = 0 OR id = ?2) "
  "AND status = 'refunded'")
/* ... and its order waits for the refund again. */
X(ORDER_REFUND_REOPEN,
  "UPDATE orders SET status = 'refund_requested', refunded_at = NULL, "
  "updated_at = ?1 WHERE id = ?2 AND status = 'refunded'")
/* A card refund row in the ledger; user 0: Stripe or the machine. */
X(CARD_LEDGER_REFUND,
  "INSERT INTO ledger (order_id, kind, amount, currency, method, "
  "reference, at, user_id) VALUES (?, 'refund', ?, ?, 'card', ?, ?, "
  "nullif(?, 0))")
/* /admin/refunds: the card refunds of the requests listed and of those
 * on their way (pending), newest first. */
X(CARD_REFUNDS_OF_ORDER,
  "SELECT id, amount, status, last_error, coalesce(stripe_id, ''), "
  "created_at, coalesce(settled_at, 0), currency FROM card_refunds "
  "WHERE order_id = ? ORDER BY id DESC LIMIT 20")
/* The last card refund of a request that Stripe refused (Retry). */
X(CARD_REFUND_LAST_FAILED,
  "SELECT id FROM card_refunds WHERE request_id = ?1 AND status = 'failed' "
  "AND NOT EXISTS (SELECT 1 FROM card_refunds c WHERE c.request_id = ?1 "
  "AND c.status = 'pending') AND EXISTS (SELECT 1 FROM refund_requests q "
  "WHERE q.id = ?1 AND q.status = 'pending') ORDER BY id DESC LIMIT 1")
X(DISPUTE_FLAG_INSERT,
  "INSERT OR IGNORE INTO order_flags (order_id, kind, ref, detail, "
  "created_at) VALUES (?, 'disputed', ?, ?, ?)")
X(DISPUTE_FLAG_CLOSE,
  "UPDATE order_flags SET resolved_at = ?1, resolution = ?2 "
  "WHERE order_id = ?3 AND kind = 'disputed' AND ref = ?4 "
  "AND resolved_at IS NULL")
X(PAY_JOB_INSERT_REFUND,
  "INSERT INTO pay_jobs (kind, order_id, card_refund_id, next_at, "
  "created_at) VALUES ('refund', ?1, ?2, ?3, ?3)")
/* The job runner (pay_jobs.c), as the outbox's: claim one due job, or
 * one whose claim expired; then done, or the failed try counted and
 * the job queued again after the pause (failed: Stripe refused). */
X(PAY_JOB_CLAIM,
  "UPDATE pay_jobs SET status = 'sending', claimed_until = ? "
  "WHERE id = (SELECT id FROM pay_jobs "
  "WHERE (status = 'queued' AND next_at <= ?) "
  "OR (status = 'sending' AND claimed_until <= ?) "
  "ORDER BY next_at, id LIMIT 1) "
  "RETURNING id, kind, order_id, coalesce(card_refund_id, 0), "
  "coalesce(session_id, 0), attempts, created_at")
X(PAY_JOB_DONE,
  "UPDATE pay_jobs SET status = ?1, done_at = ?2, attempts = attempts + 1, "
  "claimed_until = NULL, last_error = ?3 "
  "WHERE id = ?4 AND status = 'sending' AND claimed_until = ?5")
X(PAY_JOB_RETRY_LATER,
  "UPDATE pay_jobs SET status = 'queued', attempts = attempts + 1, "
  "last_error = ?1, next_at = ?2, claimed_until = NULL "
  "WHERE id = ?3 AND status = 'sending' AND claimed_until = ?4")
X(PAY_JOB_LAST_OF_REFUND,
  "SELECT status, attempts, last_error, next_at FROM pay_jobs "
  "WHERE card_refund_id = ? ORDER BY id DESC LIMIT 1")
X(PAY_SESSION_FOR_EXPIRE,
  "SELECT coalesce(stripe_id, ''), status FROM checkout_sessions "
  "WHERE id = ?")
/* Reconcile: a session pmb stored, by Stripe's id. */
X(PAY_SESSION_STATUS,
  "SELECT status FROM checkout_sessions WHERE stripe_id = ?")
/* This database's random name, in the Idempotency-Keys sent to Stripe. */
X(INSTALL_KEY, "SELECT key FROM install WHERE id = 1")
/* The unpaid orders' chase (chase.c). Orders due a reminder or a
 * cancellation, oldest first after the keyset (created_at, id): ranges
 * of partial indexes that hold unpaid orders only (sql/016's
 * orders_unreminded, sql/019's orders_unpaid). */
X(CHASE_REMIND_DUE,
  "SELECT id, created_at FROM orders INDEXED BY orders_unreminded "
  "WHERE status = 'awaiting_payment' AND reminded_at IS NULL "
  "AND created_at <= ?1 AND (created_at, id) > (?2, ?3) "
  "ORDER BY created_at, id LIMIT ?4")
X(CHASE_CANCEL_DUE,
  "SELECT id, created_at FROM orders INDEXED BY orders_unpaid "
  "WHERE status = 'awaiting_payment' "
  "AND created_at <= ?1 AND (created_at, id) > (?2, ?3) "
  "ORDER BY created_at, id LIMIT ?4")
/* A card payment under way (CHECKOUT_UNDER_WAY: a bank debit still to
 * confirm): its order is neither reminded nor cancelled meanwhile. */
#define NO_PAYMENT_UNDER_WAY \
  "NOT EXISTS (SELECT 1 FROM checkout_sessions c " \
  "WHERE c.order_id = orders.id AND c.status = 'open' " \
  "AND c.payment_intent IS NOT NULL)"
/* The reminder's decision: an order still unpaid and never reminded. */
X(ORDER_REMIND,
  "UPDATE orders SET reminded_at = ?1 WHERE id = ?2 "
  "AND status = 'awaiting_payment' AND reminded_at IS NULL AND "
  NO_PAYMENT_UNDER_WAY)
/* The automatic cancellation's: ORDER_CANCEL's, and no payment under
 * way (the consultant may still cancel such an order by hand). */
X(ORDER_AUTO_CANCEL,
  "UPDATE orders SET status = 'cancelled', cancelled_at = ?1, "
  "updated_at = ?1 WHERE id = ?2 AND status = 'awaiting_payment' AND "
  "NOT EXISTS (SELECT 1 FROM ledger l WHERE l.order_id = orders.id) AND "
  NO_PAYMENT_UNDER_WAY)
/* The digest's decision: the first to insert the day sends it. */
X(DIGEST_DAY_CLAIM,
  "INSERT INTO digest_days (day, sent_at) VALUES (?, ?) "
  "ON CONFLICT (day) DO NOTHING")
/* The digest's counts: answers due from ?1 to ?2 (a range of
 * orders_queue per status), and open refund requests. */
X(DIGEST_DUE_COUNT,
  "SELECT count(*) FROM orders INDEXED BY orders_queue "
  "WHERE status IN ('paid', 'followup') AND due_at >= ?1 AND due_at < ?2")
X(DIGEST_INBOX,
  "SELECT count(*) FROM inbound INDEXED BY inbound_status "
  "WHERE status = 'inbox'")
X(DIGEST_REFUNDS_OPEN,
  "SELECT count(*) FROM refund_requests INDEXED BY refund_requests_open "
  "WHERE status = 'open'")

/* Mail received (mail_intake.c; sql/021_inbound.sql). */
X(INBOUND_BY_KEY, "SELECT id FROM inbound WHERE message_key = ?")
X(INBOUND_INSERT,
  "INSERT INTO inbound (message_key, via, received_at, from_addr, "
  "from_name, subject, body, attachments, status, reason, order_id, "
  "suggested_id, outbox_id, raw_size, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
  "?, ?, nullif(?, 0), nullif(?, 0), nullif(?, 0), ?, ?)")
X(INBOUND_SET_REASON, "UPDATE inbound SET reason = ? WHERE id = ?")
/* Messages from one sender in the last hour (inbound_from). */
X(INBOUND_SENDER_COUNT,
  "SELECT count(*) FROM inbound WHERE from_addr = ? AND received_at > ?")
X(INBOUND_DROP,
  "UPDATE inbound_drops SET n = n + 1, last_at = ? WHERE reason = ?")
/* The order of email ? that a bounce names; none for an email wiped
 * once delivered or of an erased order (its bounce is dropped, so no
 * address comes back into the store). */
X(OUTBOX_ORDER_OF,
  "SELECT coalesce(b.order_id, 0) FROM outbox b WHERE b.id = ? AND "
  "b.wipe_when_done = 0 AND NOT EXISTS (SELECT 1 FROM orders o WHERE "
  "o.id = b.order_id AND o.erased_at IS NOT NULL)")
/* A bounce: the message it names, unless it bounced before. */
X(OUTBOX_BOUNCE,
  "UPDATE outbox SET status = 'bounced', bounced_at = ?, bounce = ? "
  "WHERE id = ? AND status <> 'bounced'")
X(OUTBOX_KIND_EXISTS,
  "SELECT 1 FROM outbox WHERE order_id = ? AND kind = ? LIMIT 1")

/* Files (files.c; sql/022_files.sql). The bytes are written and read
 * with incremental blob I/O: the INSERT makes room (zeroblob). */
X(FILE_INSERT,
  "INSERT INTO files (order_id, message_id, name, kind, size, sha256, "
  "user_id, created_at, data) VALUES (?, nullif(?, 0), ?, ?, ?, ?, "
  "nullif(?, 0), ?, zeroblob(?))")
/* The dashboard's storage line: one row kept by triggers. */
X(DASH_FILES, "SELECT files, bytes FROM files_usage WHERE id = 1")
/* An order's files, for its thread and draft (index files_order). */
X(FILES_BY_ORDER,
  "SELECT id, coalesce(message_id, 0), name, kind, size FROM files "
  "WHERE order_id = ? ORDER BY id")
/* The reply draft's files become the sent reply's ?1. */
X(FILES_DRAFT_SEND,
  "UPDATE files SET message_id = ?1 WHERE order_id = ?2 AND "
  "message_id IS NULL")
/* A file taken off order ?2's reply draft before it is sent. */
X(FILE_DRAFT_REMOVE,
  "DELETE FROM files WHERE id = ?1 AND order_id = ?2 AND "
  "message_id IS NULL")
/* The message just written into order ?'s thread, for the files of an
 * email (index messages_order). */
X(MESSAGE_NEWEST,
  "SELECT id FROM messages WHERE order_id = ? ORDER BY id DESC LIMIT 1")
/* A cancelled order's files (files_order). */
X(FILES_REMOVE_ORDER, "DELETE FROM files WHERE order_id = ?")
/* Every file's hash, for pmbctl check. */
X(FILE_ALL, "SELECT id, name, size, sha256 FROM files ORDER BY id")
/* A file for staff: any (?2 = 0) or of order ?2. */
X(FILE_STAFF,
  "SELECT name, kind, size FROM files WHERE id = ?1 AND "
  "(?2 = 0 OR order_id = ?2)")
/* A file for the client of order ?2: one of a message the status page
 * shows (never a note's, an extra's, or one on a draft). */
X(FILE_CLIENT,
  "SELECT f.name, f.kind, f.size FROM files f JOIN messages m ON "
  "m.id = f.message_id WHERE f.id = ?1 AND f.order_id = ?2 AND "
  "m.kind NOT IN ('note', 'extra')")

/* Privacy: erase and sweep (privacy.c). The wipes of one order's
 * personal data all read the same numbered values: ?1 the order, ?2 its
 * address lowered ("" if none), ?3 its name lowered, ?4 its client IP,
 * ?5 now; each names only those it needs. */
/* Why an order cannot be erased: erased_at, a refund open, a payment
 * job pending, the net paid, and the times of the guarantee. */
X(PRIVACY_STATE,
  "SELECT o.erased_at IS NOT NULL, o.status = 'refund_requested' OR "
  "EXISTS (SELECT 1 FROM refund_requests q WHERE q.order_id = o.id AND "
  "q.status IN ('open', 'pending')), "
  "EXISTS (SELECT 1 FROM pay_jobs j WHERE j.order_id = o.id AND "
  "j.status IN ('queued', 'sending')), "
  "coalesce((SELECT sum(CASE kind WHEN 'payment' THEN amount ELSE -amount "
  "END) FROM ledger l WHERE l.order_id = o.id), 0), "
  "coalesce(o.paid_at, 0), coalesce(o.answered_at, 0), o.status "
  "FROM orders o WHERE o.id = ?")
/* The order's client IP, for its rate-limit rows. */
X(PRIVACY_CLIENT_IP, "SELECT client_ip FROM orders WHERE id = ?")
/* The decision: only an order not erased yet. */
X(PRIVACY_ORDER_ERASE,
  "UPDATE orders SET erased_at = ?5, updated_at = ?5, name = '', "
  "email = '', company = '', website = '', client_ip = '', "
  "reply_draft = '' WHERE id = ?1 AND erased_at IS NULL")
X(PRIVACY_WIPE_MESSAGES,
  "UPDATE messages SET body = '', html = NULL WHERE order_id = ?1")
X(PRIVACY_WIPE_HISTORY,
  "UPDATE status_history SET note = '' WHERE order_id = ?1")
/* The order's audit rows, and rows of no order whose text holds the
 * address (a discarded email's sender, ...). */
X(PRIVACY_WIPE_AUDIT,
  "UPDATE audit SET detail = '', ip = '' WHERE order_id = ?1 OR "
  "(order_id IS NULL AND ?2 <> '' AND instr(lower(detail), ?2) > 0)")
X(PRIVACY_WIPE_REFUNDS,
  "UPDATE refund_requests SET reason = '', decline_reason = '' "
  "WHERE order_id = ?1")
X(PRIVACY_WIPE_FEEDBACK,
  "UPDATE feedback SET body = '' WHERE order_id = ?1")
/* A testimonial goes whole (rating_counts counts orders.rating, which
 * stays). */
X(PRIVACY_WIPE_TESTIMONIALS,
  "DELETE FROM testimonials WHERE order_id = ?1")
/* Received mail of the order, suggested for it, or from the address;
 * message_key stays unique and says nothing. */
X(PRIVACY_WIPE_INBOUND,
  "UPDATE inbound SET message_key = 'erased:' || id, from_addr = '', "
  "from_name = '', subject = '', body = '', attachments = '', "
  "reason = '', raw = x'' WHERE order_id = ?1 OR suggested_id = ?1 OR "
  "(?2 <> '' AND from_addr = ?2 COLLATE NOCASE)")
/* The order's emails, and emails of no order (digests, lost links)
 * whose recipient or text holds the address or the name (of three
 * letters or more: a shorter one would match too much): erasure is
 * rare, so a scan of the outbox's rows of no order is acceptable. An
 * email not yet sent is given up (there is no one to send it to). */
X(PRIVACY_WIPE_OUTBOX,
  "UPDATE outbox SET to_addr = '', to_name = '', subject = '', "
  "body_text = '', body_html = '', last_error = '', bounce = '', "
  "status = CASE WHEN status IN ('queued', 'sending') THEN 'failed' "
  "ELSE status END, claimed_until = NULL WHERE order_id = ?1 OR "
  "(order_id IS NULL AND ((?2 <> '' AND (instr(lower(to_addr), ?2) OR "
  "instr(lower(subject), ?2) OR instr(lower(body_text), ?2) OR "
  "instr(lower(body_html), ?2))) OR (length(?3) >= 3 AND "
  "(instr(lower(to_name), ?3) OR instr(lower(subject), ?3) OR "
  "instr(lower(body_text), ?3) OR instr(lower(body_html), ?3)))))")
/* Rate-limit rows keyed by the address (ask-email:, lost-email:) or
 * the order's IP (ask-ip:, lost-ip:). The intake's limit per sender
 * counts inbound rows by from_addr (PRIVACY_WIPE_INBOUND wipes them);
 * login-ip: keys are staff's. */
X(PRIVACY_WIPE_RATE,
  "DELETE FROM rate_events WHERE (?2 <> '' AND key IN "
  "('ask-email:' || ?2, 'lost-email:' || ?2)) OR (?4 <> '' AND key IN "
  "('ask-ip:' || ?4, 'lost-ip:' || ?4))")
X(PRIVACY_WIPE_FLAGS,
  "UPDATE order_flags SET detail = '', resolution = '' WHERE order_id = ?1")
X(PRIVACY_WIPE_CHECKOUT,
  "UPDATE checkout_sessions SET last_error = '' WHERE order_id = ?1")
X(PRIVACY_WIPE_CARD_REFUNDS,
  "UPDATE card_refunds SET last_error = '' WHERE order_id = ?1")
X(PRIVACY_WIPE_PAY_JOBS,
  "UPDATE pay_jobs SET last_error = '' WHERE order_id = ?1")
/* The order's search document, rewritten now (empty) rather than
 * left to the lazy indexer: its pending row (noted by the UPDATEs'
 * triggers) is done. */
X(PRIVACY_UNINDEX, "DELETE FROM search_fts WHERE rowid = ?1")
X(PRIVACY_REINDEX,
  "INSERT INTO search_fts (rowid, name, email, question, replies, notes) "
  "SELECT id, name, email, question, replies, notes FROM search_docs "
  "WHERE id = ?1")
X(PRIVACY_PENDING_DONE, "DELETE FROM search_pending WHERE order_id = ?1")
/* The order's open erasure request is done (0 rows: none was open). */
X(PRIVACY_REQUEST_DONE,
  "UPDATE erasure_requests SET done_at = ?2, done_by = nullif(?3, 0) "
  "WHERE order_id = ?1 AND done_at IS NULL")
/* The "your data is erased" email is wiped once delivered. */
X(PRIVACY_MAIL_WIPE_LATER,
  "UPDATE outbox SET wipe_when_done = 1 WHERE id = ? AND kind = 'erased'")
/* outbox.c: a wipe_when_done email delivered or given up loses its
 * recipient and text (kind, dates and status stay). */
X(PRIVACY_MAIL_WIPE_DONE,
  "UPDATE outbox SET to_addr = '', to_name = '', subject = '', "
  "body_text = '', body_html = '', last_error = '' WHERE id = ? AND "
  "wipe_when_done = 1 AND status IN ('sent', 'failed')")
/* search_index.c's search_merge_all, for the scrub: the whole index
 * merged into one segment at once. */
X(SEARCH_OPTIMIZE_ALL,
  "INSERT INTO search_fts (search_fts) VALUES ('optimize')")
/* The scrub's check: every term FTS5 holds, by document (fts5vocab,
 * made TEMP per connection); an erased order must have none. */
X(PRIVACY_VOCAB_CREATE,
  "CREATE VIRTUAL TABLE IF NOT EXISTS temp.privacy_vocab USING "
  "fts5vocab(main, search_fts, instance)")
X(PRIVACY_VOCAB_ERASED,
  "SELECT count(*) FROM temp.privacy_vocab WHERE doc IN "
  "(SELECT id FROM orders WHERE erased_at IS NOT NULL)")
/* The sweep: orders closed before ?1 (refunded, cancelled, or answered
 * with the guarantee of ?2 seconds over), not erased, after id ?3,
 * lowest first, at most ?4 (index orders_not_erased). */
X(PRIVACY_SWEEP_DUE,
  "SELECT id FROM orders WHERE erased_at IS NULL AND status IN "
  "('refunded', 'cancelled', 'answered', 'followup') AND id > ?3 AND ("
  "(status = 'refunded' AND refunded_at < ?1) OR "
  "(status = 'cancelled' AND cancelled_at < ?1) OR "
  "(status IN ('answered', 'followup') AND "
  "coalesce(last_answered_at, answered_at) + ?2 < ?1)) "
  "ORDER BY id LIMIT ?4")
/* pmbctl privacy erase --email: that person's orders, any case (index
 * on lower(email)). */
X(PRIVACY_ORDERS_BY_EMAIL,
  "SELECT id, number FROM orders WHERE lower(email) = ? ORDER BY id")
