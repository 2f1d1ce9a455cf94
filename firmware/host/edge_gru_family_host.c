/*
 * edge_gru_family_host: drive the family library on the host for the Python tests.
 *
 *   edge_gru_family_host run          stdin: records {u32 n, n steps}; a step is an int32 id
 *                                     (token models) or EGF_F int16 values (feature models);
 *                                     stdout: EGF_OUTPUTS int32 per record (whole-sequence call).
 *   edge_gru_family_host raw          stdin: int32 raw readings, EGF_F per frame; stdout: the
 *                                     int16 frames edge_gru_family_from_raw gives (features).
 *   edge_gru_family_host gen SEED N   stdout: N random streams in the `run` input format.
 *   edge_gru_family_host fuzz SEED N  run N random streams (ids anywhere in int32, frame values
 *                                     anywhere in int16, lengths 0..4 T) checking invariants;
 *                                     prints counts and a hash of every output.
 *
 * Random streams: xorshift64* from SEED; gen and fuzz give the same streams for a SEED.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_gru_family.h"

#define MAX_STEPS (4 * EGF_T)
#if EGF_INPUT_TOKENS
typedef int32_t step_t;
#define STEP_VALUES 1
#else
typedef int16_t step_t;
#define STEP_VALUES EGF_F
#endif

static uint64_t rng_state;

static uint32_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

#if EGF_INPUT_TOKENS
static void random_step(step_t *v)
{
    static const int32_t edges[] = {0, 1, 2, -1, EGF_VOCAB - 1, EGF_VOCAB, INT32_MIN, INT32_MAX};
    uint32_t kind = rng() % 10u;
    if (kind < 7u)
        v[0] = (int32_t)(rng() % EGF_VOCAB);
    else if (kind == 7u)
        v[0] = -(int32_t)(rng() & 0x7FFFFFFFu) - 1;
    else if (kind == 8u)
        v[0] = (int32_t)(EGF_VOCAB + rng() % (0x7FFFFFFFu - EGF_VOCAB));
    else
        v[0] = edges[rng() % (sizeof edges / sizeof edges[0])];
}
#else
/* Frames: mostly values of training magnitude, some anywhere in int16, some extremes,
 * some exactly the mask / pad frame. */
static void random_step(step_t *v)
{
    uint32_t kind = rng() % 8u, j;
    for (j = 0; j < EGF_F; j++) {
        if (kind == 6u)
            v[j] = egf_mask_frame[j];
        else if (kind == 7u)
            v[j] = egf_pad_frame[j];
        else if (kind == 5u)
            v[j] = (int16_t)(int32_t)(rng() % 65536u - 32768u);
        else if (kind == 4u)
            v[j] = (rng() & 1u) ? 32767 : -32768;
        else
            v[j] = (int16_t)((int32_t)(rng() % 8193u) - 4096);
    }
}
#endif

static uint32_t random_stream(step_t *steps)
{
    uint32_t n = rng() % (MAX_STEPS + 1u), i;
    for (i = 0; i < n; i++)
        random_step(steps + (size_t)i * STEP_VALUES);
    return n;
}

static int read_exact(void *buf, size_t bytes)
{
    return fread(buf, 1, bytes, stdin) == bytes;
}

static int run(edge_gru_family_state *s, const step_t *steps, uint32_t n, int32_t *out)
{
#if EGF_INPUT_TOKENS
    return edge_gru_family_run_tokens(s, steps, n, out);
#else
    return edge_gru_family_run_features(s, steps, n, out);
#endif
}

static int cmd_run(void)
{
    static step_t steps[(1u << 16) * STEP_VALUES];
    static edge_gru_family_state s;
    int32_t out[EGF_OUTPUTS];
    uint32_t n;
    while (read_exact(&n, sizeof n)) {
        if (n > (1u << 16) || !read_exact(steps, (size_t)n * STEP_VALUES * sizeof steps[0])) {
            fprintf(stderr, "run: truncated or oversized record\n");
            return 2;
        }
        (void)run(&s, steps, n, out);
        fwrite(out, sizeof out[0], EGF_OUTPUTS, stdout);
    }
    return 0;
}

static int cmd_raw(void)
{
#if EGF_INPUT_TOKENS
    fprintf(stderr, "raw: a token model has no raw readings\n");
    return 2;
#else
    int32_t raw[EGF_F];
    int16_t x[EGF_F];
    while (read_exact(raw, sizeof raw)) {
        edge_gru_family_from_raw(raw, x);
        fwrite(x, sizeof x[0], EGF_F, stdout);
    }
    return 0;
#endif
}

