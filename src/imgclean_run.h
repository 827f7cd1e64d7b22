/* imgclean_run.h: cleaning an uploaded image in the pmb-imgclean helper
 * process (issue 19): libvips never loads into a FastCGI worker. */
#ifndef PMB_IMGCLEAN_RUN_H
#define PMB_IMGCLEAN_RUN_H

#include <stddef.h>

/* The seconds a helper may take before it is killed. */
#define IMGCLEAN_TIMEOUT	20

/* Runs pmb-imgclean on the image file in, writing the cleaned image
 * (upright, no metadata, same format) to out. The helper is
 * PMB_LIBEXEC_DIR/pmb-imgclean, or $PMB_IMGCLEAN when set (tests). It is
 * killed after IMGCLEAN_TIMEOUT seconds (see imgclean_set_timeout).
 * Returns 0, or -1 with the helper's one-line reason (or why it could
 * not run) in err. The caller decides the cleaned file's kind again. */
int	imgclean_run(const char *in, const char *out, char *err,
	    size_t errsz);

/* Changes the timeout of later imgclean_run calls to seconds (> 0); for
 * the tests. */
void	imgclean_set_timeout(int seconds);

#endif
