/*
 * array.h - growing a heap array by doubling, for the builders that append
 * to one (the schema compiler's nodes, the pattern compiler's program).
 */
#ifndef AG_ARRAY_H
#define AG_ARRAY_H

#include <stddef.h>

/*
 * Makes room for one more element of elem bytes in *arr, which holds used
 * of *cap elements: when it is full, reallocates it to twice the capacity
 * (16 the first time) and updates *arr and *cap. Returns 0, or -1 when
 * memory runs out or the size would overflow; *arr is then unchanged and
 * still owned by the caller.
 */
int array_grow(void **arr, size_t *cap, size_t used, size_t elem);

#endif
