// StopMatcher: stop strings matched across token boundaries, byte-wise (so UTF-8 stop
// strings work as they are). Between pushes, held_ is only ever the longest suffix of the
// text seen so far that is a proper prefix of some stop string, so it stays shorter than the
// longest stop string.
#include <algorithm>

#include "sampling/sampler.h"

namespace hearth {

std::string StopMatcher::push(const std::string& text) {
    if (stopped_) return {};
    held_ += text;

    // A complete stop string: the earliest position wins; at the same position the shorter
    // one (it is the one that completed first).
    size_t best_pos = std::string::npos;
    size_t best_len = 0;
    for (size_t s = 0; s < stops_.size(); ++s) {
        const std::string& stop = stops_[s];
        if (stop.empty()) continue;
        const size_t pos = held_.find(stop);
        if (pos == std::string::npos) continue;
        if (pos < best_pos || (pos == best_pos && stop.size() < best_len)) {
            best_pos = pos;
            best_len = stop.size();
            stop_index_ = static_cast<int>(s);
        }
    }
    if (best_pos != std::string::npos) {
        stopped_ = true;
        std::string out = held_.substr(0, best_pos);
        held_.clear();
        return out;
    }

    // Hold back the longest suffix that could still grow into a stop string.
    size_t hold = 0;
    for (const std::string& stop : stops_) {
        const size_t max_len = std::min(stop.empty() ? size_t{0} : stop.size() - 1, held_.size());
        for (size_t len = max_len; len > hold; --len) {
            if (held_.compare(held_.size() - len, len, stop, 0, len) == 0) {
                hold = len;
                break;
            }
        }
    }
    std::string out = held_.substr(0, held_.size() - hold);
    held_.erase(0, held_.size() - hold);
    return out;
}

std::string StopMatcher::flush() {
    std::string out;
    out.swap(held_);
    return out;
}

}  // namespace hearth
