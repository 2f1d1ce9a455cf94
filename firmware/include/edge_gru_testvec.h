/*
 * Self-test vectors (generated into edge_gru_testvec.c by python -m edge_gru.convert):
 * token streams of any length and the scores the bit-exact Python model gives them.
 */
#ifndef EDGE_GRU_TESTVEC_H
#define EDGE_GRU_TESTVEC_H

#include <stdint.h>

extern const uint32_t edge_gru_testvec_count;
extern const uint32_t edge_gru_testvec_crc32;       /* EDGE_GRU_MODEL_CRC32 they belong to */
extern const uint16_t edge_gru_testvec_len[];       /* [count] stream lengths */
extern const int32_t edge_gru_testvec_tokens[];     /* all streams, concatenated */
extern const int16_t edge_gru_testvec_expected[];   /* [count] Q0.15 scores */

#endif /* EDGE_GRU_TESTVEC_H */
