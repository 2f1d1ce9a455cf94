/*
 * edge_gru.c: the fixed-point GRU step, score and whole-review helper.
 * Number formats and rounding: see include/edge_gru.h. Bit-exact with
 * edge_gru/fixed_point/model.py; the equations are the comments beside the loops.
 */
#include "edge_gru.h"

#include <string.h>

/* The DSP path needs GCC's inline asm and fully unrolled dot products (<= 64 groups of 4);
 * other compilers and larger models take the portable path (same bits). */
#if defined(__ARM_FEATURE_DSP) && !defined(EDGE_GRU_PORTABLE) && defined(__GNUC__) && \
    !defined(__clang__) && EDGE_GRU_EMBED <= 256 && EDGE_GRU_UNITS <= 256
#include <arm_acle.h>
#define EDGE_GRU_USE_DSP 1
#else
#define EDGE_GRU_USE_DSP 0
#endif

#define E EDGE_GRU_EMBED
#define U EDGE_GRU_UNITS
#define HALF32 ((int64_t)1 << 31)
#define HALF15 ((int32_t)1 << 14)
#define LUT_SHIFT (EDGE_GRU_PRE_FRAC - 5)            /* 32 table segments per unit */
#define LUT_LIMIT ((uint32_t)8 << EDGE_GRU_PRE_FRAC) /* |x| >= 8 saturates */

/* Full unrolling of the dot-product loops (their trip counts are model constants); OPAQUE
 * keeps GCC from hoisting the (unchanging) x loads out of the unit loop into spills. */
#if defined(__GNUC__) && !defined(__clang__)
#define UNROLL _Pragma("GCC unroll 64")
#define OPAQUE(p) __asm__ volatile("" : "+r"(p))
#else
#define UNROLL
#define OPAQUE(p) ((void)0)
#endif

#if EDGE_GRU_PRE_FRAC > 24 || EDGE_GRU_PRE_FRAC < 12
#error "EDGE_GRU_PRE_FRAC must be in [12, 24]"
#endif

/* Kernel rows are stored in groups of 4 bytes as [w0, w2, w1, w3] (the tail of a row,
 * length % 4, in natural order): SXTB16 of the word gives the int16 pair (w0, w1),
 * SXTB16 of the word rotated by 8 gives (w2, w3), matching the int16 pairs (x0, x1),
 * (x2, x3) that SMLAD multiplies. The portable path reads the same layout. */
#if EDGE_GRU_USE_DSP
static inline uint32_t ld32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* SXTB16 of the word rotated right by 8 in one instruction (GCC's builtin does not fuse). */
static inline int16x2_t sxtb16_ror8(uint32_t w)
{
    int16x2_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(w));
    return r;
}

static inline int32_t mac4(int32_t acc, uint32_t x01, uint32_t x23, const int8_t *w)
{
    uint32_t w4 = ld32(w);
    acc = __smlad((int16x2_t)x01, __sxtb16((int8x4_t)w4), acc);
    return __smlad((int16x2_t)x23, sxtb16_ror8(w4), acc);
}
/* x and h are 4-byte aligned in edge_gru_state: both pairs load with one LDRD (the loop is
 * fully unrolled, so the offset is a constant). The asm has no memory operand (one would
 * make GCC spill), so edge_gru_step orders it after the stores to x and h with BARRIER. */
#define GROUP_LOAD(x, j)                                                          \
    uint32_t x01, x23;                                                            \
    __asm__ volatile("ldrd %0, %1, [%2, %3]" : "=r"(x01), "=r"(x23) : "r"(x), "i"(2 * (j)))
#define BARRIER() __asm__ volatile("" : : : "memory")
#define GROUP(acc, x, w) ((acc) = mac4((acc), x01, x23, (w)))
#else
#define GROUP_LOAD(x, j) const int16_t *xg = (x) + (j)
#define BARRIER() ((void)0)
#define GROUP(acc, x, w)                                                          \
    ((acc) += (int32_t)xg[0] * (w)[0] + (int32_t)xg[1] * (w)[2] +                 \
              (int32_t)xg[2] * (w)[1] + (int32_t)xg[3] * (w)[3])
