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
 *
 * Family models (app/serve_family.c, protocol version EDGE_GRU_PROTOCOL_FAMILY):
 *   host -> device   0xA5 'I'                          : who are you
 *   device -> host   0x5A 'I' u32 model_crc32, u32 counter_hz, u16 vocab_or_F, u16 in_dim,
 *                    u16 outputs, u16 T, u8 tokens, u8 counter_kind, u8 dsp, u8 version,
 *                    u32 out_frac (24 bytes)
 *   host -> device   0xA5 'S' u16 n, n steps           : run one sequence; a step is an
 *                    int32 id (token models) or F int16 frame values (feature models)
 *   device -> host   0x5A 'O' u16 argmax, u16 K, K x int32 output, u32 counter_ticks, u32 steps
 * 'S' applies the whole-sequence rule (last T steps, pre-padded); counter_ticks covers the
 * edge_gru_family_run_* call only.
 */
#ifndef EDGE_GRU_PROTOCOL_H
#define EDGE_GRU_PROTOCOL_H

#define EDGE_GRU_SYNC_HOST 0xA5u
#define EDGE_GRU_SYNC_DEVICE 0x5Au

/* info: u32 model_crc32, u32 counter_hz, u16 vocab, u16 embed, u16 units, u16 maxlen,
 *       u8 reset_after, u8 counter_kind, u8 dsp, u8 protocol_version, u32 reserved (0) */
#define EDGE_GRU_INFO_BYTES 24u
#define EDGE_GRU_PROTOCOL_VERSION 1u
#define EDGE_GRU_PROTOCOL_FAMILY 2u

#endif /* EDGE_GRU_PROTOCOL_H */
