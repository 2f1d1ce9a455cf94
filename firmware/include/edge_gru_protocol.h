/*
 * The UART protocol between a host (edge_gru/fixed_point/device.py) and app/serve.c.
 * Binary, little-endian; the same bytes over QEMU's TCP serial and a board's USB UART.
 *
 *   host -> device   0xA5 'I'                          : who are you
 *   device -> host   0x5A 'I' info (24 bytes, below)
 *   host -> device   0xA5 'R' u16 n, n x int32 token   : score one review
 *   host -> device   0xA5 'r' u16 n, n x u16 token     : the same with 16-bit ids
 *   device -> host   0x5A 'R' i16 score u16 0 u32 counter_ticks u32 steps  (both commands)
 *
 * 'R' and 'r' apply edge_gru_run's rule (last MAXLEN tokens, pre-padded); the device keeps only
 * the last MAXLEN tokens while they stream in, so n is not limited by RAM. counter_ticks
 * covers edge_gru_run only. A command whose bytes stop arriving for ~0.5 s is dropped.
 */
#ifndef EDGE_GRU_PROTOCOL_H
#define EDGE_GRU_PROTOCOL_H

#define EDGE_GRU_SYNC_HOST 0xA5u
#define EDGE_GRU_SYNC_DEVICE 0x5Au

/* info: u32 model_crc32, u32 counter_hz, u16 vocab, u16 embed, u16 units, u16 maxlen,
 *       u8 reset_after, u8 counter_kind, u8 dsp, u8 protocol_version, u32 reserved (0) */
#define EDGE_GRU_INFO_BYTES 24u
#define EDGE_GRU_PROTOCOL_VERSION 1u

#endif /* EDGE_GRU_PROTOCOL_H */
