/*
 * edge_gru_family.c: the fixed-point GRU family (stacked, bidirectional, masked, reductions,
 * Dense heads, sigmoid/softmax/linear outputs). Formats and contracts: edge_gru_family.h.
 * Bit-exact with edge_gru/fixed_point/family_model.py; equations beside the loops.
 * Each GRU direction gets its own step compiled with the model's dimensions as constants
 * (EGF_DIRk_* in edge_gru_model.h): unrolled rows, constant table shifts.
 */
#if defined(__GNUC__) && !defined(__clang__)
/* keep dot3's three rows in one loop (each x pair loaded once); no pre-allocation
 * scheduling: it interleaves the unrolled x and h products and spills registers */
#pragma GCC optimize("no-tree-loop-distribution", "no-schedule-insns")
#endif

#include "edge_gru_family.h"

#include <string.h>

/* The Cortex-M4 DSP path (GCC, __ARM_FEATURE_DSP): SMLAD dot products, SMMULR rescaling,
 * SSAT saturation; the same bits as the portable path (PORTABLE=1 forces that one). */
#if defined(__ARM_FEATURE_DSP) && !defined(EDGE_GRU_PORTABLE) && defined(__GNUC__) && \
    !defined(__clang__)
#include <arm_acle.h>
#define EGF_DSP 1
#else
#define EGF_DSP 0
#endif

#if defined(__GNUC__) && !defined(__clang__)
#define ALWAYS_INLINE __attribute__((always_inline))
#define NOINLINE __attribute__((noinline))
#define UNROLL_ALL _Pragma("GCC unroll 64")
#else
#define ALWAYS_INLINE
#define NOINLINE
#define UNROLL_ALL
#endif

#define HALF32 ((int64_t)1 << 31)
#define HALF15 ((int32_t)1 << 14)
#define UNIT_FIELDS 10

typedef edge_gru_family_state state_t;

#ifndef EGF_NUM_DIRS /* an edge_gru_model.h from before the per-direction steps */
#error "edge_gru_model.h has no EGF_NUM_DIRS: regenerate it (python -m edge_gru.convert)"
#endif
#ifndef EGF_EVEN_DIMS
#define EGF_EVEN_DIMS 0
#endif
#ifndef EGF_ALIGNED_KERNELS
#define EGF_ALIGNED_KERNELS 0
#endif
#if EGF_EVEN_DIMS
/* Every vector a GRU step reads (x, h, t, the sequence buffers; offsets of even int16
 * counts) starts on a 4-byte boundary of the state: a compile error otherwise. */
typedef char egf_x_aligned[offsetof(state_t, x) % 4 == 0 ? 1 : -1];
typedef char egf_h_aligned[offsetof(state_t, h) % 4 == 0 ? 1 : -1];
typedef char egf_t_aligned[offsetof(state_t, t) % 4 == 0 ? 1 : -1];
#if EGF_SEQ_BUFFERS
typedef char egf_seq_aligned[offsetof(state_t, seq) % 4 == 0 ? 1 : -1];
#endif
#endif

/* ---------------------------------------------------------------- arithmetic */
static inline int32_t mulhi(int32_t a, int32_t m)
{
#if EGF_DSP
    int32_t r; /* SMMULR: (a m + 2^31) >> 32 in one instruction */
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(m));
    return r;
#else
    return (int32_t)(((int64_t)a * m + HALF32) >> 32); /* (a m + 2^31) >> 32 */
#endif
}

/* (r v + 2^14) >> 15 for r in [0, 32767] (Q0.15) and |v| < 2^30: the same bits as
 * mulhi(2 v, r 2^16) (2 r v + 2^31 = 2 (r v + 2^14) + 2^31 - 2^15, both floors agree),
 * one SMMULR on the M4 (the seed library's identity). */
static inline int32_t mul_q15(int32_t r, int32_t v)
{
#if EGF_DSP
    return mulhi(v * 2, (int32_t)((uint32_t)r << 16));
#else
    return (int32_t)(((int64_t)r * v + HALF15) >> 15);
#endif
}

/* ((a ma + b mb + 2^31) >> 32) + c: c joins the high word of the sum (the same bits as
 * adding it after the shift); two SMLAL on the M4. */
static inline ALWAYS_INLINE int32_t mulhi2_add(int32_t a, int32_t ma, int32_t b, int32_t mb,
                                               int32_t c)
{
#if EGF_DSP
    uint32_t lo = 0x80000000u;
    int32_t hi = c;
    __asm__("smlal %0, %1, %2, %3" : "+r"(lo), "+r"(hi) : "r"(a), "r"(ma));
    __asm__("smlal %0, %1, %2, %3" : "+r"(lo), "+r"(hi) : "r"(b), "r"(mb));
    return hi;
#else
    return (int32_t)(((int64_t)a * ma + (int64_t)b * mb + HALF32) >> 32) + c;
#endif
}

static inline int16_t sat16(int32_t v)
{
#if EGF_DSP
    return (int16_t)__ssat(v, 16);
#else
    return (int16_t)(v > 32767 ? 32767 : (v < -32768 ? -32768 : v));
#endif
}

