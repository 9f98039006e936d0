// version.c: the build's identity, recorded with every run and benchmark.
// The Makefile defines both macros for this file alone (a commit changes
// only this object).
#include "records.h"

#ifndef LRA_GIT_COMMIT
#define LRA_GIT_COMMIT "unknown"
#endif
#ifndef LRA_BUILD_FLAGS
#define LRA_BUILD_FLAGS "unknown"
#endif

const char *lra_git_commit(void) { return LRA_GIT_COMMIT; }
const char *lra_build_flags(void) { return LRA_BUILD_FLAGS; }
