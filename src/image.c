/* image.c: the pixel size of an image from its header bytes (PNG, JPEG,
 * WebP), without decoding it. Every read is bounds-checked: the bytes
 * come from a file the operator names, but a truncated or odd file must
 * give an error, never a read past the end. */
#include <string.h>

#include "image.h"

/* Big- and little-endian reads of 16 and 32 bits at p. */
static unsigned
be16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static unsigned long
be32(const unsigned char *p)
{
	return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 |
	    (unsigned long)p[2] << 8 | p[3];
}

static unsigned long
le24(const unsigned char *p)
{
	return (unsigned long)p[0] | (unsigned long)p[1] << 8 |
	    (unsigned long)p[2] << 16;
}

/* PNG: the IHDR chunk comes first, width and height at 16 and 20. */
static const char *
png_size(const unsigned char *d, size_t len, unsigned long *w,
    unsigned long *h)
{
	if (len < 24 || memcmp(d + 12, "IHDR", 4) != 0)
		return "a PNG without its IHDR header";
	*w = be32(d + 16);
	*h = be32(d + 20);
	return NULL;
}

/* Returns 1 if JPEG marker m is a start of frame (SOF0-SOF15 but DHT
 * C4, JPG C8 and DAC CC), which holds the image's size. */
static int
jpeg_sof(unsigned m)
{
	return m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 &&
	    m != 0xcc;
}

/* JPEG: walks the segments after SOI to the first start of frame:
 * FF m, a 16-bit length (counting itself), then for SOF a precision
 * byte, the height and the width. */
static const char *
jpeg_size(const unsigned char *d, size_t len, unsigned long *w,
    unsigned long *h)
{
	size_t i = 2;

	while (i + 4 <= len) {
		unsigned m;

		if (d[i] != 0xff)
			return "a JPEG whose segments do not follow each other";
		m = d[i + 1];
		if (m == 0xff) {		/* fill byte */
			i++;
			continue;
		}
		if (m == 0xd8 || (m >= 0xd0 && m <= 0xd7) || m == 0x01) {
			i += 2;			/* markers without a length */
			continue;
		}
		if (m == 0xd9 || m == 0xda)
			break;			/* end of image, start of scan */
		if (jpeg_sof(m)) {
			if (i + 9 > len)
				break;
			*h = be16(d + i + 5);
			*w = be16(d + i + 7);
			return NULL;
		}
		i += 2 + be16(d + i + 2);
	}
	return "a JPEG with no frame header before its image data";
}

/* WebP: "RIFF" size "WEBP", then a VP8 (lossy: 14-bit sizes after the
 * start code), VP8L (lossless: 14-bit sizes minus one, packed) or VP8X
 * (extended: 24-bit sizes minus one) chunk. */
static const char *
webp_size(const unsigned char *d, size_t len, unsigned long *w,
    unsigned long *h)
{
	if (len >= 30 && memcmp(d + 12, "VP8 ", 4) == 0 &&
	    d[23] == 0x9d && d[24] == 0x01 && d[25] == 0x2a) {
		*w = (d[26] | (unsigned)d[27] << 8) & 0x3fff;
		*h = (d[28] | (unsigned)d[29] << 8) & 0x3fff;
		return NULL;
	}
	if (len >= 25 && memcmp(d + 12, "VP8L", 4) == 0 && d[20] == 0x2f) {
		unsigned long bits = (unsigned long)d[21] |
		    (unsigned long)d[22] << 8 | (unsigned long)d[23] << 16 |
		    (unsigned long)d[24] << 24;

		*w = (bits & 0x3fff) + 1;
		*h = ((bits >> 14) & 0x3fff) + 1;
		return NULL;
	}
	if (len >= 30 && memcmp(d + 12, "VP8X", 4) == 0) {
		*w = le24(d + 24) + 1;
		*h = le24(d + 27) + 1;
		return NULL;
	}
	return "a WebP with no VP8, VP8L or VP8X header";
}

const char *
image_size(const unsigned char *d, size_t len, int *w, int *h)
{
	static const unsigned char png_sig[8] = { 0x89, 'P', 'N', 'G', '\r',
	    '\n', 0x1a, '\n' };
	unsigned long	 uw = 0, uh = 0;
	const char	*why;

	if (len >= 8 && memcmp(d, png_sig, 8) == 0)
		why = png_size(d, len, &uw, &uh);
	else if (len >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff)
		why = jpeg_size(d, len, &uw, &uh);
	else if (len >= 16 && memcmp(d, "RIFF", 4) == 0 &&
	    memcmp(d + 8, "WEBP", 4) == 0)
		why = webp_size(d, len, &uw, &uh);
	else
		return "not a PNG, JPEG or WebP image";
	if (why != NULL)
		return why;
	/* 0 is no size; past 65,535 is no photo for a web page. */
	if (uw == 0 || uh == 0 || uw > 65535 || uh > 65535)
		return "an image whose header gives no usable size";
	*w = (int)uw;
	*h = (int)uh;
	return NULL;
}
