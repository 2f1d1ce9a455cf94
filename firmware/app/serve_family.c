/*
 * serve_family: run a family model on sequences sent over the UART (protocol in
 * include/edge_gru_protocol.h, family commands). Same image logic in QEMU and on a board.
 */
#include "edge_gru_family.h"
#include "edge_gru_protocol.h"
#include "platform.h"

#if defined(__ARM_FEATURE_DSP) && !defined(EDGE_GRU_PORTABLE)
#define DSP_PATH 1u
#else
#define DSP_PATH 0u
#endif

#if EGF_INPUT_TOKENS
#define STEP_VALUES 1
#define STEP_BYTES 4u
typedef int32_t step_t;
#else
#define STEP_VALUES EGF_F
#define STEP_BYTES 2u
typedef int16_t step_t;
#endif

static edge_gru_family_state state;
static step_t ring[EGF_T * STEP_VALUES]; /* the last T steps received */
static step_t seq[EGF_T * STEP_VALUES];
static uint32_t timeout_ticks;

static void put16(uint32_t v)
{
    platform_putc((uint8_t)v);
    platform_putc((uint8_t)(v >> 8));
}

static void put32(uint32_t v)
{
    put16(v & 0xFFFFu);
    put16(v >> 16);
}

static int get_le(uint32_t bytes, uint32_t *out)
{
    uint32_t v = 0, i;
    for (i = 0; i < bytes; i++) {
        int c = platform_getc_timeout(timeout_ticks);
        if (c < 0)
            return -1;
        v |= (uint32_t)c << (8u * i);
    }
    *out = v;
    return 0;
}

static void info(void)
{
    platform_putc(EDGE_GRU_SYNC_DEVICE);
    platform_putc('I');
    put32(EGF_MODEL_CRC32);
    put32(platform_counter_hz());
    put16(EGF_INPUT_TOKENS ? EGF_VOCAB : EGF_F);
    put16(EGF_IN_DIM);
    put16(EGF_OUTPUTS);
    put16(EGF_T);
    platform_putc((uint8_t)EGF_INPUT_TOKENS);
    platform_putc((uint8_t)platform_counter_kind());
    platform_putc((uint8_t)DSP_PATH);
    platform_putc((uint8_t)EDGE_GRU_PROTOCOL_FAMILY);
    put32((uint32_t)EGF_OUT_FRAC);
}

static void score(void)
{
    uint32_t n, i, j, v, kept, first, t0, ticks;
    int32_t out[EGF_OUTPUTS];
    int best;
    if (get_le(2, &n) < 0)
        return;
    for (i = 0; i < n; i++) {
        for (j = 0; j < STEP_VALUES; j++) {
            if (get_le(STEP_BYTES, &v) < 0)
                return;
            ring[(i % EGF_T) * STEP_VALUES + j] = (step_t)v;
        }
    }
    kept = n < EGF_T ? n : EGF_T;
    first = n - kept;
    for (i = 0; i < kept; i++)
        for (j = 0; j < STEP_VALUES; j++)
            seq[i * STEP_VALUES + j] = ring[((first + i) % EGF_T) * STEP_VALUES + j];
    t0 = platform_counter();
#if EGF_INPUT_TOKENS
    best = edge_gru_family_run_tokens(&state, seq, kept, out);
#else
    best = edge_gru_family_run_features(&state, seq, kept, out);
#endif
    ticks = platform_counter() - t0;
    platform_putc(EDGE_GRU_SYNC_DEVICE);
    platform_putc('O');
    put16((uint32_t)best);
    put16(EGF_OUTPUTS);
    for (i = 0; i < EGF_OUTPUTS; i++)
        put32((uint32_t)out[i]);
    put32(ticks);
    put32(state.steps);
}

int main(void)
{
    platform_init();
    timeout_ticks = platform_counter_hz() / 2u;
    for (;;) {
        int c = platform_getc_timeout(0xFFFFFFFFu);
        if (c != (int)EDGE_GRU_SYNC_HOST)
            continue;
        c = platform_getc_timeout(timeout_ticks);
        if (c == 'I') {
            info();
        } else if (c == 'S') {
            score();
        } else if (c >= 0) {
            platform_putc(EDGE_GRU_SYNC_DEVICE);
            platform_putc('?');
        }
    }
}
