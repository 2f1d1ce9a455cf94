/*
 * selftest_family: run the generated family test vectors (real examples, truncation,
 * extreme inputs, empty input) through the whole-sequence call and compare with the
 * outputs of the Python bit-exact model. Exit status 0 = all equal.
 */
#include "edge_gru_family.h"
#include "edge_gru_family_testvec.h"
#include "platform.h"

static edge_gru_family_state state;

int main(void)
{
    uint32_t i, k, failures = 0, offset = 0, ticks = 0, full = 0;
    int32_t out[EGF_OUTPUTS];
    platform_init();
    if (egf_testvec_crc32 != EGF_MODEL_CRC32) {
        platform_puts("selftest: test vectors belong to other weights\n");
        return 1;
    }
    for (i = 0; i < egf_testvec_count; i++) {
        uint32_t n = egf_testvec_len[i], t0 = platform_counter(), dt, bad = 0;
#if EGF_INPUT_TOKENS
        (void)edge_gru_family_run_tokens(&state, egf_testvec_data + offset, n, out);
        offset += n;
#else
        (void)edge_gru_family_run_features(&state, egf_testvec_data + offset, n, out);
        offset += n * EGF_F;
#endif
        dt = platform_counter() - t0;
        if (n == EGF_T && full == 0)
            ticks = dt, full = 1;
        for (k = 0; k < EGF_OUTPUTS; k++)
            bad |= out[k] != egf_testvec_expected[i * EGF_OUTPUTS + k];
        if (bad) {
            platform_puts("selftest: example ");
            platform_put_u32(i);
            platform_puts(" differs\n");
            failures++;
        }
    }
    platform_puts("selftest: ");
    platform_put_u32(egf_testvec_count - failures);
    platform_puts("/");
    platform_put_u32(egf_testvec_count);
    platform_puts(" bit-exact; counter ticks per sequence ");
    platform_put_u32(ticks);
    if (platform_counter_kind() == COUNTER_QEMU_ICOUNT_TIMER) {
        platform_puts(" (instructions ");
        platform_put_u32((ticks * 5u + 8u) >> 4);
        platform_puts(")");
    }
    platform_puts(failures ? " FAIL\n" : " OK\n");
    return failures ? 1 : 0;
}
