// Pooled embeddings from decoder models (llama, qwen2/3, gemma2, phi3): the input runs
// through one sequence of a Context in embeddings mode, and the final hidden states (after
// the output norm) are pooled per the model's pooling type: mean over tokens, the last
// token (the default for causal models), or the first (CLS). Encoders (bert) have their own
// path, model/encoder.h.
#pragma once

#include <cstdint>
#include <vector>

#include "model/model.h"
#include "runtime/context.h"

namespace hearth {

// Uses (and leaves empty) sequence `seq` of `ctx`. Throws std::invalid_argument for an empty
// input or one longer than the context; KV errors propagate.
std::vector<float> embed_sequence(Context& ctx, int32_t seq, const std::vector<int32_t>& tokens, Pooling pooling,
                                  bool normalize);

}  // namespace hearth
