// Prefix cache: full KV blocks remembered by content so a later sequence that starts with
// the same tokens reuses them instead of recomputing. vLLM-style: a block's key is a hash
// of its parent block's key and its own token ids, so a key names the whole prefix up to
// the block's end. The cache holds one reference on every block it knows (KvCache
// refcounts); blocks held by nothing else are evictable, least recently used first (leaves
// of the prefix chains before their parents). Only full blocks are ever cached: a sequence
// only writes past its last full block, so shared blocks are never written.
#pragma once

#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

namespace hearth {

class KvCache;

class PrefixCache {
public:
    explicit PrefixCache(KvCache& kv) : kv_(kv) {}
    ~PrefixCache() { clear(); }
    PrefixCache(const PrefixCache&) = delete;
    PrefixCache& operator=(const PrefixCache&) = delete;

    // The key before a sequence's first block; 0 is never a key a caller can pass on.
    static constexpr uint64_t kRootKey = 0x9E3779B97F4A7C15ull;

    // The physical blocks of the longest cached prefix of `tokens` made of whole blocks, at
    // most `max_blocks` of them (in order). Marks them recently used. Takes no reference.
    // `chain` (optional) receives the key of the last block returned (kRootKey if none).
    std::vector<int32_t> lookup(const std::vector<int32_t>& tokens, int32_t max_blocks, uint64_t* chain = nullptr);

    // Remembers the full blocks [from_block, to_block) of a sequence: `tokens` are its
    // tokens (at least to_block * block_size), `table` its block table. Blocks whose content
    // is already cached (under another physical block) are skipped. Takes a reference on
    // each newly cached block. `chain` (optional, in/out): the key of block from_block - 1
    // (kRootKey for block 0) from the previous call, so only the new blocks are hashed (a
    // sequence registers its blocks one at a time as they fill); 0 means unknown (hash from
    // block 0). On return it holds the key of block to_block - 1, or 0 after a hash
    // collision (nothing past one is cached).
    void insert(const std::vector<int32_t>& tokens, const std::vector<int32_t>& table, int32_t from_block, int32_t to_block,
                uint64_t* chain = nullptr);

    // Drops up to `n` blocks that only the cache holds, least recently used first; returns
    // how many went back to the pool.
    int32_t evict(int32_t n);
    // Blocks only the cache holds (what evict() could free).
    int32_t evictable() const;
    int32_t size() const { return static_cast<int32_t>(entries_.size()); }
    void clear();  // forgets everything, releasing the cache's references

private:
    struct Entry {
        uint64_t key = 0, parent = 0;
        std::vector<int32_t> tokens;  // the block's ids (checked on lookup against hash collisions)
        int32_t block = -1;
        int32_t children = 0;         // cached entries whose parent is this one
        std::list<uint64_t>::iterator lru;
    };
    static uint64_t block_key(uint64_t parent, const int32_t* ids, int32_t n);
    void touch(Entry& e);
    void erase(std::unordered_map<uint64_t, Entry>::iterator it);

    KvCache& kv_;
    std::unordered_map<uint64_t, Entry> entries_;
    std::list<uint64_t> lru_;  // front: most recently used
};

}  // namespace hearth
