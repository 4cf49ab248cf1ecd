#include "tokenizer/unicode.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <stdexcept>

namespace hearth::tok {

// ---- UTF-8

namespace {

// Allowed range of the second byte for a lead byte (Unicode Table 3-7); later bytes are 80..BF.
bool second_byte_ok(uint8_t lead, uint8_t b) {
    switch (lead) {
        case 0xE0: return b >= 0xA0 && b <= 0xBF;
        case 0xED: return b >= 0x80 && b <= 0x9F;
        case 0xF0: return b >= 0x90 && b <= 0xBF;
        case 0xF4: return b >= 0x80 && b <= 0x8F;
        default: return b >= 0x80 && b <= 0xBF;
    }
}

// Expected length for a lead byte, 0 when it can never start a sequence.
size_t expected_len(uint8_t lead) {
    if (lead < 0x80) return 1;
    if (lead >= 0xC2 && lead <= 0xDF) return 2;
    if (lead >= 0xE0 && lead <= 0xEF) return 3;
    if (lead >= 0xF0 && lead <= 0xF4) return 4;
    return 0;
}

// How many bytes from s[i] form a valid prefix of a sequence (at most `need`).
size_t valid_prefix(std::string_view s, size_t i, size_t need) {
    const uint8_t lead = static_cast<uint8_t>(s[i]);
    size_t k = 1;
    while (k < need && i + k < s.size()) {
        const uint8_t b = static_cast<uint8_t>(s[i + k]);
        const bool ok = k == 1 ? second_byte_ok(lead, b) : (b >= 0x80 && b <= 0xBF);
        if (!ok) break;
        ++k;
    }
    return k;
}

}  // namespace

size_t utf8_decode(std::string_view s, size_t i, uint32_t& cpt) {
    const uint8_t lead = static_cast<uint8_t>(s[i]);
    const size_t need = expected_len(lead);
    if (need == 1) {
        cpt = lead;
        return 1;
    }
    if (need == 0 || valid_prefix(s, i, need) != need) return 0;
    uint32_t c = lead & (need == 2 ? 0x1F : need == 3 ? 0x0F : 0x07);
    for (size_t k = 1; k < need; ++k) c = (c << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
    cpt = c;
    return need;
}

size_t utf8_invalid_len(std::string_view s, size_t i) {
    const size_t need = expected_len(static_cast<uint8_t>(s[i]));
    if (need <= 1) return 1;
    return valid_prefix(s, i, need);
}

void utf8_append(std::string& out, uint32_t c) {
    if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) c = kReplacementChar;
    if (c < 0x80) {
        out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (c >> 6)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (c >> 12)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (c >> 18)));
        out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
}

size_t utf8_incomplete_tail(std::string_view s) {
    // A sequence is at most 4 bytes, so an unfinished one starts in the last 3.
    const size_t n = s.size();
    for (size_t back = 1; back <= 3 && back <= n; ++back) {
        const size_t i = n - back;
        const uint8_t c = static_cast<uint8_t>(s[i]);
        if (c >= 0x80 && c <= 0xBF) continue;  // continuation byte: look further back
        const size_t need = expected_len(c);
        if (need <= back) return 0;  // ASCII, invalid lead, or a sequence that fits
        return valid_prefix(s, i, need) == back ? back : 0;
    }
    return 0;
}

std::string utf8_sanitize(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    size_t i = 0;
    while (i < s.size()) {
        uint32_t c;
        const size_t len = utf8_decode(s, i, c);
        if (len) {
            out.append(s.data() + i, len);
            i += len;
        } else {
            utf8_append(out, kReplacementChar);
            i += utf8_invalid_len(s, i);
        }
    }
    return out;
}

// ---- GPT-2 byte mapping

namespace {

struct ByteMap {
    std::array<uint32_t, 256> cpt{};
    std::array<std::string, 256> utf8;
    std::array<int16_t, 324> back{};  // mapped code points are all < 0x144
    ByteMap() {
        back.fill(-1);
        uint32_t next = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            cpt[b] = printable ? static_cast<uint32_t>(b) : next++;
            utf8_append(utf8[b], cpt[b]);
            back[cpt[b]] = static_cast<int16_t>(b);
        }
    }
};

const ByteMap& byte_map() {
    static const ByteMap m;
    return m;
}

}  // namespace

uint32_t byte_to_cpt(uint8_t b) { return byte_map().cpt[b]; }
std::string_view byte_to_utf8(uint8_t b) { return byte_map().utf8[b]; }
int cpt_to_byte(uint32_t cpt) { return cpt < byte_map().back.size() ? byte_map().back[cpt] : -1; }

void byte_encode(std::string_view bytes, std::string& out) {
    const ByteMap& m = byte_map();
    out.clear();
    out.reserve(bytes.size() * 2);
    for (char c : bytes) out += m.utf8[static_cast<uint8_t>(c)];
}

// ---- Accent stripping

