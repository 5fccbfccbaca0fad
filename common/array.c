/*
 * array.c - growing a heap array by doubling (see array.h).
 */
#include <stdint.h>
#include <stdlib.h>

#include "array.h"

int array_grow(void **arr, size_t *cap, size_t used, size_t elem)
{
    if (used < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    if (elem == 0 || ncap < *cap || ncap > SIZE_MAX / elem)
        return -1;
    void *n = realloc(*arr, ncap * elem);
    if (n == NULL)
        return -1;
    *arr = n;
    *cap = ncap;
    return 0;
}
