// What the forward pass sees of the paged KV cache: the addressing of each (layer, sequence,
// position, head) row and of each block's rows. runtime/kv_cache.h owns the memory, the
// block allocation, reference counts and the per-sequence block tables, and hands the pass
// this view after it has reserved the batch's positions, so model/ never depends on runtime/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tensor/types.h"

namespace hearth {

struct KvView {
    GgmlType type = GgmlType::F16;
    int32_t n_layer = 0;        // layers the cache holds
    int32_t block_size = 16;
    size_t head_row_bytes = 0;  // one head's K (or V) row
    size_t pos_bytes = 0;       // bytes between positions within a block (all heads)
    size_t block_bytes = 0;     // one layer's rows of one block
    uint8_t* k_base = nullptr;
    uint8_t* v_base = nullptr;
    const std::vector<std::vector<int32_t>>* tables = nullptr;  // per sequence: its blocks
    int32_t layer0 = 0;  // the model layer of the cache's first (a pipeline stage's layer range)

    // Start of block b of `seq` for a layer: block_size positions of n_head_kv rows each.
    const uint8_t* k_block(int32_t layer, int32_t seq, int32_t b) const { return block_ptr(k_base, layer, seq, b); }
    const uint8_t* v_block(int32_t layer, int32_t seq, int32_t b) const { return block_ptr(v_base, layer, seq, b); }
    // Row of KV head h at (layer, seq, pos); pos must be reserved.
    uint8_t* k(int32_t layer, int32_t seq, int32_t pos, int32_t h) const { return row(k_base, layer, seq, pos, h); }
    uint8_t* v(int32_t layer, int32_t seq, int32_t pos, int32_t h) const { return row(v_base, layer, seq, pos, h); }

private:
    uint8_t* block_ptr(uint8_t* buf, int32_t layer, int32_t seq, int32_t b) const {
        const int32_t block = (*tables)[static_cast<size_t>(seq)][static_cast<size_t>(b)];
        return buf + (static_cast<size_t>(block) * static_cast<size_t>(n_layer) + static_cast<size_t>(layer - layer0)) * block_bytes;
    }
    uint8_t* row(uint8_t* buf, int32_t layer, int32_t seq, int32_t pos, int32_t h) const {
        return block_ptr(buf, layer, seq, pos / block_size) + static_cast<size_t>(pos % block_size) * pos_bytes +
               static_cast<size_t>(h) * head_row_bytes;
    }
};

}  // namespace hearth
