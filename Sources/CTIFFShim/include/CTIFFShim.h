#ifndef CTIFFSHIM_H
#define CTIFFSHIM_H
// Fixed-signature wrappers for libtiff's variadic TIFFGetField/TIFFSetField, which Swift cannot call.
#include <stdint.h>
#include <tiffio.h>

int ctiff_set_u16(TIFF *tif, uint32_t tag, uint16_t value);
int ctiff_set_u32(TIFF *tif, uint32_t tag, uint32_t value);
int ctiff_set_double(TIFF *tif, uint32_t tag, double value);
int ctiff_set_u16_pair(TIFF *tif, uint32_t tag, uint16_t a, uint16_t b);
int ctiff_set_string(TIFF *tif, uint32_t tag, const char *value);

/// Returns 1 and stores the value when the tag is present, 0 otherwise.
int ctiff_get_u16(TIFF *tif, uint32_t tag, uint16_t *value);
int ctiff_get_u32(TIFF *tif, uint32_t tag, uint32_t *value);
/// Like ctiff_get_u16 but falls back to the tag's default value (TIFFGetFieldDefaulted).
int ctiff_get_u16_defaulted(TIFF *tif, uint32_t tag, uint16_t *value);
int ctiff_get_u32_defaulted(TIFF *tif, uint32_t tag, uint32_t *value);

#endif