/* Packed table t (value | slope << 16, 32 segments per unit over [0, 8]) interpolated at
 * a = |pre| in [0, 8 << frac] (Q.frac). */
static inline ALWAYS_INLINE int32_t lut_at(const int32_t *t, uint32_t a, int frac, int32_t rnd)
{
    const int shift = frac - 5;
    const int32_t w = t[a >> shift];
    const int32_t f = (int32_t)(a & ((1u << shift) - 1u));
#if EGF_DSP
    if (shift <= 15) /* f < 2^15: SMLATB gives (w >> 16) f + 2^(shift-1) in one instruction */
        return (w & 0xFFFF) + (__smlatb(w, f, rnd) >> shift);
#endif
    return (w & 0xFFFF) + (((w >> 16) * f + rnd) >> shift);
}

/* y(|pre|) for the odd (tanh: odd = 1, y(-x) = -y(x)) or sigmoid-like (odd = 0,
 * y(-x) = 1 - y(x)) table t. fixed: frac is a compile-time constant (a specialized GRU step);
 * on the M4 the clamp of |pre| to 8 is then one SSAT of pre to [-2^(frac+3), 2^(frac+3) - 1]:
 * |pre| = 2^(frac+3) - 1 reads the last segment (index 255, fraction 2^shift - 1), whose
 * slope is 0 in both tables (asserted by the code generator), so it gives the same value as
 * the clamp to 2^(frac+3). One sign branch, the table code in both arms.
 * rnd = 2^(frac - 6), the interpolation's rounding constant. */
static inline ALWAYS_INLINE int32_t lut(const int32_t *t, int32_t pre, int frac, int fixed,
                                        int odd, int32_t rnd)
{
    const uint32_t limit = (uint32_t)8 << frac;
    uint32_t a;
#if EGF_DSP
    if (fixed) {
        const int32_t p = __ssat(pre, frac + 4);
        if (p < 0) {
            const int32_t y = lut_at(t, 0u - (uint32_t)p, frac, rnd);
            return odd ? -y : 32768 - y;
        }
        return lut_at(t, (uint32_t)p, frac, rnd);
    }
#endif
    (void)fixed;
    a = pre < 0 ? 0u - (uint32_t)pre : (uint32_t)pre;
    a = a < limit ? a : limit;
    if (pre < 0)
        return odd ? -lut_at(t, a, frac, rnd) : 32768 - lut_at(t, a, frac, rnd);
    return lut_at(t, a, frac, rnd);
}

static inline ALWAYS_INLINE int32_t sigmoid_q15(int32_t pre, int frac, int fixed)
{
    /* sigmoid(-x) = 1 - sigmoid(x) */
    return lut(egf_sigmoid_lut, pre, frac, fixed, 0, (int32_t)1 << (frac - 6));
}

static inline ALWAYS_INLINE int32_t tanh_q15(int32_t pre, int frac, int fixed)
{
    /* tanh(-x) = -tanh(x) */
    return lut(egf_tanh_lut, pre, frac, fixed, 1, (int32_t)1 << (frac - 6));
}

int32_t edge_gru_family_sigmoid(int32_t pre, int frac)
{
    return sigmoid_q15(pre, frac, 0);
}

int32_t edge_gru_family_tanh(int32_t pre, int frac)
{
    return tanh_q15(pre, frac, 0);
}

/* exp(-d) for d >= 0 in Q.frac -> Q0.15 (0..32768); the table has a trailing 0. */
static int32_t exp_neg(uint32_t d, int frac)
{
    const int shift = frac - 5;
    const uint32_t limit = (uint32_t)16 << frac;
    int32_t lo, hi, f;
    uint32_t i;
    d = d < limit ? d : limit;
    i = d >> shift;
    f = (int32_t)(d & ((1u << shift) - 1u));
    lo = egf_exp_lut[i];
    hi = egf_exp_lut[i + 1];
    return lo + (((hi - lo) * f + ((int32_t)1 << (shift - 1))) >> shift);
}

/* Weight rows are stored in groups of 4 bytes as [w0, w2, w1, w3] (a row's tail, n % 4,
 * in natural order): on the Cortex-M4, SXTB16 of the word gives the int16 pair (w0, w1) and
 * SXTB16 of the word rotated by 8 gives (w2, w3), the pairs SMLAD multiplies with (x0, x1),
 * (x2, x3). The portable path reads the same layout and gives the same sums. */
#if EGF_DSP
static inline uint32_t ld32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v); /* LDR: the M4 allows unaligned word loads */
    return v;
}

static inline int16x2_t sxtb16_ror8(uint32_t w)
{
    int16x2_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(w));
    return r;
}

#define MAC4(acc, x01, x23, wp)                                                   \
    do {                                                                          \
        uint32_t w4_ = ld32(wp);                                                  \
        (acc) = __smlad((int16x2_t)(x01), __sxtb16((int8x4_t)w4_), (acc));       \
        (acc) = __smlad((int16x2_t)(x23), sxtb16_ror8(w4_), (acc));              \
    } while (0)
