// Malformed GGUF input: one crafted file per validation rule (kind, subject and offset
// checked), every truncation of a valid file, and random byte flips.
#include <gtest/gtest.h>

#include <random>

#include "gguf/gguf.h"
#include "support/gguf_craft.h"

using namespace hearth;
using namespace hearth::gguf;

namespace {

// Reads everything a caller could reach, so the sanitizers see any bad pointer.
size_t touch(const File& f) {
    size_t sum = f.metadata().size() + f.tensors().size() + f.architecture().size();
    for (const auto& [key, v] : f.metadata()) {
        sum += key.size() + v.to_string(4).size();
        if (f.find(key) == nullptr) ADD_FAILURE() << key;
    }
    for (const TensorInfo& t : f.tensors()) {
        sum += t.data[0] + t.data[t.nbytes - 1] + t.row_bytes() + static_cast<size_t>(t.n_rows());
        if (f.tensor(t.name) != &t) ADD_FAILURE() << t.name;
    }
    return sum;
}

// Parses an exact-size copy (so ASan catches any overread); true when it parsed.
bool parses(const std::vector<uint8_t>& bytes, size_t n) {
    const std::vector<uint8_t> copy(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(n));
    try {
        File f = File::from_memory(copy);
        touch(f);
        return true;
    } catch (const GgufError&) {
        return false;
    }
}

class GgufCrafted : public testing::TestWithParam<craft::Case> {};

std::string case_name(const testing::TestParamInfo<craft::Case>& info) { return info.param.name; }

}  // namespace

TEST_P(GgufCrafted, ReaderAgrees) {
    const craft::Case& c = GetParam();
    if (c.valid) {
        File f = File::from_memory(c.bytes);
        touch(f);
        return;
    }
    try {
        File f = File::from_memory(c.bytes);
        FAIL() << "parsed a malformed file";
    } catch (const GgufError& e) {
        EXPECT_EQ(error_kind_name(e.kind()), std::string(error_kind_name(c.kind))) << e.what();
        EXPECT_EQ(e.subject(), c.subject) << e.what();
        EXPECT_EQ(e.offset(), c.offset) << e.what();
        const std::string msg = e.what();
        EXPECT_EQ(msg.rfind(std::string("gguf: ") + error_kind_name(c.kind) + ": ", 0), 0u) << msg;
        EXPECT_NE(msg.find("at byte " + std::to_string(c.offset) + ")"), std::string::npos) << msg;
        if (!c.subject.empty() && c.subject.size() < 100) {
            EXPECT_NE(msg.find("'" + c.subject + "'"), std::string::npos) << msg;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Cases, GgufCrafted, testing::ValuesIn(craft::cases()), case_name);

TEST(GgufMalformed, EveryRuleHasACase) {
    // Each ErrorKind the parser can produce from bytes appears among the crafted cases.
    std::vector<bool> seen(static_cast<size_t>(ErrorKind::BadOffset) + 1);
    for (const craft::Case& c : craft::cases())
        if (!c.valid) seen[static_cast<size_t>(c.kind)] = true;
    for (size_t k = 1; k < seen.size(); ++k) EXPECT_TRUE(seen[k]) << error_kind_name(static_cast<ErrorKind>(k));
}

TEST(GgufMalformed, EveryTruncationOfASmallFileFails) {
    const std::vector<uint8_t> bytes = craft::small_file();
    ASSERT_TRUE(parses(bytes, bytes.size()));
    for (size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(parses(bytes, n)) << "prefix of " << n << " bytes parsed";
}

TEST(GgufMalformed, TruncatingValidCasesNeverCrashes) {
    for (const craft::Case& c : craft::cases()) {
        if (!c.valid) continue;
        SCOPED_TRACE(c.name);
        // Parsing prefixes: only GgufError may come out; some prefixes may be valid files.
        const size_t step = c.bytes.size() > 4096 ? 7 : 1;
        for (size_t n = 0; n < c.bytes.size(); n += step) (void)parses(c.bytes, n);
    }
}

TEST(GgufMalformed, RandomByteFlipsNeverCrash) {
    std::vector<std::vector<uint8_t>> bases;
    for (const craft::Case& c : craft::cases())
        if (c.valid && c.bytes.size() < 8192) bases.push_back(c.bytes);
    ASSERT_FALSE(bases.empty());
    std::mt19937_64 rng(20240601);
    size_t parsed = 0;
    constexpr int kIterations = 4000;
    for (int it = 0; it < kIterations; ++it) {
        std::vector<uint8_t> b = bases[rng() % bases.size()];
        const int flips = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < flips; ++k) {
            // Favour the header and metadata, where the structure is.
            const size_t limit = (rng() % 4 == 0) ? b.size() : std::min<size_t>(b.size(), 512);
            const size_t at = rng() % limit;
            switch (rng() % 3) {
                case 0: b[at] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
                case 1: b[at] = static_cast<uint8_t>(rng()); break;
                default: b[at] = (rng() % 2) ? 0xff : 0x00; break;
            }
        }
        parsed += parses(b, b.size()) ? 1 : 0;
    }
    // Both outcomes occur: most flips are caught, some land in data or padding.
    EXPECT_GT(parsed, 0u);
    EXPECT_LT(parsed, size_t{kIterations});
}
