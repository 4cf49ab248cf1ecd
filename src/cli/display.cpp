// Formatting and progress output of the daemon commands (see display.h).
#include "cli/display.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <ctime>

namespace hearth::cli {

using json = nlohmann::json;

std::string human_bytes(uint64_t b) {
    constexpr double KB = 1000.0, MB = KB * 1000, GB = MB * 1000, TB = GB * 1000;
    double v;
    const char* unit;
    if (b >= TB) {
        v = double(b) / TB, unit = "TB";
    } else if (b >= GB) {
        v = double(b) / GB, unit = "GB";
    } else if (b >= MB) {
        v = double(b) / MB, unit = "MB";
    } else if (b >= KB) {
        v = double(b) / KB, unit = "KB";
    } else {
        return std::to_string(b) + " B";
    }
    char buf[64];
    if (v >= 10 || v == std::trunc(v))
        std::snprintf(buf, sizeof buf, "%d %s", int(v), unit);
    else
        std::snprintf(buf, sizeof buf, "%.1f %s", v, unit);
    return buf;
}

namespace {

std::string human_duration(std::chrono::nanoseconds d) {
    const double secs = std::chrono::duration<double>(d).count();
    const long long seconds = static_cast<long long>(secs);
    if (seconds < 1) return "Less than a second";
    if (seconds == 1) return "1 second";
    if (seconds < 60) return std::to_string(seconds) + " seconds";
    const long long minutes = seconds / 60;
    if (minutes == 1) return "About a minute";
    if (minutes < 60) return std::to_string(minutes) + " minutes";
    const long long hours = std::llround(secs / 3600.0);
    if (hours == 1) return "About an hour";
    if (hours < 48) return std::to_string(hours) + " hours";
    if (hours < 24 * 7 * 2) return std::to_string(hours / 24) + " days";
    if (hours < 24 * 30 * 2) return std::to_string(hours / 24 / 7) + " weeks";
    if (hours < 24 * 365 * 2) return std::to_string(hours / 24 / 30) + " months";
    return std::to_string(static_cast<long long>(secs / 3600 / 24 / 365)) + " years";
}

// "1234" with `decimals` fractional digits of `frac` (< 10^decimals), trailing zeros dropped.
std::string with_fraction(int64_t whole, int64_t frac, int decimals) {
    std::string s = std::to_string(whole);
    if (frac == 0) return s;
    std::string f = std::to_string(frac);
    f.insert(0, static_cast<size_t>(decimals) - f.size(), '0');
    while (!f.empty() && f.back() == '0') f.pop_back();
    return s + "." + f;
}

}  // namespace

std::string human_time(std::chrono::system_clock::time_point t, std::chrono::system_clock::time_point now,
                       std::string_view zero) {
    if (t.time_since_epoch().count() == 0) return std::string(zero);
    const auto delta = std::chrono::duration_cast<std::chrono::nanoseconds>(now - t);
    const double hours = std::chrono::duration<double, std::ratio<3600>>(delta).count();
    if (hours / 24 / 365 < -20) return "Forever";
    if (delta.count() < 0) return human_duration(-delta) + " from now";
    return human_duration(delta) + " ago";
}

std::string go_duration(int64_t ns) {
    if (ns == 0) return "0s";
    std::string sign;
    uint64_t u = ns < 0 ? uint64_t(-(ns + 1)) + 1 : uint64_t(ns);
    if (ns < 0) sign = "-";
    if (u < 1000) return sign + std::to_string(u) + "ns";
    if (u < 1000000) return sign + with_fraction(int64_t(u / 1000), int64_t(u % 1000), 3) + "µs";
    if (u < 1000000000) return sign + with_fraction(int64_t(u / 1000000), int64_t(u % 1000000), 6) + "ms";
    const uint64_t total_s = u / 1000000000, frac = u % 1000000000;
    const uint64_t h = total_s / 3600, m = (total_s / 60) % 60, s = total_s % 60;
    std::string out = sign;
    if (h > 0) out += std::to_string(h) + "h";
    if (h > 0 || m > 0) out += std::to_string(m) + "m";
    return out + with_fraction(int64_t(s), int64_t(frac), 9) + "s";
}

std::string eta_string(double seconds) {
    if (!(seconds >= 0) || seconds > 1e9) return "";
    long long s = std::llround(seconds);
    const long long h = s / 3600, m = (s / 60) % 60;
    s %= 60;
    std::string out;
    if (h > 0) out += std::to_string(h) + "h";
    if (h > 0 || m > 0) out += std::to_string(m) + "m";
    return out + std::to_string(s) + "s";
}

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view s) {
    std::tm tm{};
    int frac_digits = 0;
    long long frac = 0;
    if (s.size() < 20) return std::nullopt;
    auto num = [&](size_t at, size_t len, int& out) {
        out = 0;
        for (size_t i = at; i < at + len; ++i) {
            if (i >= s.size() || s[i] < '0' || s[i] > '9') return false;
            out = out * 10 + (s[i] - '0');
        }
        return true;
    };
    int Y, M, D, h, m, sec;
    if (!num(0, 4, Y) || s[4] != '-' || !num(5, 2, M) || s[7] != '-' || !num(8, 2, D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !num(11, 2, h) || s[13] != ':' || !num(14, 2, m) || s[16] != ':' || !num(17, 2, sec))
        return std::nullopt;
    size_t i = 19;
    if (i < s.size() && s[i] == '.') {
        ++i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
            if (frac_digits < 9) frac = frac * 10 + (s[i] - '0'), ++frac_digits;
            ++i;
        }
    }
    while (frac_digits < 9) frac *= 10, ++frac_digits;
    long long offset = 0;
    if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
        ++i;
    } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
        int oh, om;
        if (!num(i + 1, 2, oh) || i + 3 >= s.size() || s[i + 3] != ':' || !num(i + 4, 2, om)) return std::nullopt;
        offset = (s[i] == '-' ? -1 : 1) * (oh * 3600LL + om * 60LL);
        i += 6;
    } else {
        return std::nullopt;
    }
    if (i != s.size()) return std::nullopt;
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    const time_t t = timegm(&tm);
    return std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
        std::chrono::seconds(t - offset) + std::chrono::nanoseconds(frac)));
}

