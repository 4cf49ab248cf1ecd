#include "runtime/kv_cache.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace hearth {

size_t KvCache::block_bytes(int32_t n_layer, int32_t n_head_kv, int32_t head_dim, GgmlType type, int32_t block_size) {
    return 2 * row_size(type, head_dim) * static_cast<size_t>(n_head_kv) * static_cast<size_t>(block_size) *
           static_cast<size_t>(n_layer);
}

KvCache::KvCache(int32_t n_layer, int32_t n_head_kv, int32_t head_dim, GgmlType type, int32_t n_blocks, int32_t block_size)
    : n_layer_(n_layer), n_head_kv_(n_head_kv), head_dim_(head_dim), type_(type), n_blocks_(n_blocks), block_size_(block_size) {
    if (type != GgmlType::F16 && type != GgmlType::F32 && type != GgmlType::Q8_0)
        throw std::invalid_argument(std::string("KV cache type must be f16, f32 or q8_0, not ") + type_name(type));
    if (head_dim % traits(type).block_size != 0)
        throw std::invalid_argument("head size " + std::to_string(head_dim) + " does not fit KV cache type " + type_name(type));
    if (n_blocks <= 0 || block_size <= 0) throw std::invalid_argument("the KV cache needs at least one block");
    head_row_bytes_ = row_size(type, head_dim);
    pos_bytes_ = head_row_bytes_ * static_cast<size_t>(n_head_kv);
    block_bytes_ = pos_bytes_ * static_cast<size_t>(block_size);
    total_bytes_ = block_bytes_ * static_cast<size_t>(n_layer) * static_cast<size_t>(n_blocks);
    k_.reset(new uint8_t[total_bytes_]);
    v_.reset(new uint8_t[total_bytes_]);
    refs_.assign(static_cast<size_t>(n_blocks), 0);
    free_.reserve(static_cast<size_t>(n_blocks));
    for (int32_t b = n_blocks - 1; b >= 0; --b) free_.push_back(b);
}

std::vector<int32_t>& KvCache::table_for(int32_t seq) {
    if (seq < 0) throw std::invalid_argument("negative sequence id");
    if (static_cast<size_t>(seq) >= tables_.size()) tables_.resize(static_cast<size_t>(seq) + 1);
    return tables_[static_cast<size_t>(seq)];
}

const std::vector<int32_t>& KvCache::table(int32_t seq) const {
    static const std::vector<int32_t> empty;
    if (seq < 0 || static_cast<size_t>(seq) >= tables_.size()) return empty;
    return tables_[static_cast<size_t>(seq)];
}

int32_t KvCache::blocks_needed(int32_t seq, int32_t n_pos) const {
    const int32_t need = (std::max(0, n_pos) + block_size_ - 1) / block_size_;
    return std::max(0, need - static_cast<int32_t>(table(seq).size()));
}

bool KvCache::reserve(int32_t seq, int32_t n_pos) {
    auto& t = table_for(seq);
    const size_t need = static_cast<size_t>((std::max(0, n_pos) + block_size_ - 1) / block_size_);
    if (need <= t.size()) return true;
    if (need - t.size() > free_.size()) return false;
    while (t.size() < need) {
        const int32_t b = free_.back();
        free_.pop_back();
        refs_[static_cast<size_t>(b)] = 1;
        t.push_back(b);
    }
    return true;
}

void KvCache::truncate(int32_t seq, int32_t n_pos) {
    if (seq < 0 || static_cast<size_t>(seq) >= tables_.size()) return;
    auto& t = tables_[static_cast<size_t>(seq)];
    const size_t keep = static_cast<size_t>((std::max(0, n_pos) + block_size_ - 1) / block_size_);
    while (t.size() > keep) {
        unref(t.back());
        t.pop_back();
    }
}

void KvCache::attach(int32_t seq, const std::vector<int32_t>& blocks) {
    auto& t = table_for(seq);
    for (int32_t b : blocks) {
        if (b < 0 || b >= n_blocks_ || refs_[static_cast<size_t>(b)] <= 0)
            throw std::logic_error("attaching KV block " + std::to_string(b) + " that is not in use");
        refs_[static_cast<size_t>(b)]++;
        t.push_back(b);
    }
}

void KvCache::retain(int32_t block) {
    if (block < 0 || block >= n_blocks_ || refs_[static_cast<size_t>(block)] <= 0)
        throw std::logic_error("retaining KV block " + std::to_string(block) + " that is not in use");
    refs_[static_cast<size_t>(block)]++;
}

void KvCache::unref(int32_t block) {
    int32_t& r = refs_[static_cast<size_t>(block)];
    if (r <= 0) throw std::logic_error("KV block " + std::to_string(block) + " released twice");
    if (--r == 0) free_.push_back(block);
}

bool KvCache::shared(int32_t seq, int32_t p0, int32_t p1) const {
    const auto& t = table(seq);
    const int32_t b1 = std::min(static_cast<int32_t>(t.size()), (p1 + block_size_ - 1) / block_size_);
    for (int32_t b = std::max(0, p0 / block_size_); b < b1; ++b)
        if (refs_[static_cast<size_t>(t[static_cast<size_t>(b)])] > 1) return true;
    return false;
}

int32_t KvCache::capacity(int32_t seq) const { return static_cast<int32_t>(table(seq).size()) * block_size_; }

const uint8_t* KvCache::block_ptr(const uint8_t* buf, int32_t layer, int32_t seq, int32_t b) const {
    const int32_t block = tables_[static_cast<size_t>(seq)][static_cast<size_t>(b)];
    return buf + (static_cast<size_t>(block) * static_cast<size_t>(n_layer_) + static_cast<size_t>(layer)) * block_bytes_;
}

uint8_t* KvCache::row(uint8_t* buf, int32_t layer, int32_t seq, int32_t pos, int32_t h) const {
    const uint8_t* base = block_ptr(buf, layer, seq, pos / block_size_);
    return const_cast<uint8_t*>(base) + static_cast<size_t>(pos % block_size_) * pos_bytes_ +
           static_cast<size_t>(h) * head_row_bytes_;
}

}  // namespace hearth
