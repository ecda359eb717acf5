/*
 * report.html: one self-contained page (inline CSS and SVG, no scripts,
 * nothing loaded from the network) with the verdict, a table per group,
 * Kaplan-Meier curves with confidence bands, a latency histogram, effects
 * over time since the swap, connects, throttles and errors per second, the
 * slowest devices and the run metadata.
 */
#ifndef PL_REPORT_HTML_H
#define PL_REPORT_HTML_H

#include "common/error.h"

struct summary;

pl_err report_html_write(const struct summary *s, const char *path, pl_errmsg *e);

#endif