namespace {

size_t display_width(std::string_view s) {
    size_t n = 0;
    for (unsigned char c : s)
        if ((c & 0xC0) != 0x80) ++n;
    return n;
}

}  // namespace

std::string render_table(const std::vector<std::vector<std::string>>& rows) {
    std::vector<size_t> widths;
    for (const auto& r : rows) {
        if (widths.size() < r.size()) widths.resize(r.size(), 0);
        for (size_t c = 0; c < r.size(); ++c) widths[c] = std::max(widths[c], display_width(r[c]));
    }
    std::string out;
    for (const auto& r : rows) {
        std::string line;
        for (size_t c = 0; c < r.size(); ++c) {
            line += r[c];
            if (c + 1 < r.size()) line += std::string(widths[c] - display_width(r[c]) + 4, ' ');
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out += line + "\n";
    }
    return out;
}

bool is_tty(FILE* f) { return isatty(fileno(f)) == 1; }

int terminal_width(FILE* f) {
    if (!is_tty(f)) return 0;
    winsize ws{};
    if (ioctl(fileno(f), TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) return 0;
    return ws.ws_col;
}

void print_timings(FILE* out, const json& j) {
    auto i64 = [&](const char* k) -> int64_t {
        auto it = j.find(k);
        return it != j.end() && it->is_number() ? it->get<int64_t>() : 0;
    };
    const int64_t total = i64("total_duration"), load = i64("load_duration");
    const int64_t pcount = i64("prompt_eval_count"), pdur = i64("prompt_eval_duration");
    const int64_t ecount = i64("eval_count"), edur = i64("eval_duration");
    if (total > 0) std::fprintf(out, "total duration:       %s\n", go_duration(total).c_str());
    if (load > 0) std::fprintf(out, "load duration:        %s\n", go_duration(load).c_str());
    if (pcount > 0) std::fprintf(out, "prompt eval count:    %lld token(s)\n", static_cast<long long>(pcount));
    if (pdur > 0) {
        std::fprintf(out, "prompt eval duration: %s\n", go_duration(pdur).c_str());
        std::fprintf(out, "prompt eval rate:     %.2f tokens/s\n", double(pcount) / (double(pdur) / 1e9));
    }
    if (ecount > 0) std::fprintf(out, "eval count:           %lld token(s)\n", static_cast<long long>(ecount));
    if (edur > 0) {
        std::fprintf(out, "eval duration:        %s\n", go_duration(edur).c_str());
        std::fprintf(out, "eval rate:            %.2f tokens/s\n", double(ecount) / (double(edur) / 1e9));
    }
    std::fflush(out);
}

// ---- WordWrapper

void WordWrapper::put(std::string_view s) {
    std::fwrite(s.data(), 1, s.size(), out_);
}

void WordWrapper::flush() {
    if (!word_.empty()) {
        if (width_ > 0 && line_len_ > 0 && line_len_ + word_len_ > width_) {
            put("\n");
            line_len_ = 0;
        }
        put(word_);
        line_len_ += word_len_;
        word_.clear();
        word_len_ = 0;
    }
    std::fflush(out_);
}

void WordWrapper::write(std::string_view text) {
    if (width_ <= 0) {
        put(text);
        for (char c : text) line_len_ = c == '\n' ? 0 : line_len_ + 1;
        std::fflush(out_);
        return;
    }
    for (char c : text) {
        if (c == '\n') {
            flush();
            put("\n");
            line_len_ = 0;
        } else if (c == ' ' || c == '\t') {
            flush();
            if (line_len_ + 1 > width_) {
                put("\n");
                line_len_ = 0;
            } else if (line_len_ > 0 || c == '\t') {
                put(std::string_view(&c, 1));
                ++line_len_;
            }
        } else {
            word_ += c;
            if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++word_len_;
            if (word_len_ >= width_) flush();  // a word longer than a line: break it
        }
    }
    // Show what came so far unless we are in the middle of a word that may still wrap.
    std::fflush(out_);
}

// ---- ProgressDisplay

ProgressDisplay::ProgressDisplay(FILE* out) : ProgressDisplay(out, is_tty(out)) {}
ProgressDisplay::ProgressDisplay(FILE* out, bool tty) : out_(out), tty_(tty) {}
ProgressDisplay::~ProgressDisplay() { finish(); }

ProgressDisplay::Entry& ProgressDisplay::entry(const std::string& key, const std::string& label, bool is_bar, bool* added) {
    for (Entry& e : entries_)
        if (e.key == key) {
            if (!label.empty()) e.label = label;
            *added = false;
            return e;
        }
    Entry e;
    e.key = key;
    e.label = label;
    e.is_bar = is_bar;
    entries_.push_back(std::move(e));
    *added = true;
    return entries_.back();
}

void ProgressDisplay::set_progress(Entry& e, uint64_t completed, uint64_t total) {
    e.total = total;
    e.completed = std::min(completed, total ? total : completed);
    const auto now = std::chrono::steady_clock::now();
    e.samples.emplace_back(now, e.completed);
    while (e.samples.size() > 2 && now - e.samples.front().first > std::chrono::seconds(5)) e.samples.pop_front();
}

std::string ProgressDisplay::render(const Entry& e) const {
    if (!e.is_bar) return e.label;
    const bool done = e.total > 0 && e.completed >= e.total;
    const int pct = e.total ? int(e.completed * 100 / e.total) : 0;
    char head[32];
    std::snprintf(head, sizeof head, " %3d%% ", pct);
    std::string stats;
    if (done) {
        stats = human_bytes(e.total);
    } else {
        stats = human_bytes(e.completed) + "/" + human_bytes(e.total);
        if (e.samples.size() >= 2) {
            const double dt = std::chrono::duration<double>(e.samples.back().first - e.samples.front().first).count();
            const double rate = dt > 0 ? double(e.samples.back().second - e.samples.front().second) / dt : 0;
            if (rate > 0) {
                stats += "  " + human_bytes(static_cast<uint64_t>(rate)) + "/s";
                stats += "  " + eta_string(double(e.total - e.completed) / rate);
            }
        }
    }
    if (!tty_) return e.label + ":" + head + stats;
    const int width = std::max(terminal_width(out_), 40);
    const int fixed = int(display_width(e.label)) + 1 + int(display_width(head)) + 2 + int(stats.size()) + 1;
    const int bar_w = std::clamp(width - fixed - 12, 10, 40);
    const int filled = e.total ? int(double(e.completed) / double(e.total) * bar_w) : 0;
    std::string bar = "▕";
    for (int i = 0; i < bar_w; ++i) bar += i < filled ? "█" : " ";
    bar += "▏";
    return e.label + ":" + head + bar + " " + stats;
}

void ProgressDisplay::redraw(bool force) {
    if (!tty_) return;
    const auto now = std::chrono::steady_clock::now();
    if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    std::string s;
    if (drawn_lines_ > 1) s += "\x1b[" + std::to_string(drawn_lines_ - 1) + "A";
    if (drawn_lines_ > 0) s += "\r";
    for (size_t i = 0; i < entries_.size(); ++i) {
        s += render(entries_[i]) + "\x1b[K";
        if (i + 1 < entries_.size()) s += "\n";
    }
    drawn_lines_ = static_cast<int>(entries_.size());
    std::fputs(s.c_str(), out_);
    std::fflush(out_);
}

void ProgressDisplay::update(const json& obj) {
    if (!obj.is_object()) return;
    const std::string st = obj.value("status", std::string());
    const std::string digest = obj.contains("digest") && obj["digest"].is_string() ? obj["digest"].get<std::string>() : "";
    const uint64_t total = obj.contains("total") && obj["total"].is_number() ? obj["total"].get<uint64_t>() : 0;
    const uint64_t completed = obj.contains("completed") && obj["completed"].is_number() ? obj["completed"].get<uint64_t>() : 0;
    if (!digest.empty() && total > 0) {
        std::string label = st;
        if (label.empty()) {
            const std::string hex = digest.rfind("sha256:", 0) == 0 ? digest.substr(7) : digest;
            label = "pulling " + hex.substr(0, 12);
        }
        bar(digest, label, completed, total);
        return;
    }
    if (st.empty()) return;
    status(st);
}

void ProgressDisplay::status(const std::string& text) {
    bool added = false;
    entry(text, text, false, &added);
    if (!added) return;
    if (tty_) {
        redraw(true);
    } else {
        std::fprintf(out_, "%s\n", text.c_str());
        std::fflush(out_);
    }
}

void ProgressDisplay::bar(const std::string& key, const std::string& label, uint64_t completed, uint64_t total) {
    bool added = false;
    Entry& e = entry(key, label, true, &added);
    set_progress(e, completed, total);
    if (tty_) {
        redraw(added || completed >= total);
    } else if (!e.printed_done && total > 0 && e.completed >= total) {
        e.printed_done = true;
        std::fprintf(out_, "%s\n", render(e).c_str());
        std::fflush(out_);
    }
}

void ProgressDisplay::finish() {
    if (finished_) return;
    finished_ = true;
    if (tty_) {
        if (!entries_.empty()) {
            redraw(true);
            std::fputs("\n", out_);
        }
    } else {
        for (Entry& e : entries_)
            if (e.is_bar && !e.printed_done) {
                e.printed_done = true;
                std::fprintf(out_, "%s\n", render(e).c_str());
            }
    }
    std::fflush(out_);
}

}  // namespace hearth::cli