static int cmd_gen(uint32_t count)
{
    static step_t steps[MAX_STEPS * STEP_VALUES];
    uint32_t i;
    for (i = 0; i < count; i++) {
        uint32_t n = random_stream(steps);
        fwrite(&n, sizeof n, 1, stdout);
        fwrite(steps, sizeof steps[0], (size_t)n * STEP_VALUES, stdout);
    }
    return 0;
}

/* Invariants: probabilities in [0, 32767] (tanh: [-32767, 32767]); softmax rows sum to
 * 2^15 within EGF_OUTPUTS; the returned index is the first maximum; on a 1/16 sample the
 * streaming calls (init + padding + steps + score) give the whole-sequence call's output. */
static int cmd_fuzz(uint32_t count)
{
    static step_t steps[MAX_STEPS * STEP_VALUES];
    static edge_gru_family_state s, t;
    const egf_dense *last = &egf_dense_layers[EGF_NUM_DENSE - 1];
    uint64_t total = 0;
    uint32_t hash = 2166136261u, i, k, checked = 0;
    int32_t out[EGF_OUTPUTS], out2[EGF_OUTPUTS];
    for (i = 0; i < count; i++) {
        uint32_t n = random_stream(steps);
        int best = run(&s, steps, n, out), first = 0;
        int32_t sum = 0;
        total += n;
        for (k = 0; k < EGF_OUTPUTS; k++) {
            int32_t v = out[k];
            hash = (hash ^ (uint32_t)v) * 16777619u;
            sum += v;
            first = v > out[first] ? (int)k : first;
            if ((last->activation == EGF_ACT_SIGMOID || last->activation == EGF_ACT_SOFTMAX) &&
                (v < 0 || v > 32767)) {
                fprintf(stderr, "fuzz: stream %u: probability %d out of range\n", i, v);
                return 1;
            }
            if (last->activation == EGF_ACT_TANH && (v < -32767 || v > 32767)) {
                fprintf(stderr, "fuzz: stream %u: tanh %d out of range\n", i, v);
                return 1;
            }
        }
        if (best != first) {
            fprintf(stderr, "fuzz: stream %u: argmax %d, first maximum %d\n", i, best, first);
            return 1;
        }
        if (last->activation == EGF_ACT_SOFTMAX &&
            (sum < 32768 - EGF_OUTPUTS - 1 || sum > 32768 + EGF_OUTPUTS)) {
            fprintf(stderr, "fuzz: stream %u: softmax sums to %d\n", i, sum);
            return 1;
        }
#if EGF_STREAMABLE
        if (i % 16u == 0u) {
            uint32_t keep = n > EGF_T ? EGF_T : n, j;
            edge_gru_family_init(&t);
            for (j = keep; j < EGF_T; j++) {
#if EGF_INPUT_TOKENS
                edge_gru_family_step_token(&t, 0);
#else
                edge_gru_family_step_features(&t, egf_pad_frame);
#endif
            }
            for (j = n - keep; j < n; j++) {
#if EGF_INPUT_TOKENS
                edge_gru_family_step_token(&t, steps[j]);
#else
                edge_gru_family_step_features(&t, steps + (size_t)j * EGF_F);
#endif
            }
            (void)edge_gru_family_score(&t, out2);
            if (memcmp(out, out2, sizeof out) != 0 || t.steps != EGF_T) {
                fprintf(stderr, "fuzz: stream %u: streaming differs from the run call\n", i);
                return 1;
            }
            checked++;
        }
#else
        (void)out2;
        (void)t;
#endif
    }
    printf("fuzz streams=%u steps=%llu cross_checked=%u hash=%08x\n", count,
           (unsigned long long)total, checked, hash);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        return cmd_run();
    if (argc >= 2 && strcmp(argv[1], "raw") == 0)
        return cmd_raw();
    if (argc == 4 && (strcmp(argv[1], "gen") == 0 || strcmp(argv[1], "fuzz") == 0)) {
        uint32_t count = (uint32_t)strtoul(argv[3], NULL, 10);
        rng_state = strtoull(argv[2], NULL, 10) * 2654435761ULL + 1u;
        return argv[1][0] == 'g' ? cmd_gen(count) : cmd_fuzz(count);
    }
    fprintf(stderr, "usage: edge_gru_family_host run | raw | gen SEED N | fuzz SEED N\n");
    return 2;
}
