// Hearth's own store as a read-only OCI registry, so another machine can
// `hearth pull --insecure thishost:11434/library/name:tag`:
//   GET /v2/                                          200 {}
//   GET|HEAD /v2/[<namespace>/]<name>/manifests/<tag or sha256 digest>
//                                                     the manifest bytes as stored
//   GET|HEAD /v2/[<namespace>/]<name>/blobs/<digest>  the blob, with single-range Range
// A tag is looked up under the default host (registry.ollama.ai) first, then under the other
// hosts of the store. Names and digests are validated before any path is built; errors use
// the registry's shape {"errors":[{"code","message"}]}. Writes answer 405 UNSUPPORTED.
#pragma once

#include "server/server.h"

namespace hearth::http {
class Server;
}

namespace hearth::server {

void register_registry_routes(http::Server& http, ApiEnv& env);

}  // namespace hearth::server
