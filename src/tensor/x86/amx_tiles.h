// Internal to src/tensor/x86/amx_packed*.{h,cpp} and tests/test_amx.cpp: the few AMX tile
// operations the AMX-INT8 kernels use, twice over with one interface, so the same kernel
// source runs on real tiles (HwTiles: the intrinsics) and on a scalar model of them
// (EmuTiles) that CPUs without AMX run in the tests:
//
//   config(cfg)          LDTILECFG: the 64-byte palette-1 configuration (TileConfig)
//   load<T>(p, stride)   TILELOADD: tile T's rows x colsb bytes, row i from p + i * stride
//   zero<T>()            TILEZERO
//   dpbusd<C, A, B>()    TDPBUSD: C[m][n] += sum over k, i < 4 of A[m][4k + i] (unsigned)
//                        x B[k][4n + i] (signed), in int32 with wraparound
//   store<T>(p, stride)  TILESTORED: rows x colsb bytes back
//   release()            TILERELEASE: tiles back to the INIT state
//
// EmuTiles follows the pseudocode of Intel's SDM (vol. 2, TILELOADD/TILESTORED/TDPBUSD/
// TILEZERO/LDTILECFG/TILERELEASE) and of the intrinsics guide (_tile_dpbusd's DPBD),
// including its side effects: a load zeroes the bytes of a row past colsb and the rows
// past the configured rows; TDPBUSD does the same to its destination; every operation that
// faults on hardware (#UD: no configuration, shapes that do not fit; #GP: a bad
// configuration) aborts. Tile data is per thread, like the registers.
#pragma once

#if defined(__x86_64__)
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tensor/x86/avx512_vnni.h"  // also quiets GCC 12's -Wmaybe-uninitialized false positives

// Kernels over tiles: AMX-TILE and AMX-INT8 for the tiles, AVX-512 VNNI for everything else.
#define HEARTH_AMX __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vnni,avx2,fma,f16c")))
#define HEARTH_AMX_INLINE \
    __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vnni,avx2,fma,f16c"), always_inline)) inline

