// Paged KV cache: K and V live in fixed-size blocks of `block_size` positions from one pool;
// each sequence owns a block table mapping position / block_size to a block. Rows are
// stored in the cache type (F16 default; F32 or Q8_0), one row per (position, KV head).
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/types.h"

namespace hearth {

class KvCache {
public:
    KvCache(int32_t n_layer, int32_t n_head_kv, int32_t head_dim, GgmlType type, int32_t n_blocks, int32_t block_size = 16);

    GgmlType type() const { return type_; }
    int32_t block_size() const { return block_size_; }
    int32_t n_blocks() const { return n_blocks_; }
    int32_t free_blocks() const { return static_cast<int32_t>(free_.size()); }
    size_t head_row_bytes() const { return head_row_bytes_; }  // one head's K (or V) row
    size_t bytes() const { return k_.size() + v_.size(); }

    // Makes room for positions [0, n_pos) of `seq`. False (and nothing changed) when the
    // pool has too few free blocks.
    bool reserve(int32_t seq, int32_t n_pos);
    // Forgets positions >= n_pos of `seq`, returning whole blocks past it to the pool.
    void truncate(int32_t seq, int32_t n_pos);
    void release(int32_t seq) { truncate(seq, 0); }
    int32_t capacity(int32_t seq) const;  // positions reserved

    // Row of KV head `h` at (layer, seq, pos); pos must be reserved.
    uint8_t* k(int32_t layer, int32_t seq, int32_t pos, int32_t h) { return row(k_, layer, seq, pos, h); }
    uint8_t* v(int32_t layer, int32_t seq, int32_t pos, int32_t h) { return row(v_, layer, seq, pos, h); }
    const uint8_t* k(int32_t layer, int32_t seq, int32_t pos, int32_t h) const { return const_cast<KvCache*>(this)->k(layer, seq, pos, h); }
    const uint8_t* v(int32_t layer, int32_t seq, int32_t pos, int32_t h) const { return const_cast<KvCache*>(this)->v(layer, seq, pos, h); }

    // Start of the rows of block `b` of `seq` for a layer: block_size positions, each with
    // n_head_kv head rows, contiguous.
    const uint8_t* k_block(int32_t layer, int32_t seq, int32_t b) const { return block_ptr(k_, layer, seq, b); }
    const uint8_t* v_block(int32_t layer, int32_t seq, int32_t b) const { return block_ptr(v_, layer, seq, b); }
    size_t pos_stride() const { return pos_bytes_; }  // bytes between positions within a block

private:
    uint8_t* row(std::vector<uint8_t>& buf, int32_t layer, int32_t seq, int32_t pos, int32_t h);
    const uint8_t* block_ptr(const std::vector<uint8_t>& buf, int32_t layer, int32_t seq, int32_t b) const;

    int32_t n_layer_, n_head_kv_, head_dim_;
    GgmlType type_;
    int32_t n_blocks_, block_size_;
    size_t head_row_bytes_, pos_bytes_, block_bytes_;
    std::vector<uint8_t> k_, v_;
    std::vector<int32_t> free_;
    std::vector<std::vector<int32_t>> tables_;  // per sequence
};

}  // namespace hearth
