/* db_stmts.h: every SQL statement of the program, in one place.
 * X(NAME, "SQL") makes ST_NAME. Bound with ?, never with printf. */

/* Transactions. */
X(BEGIN, "BEGIN IMMEDIATE")
X(COMMIT, "COMMIT")
X(ROLLBACK, "ROLLBACK")

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

/* Audit. */
X(AUDIT_INSERT,
  "INSERT INTO audit (at, user_id, action, order_id, ip, detail) "
  "VALUES (?, ?, ?, ?, ?, ?)")

/* Orders: the client's side. */
X(ORDER_INSERT,
  "INSERT INTO orders (form_token, name, email, company, website, topic, "
  "price, currency, status, created_at, due_at, client_ip, updated_at) "
  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'awaiting_payment', ?, ?, ?, ?)")
X(ORDER_BY_FORM_TOKEN, "SELECT id FROM orders WHERE form_token = ?")
X(ORDER_BY_ID,
  "SELECT id, number, name, email, company, website, topic, price, "
  "currency, status, created_at, due_at, paid_at, answered_at, "
  "answer_viewed_at, refund_requested_at, refunded_at, cancelled_at, "
  "followups_used, last_answered_at, rating "
  "FROM orders WHERE id = ?")
X(ORDER_SET_VIEWED,
  "UPDATE orders SET answer_viewed_at = ? "
  "WHERE id = ? AND answer_viewed_at IS NULL AND answered_at IS NOT NULL")
X(ORDER_FOLLOWUP,
  "UPDATE orders SET status = 'followup', followups_used = "
  "followups_used + 1, due_at = ?, updated_at = ? "
  "WHERE id = ? AND status = 'answered' AND followups_used < ?")
X(ORDERS_BY_EMAIL,
  "SELECT id, number, created_at, status FROM orders WHERE email = ? "
  "ORDER BY created_at DESC, id DESC LIMIT 20")

/* The thread and the history. */
X(MESSAGE_INSERT,
  "INSERT INTO messages (order_id, kind, body, user_id, created_at) "
  "VALUES (?, ?, ?, ?, ?)")
X(MESSAGES_PUBLIC,
  "SELECT kind, body, created_at FROM messages "
  "WHERE order_id = ? AND kind <> 'note' ORDER BY id")
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

/* Rate limits. */
X(RATE_COUNT,
  "SELECT count(*), min(at) FROM rate_events WHERE key = ? AND at > ?")
X(RATE_INSERT, "INSERT INTO rate_events (key, at) VALUES (?, ?)")
X(RATE_PRUNE, "DELETE FROM rate_events WHERE key = ? AND at <= ?")

/* Checks. */
X(INTEGRITY, "PRAGMA integrity_check")
