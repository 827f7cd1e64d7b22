/* imgclean.c: pmb-imgclean, the helper that cleans one uploaded image
 * (issue 19) in its own process, so that libvips (20-50 MB, many image
 * parsers) never lives in a FastCGI worker; imgclean_run.c starts it.
 *
 *   pmb-imgclean [--max-pixels=N] IN OUT
 *
 * Reads the PNG, JPEG, GIF or WebP image IN (a path, or - for stdin),
 * refuses it when it has more than N pixels (default 50 million, all
 * frames counted: decompression bombs) before decoding any, turns it
 * upright by its EXIF orientation (vips_autorot; single-frame images
 * only, the frames of an animation are kept as they are) and writes it
 * to OUT in the same format without any metadata (strip: EXIF, GPS, XMP,
 * ICC, comments). GIF is saved as GIF (libvips 8.14 in Debian 12 saves
 * GIF through cgif). Exit status 0; 1 with one line on stderr when the
 * image is refused or cannot be cleaned (OUT is then removed); 2 for a
 * wrong call.
 *
 * Paths are opened here and handed to libvips as descriptors: libvips
 * reads options from a file name ("a.jpg[shrink=8]"), a descriptor has
 * none. Only the four loaders above are used (libvips' untrusted ones,
 * ImageMagick among them, are also blocked), one thread, no cache. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vips/vips.h>

/* The most pixels an image may have (width x height x frames). */
#define IMGCLEAN_MAX_PIXELS	50000000ULL
/* The quality lossy formats (JPEG, WebP) are saved with. */
#define IMGCLEAN_QUALITY	90

/* The formats cleaned, by the class name of libvips' loader. */
enum fmt { FMT_PNG, FMT_JPEG, FMT_GIF, FMT_WEBP };

static const struct {
	const char	*loader;	/* vips_foreign_find_load_source's */
	enum fmt	 fmt;
} loaders[] = {
	{ "VipsForeignLoadPngSource", FMT_PNG },	/* libpng */
	{ "VipsForeignLoadSpngSource", FMT_PNG },	/* libspng */
	{ "VipsForeignLoadJpegSource", FMT_JPEG },
	{ "VipsForeignLoadNsgifSource", FMT_GIF },
	{ "VipsForeignLoadWebpSource", FMT_WEBP },
};

/* Prints "pmb-imgclean: why" and libvips' first error line, if any, as
 * one line on stderr. Returns 1 (the exit status). */
static int
fail(const char *why)
{
	const char	*v = vips_error_buffer();
	size_t		 n = strcspn(v, "\n");

	if (n > 0)
		fprintf(stderr, "pmb-imgclean: %s: %.*s\n", why, (int)n, v);
	else
		fprintf(stderr, "pmb-imgclean: %s\n", why);
	return 1;
}

/* Finds the format of the image in source. Returns 1 with *f set, or 0
 * when it is none of the four. */
static int
find_format(VipsSource *source, enum fmt *f)
{
	const char	*name = vips_foreign_find_load_source(source);
	size_t		 i;

	vips_error_clear();
	for (i = 0; name != NULL && i < sizeof(loaders) / sizeof(loaders[0]);
	    i++)
		if (strcmp(loaders[i].loader, name) == 0) {
			*f = loaders[i].fmt;
			return 1;
		}
	return 0;
}

/* Opens the image of source (format f) for reading; its pixels are only
 * decoded when it is written. All the frames of a GIF or WebP. Returns
 * the image, or NULL. */
static VipsImage *
load(VipsSource *source, enum fmt f)
{
	VipsImage	*img = NULL;
	int		 rc = -1;

	switch (f) {
	case FMT_PNG:
		rc = vips_pngload_source(source, &img, "fail_on",
		    VIPS_FAIL_ON_ERROR, NULL);
		break;
	case FMT_JPEG:
		rc = vips_jpegload_source(source, &img, "fail_on",
		    VIPS_FAIL_ON_ERROR, NULL);
		break;
	case FMT_GIF:
		rc = vips_gifload_source(source, &img, "n", -1, "fail_on",
		    VIPS_FAIL_ON_ERROR, NULL);
		break;
	case FMT_WEBP:
		rc = vips_webpload_source(source, &img, "n", -1, "fail_on",
		    VIPS_FAIL_ON_ERROR, NULL);
		break;
	}
	return rc == 0 ? img : NULL;
}

