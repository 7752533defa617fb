/*
 * sendwrap - hold the SMTP greeting back, turn away clients that talk
 * first, and exec the real MTA on the untouched socket.
 *
 * Launched once per connection by inetd, xinetd, systemd or tcpserver
 * with the client on fds 0 and 1.  main() is the story of that one
 * connection: find the peer (behind a load balancer, the client its
 * PROXY header names), decide (core.h), wait, act.  With --listen
 * the listener (listener.h) holds many connections instead.  See
 * sendwrap.8.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin.h"
#include "conn.h"
#include "core.h"
#include "decoy.h"
#include "dialog.h"
#include "dnsl.h"
#include "duration.h"
#include "listener.h"
#include "log.h"
#include "options.h"
#include "peer.h"
#include "proxy.h"
#include "slots.h"
#include "smtp.h"
#include "ucspi.h"
#include "waiters.h"

/* This connection's place among the waiting (--stress, --slots): given
 * back when the wait ends, and before any reply or exec (a slow client
 * must not hold it); the kernel gives it back at any other end. */
static struct waiters place = WAITERS_NONE;

/* ------------------------------------------------------- leaving */

static int
is_socket(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* Send a reply, end the connection gently, and leave. */
static void __attribute__((noreturn))
reply_and_leave(const char *reply, int status)
{
	waiters_leave(&place);
	if (reply)
		send_all(1, reply, strlen(reply), mono_ms() + CONN_SEND_MS);
	close_gently(0, 1, CONN_DRAIN_MS, CONN_DRAIN_MAX);
	exit(status);
}

/*
 * Say 421 and leave; mail is delayed, never refused, by our mistakes.
 * Usage errors answer only a socket: an operator at a terminal or a
 * script reading a pipe wants the message, not an SMTP reply.
 */
static void __attribute__((noreturn))
fail_temporarily(int status, int socket_only)
{
	if (socket_only ? is_socket(1) : !isatty(1))
		reply_and_leave(REPLY_UNAVAILABLE, status);
	exit(status);
}

static void __attribute__((noreturn))
usage_error(const struct config *cfg, const char *msg)
{
	if (cfg->check || isatty(2)) {
		fprintf(stderr, "sendwrap: %s\n", msg);
		options_usage(stderr);
		exit(EXIT_PERM);
	}
	log_open(cfg->log);
	log_error("usage: %s", msg);
	fail_temporarily(EXIT_PERM, 1);
}

static void __attribute__((noreturn))
run_program(struct core *core, char **program)
{
	int err;

	waiters_leave(&place);	/* the program must not hold it */
	core_close(core);
	log_close();
	execvp(program[0], program);
	err = errno;
	log_error("cannot run %s: %s", program[0], strerror(err));
	fail_temporarily(EXIT_TEMP, 0);
}

/* What -x says to do with a client that talks first. */
static void __attribute__((noreturn))
act_on_early(struct core *core)
{
	const char *reply = core_early_reply(core);

	if (core->cfg->early == EARLY_PASS)
		run_program(core, core->cfg->program);
	if (reply == NULL)
		exit(0);
	reply_and_leave(reply, 0);
}

/* ------------------------------------------------------- the peer */

/*
 * The PROXY header a balancer p sends first, taken off the connection
 * and not a byte more, within --proxy-timeout.  None, or a bad one:
 * the balancer is told 421 and the connection ends.
 */
static void
read_header(const struct config *cfg, const struct peer *p,
    struct proxy_header *h)
{
	uint64_t deadline = mono_ms() + cfg->proxy.timeout_ms;
	enum proxy_result res;
	struct proxy_reader r;
	const char *why = NULL;
	char late[64];

	proxy_reader_init(&r);
	while ((res = proxy_read(&r, 0, h, &why)) == PROXY_NEED_MORE) {
		enum wait_result w = wait_readable(0, deadline);

		if (w == WAIT_READABLE)
			continue;
		if (w == WAIT_ERROR) {
			why = strerror(errno);
			break;
		}
		why = proxy_why_late(&r, cfg->proxy.timeout_ms, late,
		    sizeof late);
		break;
	}
	if (res == PROXY_OK)
		return;
	log_error("ip=%s port=%s no valid PROXY header: %s", p->ip,
	    peer_port(p), why);
	reply_and_leave(REPLY_UNAVAILABLE, 0);
}

/*
 * Find the client on fds 0 and 1: the peer, or, when that is one of the
 * --proxy-from balancers, the client its PROXY header names, who is
 * judged and logged in its place and whom the program's UCSPI variables
 * name.  A header that names no client (UNKNOWN, UNSPEC) leaves the
 * balancer the peer.  Returns 1 for the balancer's own connection (its
 * health check: LOCAL), 0 otherwise.
 */
static int
find_client(const struct config *cfg, struct peer *p)
{
	struct proxy_header h;
	struct peer local;

	peer_find(p, 0);
	if (!core_from_balancer(cfg, p))
		return 0;
	read_header(cfg, p, &h);
	if (h.command == PROXY_CMD_LOCAL)
		return 1;
	if (!h.known)
		return 0;
	peer_from_addr(p, &h.src, h.src_port);
	peer_from_addr(&local, &h.dst, h.dst_port);
	if (ucspi_export(p, &local) != 0) {
		log_error("ip=%s port=%s cannot name the client to the "
		    "program: out of memory", p->ip, peer_port(p));
		fail_temporarily(EXIT_TEMP, 1);
	}
	return 0;
}

/* ------------------------------------------------------- waiting */

/* tcprules' marks for this client, from the environment. */
static void
read_marks(struct marks *m)
{
	m->greetdelay = getenv("GREETDELAY");
	m->relayclient = getenv("RELAYCLIENT") != NULL;
}

static void
send_banner(const struct config *cfg)
{
	char line[GREETING_TEXT_MAX + 8];
	int len;

	if (cfg->banner == NULL)
		return;
	len = snprintf(line, sizeof line, "220-%s\r\n", cfg->banner);
	send_all(1, line, (size_t)len, mono_ms() + CONN_SEND_MS);
}

/* The client said something during the wait: see what, and act. */
static void __attribute__((noreturn))
handle_input(struct core *core, const struct peer *p, struct decision *d,
    uint64_t after)
{
	char input[CONN_PEEK_MAX];
	struct early e = { after, input, 0, 0 };

	enum input_kind k = peek_input(0, input, sizeof input, &e.len,
	    &e.bytes);

	if (k == INPUT_DATA) {
		core_early(core, p, d, &e);
		act_on_early(core);
	}
	if (k == INPUT_EOF || k == INPUT_RESET) {
		core_hangup(core, p, d, after, k == INPUT_RESET);
		exit(0);
	}
	log_error("ip=%s port=%s cannot read from the client: %s", p->ip,
	    peer_port(p), strerror(errno));
	exit(EXIT_TEMP);
}

/*
 * Start asking the DNS lists about p, if they are to be asked; the
 * resolver to watch, or NULL.  A resolver that cannot be had costs the
 * lists, never the client.
 */
static struct dnsl_resolver *
start_lists(struct core *core, const struct peer *p, struct decision *d)
{
	struct dnsl_resolver *r;
	const char *why;

	if (!core_wants_dns(core, d) || !p->known)
		return NULL;
	if ((r = dnsl_resolver_new(&core->dns, &why)) == NULL ||
	    (d->dns = dnsl_start(r, &p->addr, NULL, NULL)) == NULL) {
		log_error("ip=%s port=%s DNS lists not asked: %s", p->ip,
		    peer_port(p), r ? "out of memory" : why);
		dnsl_resolver_free(r);
		return NULL;
	}
	return r;
}

/* What the lists' answers so far mean for p: 1 once they say no more. */
static int
judge_lists(struct core *core, const struct peer *p, struct decision *d,
    uint64_t start)
{
	const char *reply;
	char buf[SMTP_LINE_MAX];

	switch (core_dns_judge(core, d)) {
	case DNS_BLOCK:
		reply = core_dnsbl(core, p, d, mono_ms() - start, buf,
		    sizeof buf);
		if (reply == NULL)
			exit(0);
		reply_and_leave(reply, 0);
	case DNS_ALLOW:
		core_dnswl(core, p, d);
		run_program(core, core->cfg->program);
	case DNS_UNDECIDED:
		return 0;
	case DNS_NEUTRAL:
		break;
	}
	return 1;
}

/*
 * The greeting delay proper, with the DNS lists asked meanwhile: returns
 * the time waited if the client kept quiet and no list decided.
 */
static uint64_t
wait_out_delay(struct core *core, const struct peer *p, struct decision *d)
{
	uint64_t start = mono_ms(), deadline = start + d->delay_ms;
	struct dnsl_resolver *r = start_lists(core, p, d);

	send_banner(core->cfg);
	for (;;) {
		switch (wait_client(0, deadline, r)) {
		case CLIENT_DNS:
			if (judge_lists(core, p, d, start)) {
				/* Answered: the resolver's memory goes back
				 * for the rest of the wait (d->dns stays). */
				dnsl_resolver_free(r);
				r = NULL;
			}
			continue;
		case CLIENT_TIMEOUT:
			break;
		case CLIENT_ERROR:
			/* We cannot watch this descriptor; let the MTA have
			 * it. */
			log_error("ip=%s port=%s cannot wait on the client: %s",
			    p->ip, peer_port(p), strerror(errno));
			break;
		case CLIENT_READABLE:
			/* Every way out of it (exit, reply, exec) gives
			 * the place back. */
			handle_input(core, p, d, mono_ms() - start);
		}
		/* Not waiting now, though the pass is yet to be recorded. */
		waiters_leave(&place);
		return mono_ms() - start;
	}
}

/*
 * Count this client among the waiting (--stress, --slots in delay mode):
 * take a place in the state directory, then let core decide whether the
 * others make its wait short.  No place left under --slots: busy.  A
 * state directory that cannot be used costs no mail: logged, and the
 * client waits as without it.
 */
static void
join_waiters(struct core *core, const struct peer *p, struct decision *d)
{
	const struct config *cfg = core->cfg;
	unsigned others, places = cfg->slots ? cfg->slots : cfg->stress;
	char why[320];
	int r;

	if (cfg->state_dir == NULL || d->reason != REASON_DELAY)
		return;
	r = waiters_join(&place, cfg->state_dir, places, &others, why,
	    sizeof why);
	if (r == WAITERS_ERROR) {
		log_error("ip=%s port=%s cannot count the waiting: %s", p->ip,
		    peer_port(p), why);
		return;
	}
	if (r == WAITERS_FULL && cfg->slots) {
		core_busy(core, p);
		reply_and_leave(REPLY_WAIT_BUSY, 0);
	}
	/* The kernel gives the place back however this process ends, and
	 * run_program() before the exec. */
	core_stress(core, d, others);
}

/* ------------------------------------------------------- greylisting */

/*
 * --greylist: sendwrap's own dialog (dialog.h) in place of the program,
 * for a client not yet known to come back; the connection ends here.
 */
static void __attribute__((noreturn))
run_dialog(struct core *core, const struct peer *p, struct decision *d)
{
	char host[DIALOG_HOST_MAX];
	struct dialog_config dc;
	struct dialog dg;
	uint64_t start = mono_ms();
	const char *reply;

	core_dialog_config(core, &dc, host, sizeof host);
	dialog_init(&dg, &dc);
	dialog_serve(&dg, 0, 1, start + DIALOG_SESSION_MS);
	reply = core_grey_end(core, p, d, &dg, mono_ms() - start);
	if (dialog_failed(&dg) && reply == NULL)
		exit(0);	/* -x drop */
	reply_and_leave(reply, 0);
}

/* ------------------------------------------------------- decoys */

/*
 * Hold one of the --slots for the rest of this process (the descriptor
 * is the slot: exit, or any death, gives it back), or turn the client
 * away.  A broken slots directory must not let the decoy clog the host,
 * so it fails closed.
 */
static void
take_slot(struct core *core, const struct peer *p)
{
	const struct config *cfg = core->cfg;
	char why[4096 + 200];
	unsigned slot;
	int fd;

	if (cfg->slots == 0)
		return;
	fd = slots_take(cfg->slots_dir, cfg->slots, &slot, why, sizeof why);
	if (fd >= 0)
		return;
	if (fd == SLOTS_ERROR) {
		log_error("ip=%s port=%s cannot take a slot: %s", p->ip,
		    peer_port(p), why);
		fail_temporarily(EXIT_TEMP, 0);
	}
	core_busy(core, p);
	reply_and_leave(REPLY_BUSY, 0);
}

/* A decoy MX (decoy.h): no program; the connection ends here. */
static void __attribute__((noreturn))
run_decoy(struct core *core, const struct peer *p, struct decision *d)
{
	struct decoy_config dc = core->cfg->decoy;

	/* Our own hosts are sent away at once: a real MTA tries another MX. */
	if (core_own_host(d)) {
		core_allow(core, p, d);
		reply_and_leave(REPLY_OWN_HOST, 0);
	}
	take_slot(core, p);
	dc.mode = core->cfg->mode;
	dc.text = core->cfg->banner;
	dc.host = core->cfg->hostname;
	if (dc.mode == MODE_TARPIT) {
		decoy_tarpit(&dc, p);
	} else {
		/* Early talkers and hang-ups end in wait_out_delay. */
		wait_out_delay(core, p, d);
		decoy_tempfail(&dc, p);
	}
	reply_and_leave(NULL, 0);
}

/* ------------------------------------------------------- the story */

int
main(int argc, char **argv)
{
	struct wl_source sources[argc > 0 ? argc : 1];
	struct config cfg;
	struct decision d;
	struct marks marks;
	struct core core;
	struct peer p;
	uint64_t waited;
	const char *reply;
	char err[512];
	int health_check;

	log_init();
	if (options_parse(argc, argv, &cfg, sources, err, sizeof err) != 0)
		usage_error(&cfg, err);
	if (cfg.command != COMMAND_CONNECTION)
		return admin_run(&cfg);
	if (cfg.program == NULL && cfg.mode == MODE_WRAP && cfg.forward == NULL)
		usage_error(&cfg, "no program to run");
	log_open(cfg.log);
	if (cfg.nlisten > 0)
		return listener_main(&cfg);	/* another front end */

	health_check = find_client(&cfg, &p);
	core_init(&core, &cfg, 0);
	read_marks(&marks);
	if (health_check)
		core_decide_local(&d);
	else
		core_decide(&core, &p, &marks, &d);
	if (cfg.mode != MODE_WRAP)
		run_decoy(&core, &p, &d);
	switch (d.step) {
	case STEP_ALLOW:
		core_allow(&core, &p, &d);
		run_program(&core, cfg.program);
	case STEP_CACHED:
		core_cached(&core, &p, &d);
		run_program(&core, cfg.program);
	case STEP_KNOWN_EARLY:
		if ((reply = core_known_early(&core, &p, &d)) == NULL)
			run_program(&core, cfg.program);
		reply_and_leave(reply, 0);
	case STEP_WAIT:
		break;
	}
	join_waiters(&core, &p, &d);
	waited = wait_out_delay(&core, &p, &d);
	if (core_grey_start(&core, &p, &d))
		run_dialog(&core, &p, &d);
	core_pass(&core, &p, &d, waited);
	run_program(&core, cfg.program);
}
