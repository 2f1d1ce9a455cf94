/*
 * The little a firmware app needs from a board or emulator: a byte UART, a free-running
 * counter and a way to stop. Implemented in platform/<board>/platform.c.
 */
#ifndef EDGE_GRU_PLATFORM_H
#define EDGE_GRU_PLATFORM_H

#include <stdint.h>

/* What platform_counter() counts; reported to the host in the 'I' reply. */
enum platform_counter_kind {
    COUNTER_NONE = 0,
    COUNTER_QEMU_ICOUNT_TIMER = 1, /* CMSDK timer0 at 25 MHz under -icount shift=7:
                                      instructions = (ticks * 5 + 8) >> 4 */
    COUNTER_CPU_CYCLES = 2         /* DWT CYCCNT */
};

void platform_init(void);
void platform_putc(uint8_t c);
/* Next received byte, or -1 if none arrives within timeout_ticks counter ticks. */
int platform_getc_timeout(uint32_t timeout_ticks);
uint32_t platform_counter(void);    /* up-counting, wraps at 2^32 */
uint32_t platform_counter_hz(void); /* ticks per second */
enum platform_counter_kind platform_counter_kind(void);
void platform_exit(int code);       /* QEMU: ends the emulator with this status */

void platform_puts(const char *s);
void platform_put_u32(uint32_t v); /* decimal */

#endif /* EDGE_GRU_PLATFORM_H */
