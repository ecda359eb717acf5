/*
 * Inline SVG line charts for report.html: linear axes with 1-2-5 ticks,
 * axis titles with units, a legend, step lines and shaded bands. Output goes
 * straight to a FILE; nothing is kept after report_svg_end.
 */
#ifndef PL_REPORT_SVG_H
#define PL_REPORT_SVG_H

#include <stddef.h>
#include <stdio.h>

/* Colours for series, distinguishable with colour-vision deficiencies (Okabe-Ito). */
#define REPORT_SVG_NCOLORS 8
extern const char *const report_svg_colors[REPORT_SVG_NCOLORS];

typedef struct report_svg {
	FILE *f;
	double x_min, x_max, y_min, y_max; /* data range */
	double width, height;              /* whole picture, in CSS pixels */
	double left, right, top, bottom;   /* margins */
	double legend_x;                   /* where the next legend entry starts */
	size_t legend_row;
	int log_x;                         /* set before report_svg_begin for a log10 time axis */
} report_svg;

/*
 * Starts a chart of the data range [x_min, x_max] x [y_min, y_max] (widened
 * to whole ticks) and draws the grid, the ticks and the axis titles. With
 * p->log_x set, the x axis is logarithmic over whole decades (x_min > 0).
 * title names the chart for screen readers (the <title> element).
 */
void report_svg_begin(report_svg *p, FILE *f, const char *title, double x_min, double x_max,
		      double y_min, double y_max, const char *x_label, const char *y_label);
/* Draws a polyline through n points; step != 0 draws it as a right-continuous step function. */
void report_svg_line(report_svg *p, const double *x, const double *y, size_t n, int step,
		     const char *color, int dashed);
/* Shades the area between lo and hi (both step functions over x). */
void report_svg_band(report_svg *p, const double *x, const double *lo, const double *hi,
		     size_t n, const char *color);
/* A vertical marker line at x with a short label. */
void report_svg_marker(report_svg *p, double x, const char *label);
/* Adds a legend entry above the plot; entries flow left to right in up to two rows. */
void report_svg_legend(report_svg *p, const char *label, const char *color, int dashed);
void report_svg_end(report_svg *p);

/*
 * Writes text with &, <, >, " and ' escaped, for HTML and XML (junit.xml).
 * Control characters that XML 1.0 does not allow become '?'.
 */
void report_html_escape(FILE *f, const char *text);

#endif
