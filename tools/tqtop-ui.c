/* SPDX-License-Identifier: MIT */
/*
 * tqtop-ui.c - the live ncurses view of tqtop and its keys.
 *
 * One loop: take a sample every interval, draw the frame that
 * tqtop-render.c lays out for the terminal's height, and wait in getch()
 * until the next sample is due or a key comes. Keys act at once; those
 * that change the view (sort, filter, levels, selection) rebuild the rows
 * from the samples already taken, so the rates keep their interval. The
 * only keys that write to the segment are p, r and R, on the selected
 * queue. A terminal resize arrives as KEY_RESIZE and just redraws.
 */
#include <ctype.h>
#include <curses.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tqtop.h"

enum mode { MODE_NORMAL, MODE_FILTER, MODE_HELP, MODE_CONFIRM };

struct ui {
	struct tqtop *m;
	enum mode mode;
	char input[TQ_QUEUE_NAME_MAX + 1];   /* the filter being typed */
	uint64_t status_until;               /* mono ns; m->status shown until then */
	bool colors;
	bool quit;
};

static volatile sig_atomic_t ui_stop;

static void on_stop(int sig)
{
	(void)sig;
	ui_stop = 1;
}

static void say(struct ui *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct ui *u, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(u->m->status, sizeof(u->m->status), fmt, ap);
	va_end(ap);
	u->status_until = tqtop_mono_ns() + 4000000000ull;
}

static int attr_of(const struct ui *u, int a)
{
	switch (a) {
	case TQTOP_A_TITLE: return A_BOLD | (u->colors ? COLOR_PAIR(1) : 0);
	case TQTOP_A_HEAD: return A_UNDERLINE | (u->colors ? COLOR_PAIR(2) : 0);
	case TQTOP_A_SEL: return A_REVERSE;
	case TQTOP_A_DIM: return A_DIM;
	case TQTOP_A_WARN: return u->colors ? COLOR_PAIR(3) : A_BOLD;
	default: return A_NORMAL;
	}
}

static void draw_help(void)
{
	int h = 0, w = 0, y, x;
	WINDOW *win;

	for (; tqtop_help[h]; h++)
		if ((int)strlen(tqtop_help[h]) > w)
			w = (int)strlen(tqtop_help[h]);
	h += 2;
	w += 4;
	if (h > LINES)
		h = LINES;
	if (w > COLS)
		w = COLS;
	y = (LINES - h) / 2;
	x = (COLS - w) / 2;
	if (h < 3 || w < 5 || !(win = newwin(h, w, y, x)))
		return;
	werase(win);
	box(win, 0, 0);
	for (int i = 0; i < h - 2 && tqtop_help[i]; i++)
		mvwaddnstr(win, i + 1, 2, tqtop_help[i], w - 4);
	wnoutrefresh(win);
	delwin(win);
}

static void draw(struct ui *u)
{
	struct tqtop *m = u->m;
	struct tqtop_frame f = { 0 };
	unsigned height = LINES > 1 ? (unsigned)LINES - 1 : 1;
	const char *legend = "q quit  ? help  s/S sort  / filter  j/k select  p pause  "
			     "r resume  R requeue dead  l levels";
	char line[TQTOP_LINE_MAX];

	erase();
	tqtop_render(m, &f, height);
	for (unsigned i = 0; i < f.n && i < height; i++) {
		attrset(attr_of(u, f.lines[i].attr));
		mvaddnstr((int)i, 0, f.lines[i].text, COLS);
		if (f.lines[i].attr == TQTOP_A_SEL)
			mvchgat((int)i, 0, -1, A_REVERSE, 0, NULL);
	}
	attrset(A_NORMAL);
	tqtop_frame_free(&f);
	switch (u->mode) {
	case MODE_FILTER:
		snprintf(line, sizeof(line), "filter: %s_   (Enter applies, empty clears, Esc cancels)",
			 u->input);
		break;
	case MODE_CONFIRM: {
		const struct tqtop_snap *s = &m->snap[m->cur];
		const struct tqtop_qsnap *qs = &s->q[m->sel_q];

		snprintf(line, sizeof(line), "requeue %" PRIu64 "%s dead letters of %s? (y/n)",
			 qs->dead_now, qs->dead_more ? "+" : "", qs->name);
		break;
	}
	default:
		if (m->status[0] && tqtop_mono_ns() < u->status_until)
			snprintf(line, sizeof(line), "%s", m->status);
		else
			snprintf(line, sizeof(line), "%s", legend);
	}
	attrset(u->mode == MODE_NORMAL ? A_DIM : A_BOLD);
	mvaddnstr(LINES - 1, 0, line, COLS);
	attrset(A_NORMAL);
	wnoutrefresh(stdscr);
	if (u->mode == MODE_HELP)
		draw_help();
	doupdate();
}

