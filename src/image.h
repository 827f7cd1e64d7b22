/* image.h: the pixel size of a JPEG, PNG or WebP file, read from its
 * header, for the width and height attributes of an <img>. */
#ifndef PMB_IMAGE_H
#define PMB_IMAGE_H

#include <stddef.h>

/* Reads the width and height of the image held in data (len bytes):
 * PNG (IHDR), JPEG (the first start-of-frame marker) or WebP (VP8, VP8L
 * or VP8X). Returns NULL, or why no size was found ("not a PNG, JPEG or
 * WebP image", "no frame header"). */
const char *image_size(const unsigned char *data, size_t len, int *w,
	    int *h);

#endif
