/* fuzz_filekind: the kind of an upload (src/filekind.c, issue 19): the
 * zip directory reader alone, then the whole detector (libmagic, the
 * polyglot and UTF-8 checks, txt or csv) on the same bytes, from memory
 * and from a file (a memfd read through /proc/self/fd, so the pread
 * path is fuzzed too). A kind is always one with a Content-Type, a
 * refusal always has a reason, both paths agree, and a zip kind from the
 * detector is the zip reader's. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "filekind.h"
#include "fuzz.h"

/* Checks one answer of the detector: a kind with a type, or a reason. */
static void
check_answer(const char *kind, const char *why)
{
	if (kind != NULL)
		FUZZ_CHECK(filekind_mime(kind) != NULL, "a kind with a type");
	else
		FUZZ_CHECK(why != NULL && *why != '\0', "a reason");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*zip, *kind, *fkind, *why = NULL, *fwhy = NULL;
	char		 path[64];
	int		 fd;

	zip = filekind_zip(data, size, &why);
	if (zip != NULL)
		FUZZ_CHECK(strcmp(zip, "docx") == 0 ||
		    strcmp(zip, "xlsx") == 0 || strcmp(zip, "pptx") == 0 ||
		    strcmp(zip, "odt") == 0 || strcmp(zip, "ods") == 0,
		    "an Office or OpenDocument kind");
	else
		FUZZ_CHECK(why != NULL && *why != '\0', "a zip reason");
	why = NULL;
	kind = filekind_detect(data, size, &why);
	check_answer(kind, why);
	if (kind != NULL && size >= 4 && memcmp(data, "PK\3\4", 4) == 0)
		FUZZ_CHECK(zip != NULL && strcmp(zip, kind) == 0,
		    "a zip's kind is the zip reader's");
	if ((fd = memfd_create("fuzz", MFD_CLOEXEC)) < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		fkind = filekind_detect_file(path, &fwhy);
		check_answer(fkind, fwhy);
		FUZZ_CHECK((kind == NULL && fkind == NULL) || (kind != NULL &&
		    fkind != NULL && strcmp(kind, fkind) == 0),
		    "the same kind from memory and from a file");
	}
	close(fd);
	return 0;
}
