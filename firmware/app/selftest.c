/*
 * selftest: run the generated test vectors (real reviews, truncation, OOV ids, empty
 * input) and compare with the scores of the Python bit-exact model. Prints one line per
 * failure and a summary with the counter ticks per review; exit status 0 = all equal.
 */
#include "edge_gru.h"
#include "edge_gru_testvec.h"
#include "platform.h"

static edge_gru_state state;

int main(void)
{
    uint32_t i, failures = 0, offset = 0, ticks = 0, full = 0;
    platform_init();
    if (edge_gru_testvec_crc32 != EDGE_GRU_MODEL_CRC32) {
        platform_puts("selftest: test vectors belong to other weights\n");
        return 1;
    }
    for (i = 0; i < edge_gru_testvec_count; i++) {
        uint32_t n = edge_gru_testvec_len[i], t0 = platform_counter();
        int16_t p = edge_gru_run(&state, edge_gru_testvec_tokens + offset, n);
        uint32_t dt = platform_counter() - t0;
        if (n == EDGE_GRU_MAXLEN && full == 0)
            ticks = dt, full = 1;
        if (p != edge_gru_testvec_expected[i]) {
            platform_puts("selftest: review ");
            platform_put_u32(i);
            platform_puts(" got ");
            platform_put_u32((uint32_t)(uint16_t)p);
            platform_puts(" expected ");
            platform_put_u32((uint32_t)(uint16_t)edge_gru_testvec_expected[i]);
            platform_puts("\n");
            failures++;
        }
        offset += n;
    }
    platform_puts("selftest: ");
    platform_put_u32(edge_gru_testvec_count - failures);
    platform_puts("/");
    platform_put_u32(edge_gru_testvec_count);
    platform_puts(" bit-exact; counter ticks per review ");
    platform_put_u32(ticks);
    if (platform_counter_kind() == COUNTER_QEMU_ICOUNT_TIMER) {
        platform_puts(" (instructions ");
        platform_put_u32((ticks * 5u + 8u) >> 4);
        platform_puts(")");
    }
    platform_puts(failures ? " FAIL\n" : " OK\n");
    return failures ? 1 : 0;
}
