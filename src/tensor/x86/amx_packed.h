// The AMX family of packed kernels (tensor/repack.h, x86/amx_packed.cpp): prompt batches of
// Q4_0, Q8_0, Q4_K and Q6_K through AMX-INT8 tiles (TDPBUSD), decode through the AVX-512
// VNNI kernels (bandwidth-bound: tiles would not make it faster). Results are bit-identical to
// the AVX-512 VNNI family: the tiles give each 32-column block's (Q6_K: 16-column
// sub-block's) exact int32 sums for 8 rows x 16 tokens, and the float operations per
// (row, token) are those of x86/avx512_packed*.cpp in the same order.
//
// Each kernel is compiled twice from one source (amx_packed_impl.h): on the real tiles, and
// on EmuTiles (x86/amx_tiles.h), the scalar model of the instructions that CPUs without AMX
// run in the tests.
#pragma once

#include <string>

#include "tensor/repack.h"

namespace hearth::amx {

// The family on real tiles: only valid where cpu_has_amx() (tensor/cpu.h).
const PackedKernels& hw_packed_kernels();
// The same kernels on emulated tiles (any CPU with AVX-512 VNNI; slow: tests only).
const PackedKernels& emulated_packed_kernels();

// Runs the real-tile prompt kernels of every type once on a small fixed random input and
// compares their output with the AVX-512 VNNI kernels' bit for bit. Needs cpu_has_amx().
// False with a one-line reason in *why on a mismatch.
bool self_check(std::string* why);
// The same check of any family's prompt kernels (tests: the emulated family, a broken one).
bool self_check(const PackedKernels& k, std::string* why);

}  // namespace hearth::amx