namespace hearth::amx {

// LDTILECFG's memory operand, palette 1 (8 tiles of at most 16 rows x 64 bytes).
struct alignas(64) TileConfig {
    uint8_t palette_id = 0;      // byte 0: 1 = configured, 0 = INIT
    uint8_t start_row = 0;       // byte 1: restart row of an interrupted load/store, else 0
    uint8_t reserved0[14] = {};  // bytes 2-15
    uint16_t colsb[16] = {};     // bytes 16-31: tile i's bytes per row (i < 8); 32-47 reserved
    uint8_t rows[16] = {};       // bytes 48-55: tile i's rows (i < 8); 56-63 reserved
};
static_assert(sizeof(TileConfig) == 64);

constexpr int kTiles = 8, kMaxRows = 16, kMaxColsb = 64;

// The real tiles (needs cpu_has_amx(), i.e. also the OS's permission for the tile data).
// GCC's _tile_* macros paste the tile number into the instruction text, so each operation
// spells out the literal for every tile number (TDPBUSD: the combinations the kernels use).
#define HEARTH_TILE_SWITCH(T, OP)          \
    if constexpr ((T) == 0) { OP(0); }      \
    else if constexpr ((T) == 1) { OP(1); } \
    else if constexpr ((T) == 2) { OP(2); } \
    else if constexpr ((T) == 3) { OP(3); } \
    else if constexpr ((T) == 4) { OP(4); } \
    else if constexpr ((T) == 5) { OP(5); } \
    else if constexpr ((T) == 6) { OP(6); } \
    else { static_assert((T) == 7); OP(7); }

struct HwTiles {
    static constexpr bool kEmulated = false;
    HEARTH_AMX_INLINE static void config(const TileConfig& c) { _tile_loadconfig(&c); }
    template <int T>
    HEARTH_AMX_INLINE static void load(const void* p, size_t stride) {
#define HEARTH_TILE_LOAD(n) _tile_loadd(n, p, stride)
        HEARTH_TILE_SWITCH(T, HEARTH_TILE_LOAD)
#undef HEARTH_TILE_LOAD
    }
    template <int T>
    HEARTH_AMX_INLINE static void zero() {
        HEARTH_TILE_SWITCH(T, _tile_zero)
    }
    template <int C, int A, int B>
    HEARTH_AMX_INLINE static void dpbusd() {
        static_assert((C == 0 && A == 2 && B == 4) || (C == 1 && A == 3 && B == 5), "add this combination");
        if constexpr (C == 0) _tile_dpbusd(0, 2, 4);
        else _tile_dpbusd(1, 3, 5);
    }
    template <int T>
    HEARTH_AMX_INLINE static void store(void* p, size_t stride) {
#define HEARTH_TILE_STORE(n) _tile_stored(n, p, stride)
        HEARTH_TILE_SWITCH(T, HEARTH_TILE_STORE)
#undef HEARTH_TILE_STORE
    }
    HEARTH_AMX_INLINE static void release() { _tile_release(); }
};

#undef HEARTH_TILE_SWITCH

// The model. State per thread: the configuration, whether one is loaded, the tile bytes.
struct EmuTiles {
    static constexpr bool kEmulated = true;
    struct State {
        TileConfig cfg;
        bool configured = false;
        uint8_t t[kTiles][kMaxRows][kMaxColsb] = {};
    };
    static State& state() {
        static thread_local State s;
        return s;
    }
    [[noreturn]] static void fault(const char* what) {
        std::fprintf(stderr, "emulated AMX: %s\n", what);
        std::abort();
    }
    static int rows(int t) { return state().cfg.rows[t]; }
    static int colsb(int t) { return state().cfg.colsb[t]; }
    // zero_upper_rows(t, from): rows [from, 16) of tile t to zero.
    static void zero_upper_rows(int t, int from) {
        for (int r = from; r < kMaxRows; ++r) std::memset(state().t[t][r], 0, kMaxColsb);
    }
    static void check_configured() {
        if (!state().configured) fault("tile instruction without a tile configuration (#UD)");
    }

    static void config(const TileConfig& c) {
        State& s = state();
        if (c.palette_id == 0) {  // INIT state
            release();
            return;
        }
        if (c.palette_id != 1) fault("LDTILECFG: palette other than 0 or 1 (#GP)");
        for (int i = 2; i < 16; ++i)
            if (reinterpret_cast<const uint8_t*>(&c)[i]) fault("LDTILECFG: reserved byte not zero (#GP)");
        for (int i = 32; i < 48; ++i)
            if (reinterpret_cast<const uint8_t*>(&c)[i]) fault("LDTILECFG: reserved byte not zero (#GP)");
        for (int i = 56; i < 64; ++i)
            if (reinterpret_cast<const uint8_t*>(&c)[i]) fault("LDTILECFG: reserved byte not zero (#GP)");
        for (int t = 0; t < kTiles; ++t) {
            if (c.rows[t] > kMaxRows || c.colsb[t] > kMaxColsb) fault("LDTILECFG: tile larger than palette 1 (#GP)");
            if ((c.rows[t] == 0) != (c.colsb[t] == 0)) fault("LDTILECFG: a tile with rows but no columns (#GP)");
        }
        s.cfg = c;
        s.configured = true;
        // The tile data starts zeroed here (the SDM text read for this model is explicit only
        // for palette 0, the INIT state); the kernels never read a tile they did not write.
        std::memset(s.t, 0, sizeof s.t);
    }

    // TILELOADD: start := start_row; zero the tile when not restarting; rows [start, rows)
    // from memory, each written with its bytes past colsb zeroed; zero_upper_rows(rows);
    // start_row := 0.
    template <int T>
    static void load(const void* p, size_t stride) {
        static_assert(T >= 0 && T < kTiles);
        check_configured();
        State& s = state();
        if (rows(T) == 0) fault("TILELOADD of an unconfigured tile (#UD)");
        int start = s.cfg.start_row;
        if (start == 0) std::memset(s.t[T], 0, sizeof s.t[T]);
        for (; start < rows(T); ++start) {
            std::memcpy(s.t[T][start], static_cast<const uint8_t*>(p) + static_cast<size_t>(start) * stride,
                        static_cast<size_t>(colsb(T)));
            std::memset(s.t[T][start] + colsb(T), 0, static_cast<size_t>(kMaxColsb - colsb(T)));
        }
        zero_upper_rows(T, rows(T));
        s.cfg.start_row = 0;
    }

