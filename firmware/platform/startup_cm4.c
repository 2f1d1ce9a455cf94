/*
 * Cortex-M4 start-up shared by the QEMU machine and the boards: vector table, .data copy,
 * .bss zeroing, then main(). No libc start files, no FPU use (built with -mfloat-abi=soft).
 */
#include <stdint.h>

#include "platform.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);

void Reset_Handler(void);
void Default_Handler(void);

void Reset_Handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata)
        *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;)
        *dst++ = 0u;
    platform_exit(main());
    for (;;) {
    }
}

void Default_Handler(void)
{
    platform_exit(3); /* any fault or unexpected interrupt stops the run loudly */
    for (;;) {
    }
}

typedef void (*vector_fn)(void);

/* Initial stack pointer, then the 15 Cortex-M exceptions; no device interrupts are used. */
__attribute__((section(".isr_vector"), used)) const vector_fn vector_table[16] = {
    (vector_fn)(uintptr_t)&_estack, Reset_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, 0, 0, 0, 0, Default_Handler,
    Default_Handler, 0, Default_Handler, Default_Handler,
};
