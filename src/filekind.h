/* filekind.h: what an uploaded file is, decided from its content with
 * libmagic and a small zip directory reader (issue 19), never from the
 * client's file name or Content-Type. The kinds are the names of the
 * attachment_types setting: pdf png jpeg gif webp txt csv docx xlsx pptx
 * odt ods. SVG, HTML, XML, scripts, executables and the polyglots found
 * (an image or text with "<?php", "<script" or "<html" in its first
 * FILEKIND_HEAD bytes) are always refused. */
#ifndef PMB_FILEKIND_H
#define PMB_FILEKIND_H

#include <stddef.h>

/* The bytes of a file that libmagic and the polyglot check read: its
 * head. UTF-8 and NUL checks of text read the whole file. */
#define FILEKIND_HEAD	(64 * 1024)

/* Opens libmagic, loads its compiled database (magic.mgc, mmapped) and
 * reads one text so that libmagic touches all of it, once per process:
 * call it at start, before workers fork, so that they share those pages.
 * Returns 1 (also when already open), or 0 with why in err.
 * filekind_detect* call it themselves when it was not done. */
int		 filekind_open(char *err, size_t errsz);
/* Closes libmagic (at exit; safe when never opened). */
void		 filekind_close(void);

/* Decides the kind of the len bytes at data. Returns a kind name (static),
 * or NULL with *why set to a sentence fragment a client can read ("SVG
 * images are refused: they can carry scripts"). */
const char	*filekind_detect(const void *data, size_t len,
		    const char **why);
/* The same for the file at path, read in pieces (a 10 MB upload is
 * never held whole in memory). */
const char	*filekind_detect_file(const char *path, const char **why);

/* The Content-Type to serve a kind with ("application/pdf",
 * "text/plain; charset=utf-8", ...), or NULL for an unknown name. */
const char	*filekind_mime(const char *kind);

/* Returns 1 if kind is a raster image (png, jpeg, gif, webp: its type
 * is image/...), which pmb-imgclean cleans and pages show as a
 * thumbnail; else 0 (also for NULL or an unknown name). */
int		 filekind_is_image(const char *kind);

/* The zip reader alone (for the tests and the fuzzer): reads the End Of
 * Central Directory record and the central directory of the len bytes at
 * data and returns "docx", "xlsx", "pptx", "odt" or "ods", or NULL with
 * *why. Zip64, multi-disk archives, bytes after the directory and
 * macros (vbaProject.bin) are refused. */
const char	*filekind_zip(const void *data, size_t len, const char **why);

#endif
