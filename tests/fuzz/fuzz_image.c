/* fuzz_image: image_size, which reads consultant_photo's width and
 * height from its header (PNG, JPEG, WebP). Any bytes give either a size
 * of 1 to 65,535 each way or a reason; never a read past the end (the
 * input is libFuzzer's own buffer of exactly its size, which ASan
 * guards). */
#include <stdint.h>

#include "image.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*why;
	int		 w = 0, h = 0;

	why = image_size(data, size, &w, &h);
	if (why == NULL)
		FUZZ_CHECK(w >= 1 && w <= 65535 && h >= 1 && h <= 65535,
		    "a usable size");
	else
		FUZZ_CHECK(*why != '\0', "a reason");
	return 0;
}
