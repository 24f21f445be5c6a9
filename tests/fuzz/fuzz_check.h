// Property checks for the fuzz targets: a violated property prints what failed and
// aborts, which libFuzzer reports as a crash (with the input saved) and the corpus replay
// test reports as a failed test.
#pragma once

#include <cstdio>
#include <cstdlib>

#define IG_FUZZ_CHECK(cond)                                                              \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)
