/* SPDX-License-Identifier: MIT */
/*
 * tqtop - a live view of one tq segment: per queue and level its depth,
 * delayed and leased tasks, submit/ack/fail rates and wait and run
 * latency percentiles; the attached workers; dead letters; the journal;
 * the supervisor's repairs. It attaches like any process (one process
 * slot) and only reads, except when asked to pause or resume a queue or to
 * requeue its dead letters.
 *
 * The segment is --segment NAME, else $TQ_SEGMENT, else /tq (as tq and
 * tqd). `tqtop --once` prints one frame as text (or JSON with --json) for
 * scripts. Exit codes: 0 ok, 1 error, 2 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tqtop.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tqtop [options]\n"
		"  -s, --segment NAME     segment to watch (default $TQ_SEGMENT, else %s)\n"
		"  -i, --interval-ms N    refresh period, 20..10000 ms (default 200)\n"
		"  -1, --once             print one frame as plain text and exit (no curses);\n"
		"                         rates are over one interval between two samples\n"
		"  -j, --json             with --once: print the frame as JSON\n"
		"  -f, --filter TEXT      show only queues whose name contains TEXT\n"
		"      --sort COLUMN      name, depth, delayed, leased, submit, ack, fail,\n"
		"                         wait99, run99 or dead (default depth)\n"
		"      --reverse          reverse the sort order\n"
		"      --no-levels        one row per queue, without the per-level rows\n"
		"  -h, --help             this text\n"
		"Keys (live view): q quit, ? help, s/S sort column/reverse, / filter,\n"
		"up/down or j/k select a queue, p pause, r resume, R requeue its dead letters,\n"
		"l per-level rows. Latency percentiles are of the last interval's events, or\n"
		"marked * of all events when the interval had none.\n"
		"exit: 0 ok, 1 error, 2 bad usage\n",
		TQTOP_DEFAULT_SEGMENT);
}

enum { O_SORT = 1000, O_REVERSE, O_NOLEVELS };

static const struct option longopts[] = {
	{ "segment", required_argument, NULL, 's' },
	{ "interval-ms", required_argument, NULL, 'i' },
	{ "once", no_argument, NULL, '1' },
	{ "json", no_argument, NULL, 'j' },
	{ "filter", required_argument, NULL, 'f' },
	{ "sort", required_argument, NULL, O_SORT },
	{ "reverse", no_argument, NULL, O_REVERSE },
	{ "no-levels", no_argument, NULL, O_NOLEVELS },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* --once: two samples an interval apart, so that rates mean something. */
static int once(struct tqtop *m, bool json)
{
	struct tqtop_frame f = { 0 };
	int e;

	if ((e = tqtop_sample(m)) < 0)
		return e;
	sleep_ms(m->interval_ms);
	if ((e = tqtop_sample(m)) < 0 || (e = tqtop_rows(m)) < 0)
		return e;
	if (json) {
		tqtop_print_json(m, stdout);
		return 0;
	}
	if ((e = tqtop_render(m, &f, 0)) < 0)
		return e;
	for (unsigned i = 0; i < f.n; i++) {
		size_t len = strlen(f.lines[i].text);

		while (len && f.lines[i].text[len - 1] == ' ')
			len--;
		printf("%.*s\n", (int)len, f.lines[i].text);
	}
	tqtop_frame_free(&f);
	return 0;
}

int main(int argc, char **argv)
{
	const char *env = getenv("TQ_SEGMENT");
	const char *segment = env && *env ? env : TQTOP_DEFAULT_SEGMENT;
	struct tqtop m;
	bool do_once = false, json = false;
	unsigned long n;
	char *end;
	int c, e, rc;

	memset(&m, 0, sizeof(m));
	m.interval_ms = 200;
	m.sort_col = TQTOP_COL_DEPTH;
	m.show_levels = true;
	while ((c = getopt_long(argc, argv, "s:i:1jf:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			segment = optarg;
			break;
		case 'i':
			errno = 0;
			n = strtoul(optarg, &end, 10);
			if (errno || !*optarg || *end || optarg[0] == '-' || n < 20 || n > 10000) {
				fprintf(stderr, "tqtop: --interval-ms: '%s' is not a number in "
					"20..10000\n", optarg);
				return 2;
			}
			m.interval_ms = (unsigned)n;
			break;
		case '1':
			do_once = true;
			break;
		case 'j':
			json = true;
			break;
		case 'f':
			if (strlen(optarg) > TQ_QUEUE_NAME_MAX) {
				fprintf(stderr, "tqtop: --filter: longer than a queue name (%d)\n",
					TQ_QUEUE_NAME_MAX);
				return 2;
			}
			snprintf(m.filter, sizeof(m.filter), "%s", optarg);
			break;
		case O_SORT:
			if ((m.sort_col = tqtop_col_find(optarg)) < 0) {
				fprintf(stderr, "tqtop: --sort: unknown column '%s'\n", optarg);
				usage(stderr);
				return 2;
			}
			break;
		case O_REVERSE:
			m.sort_rev = true;
			break;
		case O_NOLEVELS:
			m.show_levels = false;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tqtop: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (json && !do_once) {
		fprintf(stderr, "tqtop: --json goes with --once\n");
		return 2;
	}
	if ((e = tqtop_open(&m, segment)) < 0) {
		const char *last = tq_last_error(m.t);

		fprintf(stderr, "tqtop: %s: %s%s%s\n", segment, tq_strerror(e), *last ? ": " : "",
			last);
		if (e == -ENOENT && !m.t)
			fprintf(stderr, "tqtop: create it with 'tq create --segment %s' or "
				"'tqd --create --segment %s'\n", segment, segment);
		tqtop_close(&m);
		return 1;
	}
	if (do_once) {
		rc = 0;
		if ((e = once(&m, json)) < 0) {
			const char *last = tq_last_error(m.t);

			fprintf(stderr, "tqtop: %s: %s%s%s\n", segment, tq_strerror(e),
				*last ? ": " : "", last);
			rc = 1;
		}
	} else {
		rc = tqtop_ui_run(&m);
	}
	tqtop_close(&m);
	return rc;
}
