/*
 * Family self-test vectors (generated into edge_gru_family_testvec.c by
 * python -m edge_gru.convert): input streams of any length and the outputs the bit-exact
 * Python model gives them.
 */
#ifndef EDGE_GRU_FAMILY_TESTVEC_H
#define EDGE_GRU_FAMILY_TESTVEC_H

#include <stdint.h>

#include "edge_gru_model.h"

extern const uint32_t egf_testvec_count;
extern const uint32_t egf_testvec_crc32;   /* EGF_MODEL_CRC32 they belong to */
extern const uint16_t egf_testvec_len[];   /* [count] stream lengths (steps) */
#if EGF_INPUT_TOKENS
extern const int32_t egf_testvec_data[];   /* all streams' ids, concatenated */
#else
extern const int16_t egf_testvec_data[];   /* all streams' frames (F values each) */
#endif
extern const int32_t egf_testvec_expected[]; /* [count][EGF_OUTPUTS] */

#endif /* EDGE_GRU_FAMILY_TESTVEC_H */
