/* audit.c: writing the audit trail (the page that reads it is
 * page_admin_audit.c). */
#include "audit.h"
#include "db.h"
#include "http.h"
#include "util.h"

int
audit_log(struct request *r, int64_t user_id, const char *action,
    int64_t order_id, const char *detail)
{
	const char *ip = r != NULL ? req_client_ip(r) : "";

	if (user_id > 0 && order_id > 0)
		return db_run(ST_AUDIT_INSERT, "iititt", now_unix(), user_id,
		    action, order_id, ip, detail) == DB_DONE;
	if (user_id > 0)
		return db_run(ST_AUDIT_INSERT, "iitntt", now_unix(), user_id,
		    action, ip, detail) == DB_DONE;
	if (order_id > 0)
		return db_run(ST_AUDIT_INSERT, "intitt", now_unix(), action,
		    order_id, ip, detail) == DB_DONE;
	return db_run(ST_AUDIT_INSERT, "intntt", now_unix(), action, ip,
	    detail) == DB_DONE;
}
