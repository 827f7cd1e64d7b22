/* fuzz_imap: the IMAP response reader of src/mail_imap.c (imap_line,
 * imap_literal, literal_at_end, imap_response and the SELECT, SEARCH,
 * FETCH handlers), through mail_imap_read, with no network.
 * Input: one byte (bits 0-1: the command, SELECT p1, UID SEARCH p2,
 * UID FETCH p3, UID STORE or MOVE p4; bit 2: imap_done_folder set, so
 * SEARCH ALL and MOVE; bits 3-7: the UID asked, 1 + that), one byte
 * (the size of the pieces the server's bytes come in; 0: all at once),
 * then the server's bytes. They are read whole and in pieces: both
 * readings must agree exactly. Checked too: a failure has a reason; the
 * UIDs found are > 0, and in order after a SEARCH that succeeded (the
 * same UID only side by side, so the pass takes each once); a message handed on is exactly the literal
 * the server announced ("{N}" and its N bytes, as sent), else nothing
 * is. AddressSanitizer watches the reads (the bytes received are held
 * in a buffer of their exact size). */
#include <stdint.h>
#include <string.h>

#include "conf.h"
#include "mail_imap.h"
#include "mail_intake.h"
#include "util.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	(void)argc;
	(void)argv;
	if (!conf_parse("", "defaults", err, sizeof(err)))
		abort();
	return 0;
}

/* Whether the message m (n bytes) is the literal "{size}" CRLF (or LF)
 * of the server's bytes s (len): all of its size bytes (those
 * mail_intake_sized takes, INTAKE_MAX_BYTES, of a bigger one). The
 * size may be written with leading zeros ("{05}"). */
static int
is_literal(const char *s, size_t len, uint64_t size, const char *m, size_t n)
{
	if (n != (size < INTAKE_MAX_BYTES ? size : INTAKE_MAX_BYTES))
		return 0;
	for (size_t i = 0; i < len; i++) {
		size_t		 at = i + 1, d = i;
		uint64_t	 v = 0, scale = 1;

		if (s[i] != '}')
			continue;
		at += at < len && s[at] == '\r';
		if (at >= len || s[at] != '\n' || len - at - 1 < n ||
		    memcmp(s + at + 1, m, n) != 0)
			continue;
		for (; d > 0 && s[d - 1] >= '0' && s[d - 1] <= '9' &&
		    scale <= 1000000000000000ULL; d--, scale *= 10)
			v += (uint64_t)(s[d - 1] - '0') * scale;
		if (d > 0 && d < i && s[d - 1] == '{' && v == size)
			return 1;
	}
	return 0;
}

/* Reads the answer in pieces of piece bytes (0: whole) into out and
 * err, checks what it gives, and returns mail_imap_read's answer. */
static int
read_checked(enum imap_step step, uint32_t uid, const char *s, size_t len,
    size_t piece, struct imap_read *out, struct buf *err)
{
	int ok;

	memset(out, 0, sizeof(*out));
	buf_init(&out->msg);
	ok = mail_imap_read(step, uid, s, len, piece, out, err);
	FUZZ_CHECK(ok || err->len > 0, "a failure has a reason");
	FUZZ_CHECK(!ok || err->len == 0, "no reason without a failure");
	for (size_t i = 0; i < out->nuids; i++) {
		FUZZ_CHECK(out->uids[i] > 0, "UIDs are > 0");
		/* A failed SEARCH leaves them as found: the pass takes none. */
		FUZZ_CHECK(!ok || i == 0 || out->uids[i - 1] <= out->uids[i],
		    "UIDs in order, a repeated one side by side");
	}
	FUZZ_CHECK(step == IMAP_STEP_SEARCH || out->nuids == 0,
	    "UIDs only from SEARCH");
	FUZZ_CHECK(out->got || out->msg.len == 0, "no message not got");
	FUZZ_CHECK(!out->got || step == IMAP_STEP_FETCH,
	    "a message only from FETCH");
	if (out->got)
		FUZZ_CHECK(is_literal(s, len, out->size, out->msg.data != NULL ?
		    out->msg.data : "", out->msg.len),
		    "the message is the literal announced, all of it");
	return ok;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_read	 whole, cut;
	struct buf		 err1, err2;
	enum imap_step		 step;
	char			*done = conf.imap_done_folder;
	const char		*s = (const char *)data + 2;
	uint32_t		 uid;
	size_t			 len, piece;
	int			 ok1, ok2;

	if (size < 2)
		return 0;
	step = (enum imap_step)(data[0] & 3);
	conf.imap_done_folder = (data[0] & 4) ? (char *)"Done" : (char *)"";
	uid = 1 + (uint32_t)(data[0] >> 3);
	piece = data[1];
	len = size - 2;
	buf_init(&err1);
	buf_init(&err2);
	ok1 = read_checked(step, uid, s, len, 0, &whole, &err1);
	ok2 = read_checked(step, uid, s, len, piece, &cut, &err2);
	FUZZ_CHECK(ok1 == ok2 && err1.len == err2.len && (err1.len == 0 ||
	    memcmp(err1.data, err2.data, err1.len) == 0),
	    "whole and in pieces: the same answer");
	FUZZ_CHECK(whole.nuids == cut.nuids && (whole.nuids == 0 ||
	    memcmp(whole.uids, cut.uids, whole.nuids * sizeof(uint32_t)) == 0),
	    "whole and in pieces: the same UIDs");
	FUZZ_CHECK(whole.got == cut.got && whole.size == cut.size &&
	    whole.msg.len == cut.msg.len && (whole.msg.len == 0 ||
	    memcmp(whole.msg.data, cut.msg.data, whole.msg.len) == 0),
	    "whole and in pieces: the same message");
	conf.imap_done_folder = done;
	free(whole.uids);
	free(cut.uids);
	buf_free(&whole.msg);
	buf_free(&cut.msg);
	buf_free(&err1);
	buf_free(&err2);
	return 0;
}
