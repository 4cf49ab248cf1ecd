// anthropic/ owns Anthropic's Messages API: POST /v1/messages (SSE streaming with Anthropic's
// event sequence, text / tool_use / tool_result / thinking blocks) and POST
// /v1/messages/count_tokens, with errors in Anthropic's {"type":"error","error":{"type",
// "message"}} shape and status codes.
#pragma once

#include <string>

#include "http/server.h"
#include "server/server.h"

namespace hearth::server {

void register_anthropic_routes(http::Server& http, ApiEnv& env);

namespace anthropic {

// Anthropic's error type for a status: invalid_request_error, authentication_error,
// permission_error, not_found_error, request_too_large, rate_limit_error, api_error,
// overloaded_error.
const char* error_type(int status);
// {"type":"error","error":{"type","message"}}
std::string error_json(int status, const std::string& message);
// The status Anthropic uses: a busy server (503) is 529 "overloaded_error".
int wire_status(int status);
// An error reply in Anthropic's shape and status (Retry-After on a busy server).
void send_error(http::Response& res, int status, const std::string& message);

}  // namespace anthropic
}  // namespace hearth::server
