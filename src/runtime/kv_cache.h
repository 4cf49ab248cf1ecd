// Paged KV cache: K and V live in fixed-size blocks of `block_size` positions from one pool;
// each sequence (a slot id) holds a block table mapping position / block_size to a block.
// Blocks are reference-counted so several tables (and the prefix cache) can point at the
// same physical block; a block is back in the pool when its last reference goes. Rows are
// stored in the cache type (F16 default; F32 or Q8_0), one row per (position, KV head).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/kv_view.h"
#include "tensor/types.h"

namespace hearth {

class KvCache {
public:
    KvCache(int32_t n_layer, int32_t n_head_kv, int32_t head_dim, GgmlType type, int32_t n_blocks, int32_t block_size = 16);

    GgmlType type() const { return type_; }
    int32_t block_size() const { return block_size_; }
    int32_t n_blocks() const { return n_blocks_; }
    int32_t free_blocks() const { return static_cast<int32_t>(free_.size()); }
    int32_t used_blocks() const { return n_blocks_ - free_blocks(); }
    size_t head_row_bytes() const { return head_row_bytes_; }  // one head's K (or V) row
    size_t bytes() const { return 2 * total_bytes_; }
    // Bytes of one block (K and V, all layers) for a model shape; for sizing pools.
    static size_t block_bytes(int32_t n_layer, int32_t n_head_kv, int32_t head_dim, GgmlType type, int32_t block_size = 16);

    // Makes room for positions [0, n_pos) of `seq` with fresh blocks. False (and nothing
    // changed) when the pool has too few free blocks.
    bool reserve(int32_t seq, int32_t n_pos);
    // Blocks `reserve` would have to take for `seq` to hold n_pos positions.
    int32_t blocks_needed(int32_t seq, int32_t n_pos) const;
    // Forgets positions >= n_pos of `seq`, dropping its references to whole blocks past it.
    void truncate(int32_t seq, int32_t n_pos);
    void release(int32_t seq) { truncate(seq, 0); }
    int32_t capacity(int32_t seq) const;  // positions reserved
    // Appends already-filled blocks (e.g. a cached prefix) to `seq`'s table, which must
    // currently hold a whole number of full blocks; each block gains a reference.
    void attach(int32_t seq, const std::vector<int32_t>& blocks);
    // The physical blocks of `seq`, in position order.
    const std::vector<int32_t>& table(int32_t seq) const;

    // References held outside block tables (the prefix cache).
    void retain(int32_t block);
    void unref(int32_t block);
    int32_t refs(int32_t block) const { return refs_[static_cast<size_t>(block)]; }
    // True when some block of `seq` covering positions [p0, p1) has another reference: a
    // write there would change another sequence's (or the prefix cache's) KV.
    bool shared(int32_t seq, int32_t p0, int32_t p1) const;

    // Row of KV head `h` at (layer, seq, pos); pos must be reserved.
    uint8_t* k(int32_t layer, int32_t seq, int32_t pos, int32_t h) { return row(k_.get(), layer, seq, pos, h); }
    uint8_t* v(int32_t layer, int32_t seq, int32_t pos, int32_t h) { return row(v_.get(), layer, seq, pos, h); }
    const uint8_t* k(int32_t layer, int32_t seq, int32_t pos, int32_t h) const { return const_cast<KvCache*>(this)->k(layer, seq, pos, h); }
    const uint8_t* v(int32_t layer, int32_t seq, int32_t pos, int32_t h) const { return const_cast<KvCache*>(this)->v(layer, seq, pos, h); }

    // Start of the rows of block `b` of `seq` for a layer: block_size positions, each with
    // n_head_kv head rows, contiguous.
    const uint8_t* k_block(int32_t layer, int32_t seq, int32_t b) const { return block_ptr(k_.get(), layer, seq, b); }
    const uint8_t* v_block(int32_t layer, int32_t seq, int32_t b) const { return block_ptr(v_.get(), layer, seq, b); }
    size_t pos_stride() const { return pos_bytes_; }  // bytes between positions within a block
    // The forward pass's view (model/kv_view.h); valid until the block tables change.
    KvView view() const { return KvView{type_, n_layer_, block_size_, head_row_bytes_, pos_bytes_, block_bytes_, k_.get(), v_.get(), &tables_}; }

private:
    uint8_t* row(uint8_t* buf, int32_t layer, int32_t seq, int32_t pos, int32_t h) const;
    const uint8_t* block_ptr(const uint8_t* buf, int32_t layer, int32_t seq, int32_t b) const;
    std::vector<int32_t>& table_for(int32_t seq);

    int32_t n_layer_, n_head_kv_, head_dim_;
    GgmlType type_;
    int32_t n_blocks_, block_size_;
    size_t head_row_bytes_, pos_bytes_, block_bytes_, total_bytes_;
    // Left uninitialized: pages are only committed once a block is written.
    std::unique_ptr<uint8_t[]> k_, v_;
    std::vector<int32_t> free_;
    std::vector<int32_t> refs_;                 // per block
    std::vector<std::vector<int32_t>> tables_;  // per sequence
};

}  // namespace hearth
