#include "http/message.h"

#include <algorithm>
#include <cctype>

namespace hearth::http {

bool CaseInsensitiveLess::operator()(std::string_view a, std::string_view b) const {
    return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](unsigned char x, unsigned char y) {
        return std::tolower(x) < std::tolower(y);
    });
}

std::string header_value(const Headers& h, std::string_view key, std::string_view def) {
    auto it = h.find(key);
    return it == h.end() ? std::string(def) : it->second;
}

std::string Request::get_param_value(std::string_view key) const {
    auto it = params.find(key);
    return it == params.end() ? std::string() : it->second;
}

void Response::replace_header(const std::string& key, std::string value) {
    headers.erase(key);
    headers.emplace(key, std::move(value));
}

std::shared_ptr<Stream> Response::defer() {
    if (!deferred_ && stream_) stream_->set_base_headers(headers);
    deferred_ = true;
    return stream_;
}

void Response::set_content(std::string content, std::string_view content_type) {
    body = std::move(content);
    replace_header("Content-Type", std::string(content_type));
}

}  // namespace hearth::http
