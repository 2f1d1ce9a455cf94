/*
 * NUCLEO-F446RE: HSI 16 MHz -> PLL 168 MHz (VOS scale 1, 5 flash wait states, APB1 42 MHz,
 * APB2 84 MHz); USART2 on PA2/PA3 (AF7) at 115200 8N1, wired to the ST-LINK virtual COM
 * port; DWT CYCCNT as the cycle counter. Register addresses from RM0390.
 */
#include "platform.h"

#define REG(addr) (*(volatile uint32_t *)(addr))
#define RCC 0x40023800u
#define RCC_CR REG(RCC + 0x00u)
#define RCC_PLLCFGR REG(RCC + 0x04u)
#define RCC_CFGR REG(RCC + 0x08u)
#define RCC_AHB1ENR REG(RCC + 0x30u)
#define RCC_APB1ENR REG(RCC + 0x40u)
#define PWR_CR REG(0x40007000u)
#define FLASH_ACR REG(0x40023C00u)
#define GPIOA 0x40020000u
#define GPIOA_MODER REG(GPIOA + 0x00u)
#define GPIOA_AFRL REG(GPIOA + 0x20u)
#define USART2 0x40004400u
#define USART_SR REG(USART2 + 0x00u) /* bit5 RXNE, bit7 TXE */
#define USART_DR REG(USART2 + 0x04u)
#define USART_BRR REG(USART2 + 0x08u)
#define USART_CR1 REG(USART2 + 0x0Cu)
#define DEMCR REG(0xE000EDFCu)
#define DWT_CTRL REG(0xE0001000u)
#define DWT_CYCCNT REG(0xE0001004u)

#define SYSCLK_HZ 168000000u
#define APB1_HZ (SYSCLK_HZ / 4u)
#define BAUD 115200u

static void clock_168mhz(void)
{
    RCC_APB1ENR |= 1u << 28;                       /* PWREN */
    PWR_CR = (PWR_CR & ~(3u << 14)) | (3u << 14);  /* VOS = scale 1 (PLL still off) */
    FLASH_ACR = 5u | (1u << 8) | (1u << 9) | (1u << 10); /* 5 WS, prefetch, I/D cache */
    /* PLL from HSI: M = 16 (1 MHz), N = 336, P = 2 -> 168 MHz; Q = 7; R = 2 */
    RCC_PLLCFGR = 16u | (336u << 6) | (0u << 16) | (0u << 22) | (7u << 24) | (2u << 28);
    RCC_CR |= 1u << 24; /* PLLON */
    while (!(RCC_CR & (1u << 25))) {
    }
    RCC_CFGR = (RCC_CFGR & ~0xFCF3u) | (5u << 10) | (4u << 13); /* AHB /1, APB1 /4, APB2 /2 */
    RCC_CFGR = (RCC_CFGR & ~3u) | 2u;                           /* SYSCLK = PLL */
    while (((RCC_CFGR >> 2) & 3u) != 2u) {
    }
}

void platform_init(void)
{
    clock_168mhz();
    RCC_AHB1ENR |= 1u << 0;  /* GPIOA */
    RCC_APB1ENR |= 1u << 17; /* USART2 */
    GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 4)) | (0xAu << 4);       /* PA2, PA3 alternate */
    GPIOA_AFRL = (GPIOA_AFRL & ~(0xFFu << 8)) | (0x77u << 8);       /* AF7 = USART2 */
    USART_BRR = (APB1_HZ + BAUD / 2u) / BAUD;                        /* oversampling 16 */
    USART_CR1 = (1u << 13) | (1u << 3) | (1u << 2);                  /* UE, TE, RE */
    DEMCR |= 1u << 24;                                                /* TRCENA */
    DWT_CYCCNT = 0u;
    DWT_CTRL |= 1u;                                                   /* CYCCNTENA */
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

uint32_t platform_counter(void) { return DWT_CYCCNT; }
uint32_t platform_counter_hz(void) { return SYSCLK_HZ; }
enum platform_counter_kind platform_counter_kind(void) { return COUNTER_CPU_CYCLES; }

void platform_exit(int code)
{
    (void)code; /* nothing to return to on a board: stay here (a debugger can look) */
    for (;;) {
    }
}
