// `hearth tokenize`: a GGUF's tokenizer applied to a text; prints the ids on one line.
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace hearth::cli {

void add_tokenize_command(CLI::App& app) {
    struct Args {
        std::string model, text, file;
        bool no_bos = false, parse_special = false, pieces = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = app.add_subcommand("tokenize", "Print the token ids of a text (as llama-tokenize --ids)");
    cmd->add_option("-m,--model", a->model, "GGUF file (a model or a vocab-only file)")->required()->check(CLI::ExistingFile);
    auto* text = cmd->add_option("text", a->text, "Text to tokenize");
    auto* file = cmd->add_option("-f,--file", a->file, "Read the text from a file (bytes as they are)")->check(CLI::ExistingFile);
    text->excludes(file);
    cmd->add_flag("--no-bos", a->no_bos, "Add no BOS/EOS (or CLS/SEP) tokens");
    cmd->add_flag("--parse-special", a->parse_special, "Match control tokens written in the text, e.g. <|im_start|>");
    cmd->add_flag("--pieces", a->pieces, "Print one 'id<TAB>piece' line per token instead");
    cmd->callback([a, text] {
        std::string input = a->text;
        if (!a->file.empty()) {
            std::ifstream in(a->file, std::ios::binary);
            if (!in) throw CLI::ValidationError("--file", "cannot read " + a->file);
            std::ostringstream ss;
            ss << in.rdbuf();
            input = ss.str();
        } else if (text->count() == 0) {  // "" is a text too (BOS alone)
            throw CLI::ValidationError("text", "give a TEXT or --file");
        }
        const gguf::File f = gguf::File::open(a->model);
        const auto tok = Tokenizer::from_gguf(f);
        const auto ids = tok->encode(input, !a->no_bos, a->parse_special);
        if (a->pieces) {
            for (TokenId id : ids) std::printf("%d\t%s\n", id, tok->token_to_piece(id, true).c_str());
            return;
        }
        std::string line;
        for (TokenId id : ids) line += (line.empty() ? "" : " ") + std::to_string(id);
        std::printf("%s\n", line.c_str());
    });
}

}  // namespace hearth::cli
