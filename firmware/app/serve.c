/*
 * serve: score reviews sent over the UART (protocol in include/edge_gru_protocol.h).
 * The same image logic runs in QEMU (mps2-an386) and on the board.
 */
#include "edge_gru.h"
#include "edge_gru_protocol.h"
#include "platform.h"

#if defined(__ARM_FEATURE_DSP) && !defined(EDGE_GRU_PORTABLE)
#define DSP_PATH 1u
#else
#define DSP_PATH 0u
#endif

static edge_gru_state state;
static int32_t ring[EDGE_GRU_MAXLEN]; /* the last MAXLEN tokens received */
static int32_t review[EDGE_GRU_MAXLEN];
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

/* Little-endian unsigned of `bytes` bytes, or -1 on a timeout. */
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
    put32(EDGE_GRU_MODEL_CRC32);
    put32(platform_counter_hz());
    put16(EDGE_GRU_VOCAB);
    put16(EDGE_GRU_EMBED);
    put16(EDGE_GRU_UNITS);
    put16(EDGE_GRU_MAXLEN);
    platform_putc((uint8_t)EDGE_GRU_RESET_AFTER);
    platform_putc((uint8_t)platform_counter_kind());
    platform_putc((uint8_t)DSP_PATH);
    platform_putc((uint8_t)EDGE_GRU_PROTOCOL_VERSION);
    put32(0u);
}

/* token_bytes: 4 (int32 ids, command 'R') or 2 (uint16 ids, command 'r'). */
static void score(uint32_t token_bytes)
{
    uint32_t n, i, tok, kept, first, t0, ticks;
    int16_t p;
    if (get_le(2, &n) < 0)
        return;
    for (i = 0; i < n; i++) {
        if (get_le(token_bytes, &tok) < 0)
            return;
        ring[i % EDGE_GRU_MAXLEN] = (int32_t)tok;
    }
    kept = n < EDGE_GRU_MAXLEN ? n : EDGE_GRU_MAXLEN;
    first = n - kept; /* oldest kept token's index */
    for (i = 0; i < kept; i++)
        review[i] = ring[(first + i) % EDGE_GRU_MAXLEN];
    t0 = platform_counter();
    p = edge_gru_run(&state, review, kept);
    ticks = platform_counter() - t0;
    platform_putc(EDGE_GRU_SYNC_DEVICE);
    platform_putc('R');
    put16((uint16_t)p);
    put16(0u);
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
        } else if (c == 'R') {
            score(4u);
        } else if (c == 'r') {
            score(2u);
        } else if (c >= 0) {
            platform_putc(EDGE_GRU_SYNC_DEVICE);
            platform_putc('?');
        }
    }
}
