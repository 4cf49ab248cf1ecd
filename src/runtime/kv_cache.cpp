#include "runtime/kv_cache.h"

#include <stdexcept>
#include <string>

namespace hearth {

KvCache::KvCache(int32_t n_layer, int32_t n_head_kv, int32_t head_dim, GgmlType type, int32_t n_blocks, int32_t block_size)
    : n_layer_(n_layer), n_head_kv_(n_head_kv), head_dim_(head_dim), type_(type), n_blocks_(n_blocks), block_size_(block_size) {
    if (type != GgmlType::F16 && type != GgmlType::F32 && type != GgmlType::Q8_0)
        throw std::invalid_argument(std::string("KV cache type must be f16, f32 or q8_0, not ") + type_name(type));
    if (head_dim % traits(type).block_size != 0)
        throw std::invalid_argument("head size " + std::to_string(head_dim) + " does not fit KV cache type " + type_name(type));
    head_row_bytes_ = row_size(type, head_dim);
    pos_bytes_ = head_row_bytes_ * static_cast<size_t>(n_head_kv);
    block_bytes_ = pos_bytes_ * static_cast<size_t>(block_size);
    const size_t total = block_bytes_ * static_cast<size_t>(n_layer) * static_cast<size_t>(n_blocks);
    k_.resize(total);
    v_.resize(total);
    free_.reserve(static_cast<size_t>(n_blocks));
    for (int32_t b = n_blocks - 1; b >= 0; --b) free_.push_back(b);
}

bool KvCache::reserve(int32_t seq, int32_t n_pos) {
    if (seq < 0) throw std::invalid_argument("negative sequence id");
    if (static_cast<size_t>(seq) >= tables_.size()) tables_.resize(static_cast<size_t>(seq) + 1);
    auto& t = tables_[static_cast<size_t>(seq)];
    const size_t need = static_cast<size_t>((n_pos + block_size_ - 1) / block_size_);
    if (need <= t.size()) return true;
    if (need - t.size() > free_.size()) return false;
    while (t.size() < need) {
        t.push_back(free_.back());
        free_.pop_back();
    }
    return true;
}

void KvCache::truncate(int32_t seq, int32_t n_pos) {
    if (seq < 0 || static_cast<size_t>(seq) >= tables_.size()) return;
    auto& t = tables_[static_cast<size_t>(seq)];
    const size_t keep = static_cast<size_t>((std::max(0, n_pos) + block_size_ - 1) / block_size_);
    while (t.size() > keep) {
        free_.push_back(t.back());
        t.pop_back();
    }
}

int32_t KvCache::capacity(int32_t seq) const {
    if (seq < 0 || static_cast<size_t>(seq) >= tables_.size()) return 0;
    return static_cast<int32_t>(tables_[static_cast<size_t>(seq)].size()) * block_size_;
}

const uint8_t* KvCache::block_ptr(const std::vector<uint8_t>& buf, int32_t layer, int32_t seq, int32_t b) const {
    const int32_t block = tables_[static_cast<size_t>(seq)][static_cast<size_t>(b)];
    return buf.data() + (static_cast<size_t>(block) * static_cast<size_t>(n_layer_) + static_cast<size_t>(layer)) * block_bytes_;
}

uint8_t* KvCache::row(std::vector<uint8_t>& buf, int32_t layer, int32_t seq, int32_t pos, int32_t h) {
    const uint8_t* base = block_ptr(buf, layer, seq, pos / block_size_);
    return const_cast<uint8_t*>(base) + static_cast<size_t>(pos % block_size_) * pos_bytes_ +
           static_cast<size_t>(h) * head_row_bytes_;
}

}  // namespace hearth
