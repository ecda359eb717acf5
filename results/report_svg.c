/*
 * SVG chart primitives for report.html.
 */
#include "results/report_svg.h"

#include <math.h>
#include <string.h>

const char *const report_svg_colors[REPORT_SVG_NCOLORS] = {
	"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"
};

void report_html_escape(FILE *f, const char *text)
{
	for (; *text; text++) {
		switch (*text) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default:
			/* XML 1.0 allows no control characters but tab, line feed and carriage return. */
			if ((unsigned char)*text < 0x20 && *text != '\t' && *text != '\n' && *text != '\r')
				fputc('?', f);
			else
				fputc(*text, f);
		}
	}
}

/* Tick spacing of 1, 2 or 5 times a power of ten giving about target ticks. */
static double tick_step(double span, int target)
{
	double raw = span / target;
	double mag = pow(10, floor(log10(raw)));
	double norm = raw / mag;

	if (norm < 1.5)
		return mag;
	if (norm < 3.5)
		return 2 * mag;
	if (norm < 7.5)
		return 5 * mag;
	return 10 * mag;
}

static void fix_range(double *lo, double *hi, double *step, int target)
{
	if (!isfinite(*lo) || !isfinite(*hi)) {
		*lo = 0;
		*hi = 1;
	}
	if (*hi <= *lo)
		*hi = *lo + (*lo != 0 ? fabs(*lo) * 0.1 : 1);
	*step = tick_step(*hi - *lo, target);
	*lo = floor(*lo / *step + 1e-9) * *step;
	*hi = ceil(*hi / *step - 1e-9) * *step;
}

static double px(const report_svg *p, double x)
{
	double w = p->width - p->left - p->right;

	if (p->log_x) {
		/* Values at or below the axis start (such as t = 0) sit on the left edge. */
		double lx = log10(fmax(x, p->x_min));
		return p->left + (lx - log10(p->x_min)) / (log10(p->x_max) - log10(p->x_min)) * w;
	}
	return p->left + (x - p->x_min) / (p->x_max - p->x_min) * w;
}

static double py(const report_svg *p, double y)
{
	double h = p->height - p->top - p->bottom;
	return p->top + h - (y - p->y_min) / (p->y_max - p->y_min) * h;
}

/* Tick label without trailing zeros: 0.25, 5, 1e+06 for very large values. */
static void tick_label(char *buf, size_t len, double v, double step)
{
	if (fabs(v) < step * 1e-9)
		v = 0;
	if (fabs(v) >= 1e6)
		snprintf(buf, len, "%.3g", v);
	else
		snprintf(buf, len, "%.*f", step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9), v);
}

static void x_tick(report_svg *p, double v, const char *label)
{
	fprintf(p->f, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
		px(p, v), p->top, px(p, v), p->height - p->bottom);
	fprintf(p->f, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
		px(p, v), p->height - p->bottom + 16, label);
}

/* Ticks at 1, 2 and 5 times each power of ten, labelled at powers of ten (and 2, 5 when few). */
static void x_ticks_log(report_svg *p)
{
	static const double mantissa[] = { 1, 2, 5 };
	int decades = (int)lround(log10(p->x_max / p->x_min));
	char label[32];

	for (int d = 0; d <= decades; d++) {
		for (size_t m = 0; m < 3 && (d < decades || m == 0); m++) {
			double v = p->x_min * pow(10, d) * mantissa[m];
			snprintf(label, sizeof(label), "%g", v);
			x_tick(p, v, m == 0 || decades <= 3 ? label : "");
		}
	}
}

static void draw_axes(report_svg *p, double x_step, double y_step, const char *x_label,
		      const char *y_label)
{
	char label[32];
	FILE *f = p->f;

	if (p->log_x) {
		x_ticks_log(p);
	} else {
		for (double v = p->x_min; v <= p->x_max + x_step * 1e-6; v += x_step) {
			tick_label(label, sizeof(label), v, x_step);
			x_tick(p, v, label);
		}
	}
	for (double v = p->y_min; v <= p->y_max + y_step * 1e-6; v += y_step) {
		tick_label(label, sizeof(label), v, y_step);
		fprintf(f, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>",
			p->left, py(p, v), p->width - p->right, py(p, v));
		fprintf(f, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
			p->left - 6, py(p, v) + 4, label);
	}
	fprintf(f, "<rect class=\"frame\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>\n",
		p->left, p->top, p->width - p->left - p->right, p->height - p->top - p->bottom);
	fprintf(f, "<text class=\"axis\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
		(p->left + p->width - p->right) / 2, p->height - 8);
	report_html_escape(f, x_label);
	fprintf(f, "</text>\n<text class=\"axis\" transform=\"translate(16 %.1f) rotate(-90)\" "
		   "text-anchor=\"middle\">",
		(p->top + p->height - p->bottom) / 2);
	report_html_escape(f, y_label);
	fputs("</text>\n", f);
}

