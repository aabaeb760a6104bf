/*
 * common/rng.h - seeded, explicit-state pseudo random numbers.
 *
 * No hidden global state: callers own a struct bd_rng. bd_rng_hash64 is a
 * stateless mixer (splitmix64 finaliser) used to derive a draw from a request
 * (seed, rule, offset, ordinal), which is how the injector stays
 * deterministic whatever the thread interleaving.
 */
#ifndef BLKRIG_RNG_H
#define BLKRIG_RNG_H

#include <stdint.h>

struct bd_rng {
    uint64_t s;
};

void bd_rng_seed(struct bd_rng *r, uint64_t seed);
uint64_t bd_rng_next(struct bd_rng *r);
uint64_t bd_rng_hash64(uint64_t x);
/* Map a 64-bit value to [0, 1). */
double bd_rng_unit(uint64_t v);

#endif