#else
#define MAC4(acc, x01, x23, wp)                                                   \
    ((acc) += (int32_t)xg[0] * (wp)[0] + (int32_t)xg[1] * (wp)[2] +              \
              (int32_t)xg[2] * (wp)[1] + (int32_t)xg[3] * (wp)[3])
#endif

#if EGF_DSP
#define GROUP_LOAD(x, j)                                                          \
    const uint32_t x01 = ld32((x) + (j)), x23 = ld32((x) + (j) + 2)
#else
#define GROUP_LOAD(x, j) const int16_t *xg = (x) + (j)
#endif

/* EGF_EVEN_DIMS (edge_gru_model.h): every dimension is even, so every vector a GRU step
 * reads starts on a 4-byte boundary of the state (checked below): in the unrolled loops
 * (constant j) both pairs then load with one LDRD, as in the seed library. The asm has no
 * memory operand (one makes GCC spill): gru_step_impl orders it after the stores to the
 * vectors with BARRIER. */
#if EGF_DSP && EGF_EVEN_DIMS
#define GROUP_LOAD_FIXED(x, j)                                                    \
    uint32_t x01, x23;                                                            \
    __asm__ volatile("ldrd %0, %1, [%2, %3]" : "=r"(x01), "=r"(x23) : "r"(x), "i"(2 * (j)))
#define BARRIER() __asm__ volatile("" : : : "memory")
#else
#define GROUP_LOAD_FIXED(x, j) GROUP_LOAD(x, j)
#define BARRIER() ((void)0)
#endif

/* a = p[k], b = p[k + 1] of a unit's int32 parameters (flash, never written): one LDRD on
 * the M4 (volatile: kept after the dot products, where registers are free). */
#if EGF_DSP
#define LOAD_PAIR(a, b, p, k)                                                     \
    __asm__ volatile("ldrd %0, %1, [%2, %3]" : "=r"(a), "=r"(b) : "r"(p), "i"(4 * (k)))
#else
#define LOAD_PAIR(a, b, p, k) ((a) = (p)[k], (b) = (p)[(k) + 1])
#endif

/* Row lengths up to this are fully unrolled in the specialized GRU steps (code size:
 * ~64 B per 4 inputs and gate row group); longer rows keep the loop. */
#ifndef EGF_UNROLL_MAX_N
#define EGF_UNROLL_MAX_N 64
#endif

#define DOT1_BODY(UNROLL, LOAD)                                                   \
    int32_t acc = 0;                                                              \
    const int full = n & ~3;                                                      \
    int j;                                                                        \
    UNROLL                                                                        \
    for (j = 0; j < full; j += 4) {                                               \
        LOAD(x, j);                                                               \
        MAC4(acc, x01, x23, w + j);                                               \
    }                                                                             \
    UNROLL                                                                        \
    for (; j < n; j++)                                                            \
        acc += (int32_t)x[j] * w[j];                                              \
    return acc

/* x . w over n int16 x int8 (the Dense head and the run-time-dims GRU step). */
static int32_t dot(const int16_t *x, const int8_t *w, int n)
{
    DOT1_BODY(, GROUP_LOAD);
}

/* The same for a compile-time n: fully unrolled (constant offsets, no loop overhead). */
static inline ALWAYS_INLINE int32_t dot_n(const int16_t *x, const int8_t *w, const int n)
{
    DOT1_BODY(UNROLL_ALL, GROUP_LOAD_FIXED);
}

/* acc[r] = x . row r for 3 consecutive rows of n (gates z, r, h of one unit). GCC would
 * split the loop into one per row (three loads of each x pair): the pragma at the top of
 * this file keeps it whole. */
#define DOT3_BODY(UNROLL, LOAD)                                                   \
    int32_t a0 = 0, a1 = 0, a2 = 0;                                               \
    const int full = n & ~3;                                                      \
    int j;                                                                        \
    UNROLL                                                                        \
    for (j = 0; j < full; j += 4) {                                               \
        LOAD(x, j);                                                               \
        MAC4(a0, x01, x23, w + j);                                                \
        MAC4(a1, x01, x23, w + n + j);                                            \
        MAC4(a2, x01, x23, w + 2 * n + j);                                        \
    }                                                                             \
    UNROLL                                                                        \
    for (; j < n; j++) {                                                          \
        a0 += (int32_t)x[j] * w[j];                                               \
        a1 += (int32_t)x[j] * w[n + j];                                           \
        a2 += (int32_t)x[j] * w[2 * n + j];                                       \
    }                                                                             \
    acc[0] = a0;                                                                  \
    acc[1] = a1;                                                                  \
    acc[2] = a2

#if EGF_DSP && EGF_EVEN_DIMS
/* The first group starts the sums with SMUAD; n is even, so a tail is one pair: one word
 * (x[j], x[j+1]) and SMLABB / SMLATB with the two int8 weights (natural order). */
