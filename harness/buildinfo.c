// buildinfo.c: see buildinfo.h.
#include "buildinfo.h"

#ifndef LRA_GIT_COMMIT
#define LRA_GIT_COMMIT "unknown"
#endif
#ifndef LRA_BUILD_FLAGS
#define LRA_BUILD_FLAGS "unknown"
#endif

const char *lra_git_commit(void) { return LRA_GIT_COMMIT[0] ? LRA_GIT_COMMIT : "unknown"; }
const char *lra_build_flags(void) { return LRA_BUILD_FLAGS; }
