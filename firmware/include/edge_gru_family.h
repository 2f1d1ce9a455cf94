/*
 * edge_gru_family: a fixed-point GRU for every model of the GRU family (C99, no malloc,
 * no float, no libm, caller-owned state, no global mutable state).
 *
 *   tokens:   Embedding([mask_zero]) -> GRU stack -> [reduction] -> Dense head
 *   features: [Normalization (folded)] [Masking] -> GRU / Bidirectional stack
 *             -> [mean | max | flatten | last] -> Dense (relu/tanh/sigmoid/linear) head
 *             -> sigmoid | softmax | linear output
 *
 * The model's dimensions, number formats and weights come from the generated
 * edge_gru_model.h / edge_gru_model.c (python -m edge_gru.convert writes them into
 * <out>/fixed_point/). Bit-exact with the NumPy model edge_gru.fixed_point.family_model.
 *
 * Number formats (Qm.n: signed, n fraction bits):
 *   feature frame   int16_t x[EGF_F]; x[f] is the model's input value after Normalization
 *                   in Q(15-k_f).k_f (k_f = egf_feature_frac[f], also in the header comment).
 *                   Raw readings: edge_gru_family_from_raw (int32 raw = reading * 2^RAW_FRAC_f).
 *   token id        int32_t; ids outside [0, EGF_VOCAB) are read as EGF_OOV_ID; id 0 is masked
 *                   when EGF_MASK_ZERO.
 *   GRU state       int16_t Q0.15 per layer and direction; gates Q0.15; gate inputs Q(31-F).F
 *                   with F per layer (the seed library's equations and rounding).
 *   layer outputs   int16 Q0.15 (Bidirectional sum: Q1.14); hidden relu/linear Dense: int16
 *                   with the exponent stated in edge_gru_model.h.
 *   output          int32_t out[EGF_OUTPUTS]: Q0.15 probabilities (sigmoid, softmax) or
 *                   Q(31-EGF_OUT_FRAC).EGF_OUT_FRAC values (linear): value = out * 2^-OUT_FRAC.
 *
 * Masking: a step is masked when its id is 0 (mask_zero) or every x[f] equals
 * egf_mask_frame[f] (Masking); a masked step keeps every layer's state. A non-masked frame
 * whose values all quantize to the mask frame is masked too (the float model would not).
 *
 * Calls: streaming (edge_gru_family_step_*) exists when EGF_STREAMABLE (every GRU runs
 * forward in time); the whole-sequence calls (edge_gru_family_run_*) always: they keep the
 * last EGF_T steps and pre-pad to EGF_T with id 0 / egf_pad_frame, as training did.
 * Caller's contract: pointers are valid and hold n steps (n * EGF_F values for frames);
 * NULL only when n == 0. Bad ids or frame values never read out of bounds.
 * Right shifts of negative numbers are arithmetic (GCC, Clang, Arm Compiler).
 */
#ifndef EDGE_GRU_FAMILY_H
#define EDGE_GRU_FAMILY_H

#include <stddef.h>
#include <stdint.h>

/* Reductions over time (EGF_REDUCTION in edge_gru_model.h). */
#define EGF_RED_NONE 0
#define EGF_RED_LAST 1
#define EGF_RED_MEAN 2
#define EGF_RED_MAX 3
#define EGF_RED_FLATTEN 4

/* The generated GRU kernel arrays start on a 4-byte boundary (EGF_ALIGNED_KERNELS): the
 * Cortex-M4 path loads two weight words of a row with one LDRD. */
#if defined(__GNUC__)
#define EGF_WORD_ALIGNED __attribute__((aligned(4)))
#else
#define EGF_WORD_ALIGNED
#endif

#include "edge_gru_model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One GRU direction. Rows unit-interleaved: row 3i+g is gate g (z, r, h) of unit i. */
typedef struct {
    const int8_t *w;   /* [3 * units][input_dim] int8 kernel rows */
    const int8_t *u;   /* [3 * units][units] int8 recurrent kernel rows */
    const int32_t *p;  /* [units][10]: z {x mult, h mult, bias}, r {same},
                          h {x mult, input bias, h mult, recurrent bias}; Q(31-F).F */
    uint16_t units, input_dim;
    uint8_t pre_frac, reset_after, go_backwards;
} egf_gru;