#define MAC4_FIRST(acc, x01, x23, wp)                                             \
    do {                                                                          \
        uint32_t w4_ = ld32(wp);                                                  \
        (acc) = __smuad((int16x2_t)(x01), __sxtb16((int8x4_t)w4_));              \
        (acc) = __smlad((int16x2_t)(x23), sxtb16_ror8(w4_), (acc));              \
    } while (0)
#define TAIL_PAIR(acc, x45, wp)                                                   \
    ((acc) = __smlatb((int32_t)(x45), (wp)[1], __smlabb((int32_t)(x45), (wp)[0], (acc))))

#define MAC4W(acc, x01, x23, w4, first)                                           \
    do {                                                                          \
        const int16x2_t lo_ = __sxtb16((int8x4_t)(w4));                            \
        (acc) = (first) ? __smuad((int16x2_t)(x01), lo_)                           \
                        : __smlad((int16x2_t)(x01), lo_, (acc));                   \
        (acc) = __smlad((int16x2_t)(x23), sxtb16_ror8(w4), (acc));               \
    } while (0)
#define LDRD_AT(a, b, base, off)                                                  \
    __asm__ volatile("ldrd %0, %1, [%2, %3]" : "=r"(a), "=r"(b) : "r"(base), "i"(off))

static inline ALWAYS_INLINE void dot3_n(const int16_t *x, const int8_t *w, const int n,
                                        int32_t *acc)
{
    int32_t a0 = 0, a1 = 0, a2 = 0;
    const int full = n & ~3;
    int j = 0;
    if (EGF_ALIGNED_KERNELS && n % 4 == 0) {
        /* word-aligned rows: 8 inputs per step, each row's 8 weights with one LDRD */
        UNROLL_ALL
        for (j = 0; j + 8 <= n; j += 8) {
            uint32_t x01, x23, x45, x67, wa, wb;
            LDRD_AT(x01, x23, x, 2 * j);
            LDRD_AT(x45, x67, x, 2 * j + 8);
            LDRD_AT(wa, wb, w, j);
            MAC4W(a0, x01, x23, wa, j == 0);
            MAC4W(a0, x45, x67, wb, 0);
            LDRD_AT(wa, wb, w, n + j);
            MAC4W(a1, x01, x23, wa, j == 0);
            MAC4W(a1, x45, x67, wb, 0);
            LDRD_AT(wa, wb, w, 2 * n + j);
            MAC4W(a2, x01, x23, wa, j == 0);
            MAC4W(a2, x45, x67, wb, 0);
        }
    }
    UNROLL_ALL
    for (; j < full; j += 4) {
        GROUP_LOAD_FIXED(x, j);
        if (j == 0) {
            MAC4_FIRST(a0, x01, x23, w);
            MAC4_FIRST(a1, x01, x23, w + n);
            MAC4_FIRST(a2, x01, x23, w + 2 * n);
        } else {
            MAC4(a0, x01, x23, w + j);
            MAC4(a1, x01, x23, w + n + j);
            MAC4(a2, x01, x23, w + 2 * n + j);
        }
    }
    if (n > full) { /* n % 4 == 2 */
        uint32_t x45;
        __asm__ volatile("ldr %0, [%1, %2]" : "=r"(x45) : "r"(x), "i"(2 * full));
        TAIL_PAIR(a0, x45, w + full);
        TAIL_PAIR(a1, x45, w + n + full);
        TAIL_PAIR(a2, x45, w + 2 * n + full);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
}
#else
static inline ALWAYS_INLINE void dot3_n(const int16_t *x, const int8_t *w, const int n,
                                        int32_t *acc)
{
    DOT3_BODY(UNROLL_ALL, GROUP_LOAD_FIXED);
}
#endif

static inline ALWAYS_INLINE void dot3_any(const int16_t *x, const int8_t *w, const int n,
                                          int32_t *acc)
{
    DOT3_BODY(, GROUP_LOAD);
}

/* fixed: n is a compile-time constant (a specialized step): unrolled when short enough. */
static inline ALWAYS_INLINE void dot3(const int16_t *x, const int8_t *w, const int n,
                                      int32_t *acc, const int fixed)
{
    if (fixed && n <= EGF_UNROLL_MAX_N)
        dot3_n(x, w, n, acc);
    else
        dot3_any(x, w, n, acc);
}

static inline ALWAYS_INLINE int32_t dot1(const int16_t *x, const int8_t *w, const int n,
                                         const int fixed)
{
    return fixed && n <= EGF_UNROLL_MAX_N ? dot_n(x, w, n) : dot(x, w, n);
}

#if EGF_REDUCTION == EGF_RED_MEAN
/* s / c rounded half away from zero (c > 0). */
static int32_t round_div(int32_t s, uint32_t c)
{
    uint32_t a = s < 0 ? 0u - (uint32_t)s : (uint32_t)s;
    uint32_t q = (a + c / 2u) / c;
    return s < 0 ? -(int32_t)q : (int32_t)q;
}
#endif

/* ---------------------------------------------------------------- GRU step */
/* h (Q0.15, U) <- one step of direction g on input x (D int16). D = g->input_dim,
 * U = g->units, F = g->pre_frac, RA = g->reset_after: compile-time constants in the
 * specialized copies below (fixed = 1: unrolled rows, constant table shifts), run-time
 * values in gru_step_any. */
static inline ALWAYS_INLINE void gru_step_impl(state_t *s, const egf_gru *g, const int16_t *x,
                                               int16_t *h, const int D, const int U,
                                               const int F, const int RA, const int fixed)
{
    const int32_t *p = g->p;
    const int8_t *w = g->w, *u = g->u;
    int i;
    BARRIER(); /* x and h are final before the LDRD loads */
    if (RA) {
        for (i = 0; i < U; i++, p += UNIT_FIELDS, w += 3 * D, u += 3 * U) {
            int32_t a[3], b[3], z, r, xh, hh, n, p0, p1, p2, p3, p4, p5, p6, p7, p8, p9;
            dot3(x, w, D, a, fixed); /* x W, rows z r h of unit i */
            dot3(h, u, U, b, fixed); /* h U */
            /* z = sigmoid(x W_z + h U_z + b_z), r likewise */
            LOAD_PAIR(p0, p1, p, 0);
            LOAD_PAIR(p2, p3, p, 2);
            z = sigmoid_q15(mulhi2_add(a[0], p0, b[0], p1, p2), F, fixed);
            LOAD_PAIR(p4, p5, p, 4);
            r = sigmoid_q15(mulhi2_add(a[1], p3, b[1], p4, p5), F, fixed);
            /* n = tanh(x W_h + b_ih + r (h U_h + b_rh)) */
            LOAD_PAIR(p6, p7, p, 6);
            LOAD_PAIR(p8, p9, p, 8);
            xh = mulhi(a[2], p6) + p7;
            hh = mulhi(b[2], p8) + p9;
            n = tanh_q15(xh + mul_q15(r, hh), F, fixed);
            /* h' = n + z (h - n) */
            s->t[i] = sat16(n + ((z * (h[i] - n) + HALF15) >> 15));
        }
        memcpy(h, s->t, (size_t)U * sizeof h[0]);
        BARRIER();
        return;
    }
    for (i = 0; i < U; i++, p += UNIT_FIELDS, w += 3 * D, u += 3 * U) {
        /* pass 1: z, r h, x W_h (need the whole old h) */
        int32_t r;
        s->z[i] = (int16_t)sigmoid_q15(
            mulhi2_add(dot1(x, w, D, fixed), p[0], dot1(h, u, U, fixed), p[1], p[2]), F, fixed);
        r = sigmoid_q15(
            mulhi2_add(dot1(x, w + D, D, fixed), p[3], dot1(h, u + U, U, fixed), p[4], p[5]),
            F, fixed);
        s->t[i] = (int16_t)((r * h[i] + HALF15) >> 15);
        s->x2[i] = dot1(x, w + 2 * D, D, fixed);
    }
    BARRIER(); /* r h (s->t) is final before pass 2 reads it */
    p = g->p;
    u = g->u + 2 * U;
    for (i = 0; i < U; i++, p += UNIT_FIELDS, u += 3 * U) {
        /* pass 2: n = tanh(x W_h + (r h) U_h + b); blend in place */
        int32_t n = tanh_q15(mulhi2_add(s->x2[i], p[6], dot1(s->t, u, U, fixed), p[8], p[7]),
                             F, fixed);
        h[i] = sat16(n + ((s->z[i] * (h[i] - n) + HALF15) >> 15));
    }
    BARRIER();
}

/* One copy of the step per direction of the model (EGF_DIRk_* in edge_gru_model.h), up to
 * EGF_MAX_SPECIALIZED (at most 8; -DEGF_MAX_SPECIALIZED=0 builds the run-time path only, as
 * a test does); further directions take gru_step_any (dimensions read at run time). */
#ifndef EGF_MAX_SPECIALIZED
#define EGF_MAX_SPECIALIZED 8
#endif
#define SPECIALIZED(k) (EGF_NUM_DIRS > (k) && EGF_MAX_SPECIALIZED > (k))
#define STEP_COPY(k)                                                                      \
    static void gru_step_##k(state_t *s, const egf_gru *g, const int16_t *x, int16_t *h) \
    {                                                                                     \
        gru_step_impl(s, g, x, h, EGF_DIR##k##_D, EGF_DIR##k##_U, EGF_DIR##k##_F,         \
                      EGF_DIR##k##_RA, 1);                                                \
    }
#if SPECIALIZED(0)
STEP_COPY(0)
#endif
#if SPECIALIZED(1)
STEP_COPY(1)
#endif
#if SPECIALIZED(2)
STEP_COPY(2)
#endif
#if SPECIALIZED(3)
STEP_COPY(3)
#endif
#if SPECIALIZED(4)
STEP_COPY(4)
#endif
#if SPECIALIZED(5)
STEP_COPY(5)
#endif
#if SPECIALIZED(6)
STEP_COPY(6)
#endif
#if SPECIALIZED(7)
STEP_COPY(7)
#endif
#if EGF_NUM_DIRS > EGF_MAX_SPECIALIZED || EGF_NUM_DIRS > 8
static NOINLINE void gru_step_any(state_t *s, const egf_gru *g, const int16_t *x, int16_t *h)
{
    gru_step_impl(s, g, x, h, g->input_dim, g->units, g->pre_frac, g->reset_after, 0);
}
#endif

/* Direction number dir (0-based over the layers' forward then backward halves) = g. */
static void gru_step(state_t *s, int dir, const egf_gru *g, const int16_t *x, int16_t *h)
{
    switch (dir) {
#if SPECIALIZED(0)
    case 0: gru_step_0(s, g, x, h); return;
#endif
#if SPECIALIZED(1)
    case 1: gru_step_1(s, g, x, h); return;
#endif
#if SPECIALIZED(2)
    case 2: gru_step_2(s, g, x, h); return;
#endif
#if SPECIALIZED(3)
    case 3: gru_step_3(s, g, x, h); return;
#endif
#if SPECIALIZED(4)
    case 4: gru_step_4(s, g, x, h); return;
#endif
#if SPECIALIZED(5)
    case 5: gru_step_5(s, g, x, h); return;
#endif
#if SPECIALIZED(6)
    case 6: gru_step_6(s, g, x, h); return;
#endif
#if SPECIALIZED(7)
    case 7: gru_step_7(s, g, x, h); return;
#endif
    default:
        break;
    }
#if EGF_NUM_DIRS > EGF_MAX_SPECIALIZED || EGF_NUM_DIRS > 8
    gru_step_any(s, g, x, h);
#endif
}

/* ---------------------------------------------------------------- inputs */
#if EGF_INPUT_TOKENS
static int load_token(int16_t *x, int32_t token)
{
    uint32_t id = (uint32_t)token < (uint32_t)EGF_VOCAB ? (uint32_t)token
                                                        : (uint32_t)EGF_OOV_ID;
    const int8_t *e = egf_emb_q + (size_t)id * EGF_IN_DIM;
    int32_t m = egf_emb_mult[id];
    int j;
    for (j = 0; j < EGF_IN_DIM; j++)
        x[j] = (int16_t)(e[j] * m);
    return EGF_MASK_ZERO ? token != 0 : 1; /* 1: the step counts */
}
#else
static int load_frame(int16_t *x, const int16_t *frame)
{
    int j, differs = 0;
    for (j = 0; j < EGF_IN_DIM; j++) {
        x[j] = frame[j];
        differs |= frame[j] != egf_mask_frame[j];
    }
    return EGF_HAS_MASKING ? differs : 1;
}

void edge_gru_family_from_raw(const int32_t *raw, int16_t *x)
{
    int j;
    for (j = 0; j < EGF_F; j++) {
        int64_t v = ((int64_t)raw[j] - egf_raw_offset[j]) * egf_raw_mult[j];
        v = (v + ((int64_t)1 << 23)) >> 24;
        x[j] = (int16_t)(v > 32767 ? 32767 : (v < -32768 ? -32768 : v));
    }
}
#endif

/* ---------------------------------------------------------------- head */
/* Dense head on in (int16, egf_dense_layers[0].in_dim) -> out; returns the argmax. */
static int head(state_t *s, const int16_t *in, int32_t *out)
{
    int l, k, best = 0;
    for (l = 0; l < EGF_NUM_DENSE; l++) {
        const egf_dense *d = &egf_dense_layers[l];
        const int last = l == EGF_NUM_DENSE - 1;
        int16_t *dst = s->head[l & 1];
        for (k = 0; k < d->out_dim; k++) {
            int32_t pre = mulhi(dot(in, d->w + (size_t)k * d->in_dim, d->in_dim), d->mult[k])
                          + d->bias[k];
            int32_t v;
            if (d->activation == EGF_ACT_SIGMOID) {
                v = sigmoid_q15(pre, d->pre_frac, 0);
            } else if (d->activation == EGF_ACT_TANH) {
                v = tanh_q15(pre, d->pre_frac, 0);
            } else if (d->activation == EGF_ACT_SOFTMAX) {
                v = pre; /* below */
            } else {
                v = d->activation == EGF_ACT_RELU && pre < 0 ? 0 : pre;
                if (!last && d->out_shift > 0)
                    v = (v + ((int32_t)1 << (d->out_shift - 1))) >> d->out_shift;
            }
            if (last)
                s->pre[k] = v;
            else
                dst[k] = d->activation >= EGF_ACT_TANH ? (int16_t)v : sat16(v);
        }
        in = dst;
        if (last && d->activation == EGF_ACT_SOFTMAX) {
            /* p_k = (e_k 2^15 + S / 2) / S, e_k = exp(pre_k - max) */
            int32_t m = s->pre[0];
            uint32_t sum = 0;
            for (k = 1; k < d->out_dim; k++)
                m = s->pre[k] > m ? s->pre[k] : m;
            for (k = 0; k < d->out_dim; k++) {
                s->pre[k] = exp_neg((uint32_t)(m - s->pre[k]), d->pre_frac);
                sum += (uint32_t)s->pre[k];
            }
            for (k = 0; k < d->out_dim; k++) {
                uint32_t p = ((uint32_t)s->pre[k] * 32768u + sum / 2u) / sum;
                s->pre[k] = (int32_t)(p < 32767u ? p : 32767u);
            }
        }
    }
    for (k = 0; k < EGF_OUTPUTS; k++) {
        out[k] = s->pre[k];
        if (s->pre[k] > s->pre[best])
            best = k;
    }
    return best;
}

void edge_gru_family_init(state_t *s)
{
    memset(s, 0, sizeof *s);
#if EGF_REDUCTION == EGF_RED_MAX
    {
        int j;
        for (j = 0; j < EGF_LAST_DIM; j++)
            s->max[j] = -32768;
    }
#endif
}

/* ---------------------------------------------------------------- streaming path */
#if EGF_STREAMABLE
/* Every layer at one step: x already loaded; counts = 0 for a masked step. */
static void stream_step(state_t *s, int counts)
{
    const int16_t *in = s->x;
    int16_t *h = s->h;
    int l, j;
    for (l = 0; l < EGF_NUM_RECURRENT; l++) {
        const egf_gru *g = &egf_recurrent_layers[l].fwd;
        if (counts)
            gru_step(s, l, g, in, h); /* streaming: direction l is layer l */
        in = h;
        h += g->units;
    }
    /* in: the last layer's output at this step */
#if EGF_REDUCTION == EGF_RED_MEAN
    if (counts && s->count < 65535u) { /* int32 sums: at most 65535 steps are averaged */
        for (j = 0; j < EGF_LAST_DIM; j++)
            s->sum[j] += in[j];
        s->count++;
    }
#elif EGF_REDUCTION == EGF_RED_MAX
    for (j = 0; j < EGF_LAST_DIM; j++)
        s->max[j] = in[j] > s->max[j] ? in[j] : s->max[j];
#elif EGF_REDUCTION == EGF_RED_FLATTEN
    /* keep the last T outputs, oldest first */
    memmove(s->seq[0], s->seq[0] + EGF_LAST_DIM,
            (size_t)(EGF_T - 1) * EGF_LAST_DIM * sizeof s->seq[0][0]);
    memcpy(s->seq[0] + (size_t)(EGF_T - 1) * EGF_LAST_DIM, in, EGF_LAST_DIM * sizeof in[0]);
#endif
    (void)j;
    s->steps++;
}

int edge_gru_family_score(state_t *s, int32_t *out)
{
#if EGF_REDUCTION == EGF_RED_MEAN
    int16_t *v = s->head[1];
    int j;
    for (j = 0; j < EGF_LAST_DIM; j++)
        v[j] = s->count ? (int16_t)round_div(s->sum[j], s->count) : 0;
    return head(s, v, out);
#elif EGF_REDUCTION == EGF_RED_MAX
    return head(s, s->max, out);
#elif EGF_REDUCTION == EGF_RED_FLATTEN
    return head(s, s->seq[0], out);
#else
    return head(s, s->h + EGF_STATE_TOTAL - EGF_LAST_DIM, out);
#endif
}

#if EGF_INPUT_TOKENS
void edge_gru_family_step_token(state_t *s, int32_t token)
{
    stream_step(s, load_token(s->x, token));
}

int edge_gru_family_run_tokens(state_t *s, const int32_t *tokens, size_t n, int32_t *out)
{
    size_t k;
    edge_gru_family_init(s);
    if (n > EGF_T) { /* keep the last T steps */
        tokens += n - EGF_T;
        n = EGF_T;
    }
    for (k = n; k < EGF_T; k++) /* pre-pad */
        edge_gru_family_step_token(s, 0);
    for (k = 0; k < n; k++)
        edge_gru_family_step_token(s, tokens[k]);
    return edge_gru_family_score(s, out);
}
#else
void edge_gru_family_step_features(state_t *s, const int16_t *x)
{
    stream_step(s, load_frame(s->x, x));
}

int edge_gru_family_run_features(state_t *s, const int16_t *frames, size_t n, int32_t *out)
{
    size_t k;
    edge_gru_family_init(s);
    if (n > EGF_T) {
        frames += (n - EGF_T) * EGF_F;
        n = EGF_T;
    }
    for (k = n; k < EGF_T; k++)
        edge_gru_family_step_features(s, egf_pad_frame);
    for (k = 0; k < n; k++)
        edge_gru_family_step_features(s, frames + k * EGF_F);
    return edge_gru_family_score(s, out);
}
#endif

#else /* ---------------------------------------------------------------- layer by layer */
static int16_t merge1(int mode, int32_t a, int32_t b)
{
    if (mode == EGF_MERGE_MUL)
        return (int16_t)((a * b + HALF15) >> 15);
    return (int16_t)((a + b + 1) >> 1); /* sum (Q1.14) and ave (Q0.15) */
}

/* Direction number dir (g) over the whole sequence in (T x dim_in), writing out
 * (T x out_dim) at column col (seq), or merging/placing the final state into last[]. */
static void run_dir(state_t *s, const egf_recurrent *r, const egf_gru *g, int dir,
                    int backward_half, const int16_t *in, int16_t *out, int16_t *last)
{
    int16_t *h = s->h; /* one direction at a time: the state buffer's start */
    const int D = g->input_dim, U = g->units, OD = r->output_dim;
    const int col = backward_half && r->merge == EGF_MERGE_CONCAT ? U : 0;
    const int merging = backward_half && r->merge != EGF_MERGE_CONCAT;
    int k, j;
    memset(h, 0, (size_t)U * sizeof h[0]);
    for (k = 0; k < EGF_T; k++) {
        const int t = g->go_backwards ? EGF_T - 1 - k : k;
        const int counts = s->mask[t];
        if (counts)
            gru_step(s, dir, g, in + (size_t)t * D, h);
        if (r->return_sequences) {
            /* processing order; a Bidirectional's backward half is flipped back */
            const int pos = backward_half ? EGF_T - 1 - k : k;
            int16_t *o = out + (size_t)pos * OD + col;
            const int zero = r->bwd.units != 0 && !counts;
            for (j = 0; j < U; j++) {
                int16_t v = zero ? 0 : h[j];
                o[j] = merging ? merge1(r->merge, o[j], v) : v;
            }
        }
    }
    if (!r->return_sequences) {
        for (j = 0; j < U; j++)
            last[col + j] = merging ? merge1(r->merge, last[col + j], h[j]) : h[j];
    }
}

static int run_layers(state_t *s, int32_t *out)
{
    int16_t *cur = s->seq[0], *nxt = s->seq[1];
    int16_t *vec = s->head[1];
    int l, j, t, dim = EGF_IN_DIM, dir = 0;
    for (l = 0; l < EGF_NUM_RECURRENT; l++) {
        const egf_recurrent *r = &egf_recurrent_layers[l];
        run_dir(s, r, &r->fwd, dir++, 0, cur, nxt, vec);
        if (r->bwd.units)
            run_dir(s, r, &r->bwd, dir++, 1, cur, nxt, vec);
        if (!r->return_sequences) {
            for (t = 0; t < EGF_T; t++) /* the mask ends here */
                s->mask[t] = 1;
            break;
        }
        dim = r->output_dim;
        cur = nxt;
        nxt = cur == s->seq[0] ? s->seq[1] : s->seq[0];
    }
    s->steps = EGF_T;
    (void)dim;
#if EGF_REDUCTION == EGF_RED_MEAN
    {
        uint32_t count = 0;
        for (t = 0; t < EGF_T; t++)
            count += s->mask[t];
        for (j = 0; j < EGF_LAST_DIM; j++) {
            int32_t sum = 0;
            for (t = 0; t < EGF_T; t++)
                sum += s->mask[t] ? cur[(size_t)t * EGF_LAST_DIM + j] : 0;
            vec[j] = count ? (int16_t)round_div(sum, count) : 0;
        }
    }
#elif EGF_REDUCTION == EGF_RED_MAX
    for (j = 0; j < EGF_LAST_DIM; j++) {
        int16_t m = -32768;
        for (t = 0; t < EGF_T; t++)
            m = cur[(size_t)t * EGF_LAST_DIM + j] > m ? cur[(size_t)t * EGF_LAST_DIM + j] : m;
        vec[j] = m;
    }
#elif EGF_REDUCTION == EGF_RED_FLATTEN
    vec = cur;
#elif EGF_REDUCTION == EGF_RED_LAST
    vec = cur + (size_t)(EGF_T - 1) * EGF_LAST_DIM;
#endif
    (void)j;
    return head(s, vec, out);
}

#if EGF_INPUT_TOKENS
int edge_gru_family_run_tokens(state_t *s, const int32_t *tokens, size_t n, int32_t *out)
{
    size_t k, pad;
    edge_gru_family_init(s);
    if (n > EGF_T) {
        tokens += n - EGF_T;
        n = EGF_T;
    }
    pad = EGF_T - n;
    for (k = 0; k < EGF_T; k++)
        s->mask[k] = (uint8_t)load_token(s->seq[0] + k * EGF_IN_DIM,
                                         k < pad ? 0 : tokens[k - pad]);
    return run_layers(s, out);
}
#else
int edge_gru_family_run_features(state_t *s, const int16_t *frames, size_t n, int32_t *out)
{
    size_t k, pad;
    edge_gru_family_init(s);
    if (n > EGF_T) {
        frames += (n - EGF_T) * EGF_F;
        n = EGF_T;
    }
    pad = EGF_T - n;
    for (k = 0; k < EGF_T; k++)
        s->mask[k] = (uint8_t)load_frame(s->seq[0] + k * EGF_IN_DIM,
                                         k < pad ? egf_pad_frame : frames + (k - pad) * EGF_F);
    return run_layers(s, out);
}
#endif
#endif