#endif

/* acc[r] = sum_j x[j] * w[r * n + j] for 3 consecutive rows (gates z, r, h of one unit).
 * The OPAQUE results keep GCC from interleaving the x and h products (register spills). */
static inline void dot3(const int16_t *x, const int8_t *w, int n, int32_t *acc)
{
    int32_t a0 = 0, a1 = 0, a2 = 0;
    const int full = n & ~3;
    int j;
    OPAQUE(x);
    UNROLL
    for (j = 0; j < full; j += 4) {
        GROUP_LOAD(x, j);
        GROUP(a0, x, w + j);
        GROUP(a1, x, w + n + j);
        GROUP(a2, x, w + 2 * n + j);
    }
    for (j = full; j < n; j++) {
        a0 += (int32_t)x[j] * w[j];
        a1 += (int32_t)x[j] * w[n + j];
        a2 += (int32_t)x[j] * w[2 * n + j];
    }
    OPAQUE(a0);
    OPAQUE(a1);
    OPAQUE(a2);
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
}

static inline int32_t dot1(const int16_t *x, const int8_t *w, int n)
{
    int32_t a0 = 0;
    const int full = n & ~3;
    int j;
    UNROLL
    for (j = 0; j < full; j += 4) {
        GROUP_LOAD(x, j);
        GROUP(a0, x, w + j);
    }
    for (j = full; j < n; j++)
        a0 += (int32_t)x[j] * w[j];
    return a0;
}