/* Widens [*lo, *hi] to whole powers of ten; both must be positive. */
static void fix_log_range(double *lo, double *hi)
{
	if (!(*lo > 0) || !isfinite(*lo))
		*lo = 1e-3;
	if (!(*hi > *lo) || !isfinite(*hi))
		*hi = *lo * 10;
	*lo = pow(10, floor(log10(*lo) + 1e-9));
	*hi = pow(10, ceil(log10(*hi) - 1e-9));
	if (*hi <= *lo)
		*hi = *lo * 10;
}

void report_svg_begin(report_svg *p, FILE *f, const char *title, double x_min, double x_max,
		      double y_min, double y_max, const char *x_label, const char *y_label)
{
	double x_step = 0, y_step;

	p->f = f;
	p->width = 760;
	p->height = 340;
	p->left = 70;
	p->right = 20;
	p->top = 14 + 2 * 18; /* two rows of legend */
	p->bottom = 48;
	p->legend_x = p->left;
	p->legend_row = 0;
	if (p->log_x)
		fix_log_range(&x_min, &x_max);
	else
		fix_range(&x_min, &x_max, &x_step, 8);
	fix_range(&y_min, &y_max, &y_step, 6);
	p->x_min = x_min;
	p->x_max = x_max;
	p->y_min = y_min;
	p->y_max = y_max;
	fprintf(f, "<svg class=\"chart\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
		   "xmlns=\"http://www.w3.org/2000/svg\"><title>",
		p->width, p->height);
	report_html_escape(f, title);
	fputs("</title>\n", f);
	draw_axes(p, x_step, y_step, x_label, y_label);
}

static void points(const report_svg *p, const double *x, const double *y, size_t n, int step)
{
	for (size_t i = 0; i < n; i++) {
		if (step && i > 0)
			fprintf(p->f, "%.1f,%.1f ", px(p, x[i]), py(p, y[i - 1]));
		fprintf(p->f, "%.1f,%.1f ", px(p, x[i]), py(p, y[i]));
	}
}

void report_svg_line(report_svg *p, const double *x, const double *y, size_t n, int step,
		     const char *color, int dashed)
{
	if (n == 0)
		return;
	fprintf(p->f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", color,
		dashed ? " stroke-dasharray=\"6 4\"" : "");
	points(p, x, y, n, step);
	fputs("\"/>\n", p->f);
}

void report_svg_band(report_svg *p, const double *x, const double *lo, const double *hi,
		     size_t n, const char *color)
{
	if (n == 0)
		return;
	fprintf(p->f, "<polygon fill=\"%s\" fill-opacity=\"0.18\" stroke=\"none\" points=\"", color);
	points(p, x, hi, n, 1);
	/* Back along the lower edge, right to left, keeping the steps. */
	for (size_t i = n; i-- > 0;) {
		fprintf(p->f, "%.1f,%.1f ", px(p, x[i]), py(p, lo[i]));
		if (i > 0)
			fprintf(p->f, "%.1f,%.1f ", px(p, x[i]), py(p, lo[i - 1]));
	}
	fputs("\"/>\n", p->f);
}

void report_svg_marker(report_svg *p, double x, const char *label)
{
	if (x < p->x_min || x > p->x_max)
		return;
	fprintf(p->f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" "
		      "stroke-dasharray=\"2 3\"/><text class=\"tick\" x=\"%.1f\" y=\"%.1f\">",
		px(p, x), p->top, px(p, x), p->height - p->bottom, px(p, x) + 3, p->top + 12);
	report_html_escape(p->f, label);
	fputs("</text>\n", p->f);
}

void report_svg_legend(report_svg *p, const char *label, const char *color, int dashed)
{
	/* Width estimate: the line sample, then about 7 px per character at 12 px. */
	double width = 28 + 7.0 * (double)strlen(label) + 18;
	double x, y;

	if (p->legend_x + width > p->width - p->right && p->legend_x > p->left) {
		p->legend_x = p->left;
		p->legend_row++;
	}
	x = p->legend_x;
	y = 16 + 18 * (double)p->legend_row;
	p->legend_x += width;
	fprintf(p->f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
		      "stroke-width=\"2\"%s/>",
		x, y - 4, x + 22, y - 4, color, dashed ? " stroke-dasharray=\"6 4\"" : "");
	fprintf(p->f, "<text class=\"legend\" x=\"%.1f\" y=\"%.1f\">", x + 28, y);
	report_html_escape(p->f, label);
	fputs("</text>\n", p->f);
}

void report_svg_end(report_svg *p)
{
	fputs("</svg>\n", p->f);
}