    // TILEZERO: every byte of the tile (all 16 rows x 64 bytes).
    template <int T>
    static void zero() {
        static_assert(T >= 0 && T < kTiles);
        check_configured();
        std::memset(state().t[T], 0, sizeof state().t[T]);
        state().cfg.start_row = 0;  // zero_tilecfg_start()
    }

    // TDPBUSD: FOR m < C.rows: tmp := C.row[m]; FOR k < A.colsb / 4: FOR n < C.colsb / 4:
    // tmp.dword[n] := DPBD(tmp.dword[n], A.row[m].dword[k], B.row[k].dword[n]);
    // write_row_and_zero(C, m, tmp, C.colsb); then zero_upper_rows(C, C.rows). DPBD adds
    // ZeroExtend32(a.byte[i]) * SignExtend32(b.byte[i]) for i < 4 to c, modulo 2^32.
    template <int C, int A, int B>
    static void dpbusd() {
        static_assert(C >= 0 && C < kTiles && A >= 0 && A < kTiles && B >= 0 && B < kTiles);
        static_assert(C != A && C != B && A != B, "TDPBUSD: the three tiles must differ (#UD)");
        check_configured();
        State& s = state();
        if (colsb(C) % 4 || colsb(A) % 4 || colsb(B) % 4) fault("TDPBUSD: colsb not a multiple of 4 (#UD)");
        if (rows(C) != rows(A) || colsb(A) / 4 != rows(B) || colsb(C) != colsb(B))
            fault("TDPBUSD: tile shapes do not match (#UD)");
        if (rows(C) == 0 || rows(A) == 0 || rows(B) == 0) fault("TDPBUSD: unconfigured tile (#UD)");
        for (int m = 0; m < rows(C); ++m) {
            uint32_t tmp[kMaxColsb / 4];
            std::memcpy(tmp, s.t[C][m], sizeof tmp);
            for (int k = 0; k < colsb(A) / 4; ++k)
                for (int n = 0; n < colsb(C) / 4; ++n) {
                    uint32_t acc = tmp[n];
                    for (int i = 0; i < 4; ++i) {
                        const int32_t a = s.t[A][m][4 * k + i];                            // zero-extended
                        const int32_t b = static_cast<int8_t>(s.t[B][k][4 * n + i]);      // sign-extended
                        acc += static_cast<uint32_t>(a * b);                                // modulo 2^32
                    }
                    tmp[n] = acc;
                }
            std::memcpy(s.t[C][m], tmp, static_cast<size_t>(colsb(C)));
            std::memset(s.t[C][m] + colsb(C), 0, static_cast<size_t>(kMaxColsb - colsb(C)));
        }
        zero_upper_rows(C, rows(C));
        s.cfg.start_row = 0;
    }

    // TILESTORED: rows [start_row, rows) of colsb bytes each; start_row := 0.
    template <int T>
    static void store(void* p, size_t stride) {
        static_assert(T >= 0 && T < kTiles);
        check_configured();
        State& s = state();
        if (rows(T) == 0) fault("TILESTORED of an unconfigured tile (#UD)");
        for (int r = s.cfg.start_row; r < rows(T); ++r)
            std::memcpy(static_cast<uint8_t*>(p) + static_cast<size_t>(r) * stride, s.t[T][r], static_cast<size_t>(colsb(T)));
        s.cfg.start_row = 0;
    }

    // TILERELEASE: configuration and data back to INIT (zero, unconfigured).
    static void release() {
        State& s = state();
        s.cfg = TileConfig{};
        s.configured = false;
        std::memset(s.t, 0, sizeof s.t);
    }
};

}  // namespace hearth::amx

#endif
