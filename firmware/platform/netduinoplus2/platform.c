/*
 * Netduino Plus 2 (STM32F405, the STM32F4 USART of the NUCLEO-F446RE) for QEMU
 * -M netduinoplus2 and the real board: USART1 on PA9/PA10 (AF7) at 115200 8N1, QEMU's
 * first -serial. Register-level STM32 code (RM0090), the same USART peripheral as the
 * F446RE profile. The clock set-up asks for the PLL (HSI 16 MHz -> 168 MHz) but waits a
 * bounded number of polls: QEMU 7.2 models no RCC (reads as 0), so the core stays on HSI
 * there and the baud divisor follows the clock actually selected (RCC_CFGR SWS).
 * Counter: SysTick (24-bit, processor clock) extended in software; it is only used for
 * UART time-outs and reported as COUNTER_NONE (QEMU's instruction counts come from the
 * mps2-an386 profile). Semihosting SYS_EXIT ends QEMU with a status.
 */
#include "platform.h"

#define REG(addr) (*(volatile uint32_t *)(addr))
#define RCC 0x40023800u
#define RCC_CR REG(RCC + 0x00u)
#define RCC_PLLCFGR REG(RCC + 0x04u)
#define RCC_CFGR REG(RCC + 0x08u)
#define RCC_AHB1ENR REG(RCC + 0x30u)
#define RCC_APB1ENR REG(RCC + 0x40u)
#define RCC_APB2ENR REG(RCC + 0x44u)
#define PWR_CR REG(0x40007000u)
#define FLASH_ACR REG(0x40023C00u)
#define GPIOA 0x40020000u
#define GPIOA_MODER REG(GPIOA + 0x00u)
#define GPIOA_AFRH REG(GPIOA + 0x24u)
#define USART1 0x40011000u
#define USART_SR REG(USART1 + 0x00u) /* bit5 RXNE, bit7 TXE */
#define USART_DR REG(USART1 + 0x04u)
#define USART_BRR REG(USART1 + 0x08u)
#define USART_CR1 REG(USART1 + 0x0Cu)
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)

#define HSI_HZ 16000000u
#define PLL_HZ 168000000u
#define BAUD 115200u
#define CLOCK_POLLS 100000u /* bounded waits: an emulator without RCC never sets the flags */

static uint32_t sysclk_hz = HSI_HZ;
static uint32_t counter_high, counter_last;

static int wait_set(volatile uint32_t *reg, uint32_t mask, uint32_t value)
{
    uint32_t i;
    for (i = 0; i < CLOCK_POLLS; i++)
        if ((*reg & mask) == value)
            return 1;
    return 0;
}

static void clock_168mhz(void)
{
    RCC_APB1ENR |= 1u << 28;                             /* PWREN */
    PWR_CR |= 1u << 14;                                  /* VOS scale 1 */
    FLASH_ACR = 5u | (1u << 8) | (1u << 9) | (1u << 10); /* 5 WS, prefetch, caches */
    /* PLL from HSI: M = 16 (1 MHz), N = 336, P = 2 -> 168 MHz, Q = 7 */
    RCC_PLLCFGR = 16u | (336u << 6) | (0u << 16) | (0u << 22) | (7u << 24);
    RCC_CR |= 1u << 24; /* PLLON */
    if (!wait_set(&RCC_CR, 1u << 25, 1u << 25))
        return; /* no PLL lock (emulator): stay on HSI */
    RCC_CFGR = (RCC_CFGR & ~0xFCF0u) | (5u << 10) | (4u << 13); /* APB1 /4, APB2 /2 */
    RCC_CFGR = (RCC_CFGR & ~3u) | 2u;                          /* SYSCLK = PLL */
    if (wait_set(&RCC_CFGR, 3u << 2, 2u << 2))
        sysclk_hz = PLL_HZ;
}

void platform_init(void)
{
    uint32_t apb2;
    clock_168mhz();
    apb2 = sysclk_hz == PLL_HZ ? PLL_HZ / 2u : HSI_HZ;
    RCC_AHB1ENR |= 1u << 0; /* GPIOA */
    RCC_APB2ENR |= 1u << 4; /* USART1 */
    GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 18)) | (0xAu << 18); /* PA9, PA10 alternate */
    GPIOA_AFRH = (GPIOA_AFRH & ~(0xFFu << 4)) | (0x77u << 4);   /* AF7 = USART1 */
    USART_BRR = (apb2 + BAUD / 2u) / BAUD;                      /* oversampling 16 */
    USART_CR1 = (1u << 13) | (1u << 3) | (1u << 2);              /* UE, TE, RE */
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0u;
    SYST_CSR = 5u; /* processor clock, enabled, no interrupt */
    counter_last = 0u;
}

void platform_putc(uint8_t c)
{
    while (!(USART_SR & (1u << 7))) {
    }
    USART_DR = c;
}

int platform_getc_timeout(uint32_t timeout_ticks)
{
    uint32_t start = platform_counter();
    while (!(USART_SR & (1u << 5))) {
        if (platform_counter() - start > timeout_ticks)
            return -1;
    }
    return (int)(USART_DR & 0xFFu);
}

/* SysTick counts down 24 bits; elapsed ticks since the last read are added to a 32-bit
 * count (exact while reads are less than 2^24 ticks apart, as in the UART loops). */
uint32_t platform_counter(void)
{
    uint32_t now = 0x00FFFFFFu - (SYST_CVR & 0x00FFFFFFu);
    counter_high += (now - counter_last) & 0x00FFFFFFu;
    counter_last = now;
    return counter_high;
}

uint32_t platform_counter_hz(void) { return sysclk_hz; }
enum platform_counter_kind platform_counter_kind(void) { return COUNTER_NONE; }

void platform_exit(int code)
{
    /* semihosting SYS_EXIT; on the board without a debugger this traps: stay here */
    register uint32_t op __asm__("r0") = 0x18u;
    register uint32_t reason __asm__("r1") = code == 0 ? 0x20026u : 0x20023u;
    __asm__ volatile("bkpt 0xab" : : "r"(op), "r"(reason) : "memory");
    for (;;) {
    }
}
