// How the daemon commands show things, in Ollama's formats: sizes ("2.0 GB"), times ("2
// minutes ago", "4 minutes from now", "Forever"), Go-style durations ("1.234s", "12.5ms"),
// aligned tables, word wrapping, the --verbose timing block, and the progress display of
// pull / push / create fed by streamed `{status, digest, total, completed}` objects.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace hearth::cli {

// Decimal units like Ollama's HumanBytes: "512 B", "1.1 MB", "2.0 GB", "15 GB".
std::string human_bytes(uint64_t bytes);
// Ollama's HumanTime: "Less than a second ago", "2 minutes ago", "About an hour ago",
// "4 minutes from now", "Forever" (more than 20 years ahead), `zero` for the epoch.
std::string human_time(std::chrono::system_clock::time_point t, std::chrono::system_clock::time_point now,
                       std::string_view zero = "Never");
// Go's time.Duration.String(): "0s", "850ns", "12.5µs", "1.234567ms", "2.5s", "1m30s", "1h2m3s".
std::string go_duration(int64_t ns);
// "20s", "1m5s", "2h3m": a rounded ETA.
std::string eta_string(double seconds);
// RFC 3339 ("2024-05-01T12:34:56.123Z", "…+02:00"); nullopt when malformed.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view s);

// Rows of cells rendered left-aligned, columns separated by at least 4 spaces, no trailing
// blanks (Ollama's tables).
std::string render_table(const std::vector<std::vector<std::string>>& rows);

bool is_tty(FILE* f);
int terminal_width(FILE* f);  // 0 when unknown / not a terminal

// Ollama's --verbose block (to `out`): total duration, load duration, prompt eval
// count/duration/rate, eval count/duration/rate, from a final generate/chat object.
void print_timings(FILE* out, const nlohmann::json& final_object);

// Wraps streamed text at word boundaries for a terminal of `width` columns (0: no wrapping).
class WordWrapper {
public:
    WordWrapper(FILE* out, int width) : out_(out), width_(width) {}
    void write(std::string_view text);
    void flush();  // writes a pending word
    void reset_line() { line_len_ = 0; }
    bool at_line_start() const { return line_len_ == 0 && word_.empty(); }

private:
    void put(std::string_view s);
    FILE* out_;
    int width_;
    int line_len_ = 0;  // code points on the current line
    std::string word_;
    int word_len_ = 0;
};

// The progress of pull / push / create: one line per status and one bar per digest, redrawn
// in place on a terminal (at most ~10 times a second), plain lines otherwise.
class ProgressDisplay {
public:
    explicit ProgressDisplay(FILE* out = stderr);
    ProgressDisplay(FILE* out, bool tty);
    ~ProgressDisplay();
    // One streamed object: {"status": …, "digest"?: …, "total"?: …, "completed"?: …}.
    void update(const nlohmann::json& obj);
    // A line of our own (e.g. "gathering model components").
    void status(const std::string& text);
    // A bar we drive ourselves (e.g. an upload): key identifies it.
    void bar(const std::string& key, const std::string& label, uint64_t completed, uint64_t total);
    // Final redraw; later output starts on a fresh line.
    void finish();

private:
    struct Entry {
        std::string key;    // digest or status text
        std::string label;  // what the line starts with
        bool is_bar = false;
        uint64_t total = 0, completed = 0;
        bool printed_done = false;  // non-tty: the completion line was written
        std::deque<std::pair<std::chrono::steady_clock::time_point, uint64_t>> samples;
    };
    Entry& entry(const std::string& key, const std::string& label, bool is_bar, bool* added);
    void set_progress(Entry& e, uint64_t completed, uint64_t total);
    std::string render(const Entry& e) const;
    void redraw(bool force);

    FILE* out_;
    bool tty_;
    bool finished_ = false;
    std::vector<Entry> entries_;
    int drawn_lines_ = 0;
    std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace hearth::cli
