/*
 * edge_gru_host: drive the library on the host for the Python tests.
 *
 *   edge_gru_host run            stdin: records {u32 n, n x int32 token}; stdout: int16
 *                                score per record (edge_gru_run), little-endian.
 *   edge_gru_host gen SEED N     stdout: N random streams in the `run` input format.
 *   edge_gru_host fuzz SEED N    run N random streams (ids anywhere in int32, lengths
 *                                0..500) checking invariants; prints counts and a hash.
 *
 * Random streams: xorshift64* from SEED; the same SEED gives the same streams in gen
 * and fuzz, so Python can compare a sample bit for bit.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_gru.h"

#define MAX_STREAM 500

static uint64_t rng_state;

static uint32_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

/* Mostly real ids, plus negative, huge and boundary ids. */
static int32_t random_token(void)
{
    static const int32_t edges[] = {0, 1, 2, -1, EDGE_GRU_VOCAB - 1, EDGE_GRU_VOCAB,
                                    INT32_MIN, INT32_MAX};
    uint32_t kind = rng() % 10u;
    if (kind < 7u)
        return (int32_t)(rng() % EDGE_GRU_VOCAB);
    if (kind == 7u)
        return -(int32_t)(rng() & 0x7FFFFFFFu) - 1;
    if (kind == 8u)
        return (int32_t)(EDGE_GRU_VOCAB + rng() % (0x7FFFFFFFu - EDGE_GRU_VOCAB));
    return edges[rng() % (sizeof edges / sizeof edges[0])];
}

static uint32_t random_stream(int32_t *tokens)
{
    uint32_t n = rng() % (MAX_STREAM + 1u), i;
    for (i = 0; i < n; i++)
        tokens[i] = random_token();
    return n;
}

static int read_exact(void *buf, size_t bytes)
{
    return fread(buf, 1, bytes, stdin) == bytes;
}

static int cmd_run(void)
{
    static int32_t tokens[1u << 16];
    edge_gru_state s;
    uint32_t n;
    while (read_exact(&n, sizeof n)) {
        int16_t p;
        if (n > sizeof tokens / sizeof tokens[0] || !read_exact(tokens, n * sizeof tokens[0])) {
            fprintf(stderr, "run: truncated or oversized record\n");
            return 2;
        }
        p = edge_gru_run(&s, tokens, n);
        fwrite(&p, sizeof p, 1, stdout);
    }
    return 0;
}

static int cmd_gen(uint32_t count)
{
    static int32_t tokens[MAX_STREAM];
    uint32_t i;
    for (i = 0; i < count; i++) {
        uint32_t n = random_stream(tokens);
        fwrite(&n, sizeof n, 1, stdout);
        fwrite(tokens, sizeof tokens[0], n, stdout);
    }
    return 0;
}

/* Invariants: score in [0, 32767]; edge_gru_run == init + padding + streaming steps;
 * mapping out-of-range ids to OOV by hand changes nothing. */
static int cmd_fuzz(uint32_t count)
{
    static int32_t tokens[MAX_STREAM], mapped[MAX_STREAM];
    edge_gru_state s, t;
    uint64_t total_tokens = 0, out_of_range = 0;
    uint32_t hash = 2166136261u, i, j, checked = 0;
    for (i = 0; i < count; i++) {
        uint32_t n = random_stream(tokens);
        int16_t p = edge_gru_run(&s, tokens, n);
        total_tokens += n;
        if (p < 0) {
            fprintf(stderr, "fuzz: stream %u: score %d out of range\n", i, p);
            return 1;
        }
        hash = (hash ^ (uint16_t)p) * 16777619u;
        for (j = 0; j < n; j++) {
            int oov = tokens[j] < 0 || tokens[j] >= EDGE_GRU_VOCAB;
            out_of_range += (uint64_t)oov;
            mapped[j] = oov ? EDGE_GRU_OOV_ID : tokens[j];
        }
        if (i % 16u == 0u) { /* the slower cross-checks on a 1/16 sample */
            uint32_t keep = n > EDGE_GRU_MAXLEN ? EDGE_GRU_MAXLEN : n;
            edge_gru_init(&t);
            for (j = keep; j < EDGE_GRU_MAXLEN; j++)
                edge_gru_step(&t, EDGE_GRU_PAD_ID);
            for (j = n - keep; j < n; j++)
                edge_gru_step(&t, tokens[j]);
            if (edge_gru_score(&t) != p || t.steps != EDGE_GRU_MAXLEN ||
                memcmp(t.h, s.h, sizeof t.h) != 0) {
                fprintf(stderr, "fuzz: stream %u: streaming differs from edge_gru_run\n", i);
                return 1;
            }
            if (edge_gru_run(&t, mapped, n) != p) {
                fprintf(stderr, "fuzz: stream %u: OOV mapping differs\n", i);
                return 1;
            }
            checked++;
        }
    }
    printf("fuzz streams=%u tokens=%llu out_of_range=%llu cross_checked=%u hash=%08x\n", count,
           (unsigned long long)total_tokens, (unsigned long long)out_of_range, checked, hash);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        return cmd_run();
    if (argc == 4 && (strcmp(argv[1], "gen") == 0 || strcmp(argv[1], "fuzz") == 0)) {
        uint32_t count = (uint32_t)strtoul(argv[3], NULL, 10);
        rng_state = strtoull(argv[2], NULL, 10) * 2654435761ULL + 1u;
        return argv[1][0] == 'g' ? cmd_gen(count) : cmd_fuzz(count);
    }
    fprintf(stderr, "usage: edge_gru_host run | gen SEED N | fuzz SEED N\n");
    return 2;
}
