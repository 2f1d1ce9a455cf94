/*
 * QEMU mps2-an386: CMSDK UART0 (0x40004000) for bytes, CMSDK timer0 (0x40000000) as the
 * counter, semihosting SYS_EXIT to end the emulator with a status.
 * Under -icount shift=7 the timer (25 MHz) counts instructions: (ticks * 5 + 8) >> 4.
 */
#include "platform.h"

#define REG(addr) (*(volatile uint32_t *)(addr))
#define UART0 0x40004000u
#define UART_DATA REG(UART0 + 0x00u)
#define UART_STATE REG(UART0 + 0x04u) /* bit0 TX full, bit1 RX full */
#define UART_CTRL REG(UART0 + 0x08u)
#define UART_BAUDDIV REG(UART0 + 0x10u)
#define TIMER0 0x40000000u
#define TIMER_CTRL REG(TIMER0 + 0x00u)
#define TIMER_VALUE REG(TIMER0 + 0x04u) /* counts down */
#define TIMER_RELOAD REG(TIMER0 + 0x08u)

void platform_init(void)
{
    UART_BAUDDIV = 217u; /* 25 MHz / 115200 */
    UART_CTRL = 3u;      /* TX and RX enabled */
    TIMER_RELOAD = 0xFFFFFFFFu;
    TIMER_VALUE = 0xFFFFFFFFu;
    TIMER_CTRL = 1u;
}

void platform_putc(uint8_t c)
{
    while (UART_STATE & 1u) {
    }
    UART_DATA = c;
}

int platform_getc_timeout(uint32_t timeout_ticks)
{
    uint32_t start = platform_counter();
    while (!(UART_STATE & 2u)) {
        if (platform_counter() - start > timeout_ticks)
            return -1;
    }
    return (int)(UART_DATA & 0xFFu);
}

uint32_t platform_counter(void) { return 0xFFFFFFFFu - TIMER_VALUE; }
uint32_t platform_counter_hz(void) { return 25000000u; }
enum platform_counter_kind platform_counter_kind(void) { return COUNTER_QEMU_ICOUNT_TIMER; }

void platform_exit(int code)
{
    /* SYS_EXIT (0x18): ADP_Stopped_ApplicationExit -> status 0, RunTimeErrorUnknown -> 1 */
    register uint32_t op __asm__("r0") = 0x18u;
    register uint32_t reason __asm__("r1") = code == 0 ? 0x20026u : 0x20023u;
    __asm__ volatile("bkpt 0xab" : : "r"(op), "r"(reason) : "memory");
    for (;;) {
    }
}
