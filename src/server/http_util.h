// Helpers every route uses: error replies in the API's shape, request bodies parsed as JSON
// with a nesting cap, RFC 3339 timestamps, and streaming a request's events back.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "server/request.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace hearth::server {

// An error a handler reports to the client: status + message.
class ApiError : public std::runtime_error {
public:
    ApiError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
    int status() const { return status_; }

private:
    int status_;
};

// The body of an error reply for `path`: OpenAI's {"error":{"message","type"}} under /v1/,
// Ollama's {"error":"..."} elsewhere.
std::string error_body(std::string_view path, int status, const std::string& message);
// Sets status, the JSON error body and, for 503, Retry-After.
void send_error(const httplib::Request& req, httplib::Response& res, int status, const std::string& message);
void send_json(httplib::Response& res, const nlohmann::json& body, int status = 200);

// True when no array/object in `body` nests deeper than max_depth (strings are skipped).
bool json_depth_ok(std::string_view body, int max_depth);
// Parses the body as a JSON object. Throws ApiError(400) naming the problem.
nlohmann::json parse_json_object(std::string_view body, int max_depth);

// "2024-05-01T12:34:56.123456789Z"
std::string rfc3339(std::chrono::system_clock::time_point t);

// `prefix` + 24 random characters of [0-9A-Za-z], unique within the process (response, message
// and tool-call ids: "chatcmpl-…", "msg_…", "toolu_…").
std::string random_id(std::string_view prefix);

// Compares without an early exit on the first difference; an empty `expected` never matches.
bool constant_time_equal(std::string_view given, std::string_view expected);

// Waits for the request's first event. An Error is sent as the reply (nullopt returned).
std::optional<Event> await_first(RequestState& st, const httplib::Request& req, httplib::Response& res);

// Streams the request's events as newline-delimited JSON (`first` included): each event
// becomes `line(event)` ("" writes nothing) until Done, Embeddings or Error. A failed write
// (client gone) sets the request's cancel flag.
// Streams a request's events as a chunked response of `content_type`: `render` turns each
// event into bytes ("" skips it); the stream ends after Done/Error/Embeddings, and a client
// that goes away marks the request cancelled.
void stream_events(httplib::Response& res, std::shared_ptr<RequestState> st, Event first, const char* content_type,
                   std::function<std::string(const Event&)> render);
void stream_ndjson(httplib::Response& res, std::shared_ptr<RequestState> st, Event first,
                   std::function<std::string(const Event&)> line);

}  // namespace hearth::server
