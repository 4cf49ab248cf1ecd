// Internal helpers of tokenizer/: UTF-8 coding, GPT-2's byte <-> unicode mapping, BERT's
// accent stripping, and a thin PCRE2 wrapper (PCRE2_UTF | PCRE2_UCP) that the
// pre-tokenizers and the WordPiece normalizer use for every Unicode category question.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace hearth::tok {

constexpr uint32_t kReplacementChar = 0xFFFD;

// Length of the well-formed UTF-8 sequence starting at s[i] with its code point in `cpt`, or 0
// when the bytes there do not form one (stray continuation byte, overlong form, surrogate,
// beyond U+10FFFF, or cut short). Follows the Unicode "well-formed byte sequence" table.
size_t utf8_decode(std::string_view s, size_t i, uint32_t& cpt);
// For ill-formed bytes at s[i]: the length of the maximal subpart (1..3) that one U+FFFD
// replaces, as the Unicode standard recommends.
size_t utf8_invalid_len(std::string_view s, size_t i);
void utf8_append(std::string& out, uint32_t cpt);
// The number of bytes at the end of `s` that start a well-formed sequence but stop before it
// is complete (0..3): what a streaming decoder must hold back.
size_t utf8_incomplete_tail(std::string_view s);
// `s` with each ill-formed subsequence replaced by U+FFFD.
std::string utf8_sanitize(std::string_view s);
// Byte length of a sequence from its lead byte (1 for ASCII and for invalid lead bytes).
inline size_t utf8_len_from_lead(uint8_t c) {
    if (c < 0xC0) return 1;
    if (c < 0xE0) return 2;
    if (c < 0xF0) return 3;
    return c < 0xF8 ? 4 : 1;
}

// GPT-2's bytes_to_unicode(): every byte maps to one printable code point; printable
// Latin-1 bytes map to themselves, the others to U+0100 + n in byte order.
uint32_t byte_to_cpt(uint8_t b);
// The UTF-8 of byte_to_cpt(b) (1 or 2 bytes).
std::string_view byte_to_utf8(uint8_t b);
// The inverse: the byte a mapped code point stands for, or -1.
int cpt_to_byte(uint32_t cpt);
// `bytes` mapped byte by byte (the form byte-level BPE merges work on).
void byte_encode(std::string_view bytes, std::string& out);

// The code point that remains of `cpt` after NFD and removing combining marks; `cpt` itself
// when its NFD is itself (Hangul syllables excepted: see strip_accents_append).
uint32_t nfd_base(uint32_t cpt);
// Appends what NFD + "drop \p{M}" leaves of `cpt` (Hangul syllables become their jamo).
void strip_accents_append(std::string& out, uint32_t cpt);

// A compiled PCRE2 pattern (UTF + UCP; invalid UTF-8 in a subject never matches, so it ends up
// in the gaps between matches). Immutable after construction: safe to share across threads.
class Regex {
public:
    explicit Regex(std::string_view pattern);
    ~Regex();
    Regex(Regex&&) noexcept;
    Regex& operator=(Regex&&) noexcept;
    Regex(const Regex&) = delete;
    Regex& operator=(const Regex&) = delete;

    const std::string& pattern() const { return pattern_; }

    struct Match {
        size_t begin = 0, end = 0;
        int group = 0;  // the lowest-numbered capture group that took part (0: none)
    };

    // Per-thread matching state (PCRE2 match data). Cheap; make one per call site.
    class Matcher {
    public:
        explicit Matcher(const Regex& re);
        ~Matcher();
        Matcher(const Matcher&) = delete;
        Matcher& operator=(const Matcher&) = delete;
        // The first match in `subject` at or after byte `start`; false when there is none.
        bool find(std::string_view subject, size_t start, Match& m);

    private:
        const Regex& re_;
        void* md_;  // pcre2_match_data_8
    };

    // Replaces every match with `replacement` in PCRE2's extended syntax (\L$0 lowercases).
    std::string substitute_all(std::string_view subject, std::string_view replacement) const;

private:
    std::string pattern_;
    void* code_ = nullptr;  // pcre2_code_8
    uint32_t capture_count_ = 0;
};

// Unicode simple lowercase of valid UTF-8 text (PCRE2's case tables).
std::string utf8_lowercase(std::string_view s);

// SentencePiece's word-boundary marker U+2581, and `text` with every marker turned into a
// space (the form SPM and WordPiece pieces are printed in).
inline constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";
void append_marker_as_space(std::string_view text, std::string& out);

}  // namespace hearth::tok