enum { EGF_MERGE_NONE = 0, EGF_MERGE_CONCAT, EGF_MERGE_SUM, EGF_MERGE_MUL, EGF_MERGE_AVE };
enum { EGF_ACT_LINEAR = 0, EGF_ACT_RELU, EGF_ACT_TANH, EGF_ACT_SIGMOID, EGF_ACT_SOFTMAX };

typedef struct {
    egf_gru fwd, bwd;  /* bwd.units == 0: a plain GRU */
    uint8_t merge, return_sequences;
    uint16_t output_dim;
} egf_recurrent;

typedef struct {
    const int8_t *w;      /* [out_dim][in_dim] int8 */
    const int32_t *mult;  /* [out_dim] accumulator -> Q.F: (acc * m + 2^31) >> 32 */
    const int32_t *bias;  /* [out_dim] Q.F */
    uint16_t in_dim, out_dim;
    uint8_t pre_frac, activation, out_shift; /* hidden relu/linear: int16 = Q.F >> out_shift */
} egf_dense;

extern const egf_recurrent egf_recurrent_layers[EGF_NUM_RECURRENT];
extern const egf_dense egf_dense_layers[EGF_NUM_DENSE];

/* Caller-owned state (sizes from edge_gru_model.h). */
typedef struct {
    uint32_t steps;                       /* steps consumed since init */
    int16_t x[EGF_IN_DIM];                /* scratch: the current input vector */
    int16_t h[EGF_STATE_TOTAL];           /* every layer/direction's state, Q0.15 */
    int16_t t[EGF_MAX_UNITS];             /* scratch: next state / r * h */
    int16_t z[EGF_MAX_UNITS];             /* scratch: update gate (reset_after = 0) */
    int32_t x2[EGF_MAX_UNITS];            /* scratch: candidate input accumulators */
#if EGF_REDUCTION == EGF_RED_MEAN
    int32_t sum[EGF_LAST_DIM];            /* running sum of unmasked outputs */
    uint32_t count;                       /* unmasked steps */
#elif EGF_REDUCTION == EGF_RED_MAX
    int16_t max[EGF_LAST_DIM];            /* running max of the outputs */
#endif
#if EGF_SEQ_BUFFERS
    int16_t seq[2][EGF_T * EGF_SEQ_DIM];  /* layer-by-layer buffers (whole-sequence calls) */
    uint8_t mask[EGF_T];
#elif EGF_REDUCTION == EGF_RED_FLATTEN
    int16_t seq[1][EGF_T * EGF_LAST_DIM]; /* FLATTEN: the last T outputs, oldest first
                                             (RAM: EGF_T * units * 2 bytes) */
#endif
    int16_t head[2][EGF_HEAD_DIM];        /* scratch: Dense activations */
    int32_t pre[EGF_OUTPUTS];             /* scratch: last Dense pre-activations */
} edge_gru_family_state;

/* Zero every state, count and buffer. */
void edge_gru_family_init(edge_gru_family_state *s);

#if EGF_INPUT_TOKENS
#if EGF_STREAMABLE
void edge_gru_family_step_token(edge_gru_family_state *s, int32_t token);
#endif
/* Whole sequence of n ids (training padding rule); writes out[EGF_OUTPUTS], returns argmax. */
int edge_gru_family_run_tokens(edge_gru_family_state *s, const int32_t *tokens, size_t n,
                               int32_t *out);
#else
#if EGF_STREAMABLE
void edge_gru_family_step_features(edge_gru_family_state *s, const int16_t *x);
#endif
/* frames: n x EGF_F int16 values, step-major. */
int edge_gru_family_run_features(edge_gru_family_state *s, const int16_t *frames, size_t n,
                                 int32_t *out);
/* Raw readings (int32 raw[f] = reading * 2^RAW_FRAC_f) -> one int16 frame:
 * x[f] = sat16(((raw[f] - egf_raw_offset[f]) * egf_raw_mult[f] + 2^23) >> 24). */
void edge_gru_family_from_raw(const int32_t *raw, int16_t *x);
#endif

#if EGF_STREAMABLE
/* The task output on the current state: out[EGF_OUTPUTS] (format above); returns the
 * index of the first maximum (the class for softmax). Uses the state's scratch. */
int edge_gru_family_score(edge_gru_family_state *s, int32_t *out);
#endif

/* The integer activations, exposed for tests: Q.frac in, Q0.15 out. */
int32_t edge_gru_family_sigmoid(int32_t pre, int frac);
int32_t edge_gru_family_tanh(int32_t pre, int frac);

#ifdef __cplusplus
}
#endif

#endif /* EDGE_GRU_FAMILY_H */