void strip_accents_append(std::string& out, uint32_t cpt) {
    // Hangul syllables: NFD gives leading consonant + vowel (+ trailing consonant), none a mark.
    constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
    constexpr uint32_t kVCount = 21, kTCount = 28, kSCount = 11172;
    if (cpt >= kSBase && cpt < kSBase + kSCount) {
        const uint32_t s = cpt - kSBase;
        utf8_append(out, kLBase + s / (kVCount * kTCount));
        utf8_append(out, kVBase + (s % (kVCount * kTCount)) / kTCount);
        if (s % kTCount) utf8_append(out, kTBase + s % kTCount);
        return;
    }
    utf8_append(out, nfd_base(cpt));
}

// ---- PCRE2

namespace {

std::string pcre2_message(int code) {
    PCRE2_UCHAR buf[256];
    const int n = pcre2_get_error_message(code, buf, sizeof buf);
    return n < 0 ? "PCRE2 error " + std::to_string(code) : std::string(reinterpret_cast<const char*>(buf));
}

}  // namespace

Regex::Regex(std::string_view pattern) : pattern_(pattern) {
    int err = 0;
    PCRE2_SIZE err_off = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern_.data()), pattern_.size(),
                                     PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &err_off, nullptr);
    if (!code)
        throw std::runtime_error("tokenizer: bad regex at offset " + std::to_string(err_off) + ": " +
                                 pcre2_message(err) + " in /" + pattern_ + "/");
    // JIT is an optimization only: when unavailable the interpreter runs the same pattern.
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &capture_count_);
    code_ = code;
}

Regex::~Regex() {
    if (code_) pcre2_code_free(static_cast<pcre2_code*>(code_));
}

Regex::Regex(Regex&& o) noexcept : pattern_(std::move(o.pattern_)), code_(o.code_), capture_count_(o.capture_count_) {
    o.code_ = nullptr;
}

Regex& Regex::operator=(Regex&& o) noexcept {
    if (this != &o) {
        if (code_) pcre2_code_free(static_cast<pcre2_code*>(code_));
        pattern_ = std::move(o.pattern_);
        code_ = o.code_;
        capture_count_ = o.capture_count_;
        o.code_ = nullptr;
    }
    return *this;
}

Regex::Matcher::Matcher(const Regex& re)
    : re_(re), md_(pcre2_match_data_create_from_pattern(static_cast<pcre2_code*>(re.code_), nullptr)) {
    if (!md_) throw std::bad_alloc();
}

Regex::Matcher::~Matcher() { pcre2_match_data_free(static_cast<pcre2_match_data*>(md_)); }

bool Regex::Matcher::find(std::string_view subject, size_t start, Match& m) {
    auto* code = static_cast<pcre2_code*>(re_.code_);
    auto* md = static_cast<pcre2_match_data*>(md_);
    // An empty subject still needs a valid pointer.
    const auto* ptr = reinterpret_cast<PCRE2_SPTR>(subject.empty() ? "" : subject.data());
    int rc = pcre2_match(code, ptr, subject.size(), start, 0, md, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)  // deep backtracking: the interpreter keeps its stack on the heap
        rc = pcre2_match(code, ptr, subject.size(), start, PCRE2_NO_JIT, md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    if (rc < 0) throw std::runtime_error("tokenizer: regex match failed: " + pcre2_message(rc));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    m.begin = ov[0];
    m.end = ov[1];
    m.group = 0;
    for (uint32_t g = 1; g <= re_.capture_count_ && static_cast<int>(g) < rc; ++g) {
        if (ov[2 * g] != PCRE2_UNSET) {
            m.group = static_cast<int>(g);
            break;
        }
    }
    return true;
}

std::string Regex::substitute_all(std::string_view subject, std::string_view replacement) const {
    auto* code = static_cast<pcre2_code*>(code_);
    std::string out(subject.size() + subject.size() / 2 + 16, '\0');
    const auto* ptr = reinterpret_cast<PCRE2_SPTR>(subject.empty() ? "" : subject.data());
    for (int attempt = 0; attempt < 2; ++attempt) {
        PCRE2_SIZE out_len = out.size();
        const int rc = pcre2_substitute(
            code, ptr, subject.size(), 0,
            PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_EXTENDED | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH, nullptr, nullptr,
            reinterpret_cast<PCRE2_SPTR>(replacement.data()), replacement.size(),
            reinterpret_cast<PCRE2_UCHAR*>(out.data()), &out_len);
        if (rc >= 0) {
            out.resize(out_len);
            return out;
        }
        if (rc != PCRE2_ERROR_NOMEMORY) throw std::runtime_error("tokenizer: regex substitute failed: " + pcre2_message(rc));
        out.resize(out_len);  // OVERFLOW_LENGTH reported the size needed
    }
    throw std::runtime_error("tokenizer: regex substitute failed: output size");
}

std::string utf8_lowercase(std::string_view s) {
    static const Regex any("(?s).+");
    return any.substitute_all(s, "\\L$0");
}

void append_marker_as_space(std::string_view text, std::string& out) {
    out.reserve(out.size() + text.size());
    for (size_t i = 0; i < text.size();) {
        if (text.compare(i, kSpaceMarker.size(), kSpaceMarker) == 0) {
            out.push_back(' ');
            i += kSpaceMarker.size();
        } else {
            out.push_back(text[i++]);
        }
    }
}

}  // namespace hearth::tok
