/* Counter-based RNG (Philox-4x32-10, Salmon et al. 2011). A draw is a pure function of
 * (seed, stream, index), so CPU and GPU produce the same numbers, any element can be drawn
 * independently (dropout masks are recomputed in the backward), and resuming needs no state. */
#pragma once
#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define LC_HD __host__ __device__ __forceinline__
#else
#define LC_HD static inline
#endif

typedef struct { uint32_t v[4]; } philox4;

LC_HD philox4 philox4x32(uint64_t seed, uint64_t stream, uint64_t counter) {
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32);
    uint32_t c2 = (uint32_t)stream, c3 = (uint32_t)(stream >> 32);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    philox4 out = {{c0, c1, c2, c3}};
    return out;
}

/* Uniform in [0,1) with 24 random bits (exactly representable in fp32). */
LC_HD float philox_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
    philox4 r = philox4x32(seed, stream, index);
    return (float)(r.v[0] >> 8) * (1.0f / 16777216.0f);
}

/* Standard normal by Box-Muller from one Philox block (53-bit uniforms, computed in double). */
LC_HD double philox_normal(uint64_t seed, uint64_t stream, uint64_t index) {
    philox4 r = philox4x32(seed, stream, index);
    double u1 = ((((uint64_t)r.v[0] << 32) | r.v[1]) >> 11) * (1.0 / 9007199254740992.0);
    double u2 = ((((uint64_t)r.v[2] << 32) | r.v[3]) >> 11) * (1.0 / 9007199254740992.0);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Uniform 64-bit integer (for permutations). */
LC_HD uint64_t philox_u64(uint64_t seed, uint64_t stream, uint64_t index) {
    philox4 r = philox4x32(seed, stream, index);
    return ((uint64_t)r.v[0] << 32) | r.v[1];
}
