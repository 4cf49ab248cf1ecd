// Helpers every route uses: error replies in the API's shape, request bodies parsed as JSON
// with a nesting cap, RFC 3339 timestamps, and replies built from a request's events as the
// runner produces them (on the HTTP layer's loop: no thread waits for a model).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "http/message.h"
#include "server/request.h"

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
// Anthropic's under /v1/messages, Ollama's {"error":"..."} elsewhere.
std::string error_body(std::string_view path, int status, const std::string& message);
// Sets status, the JSON error body and, for 503, Retry-After.
void send_error(const http::Request& req, http::Response& res, int status, const std::string& message);
void send_error(std::string_view path, http::Response& res, int status, const std::string& message);
void send_json(http::Response& res, const nlohmann::json& body, int status = 200);

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

// ---- Replies built from a request's events.
//
// An EventFn gets each event in order, on an HTTP loop thread (serialized: never two at once),
// and sends the reply through the Stream; it returns false once the reply is complete (no
// more events are wanted). It must not block.
using EventFn = std::function<bool(const Event& e, http::Stream& s)>;
// Fills in an error reply in the route's API shape.
using ErrorFn = std::function<void(http::Response& res, int status, const std::string& message)>;

// Defers `res` and drives it from `st`'s events: an Error arriving first is answered with
// `error`; the first other event goes to `start`, which returns the EventFn that then gets
// that event and every later one. A client that goes away (or stops reading past the write
// timeout) cancels the request in its runner.
void reply_from_events(http::Response& res, std::shared_ptr<RequestState> st, ErrorFn error,
                       std::function<EventFn(const Event& first)> start);
// The same with Ollama's / OpenAI's error shape for `path`.
void reply_from_events(http::Response& res, std::shared_ptr<RequestState> st, std::string path,
                       std::function<EventFn(const Event& first)> start);

// An EventFn that streams: a chunked 200 of `content_type` (plus `head`'s headers), each event
// rendered by `render` ("" writes nothing), complete after Done, Error or Embeddings.
EventFn stream_rendered(std::string content_type, std::function<std::string(const Event&)> render,
                        http::Response head = {});
// An EventFn for a reply sent whole at Done: `on_token` sees each Token, `finish` builds the
// reply from Done; an Error event (and an exception from `finish`: ApiError's status, else
// 500) is answered with `error`, in the route's API shape.
EventFn reply_at_done(std::function<void(const Event&)> on_token,
                      std::function<void(const Event& done, http::Response&)> finish, ErrorFn error);
// An EventFn that sends one whole reply made by `make` from the event it is given first.
EventFn reply_once(std::function<void(const Event&, http::Response&)> make);

// True for the events after which a request sends nothing more.
inline bool final_event(const Event& e) {
    return e.kind == Event::Kind::Done || e.kind == Event::Kind::Error || e.kind == Event::Kind::Embeddings;
}

}  // namespace hearth::server