/* Writes img to target in format f without metadata. Returns 0 or -1. */
static int
save(VipsImage *img, VipsTarget *target, enum fmt f)
{
	switch (f) {
	case FMT_PNG:
		return vips_pngsave_target(img, target, "strip", TRUE, NULL);
	case FMT_JPEG:
		return vips_jpegsave_target(img, target, "strip", TRUE, "Q",
		    IMGCLEAN_QUALITY, NULL);
	case FMT_GIF:
		return vips_gifsave_target(img, target, "strip", TRUE, NULL);
	case FMT_WEBP:
		return vips_webpsave_target(img, target, "strip", TRUE, "Q",
		    IMGCLEAN_QUALITY, NULL);
	}
	return -1;
}

/* Cleans the image read from descriptor in into descriptor out. Returns
 * NULL, or why not (libvips' error buffer may say more). */
static const char *
clean(int in, int out, unsigned long long max_pixels)
{
	VipsSource	*source;
	VipsTarget	*target = NULL;
	VipsImage	*img = NULL, *up = NULL;
	enum fmt	 f;
	const char	*why = NULL;

	if ((source = vips_source_new_from_descriptor(in)) == NULL)
		return "cannot read the image";
	if (!find_format(source, &f))
		why = "not a PNG, JPEG, GIF or WebP image";
	else if ((img = load(source, f)) == NULL)
		why = "a broken image";
	else if ((unsigned long long)vips_image_get_width(img) *
	    (unsigned long long)vips_image_get_height(img) > max_pixels)
		why = "an image with too many pixels";
	else if (vips_image_get_page_height(img) < vips_image_get_height(img)) {
		/* An animation: its frames stay as they are. */
		up = img;
		g_object_ref(up);
	} else if (vips_autorot(img, &up, NULL) != 0)
		why = "cannot turn the image upright";
	if (why == NULL &&
	    (target = vips_target_new_to_descriptor(out)) == NULL)
		why = "cannot write the image";
	if (why == NULL && save(up, target, f) != 0)
		why = "cannot write the image";
	if (target != NULL)
		g_object_unref(target);
	if (up != NULL)
		g_object_unref(up);
	if (img != NULL)
		g_object_unref(img);
	g_object_unref(source);
	return why;
}

/* Reads --max-pixels=N from arg into *max. Returns 1, or 0 if arg is
 * not that option with a positive number. */
static int
max_pixels_arg(const char *arg, unsigned long long *max)
{
	const char	*opt = "--max-pixels=";
	char		*end;

	if (strncmp(arg, opt, strlen(opt)) != 0)
		return 0;
	errno = 0;
	*max = strtoull(arg + strlen(opt), &end, 10);
	return errno == 0 && *end == '\0' && *max > 0 &&
	    arg[strlen(opt)] >= '0' && arg[strlen(opt)] <= '9';
}

int
main(int argc, char *argv[])
{
	unsigned long long	 max = IMGCLEAN_MAX_PIXELS;
	int			 a = 1, in, out;
	const char		*why;

	if (a < argc && strncmp(argv[a], "--max-pixels", 12) == 0 &&
	    !max_pixels_arg(argv[a++], &max))
		a = argc;
	if (a < argc && strcmp(argv[a], "--") == 0)
		a++;
	if (argc - a != 2) {
		fprintf(stderr, "usage: pmb-imgclean [--max-pixels=N] IN|- "
		    "OUT\n");
		return 2;
	}
	/* One thread and no operation cache: a small, short process. */
	setenv("VIPS_CONCURRENCY", "1", 1);
	if (VIPS_INIT(argv[0]) != 0)
		return fail("cannot start libvips");
	vips_concurrency_set(1);
	vips_cache_set_max(0);
	vips_block_untrusted_set(TRUE);
	in = strcmp(argv[a], "-") == 0 ? STDIN_FILENO :
	    open(argv[a], O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return fail("cannot open the image");
	out = open(argv[a + 1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0600);
	if (out < 0)
		return fail("cannot create the cleaned image");
	why = clean(in, out, max);
	if (close(out) != 0 && why == NULL)
		why = "cannot write the image";
	if (why != NULL) {
		unlink(argv[a + 1]);
		return fail(why);
	}
	vips_shutdown();
	return 0;
}
