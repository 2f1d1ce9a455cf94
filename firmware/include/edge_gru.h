/*
 * edge_gru: a fixed-point GRU text classifier, one token at a time.
 *
 *   Embedding(V, E) -> GRU(U) -> Dense(1, sigmoid), integer arithmetic only
 *   (C99, no malloc, no float, no libm, no global mutable state).
 *
 * The model's dimensions and weights come from the generated edge_gru_weights.h
 * (python -m edge_gru.convert writes it). Every function below is bit-exact with the
 * NumPy model edge_gru.fixed_point.model, on the host and on a Cortex-M4 (where the
 * __ARM_FEATURE_DSP path uses SMLAD and gives the same bits as the portable path).
 *
 * Number formats (Qm.n = signed, n fraction bits; F = EDGE_GRU_PRE_FRAC, <= 24):
 *   token id        int32_t; ids outside [0, EDGE_GRU_VOCAB) are read as EDGE_GRU_OOV_ID
 *   embedded token  int16_t x[E] = emb_q (int8) * emb_mult[token] (uint8),
 *                   value x * 2^-EDGE_GRU_EMB_EXP (exact, |x| <= 127 * 255)
 *   kernels         int8_t, one scale per output row, folded into an int32 multiplier M:
 *                   Q.F = (acc * M + 2^31) >> 32   (int64 product, round half up)
 *   accumulators    int32_t (sums of int16 * int8 products; no overflow by construction,
 *                   checked when the weights are generated)
 *   biases          int32_t Q(31-F).F
 *   gate inputs     int32_t Q(31-F).F
 *   sigmoid, tanh   257-point tables over [0, 8] (Q0.15 value | slope << 16 per int32),
 *                   linear interpolation (round half up), symmetry for x < 0, saturated
 *                   for |x| >= 8; max error 1.2e-4 (tanh), 2.9e-4 (sigmoid: saturation)
 *   gates z, r, n   int16 Q0.15; r * (h U_h + b) and z * (h - n) round half up (>> 15)
 *   hidden state h  int16_t Q0.15, saturated to [-32768, 32767]
 *   score           int16_t Q0.15 probability in [0, 32767] (0.5 = 16384)
 *
 * Right shifts of negative numbers are arithmetic (GCC, Clang, Arm Compiler all do so).
 */
#ifndef EDGE_GRU_H
#define EDGE_GRU_H

#include <stddef.h>
#include <stdint.h>

#include "edge_gru_weights.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Arrays of int16 hold an even number of elements so that each starts 4-byte aligned:
 * the Cortex-M4 path loads pairs with LDRD, which faults on an unaligned address. */
#define EDGE_GRU_EVEN(n) (((n) + 1) & ~1)

/* Caller-owned state: hidden state plus scratch, nothing else is mutable. */
typedef struct {
    uint32_t steps;                          /* tokens consumed since edge_gru_init */
    int16_t h[EDGE_GRU_EVEN(EDGE_GRU_UNITS)]; /* hidden state, Q0.15 */
    int16_t x[EDGE_GRU_EVEN(EDGE_GRU_EMBED)]; /* scratch: embedded token, Q(15-EMB_EXP).EMB_EXP */
    int16_t t[EDGE_GRU_EVEN(EDGE_GRU_UNITS)]; /* scratch: next state (reset_after) or r * h */
#if !EDGE_GRU_RESET_AFTER
    int16_t z[EDGE_GRU_EVEN(EDGE_GRU_UNITS)]; /* scratch: update gate, Q0.15 */
    int32_t x2[EDGE_GRU_UNITS];       /* scratch: candidate input accumulators (x W_h) */
#endif
} edge_gru_state;

/* h = 0, steps = 0. */
void edge_gru_init(edge_gru_state *s);

/* Consume one token (streaming). Out-of-range ids become EDGE_GRU_OOV_ID. */
void edge_gru_step(edge_gru_state *s, int32_t token);

/* Dense + sigmoid on the current state: P(positive) as Q0.15 in [0, 32767]. */
int16_t edge_gru_score(const edge_gru_state *s);

/* Whole review with the training padding rule: keep the last EDGE_GRU_MAXLEN tokens,
 * pre-pad with EDGE_GRU_PAD_ID to EDGE_GRU_MAXLEN, run from h = 0, return the score.
 * tokens may be NULL when n == 0. */
int16_t edge_gru_run(edge_gru_state *s, const int32_t *tokens, size_t n);

/* The integer activations, exposed for tests: Q.F in, Q0.15 out. */
int16_t edge_gru_sigmoid(int32_t pre);
int16_t edge_gru_tanh(int32_t pre);

#ifdef __cplusplus
}
#endif

#endif /* EDGE_GRU_H */
