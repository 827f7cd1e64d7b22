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

/* Checks. */
X(INTEGRITY, "PRAGMA integrity_check")
