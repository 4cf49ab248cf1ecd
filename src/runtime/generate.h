// One sequence's generation loop: prompt processed in n_batch chunks, then token-by-token
// decode with sampling, EOS/EOT and stop strings, streaming text as it becomes complete.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sampling/sampler.h"

namespace hearth {

class Context;

struct GenerateOptions {
    int32_t n_predict = 128;  // < 0: until EOS or the context is full
    SamplingParams sampling;
    std::vector<std::string> stop;
    int32_t seq = 0;
    bool render_special = false;  // print control tokens' text
};

struct GenerateResult {
    std::vector<int32_t> tokens;    // generated ids (EOS/EOT excluded)
    std::vector<SampleResult> samples;  // per generated token (with logprobs when asked)
    std::string text;
    std::string stop_reason;        // "stop" (EOS/EOT or stop string), "length", or "cancelled"
    int32_t n_prompt = 0;
    double prompt_seconds = 0;
    double gen_seconds = 0;
};

// Streams (token id, newly complete text) as tokens are generated; return false to stop.
using TokenCallback = std::function<bool(int32_t id, const std::string& text)>;

// Throws std::invalid_argument when the prompt is empty or does not fit the context
// (the message names both numbers).
GenerateResult generate(Context& ctx, const std::vector<int32_t>& prompt, const GenerateOptions& opts,
                        const TokenCallback& on_token = {});

}  // namespace hearth