#if !EDGE_GRU_RESET_AFTER
/* The same for 4 consecutive rows. */
static inline void dot4(const int16_t *x, const int8_t *w, int n, int32_t *acc)
{
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    const int full = n & ~3;
    int j;
    UNROLL
    for (j = 0; j < full; j += 4) {
        GROUP_LOAD(x, j);
        GROUP(a0, x, w + j);
        GROUP(a1, x, w + n + j);
        GROUP(a2, x, w + 2 * n + j);
        GROUP(a3, x, w + 3 * n + j);
    }
    for (j = full; j < n; j++) {
        a0 += (int32_t)x[j] * w[j];
        a1 += (int32_t)x[j] * w[n + j];
        a2 += (int32_t)x[j] * w[2 * n + j];
        a3 += (int32_t)x[j] * w[3 * n + j];
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* acc[r] = x . row r of w (rows of n int8, group-reordered), r = 0..rows-1. */
static void matvec(const int16_t *x, const int8_t *w, int n, int rows, int32_t *acc)
{
    int r = 0;
    for (; r + 4 <= rows; r += 4)
        dot4(x, w + (size_t)r * n, n, acc + r);
    for (; r < rows; r++)
        acc[r] = dot1(x, w + (size_t)r * n, n);
}

#endif

/* Q.F = (a * m + 2^31) >> 32, and the sum of two such products before one rounding. */
static inline int32_t mulhi(int32_t a, int32_t m)
{
#if EDGE_GRU_USE_DSP
    int32_t r; /* SMMULR: (a * m + 2^31) >> 32 in one instruction */
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(m));
    return r;
#else
    return (int32_t)(((int64_t)a * m + HALF32) >> 32);
#endif
}

/* (r * v + 2^14) >> 15 for r in [0, 32767] (Q0.15) and |v| < 2^30: the same bits as
 * mulhi(2 v, r * 2^16), which is one SMMULR on the M4. */
static inline int32_t mul_q15(int32_t r, int32_t v)
{
#if EDGE_GRU_USE_DSP
    return mulhi(v * 2, (int32_t)((uint32_t)r << 16));
#else
    return (int32_t)(((int64_t)r * v + HALF15) >> 15);
#endif
}

static inline int32_t mulhi2(int32_t a, int32_t ma, int32_t b, int32_t mb)
{
    return (int32_t)(((int64_t)a * ma + (int64_t)b * mb + HALF32) >> 32);
}

/* Table value at |pre| (Q.F) with linear interpolation, round half up. Each table word
 * holds a point's value (low 16 bits) and the slope to the next point (high 16 bits), both
 * >= 0. |pre| is clamped to 8.0: the last point with fraction 0, the saturated value. */
static inline int32_t lut(const int32_t *t, int32_t pre)
{
    uint32_t a = pre < 0 ? 0u - (uint32_t)pre : (uint32_t)pre;
    int32_t w, f;
    a = a < LUT_LIMIT ? a : LUT_LIMIT;
    w = t[a >> LUT_SHIFT];
    f = (int32_t)(a & ((1u << LUT_SHIFT) - 1u));
    return (w & 0xFFFF) + (((w >> 16) * f + ((int32_t)1 << (LUT_SHIFT - 1))) >> LUT_SHIFT);
}

int16_t edge_gru_sigmoid(int32_t pre)
{
    int32_t y = lut(edge_gru_sigmoid_lut, pre); /* sigmoid(-x) = 1 - sigmoid(x) */
    return (int16_t)(pre < 0 ? 32768 - y : y);
}

int16_t edge_gru_tanh(int32_t pre)
{
    int32_t y = lut(edge_gru_tanh_lut, pre); /* tanh(-x) = -tanh(x) */
    return (int16_t)(pre < 0 ? -y : y);
}

/* h' = z h + (1 - z) n = n + z (h - n), Q0.15, saturated. */
static inline int16_t blend(int32_t z, int32_t h, int32_t n)
{
    int32_t v = n + ((z * (h - n) + HALF15) >> 15);
#if EDGE_GRU_USE_DSP
    return (int16_t)__ssat(v, 16);
#else
    return (int16_t)(v > 32767 ? 32767 : (v < -32768 ? -32768 : v));
#endif
}

void edge_gru_init(edge_gru_state *s)
{
    memset(s, 0, sizeof *s);
}

/* x = E[token] (int8 * per-row uint8 multiplier = exact int16). */
static void embed(edge_gru_state *s, int32_t token)
{
    uint32_t id = (uint32_t)token < (uint32_t)EDGE_GRU_VOCAB ? (uint32_t)token
                                                              : (uint32_t)EDGE_GRU_OOV_ID;
    const int8_t *e = edge_gru_emb_q + (size_t)id * E;
    int32_t m = edge_gru_emb_mult[id];
    int j;
    for (j = 0; j < E; j++)
        s->x[j] = (int16_t)(e[j] * m);
}

#define BLOCK 4 /* units per block: 3 * BLOCK rows of each kernel, accumulators on the stack */

/* edge_gru_unit_q fields (10 per unit): z {x mult, h mult, bias}, r {same},
 * h {x mult, input bias, h mult, recurrent bias} */
#define UNIT_FIELDS 10

#if EDGE_GRU_RESET_AFTER
void edge_gru_step(edge_gru_state *s, int32_t token)
{
    int i;
    embed(s, token);
    BARRIER(); /* x and h are stored before the dot products read them */
    for (i = 0; i < U; i++) {
        const int32_t *p = edge_gru_unit_q + UNIT_FIELDS * i;
        int32_t a[3], b[3], z, r, xh, hh, n;
        dot3(s->x, edge_gru_w_q + (size_t)3 * i * E, E, a); /* x W, rows z r h of unit i */
        dot3(s->h, edge_gru_u_q + (size_t)3 * i * U, U, b); /* h U */
        /* z = sigmoid(x W_z + h U_z + b_iz + b_rz), r likewise */
        z = edge_gru_sigmoid(mulhi2(a[0], p[0], b[0], p[1]) + p[2]);
        r = edge_gru_sigmoid(mulhi2(a[1], p[3], b[1], p[4]) + p[5]);
        /* n = tanh(x W_h + b_ih + r * (h U_h + b_rh)) */
        xh = mulhi(a[2], p[6]) + p[7];
        hh = mulhi(b[2], p[8]) + p[9];
        n = edge_gru_tanh(xh + mul_q15(r, hh));
        s->t[i] = blend(z, s->h[i], n); /* h' = z h + (1 - z) n */
    }
    BARRIER(); /* every read of h is done before h is overwritten */
    memcpy(s->h, s->t, sizeof s->h);
    s->steps++;
}
#else
void edge_gru_step(edge_gru_state *s, int32_t token)
{
    int i0, i;
    embed(s, token);
    BARRIER();
    /* pass 1: z, r and r * h (they need the whole old h) */
    for (i0 = 0; i0 < U; i0 += BLOCK) {
        const int nb = U - i0 < BLOCK ? U - i0 : BLOCK;
        int32_t ax[3 * BLOCK], ah[3 * BLOCK];
        matvec(s->x, edge_gru_w_q + (size_t)3 * i0 * E, E, 3 * nb, ax);
        matvec(s->h, edge_gru_u_q + (size_t)3 * i0 * U, U, 3 * nb, ah);
        for (i = 0; i < nb; i++) {
            const int32_t *p = edge_gru_unit_q + UNIT_FIELDS * (i0 + i);
            const int32_t *a = ax + 3 * i, *b = ah + 3 * i;
            int32_t r;
            s->z[i0 + i] = edge_gru_sigmoid(mulhi2(a[0], p[0], b[0], p[1]) + p[2]);
            r = edge_gru_sigmoid(mulhi2(a[1], p[3], b[1], p[4]) + p[5]);
            s->t[i0 + i] = (int16_t)((r * s->h[i0 + i] + HALF15) >> 15); /* r * h, Q0.15 */
            s->x2[i0 + i] = a[2];                                          /* x W_h */
        }
    }
    BARRIER(); /* r * h is stored before pass 2 reads it */
    /* pass 2: n = tanh(x W_h + b_ih + (r * h) U_h); h' = z h + (1 - z) n, in place */
    for (i = 0; i < U; i++) {
        const int32_t *p = edge_gru_unit_q + UNIT_FIELDS * i;
        int32_t arh = dot1(s->t, edge_gru_u_q + (size_t)(3 * i + 2) * U, U);
        int32_t n = edge_gru_tanh(mulhi2(s->x2[i], p[6], arh, p[8]) + p[7]);
        s->h[i] = blend(s->z[i], s->h[i], n);
    }
    s->steps++;
}
#endif

int16_t edge_gru_score(const edge_gru_state *s)
{
    int32_t acc = 0; /* p = sigmoid(h . w_dense + b_dense) */
    int j;
    for (j = 0; j < U; j++)
        acc += (int32_t)s->h[j] * edge_gru_dense_q[j];
    return edge_gru_sigmoid(mulhi(acc, EDGE_GRU_DENSE_MULT) + EDGE_GRU_DENSE_BIAS);
}

int16_t edge_gru_run(edge_gru_state *s, const int32_t *tokens, size_t n)
{
    size_t k;
    edge_gru_init(s);
    if (n > EDGE_GRU_MAXLEN) { /* pre-truncate: keep the last MAXLEN tokens */
        tokens += n - EDGE_GRU_MAXLEN;
        n = EDGE_GRU_MAXLEN;
    }
    for (k = n; k < EDGE_GRU_MAXLEN; k++) /* pre-pad */
        edge_gru_step(s, EDGE_GRU_PAD_ID);
    for (k = 0; k < n; k++)
        edge_gru_step(s, tokens[k]);
    return edge_gru_score(s);
}
