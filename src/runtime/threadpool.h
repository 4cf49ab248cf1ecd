// The thread pool moved to tensor/threadpool.h; this header keeps the old path building for
// the files that still include it (to be removed once they include the new one).
#pragma once

#include "tensor/threadpool.h"