/* Move the selection by `by` queue rows (clamped). */
static void select_move(struct tqtop *m, int by)
{
	int idx[TQ_QUEUES_MAX], n = 0, at = 0;

	for (unsigned i = 0; i < m->nrows && n < TQ_QUEUES_MAX; i++)
		if (m->rows[i].level < 0) {
			if (m->rows[i].q == m->sel_q)
				at = n;
			idx[n++] = m->rows[i].q;
		}
	if (!n)
		return;
	at += by;
	if (at < 0)
		at = 0;
	if (at >= n)
		at = n - 1;
	m->sel_q = idx[at];
}

static bool selected(struct ui *u, const char **name)
{
	struct tqtop *m = u->m;
	const struct tqtop_snap *s = &m->snap[m->cur];

	if (m->sel_q < 0 || (unsigned)m->sel_q >= s->nq || !s->q[m->sel_q].declared) {
		say(u, "no queue selected");
		return false;
	}
	*name = s->q[m->sel_q].name;
	return true;
}

static void queue_op(struct ui *u, int ch)
{
	struct tqtop *m = u->m;
	const char *name;
	int e;

	if (!selected(u, &name))
		return;
	e = ch == 'p' ? tq_queue_pause(m->t, m->sel_q) : tq_queue_resume(m->t, m->sel_q);
	if (e < 0) {
		say(u, "%s %s: %s", ch == 'p' ? "pause" : "resume", name, tq_strerror(e));
		return;
	}
	tqtop_refresh_paused(m, m->sel_q);
	tqtop_rows(m);
	say(u, "%s %s", ch == 'p' ? "paused" : "resumed", name);
}

static void key_normal(struct ui *u, int ch)
{
	struct tqtop *m = u->m;
	const char *name;

	switch (ch) {
	case 'q': case 'Q':
		u->quit = true;
		break;
	case '?': case 'h': case KEY_F(1):
		u->mode = MODE_HELP;
		break;
	case 's':
		m->sort_col = (m->sort_col + 1) % TQTOP_NCOLS;
		tqtop_rows(m);
		break;
	case 'S':
		m->sort_rev = !m->sort_rev;
		tqtop_rows(m);
		break;
	case '/': case 'f':
		snprintf(u->input, sizeof(u->input), "%s", m->filter);
		u->mode = MODE_FILTER;
		break;
	case 'l':
		m->show_levels = !m->show_levels;
		tqtop_rows(m);
		break;
	case KEY_UP: case 'k': select_move(m, -1); break;
	case KEY_DOWN: case 'j': select_move(m, 1); break;
	case KEY_PPAGE: select_move(m, -10); break;
	case KEY_NPAGE: select_move(m, 10); break;
	case KEY_HOME: case 'g': select_move(m, -TQ_QUEUES_MAX); break;
	case KEY_END: case 'G': select_move(m, TQ_QUEUES_MAX); break;
	case 'p': case 'r':
		queue_op(u, ch);
		break;
	case 'R':
		if (!selected(u, &name))
			break;
		if (!m->snap[m->cur].q[m->sel_q].dead_now) {
			say(u, "%s has no dead letters", name);
			break;
		}
		u->mode = MODE_CONFIRM;
		break;
	case 12:   /* ^L */
		clearok(curscr, TRUE);
		break;
	default:
		break;
	}
}

