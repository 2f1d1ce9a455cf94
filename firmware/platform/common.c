/* Platform helpers shared by every board: decimal printing on top of platform_putc. */
#include "platform.h"

void platform_puts(const char *s)
{
    while (*s)
        platform_putc((uint8_t)*s++);
}

void platform_put_u32(uint32_t v)
{
    char buf[11];
    int i = 10;
    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    platform_puts(buf + i);
}
