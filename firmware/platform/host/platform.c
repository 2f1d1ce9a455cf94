/* Host (Linux, macOS) platform: stdio for the UART, no counter. For host builds of the apps. */
#include <stdio.h>
#include <stdlib.h>

#include "platform.h"

void platform_init(void) {}

void platform_putc(uint8_t c)
{
    putchar(c);
    if (c == '\n')
        fflush(stdout);
}

int platform_getc_timeout(uint32_t timeout_ticks)
{
    int c;
    (void)timeout_ticks;
    fflush(stdout);
    c = getchar();
    if (c == EOF)
        exit(0);
    return c;
}

uint32_t platform_counter(void) { return 0u; }
uint32_t platform_counter_hz(void) { return 1u; }
enum platform_counter_kind platform_counter_kind(void) { return COUNTER_NONE; }

void platform_exit(int code)
{
    fflush(stdout);
    exit(code);
}
