/*
 * common/rng.c - splitmix64: small, fast, good enough for fault selection.
 */
#include "common/config.h"

#include "common/rng.h"

uint64_t bd_rng_hash64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void bd_rng_seed(struct bd_rng *r, uint64_t seed)
{
    r->s = seed;
}

uint64_t bd_rng_next(struct bd_rng *r)
{
    r->s += 0x9e3779b97f4a7c15ULL;
    return bd_rng_hash64(r->s - 0x9e3779b97f4a7c15ULL);
}

double bd_rng_unit(uint64_t v)
{
    /* 53 high bits give every double in [0,1) with equal spacing. */
    return (double)(v >> 11) * (1.0 / 9007199254740992.0);
}
