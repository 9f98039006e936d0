// report.h: `lra report`: one self-contained HTML page for a results
// database: LRA Tables 1 and 2, the scaling and training-curve plots as
// inline SVG (gnuplot), the run list, the bench sets and the latest
// benchmark comparison. No external resources: it opens in any browser.
#ifndef LRA_REPORT_H
#define LRA_REPORT_H

#include "../backends/core.h"

int lra_cmd_report(int argc, char **argv, lra_err *err);

#endif // LRA_REPORT_H
