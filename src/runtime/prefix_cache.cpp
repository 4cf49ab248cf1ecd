#include "runtime/prefix_cache.h"

#include <algorithm>

#include "runtime/kv_cache.h"

namespace hearth {

namespace {

constexpr uint64_t kRoot = PrefixCache::kRootKey;  // the parent key of a sequence's first block

uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    return h;
}

}  // namespace

uint64_t PrefixCache::block_key(uint64_t parent, const int32_t* ids, int32_t n) {
    uint64_t h = mix(parent, static_cast<uint64_t>(n));
    for (int32_t i = 0; i < n; ++i) h = mix(h, static_cast<uint32_t>(ids[i]));
    return h;
}

void PrefixCache::touch(Entry& e) { lru_.splice(lru_.begin(), lru_, e.lru); }

std::vector<int32_t> PrefixCache::lookup(const std::vector<int32_t>& tokens, int32_t max_blocks, uint64_t* chain) {
    std::vector<int32_t> out;
    const int32_t bs = kv_.block_size();
    const int32_t n = std::min(max_blocks, static_cast<int32_t>(tokens.size()) / bs);
    uint64_t parent = kRoot;
    for (int32_t b = 0; b < n; ++b) {
        const int32_t* ids = tokens.data() + static_cast<size_t>(b) * static_cast<size_t>(bs);
        const uint64_t key = block_key(parent, ids, bs);
        auto it = entries_.find(key);
        if (it == entries_.end() || it->second.parent != parent || !std::equal(ids, ids + bs, it->second.tokens.begin()))
            break;
        touch(it->second);
        out.push_back(it->second.block);
        parent = key;
    }
    if (chain) *chain = parent;
    return out;
}

void PrefixCache::insert(const std::vector<int32_t>& tokens, const std::vector<int32_t>& table, int32_t from_block,
                         int32_t to_block, uint64_t* chain) {
    const int32_t bs = kv_.block_size();
    to_block = std::min({to_block, static_cast<int32_t>(table.size()), static_cast<int32_t>(tokens.size()) / bs});
    uint64_t parent = kRoot;
    int32_t b0 = 0;
    if (chain && *chain != 0 && from_block > 0) {
        parent = *chain;  // the key of block from_block - 1
        b0 = from_block;
    }
    if (chain) *chain = 0;
    for (int32_t b = b0; b < to_block; ++b) {
        const int32_t* ids = tokens.data() + static_cast<size_t>(b) * static_cast<size_t>(bs);
        const uint64_t key = block_key(parent, ids, bs);
        if (b >= from_block) {
            auto it = entries_.find(key);
            if (it == entries_.end()) {
                Entry e;
                e.key = key;
                e.parent = parent;
                e.tokens.assign(ids, ids + bs);
                e.block = table[static_cast<size_t>(b)];
                lru_.push_front(key);
                e.lru = lru_.begin();
                kv_.retain(e.block);
                entries_.emplace(key, std::move(e));
                if (auto p = entries_.find(parent); p != entries_.end()) p->second.children++;
            } else if (it->second.parent == parent && std::equal(ids, ids + bs, it->second.tokens.begin())) {
                touch(it->second);
            } else {
                return;  // a hash collision: cache nothing past it (chain stays 0)
            }
        }
        parent = key;
    }
    if (chain) *chain = parent;
}

void PrefixCache::erase(std::unordered_map<uint64_t, Entry>::iterator it) {
    if (auto p = entries_.find(it->second.parent); p != entries_.end() && p->second.children > 0) p->second.children--;
    lru_.erase(it->second.lru);
    const int32_t block = it->second.block;
    entries_.erase(it);
    kv_.unref(block);
}

int32_t PrefixCache::evict(int32_t n) {
    int32_t freed = 0;
    while (freed < n) {
        // Least recently used block only the cache holds, preferring the ends of chains (a
        // parent's eviction would leave its cached children unreachable until it returns).
        auto pick = entries_.end();
        for (auto l = lru_.rbegin(); l != lru_.rend(); ++l) {
            auto it = entries_.find(*l);
            if (kv_.refs(it->second.block) != 1) continue;
            if (it->second.children == 0) {
                pick = it;
                break;
            }
            if (pick == entries_.end()) pick = it;
        }
        if (pick == entries_.end()) break;
        erase(pick);
        ++freed;
    }
    return freed;
}

int32_t PrefixCache::evictable() const {
    int32_t n = 0;
    for (const auto& [key, e] : entries_) n += kv_.refs(e.block) == 1 ? 1 : 0;
    return n;
}

void PrefixCache::clear() {
    for (const auto& [key, e] : entries_) kv_.unref(e.block);
    entries_.clear();
    lru_.clear();
}

}  // namespace hearth
