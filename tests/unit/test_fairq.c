/*
 * test_fairq.c - cmocka tests for the listener's programs and their
 * queue (fairq.c), the table of running children (children.c) and the
 * counts per address (ipcount.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "children.h"
#include "fairq.h"
#include "ipcount.h"

static struct peer
peer_of(const char *ip)
{
	struct peer p;

	memset(&p, 0, sizeof p);
	assert_int_equal(addr_parse(ip, &p.addr), 0);
	p.known = 1;
	snprintf(p.ip, sizeof p.ip, "%s", ip);
	return p;
}

static void
test_children_table(void **state)
{
	struct children *ch = children_new(100);
	struct peer p = peer_of("192.0.2.1"), got;
	pid_t pid;

	(void)state;
	assert_non_null(ch);
	/* Many pids, removed in another order: every one found once. */
	for (pid = 1000; pid < 1100; pid++) {
		p.addr.bytes[3] = (unsigned char)pid;
		assert_int_equal(children_add(ch, pid, &p), 0);
	}
	assert_int_equal(children_add(ch, 5000, &p), -1);	/* full */
	for (pid = 1099; pid >= 1000; pid -= 2)
		assert_int_equal(children_remove(ch, pid, &got), 1);
	for (pid = 1000; pid < 1100; pid += 2) {
		assert_int_equal(children_remove(ch, pid, &got), 1);
		assert_int_equal(got.addr.bytes[3], (unsigned char)pid);
	}
	assert_int_equal(children_remove(ch, 1000, &got), 0);
	assert_int_equal(children_remove(ch, 77, &got), 0);
	children_free(ch);
}

static void
test_ipcount_kinds(void **state)
{
	struct ipcount *ic = ipcount_new();
	struct peer a = peer_of("2001:db8:1:2::1"), b = peer_of("2001:db8:1:2::9");

	(void)state;
	assert_non_null(ic);
	/* One /64: one count. */
	assert_int_equal(ipcount_add(ic, &a.addr, IPC_HELD), 1);
	assert_int_equal(ipcount_add(ic, &b.addr, IPC_HELD), 2);
	assert_int_equal(ipcount_add(ic, &b.addr, IPC_RUNNING), 1);
	ipcount_remove(ic, &a.addr, IPC_HELD);
	ipcount_remove(ic, &a.addr, IPC_HELD);
	assert_int_equal(ipcount_get(ic, &a.addr, IPC_HELD), 0);
	assert_int_equal(ipcount_get(ic, &a.addr, IPC_RUNNING), 1);
	ipcount_remove(ic, &a.addr, IPC_HELD);	/* at 0: stays 0 */
	ipcount_remove(ic, &a.addr, IPC_RUNNING);
	assert_int_equal(ipcount_get(ic, &a.addr, IPC_RUNNING), 0);
	ipcount_free(ic);
}

static void
test_fairq_share_and_order(void **state)
{
	struct ipcount *ic = ipcount_new();
	struct peer a = peer_of("192.0.2.1"), b = peer_of("192.0.2.2"), got;
	struct fairq_item qa1 = { NULL, NULL, &a }, qa2 = { NULL, NULL, &a };
	struct fairq_item qa3 = { NULL, NULL, &a }, qb = { NULL, NULL, &b };
	struct fairq q;

	(void)state;
	assert_int_equal(fairq_default_share(40), 10);
	assert_int_equal(fairq_default_share(3), 1);
	assert_int_equal(fairq_init(&q, 2, 2, ic), 0);
	assert_true(fairq_may_run(&q, &a));
	fairq_started(&q, 101, &a);
	fairq_started(&q, 102, &a);
	assert_false(fairq_may_run(&q, &b));		/* no place */
	/* a's share of the queue is 2. */
	assert_int_equal(fairq_push(&q, &qa1), 0);
	assert_int_equal(fairq_push(&q, &qa2), 0);
	assert_int_equal(fairq_push(&q, &qa3), -1);
	assert_int_equal(fairq_push(&q, &qb), 0);
	assert_null(fairq_next(&q));			/* no place */
	/* A place frees: b runs none, a one: b goes first. */
	assert_int_equal(fairq_ended(&q, 101, &got), 1);
	assert_memory_equal(&got.addr, &a.addr, sizeof got.addr);
	assert_ptr_equal(fairq_next(&q), &qb);
	fairq_started(&q, 103, &b);
	assert_null(fairq_next(&q));
	/* Then a's, the oldest first. */
	assert_int_equal(fairq_ended(&q, 103, &got), 1);
	assert_ptr_equal(fairq_next(&q), &qa1);
	fairq_started(&q, 104, &a);
	assert_int_equal(fairq_ended(&q, 999, &got), 0);	/* not ours */
	fairq_remove(&q, &qa2);
	assert_int_equal(q.queued, 0);
	assert_int_equal(ipcount_get(ic, &a.addr, IPC_QUEUED), 0);
	assert_int_equal(ipcount_get(ic, &a.addr, IPC_RUNNING), 2);
	fairq_free(&q);
	ipcount_free(ic);
}

static void
test_fairq_address_at_its_share_waits(void **state)
{
	struct ipcount *ic = ipcount_new();
	struct peer a = peer_of("192.0.2.1"), got;
	struct fairq_item qa = { NULL, NULL, &a };
	struct fairq q;

	(void)state;
	assert_int_equal(fairq_init(&q, 3, 1, ic), 0);
	fairq_started(&q, 201, &a);
	assert_false(fairq_may_run(&q, &a));		/* its share runs */
	assert_int_equal(fairq_push(&q, &qa), 0);
	assert_null(fairq_next(&q));			/* places, not its */
	assert_int_equal(fairq_ended(&q, 201, &got), 1);
	assert_ptr_equal(fairq_next(&q), &qa);
	fairq_free(&q);
	ipcount_free(ic);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_children_table),
		cmocka_unit_test(test_ipcount_kinds),
		cmocka_unit_test(test_fairq_share_and_order),
		cmocka_unit_test(test_fairq_address_at_its_share_waits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
