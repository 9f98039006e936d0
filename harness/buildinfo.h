// buildinfo.h: what the binary was built from, recorded with every result
// (bench sets, runs): the git commit and the compiler flags. The Makefile
// passes them to buildinfo.c alone (-DLRA_GIT_COMMIT, -DLRA_BUILD_FLAGS), so a
// new commit recompiles one file. (The same two functions as the harness's
// run records declare: one definition serves both.)
#ifndef LRA_BUILDINFO_H
#define LRA_BUILDINFO_H

// "0123456789ab" (12 hex digits), with "-dirty" when the work tree had
// uncommitted changes at build time; "unknown" outside a git checkout.
const char *lra_git_commit(void);
// "cc -O2 -fopenmp cuda": compiler, optimisation and the optional parts built.
const char *lra_build_flags(void);

#endif // LRA_BUILDINFO_H
