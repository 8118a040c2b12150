#ifndef COPENBLAS_SHIM_H
#define COPENBLAS_SHIM_H
// With pkg-config this resolves to OpenBLAS's own cblas.h (which also declares openblas_*).
#include <cblas.h>
#endif
