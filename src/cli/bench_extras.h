// Extras of `hearth bench` beyond llama-bench's table: the machine's measured read
// bandwidth (the decode speed limit is bandwidth / bytes read per token) and a per-op
// profile of one prefill and of decode steps.
#pragma once

#include <cstdint>

namespace hearth {
class Context;
}

namespace hearth::cli {

// GB/s (1e9 bytes/s) reading a 1 GiB buffer (larger than the caches) with `threads`
// threads; the best of three passes.
double measure_read_bandwidth(int threads);

// Prints, as markdown, the time per op kind of one prefill of `n_prompt` tokens and the
// average of `n_gen` decode steps (with sampling), using ctx's sequence 0.
void print_profile(Context& ctx, int n_prompt, int n_gen, int n_seq = 1);

}  // namespace hearth::cli