static void key_confirm(struct ui *u, int ch)
{
	struct tqtop *m = u->m;
	const char *name;
	long n;

	u->mode = MODE_NORMAL;
	if (ch != 'y' && ch != 'Y') {
		say(u, "requeue cancelled");
		return;
	}
	if (!selected(u, &name))
		return;
	n = tqtop_requeue_dead(m, m->sel_q);
	if (n < 0)
		say(u, "requeue %s: %s", name, tq_strerror((int)n));
	else
		say(u, "requeued %ld dead letter%s of %s", n, n == 1 ? "" : "s", name);
}

static void key_filter(struct ui *u, int ch)
{
	struct tqtop *m = u->m;
	size_t len = strlen(u->input);

	switch (ch) {
	case 27:   /* Esc */
		u->mode = MODE_NORMAL;
		break;
	case '\n': case '\r': case KEY_ENTER:
		snprintf(m->filter, sizeof(m->filter), "%s", u->input);
		u->mode = MODE_NORMAL;
		tqtop_rows(m);
		break;
	case KEY_BACKSPACE: case 127: case 8:
		if (len)
			u->input[len - 1] = 0;
		break;
	case 21:   /* ^U */
		u->input[0] = 0;
		break;
	default:
		/* Queue names are [A-Za-z0-9_.:-]. */
		if (ch >= 0 && ch < 128 && (isalnum(ch) || strchr("_.:-", ch)) &&
		    len + 1 < sizeof(u->input)) {
			u->input[len] = (char)ch;
			u->input[len + 1] = 0;
		}
		break;
	}
}

static void key(struct ui *u, int ch)
{
	if (ch == KEY_RESIZE)
		return;              /* LINES and COLS are new: the redraw is enough */
	switch (u->mode) {
	case MODE_NORMAL: key_normal(u, ch); break;
	case MODE_FILTER: key_filter(u, ch); break;
	case MODE_CONFIRM: key_confirm(u, ch); break;
	case MODE_HELP: u->mode = MODE_NORMAL; break;
	}
}

int tqtop_ui_run(struct tqtop *m)
{
	struct ui u = { .m = m };
	struct sigaction sa;
	uint64_t interval = (uint64_t)m->interval_ms * 1000000u, next = 0;
	SCREEN *scr;
	int e, rc = 0;

	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		fprintf(stderr, "tqtop: not a terminal (use --once for text or JSON)\n");
		return 1;
	}
	if (!(scr = newterm(NULL, stdout, stdin))) {
		fprintf(stderr, "tqtop: cannot use terminal type '%s'\n",
			getenv("TERM") ? getenv("TERM") : "");
		return 1;
	}
	set_term(scr);
	/* Without SA_RESTART, so that a signal ends the wait in getch(). */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	set_escdelay(25);
	curs_set(0);
	if (has_colors() && start_color() == OK) {
		use_default_colors();
		init_pair(1, COLOR_CYAN, -1);
		init_pair(2, COLOR_YELLOW, -1);
		init_pair(3, COLOR_RED, -1);
		u.colors = true;
	}
	m->interactive = true;
	while (!u.quit && !ui_stop) {
		uint64_t now = tqtop_mono_ns();
		int ch, wait_ms;

		if (now >= next) {
			if ((e = tqtop_sample(m)) < 0 || (e = tqtop_rows(m)) < 0)
				say(&u, "reading the segment failed: %s: %s", tq_strerror(e),
				    tq_last_error(m->t));
			if (e < 0 && !m->nsamples) {
				rc = 1;
				break;
			}
			/* Keep the cadence, unless we fell a whole interval behind. */
			next = next && now - next < interval ? next + interval : now + interval;
		}
		draw(&u);
		now = tqtop_mono_ns();
		wait_ms = next > now ? (int)((next - now + 999999) / 1000000) : 0;
		timeout(wait_ms);
		ch = getch();
		if (ch != ERR)
			key(&u, ch);
	}
	endwin();
	delscreen(scr);
	if (rc)
		fprintf(stderr, "tqtop: %s\n", m->status);
	return rc;
}
