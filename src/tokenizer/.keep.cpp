// Keeps the tokenizer library non-empty while its sources are being written.
