/*
 * fuzz_spf.c - libFuzzer target for spf.c's parser: one SPF record's
 * text (as the TXT strings of a record join, outside input), and the
 * domain names --spf-walk takes.
 *
 * Beyond "no crash": an accepted record has at most SPF_TERMS_MAX terms,
 * each inside the text with its domain inside the term; a domain without
 * a macro is one the walker can look up; lengths are in range and a
 * network has no host bits past its length; redirect= is one of the
 * terms.  A refused one says why, at an offset inside the text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spf.h"

static void
check_term(const struct spf_term *t, const char *s, size_t size)
{
	struct addr net = t->net;

	if (t->text < s || t->text_len == 0 || t->text + t->text_len > s + size)
		abort();
	if (t->domain && (t->domain < t->text ||
	    t->domain + t->domain_len > t->text + t->text_len))
		abort();
	if (t->domain && !t->macro && t->mech != SPF_MODIFIER &&
	    !spf_domain_ok(t->domain, t->domain_len))
		abort();
	if (t->len4 > 32 || t->len6 > 128 || (t->qualifier == 0) !=
	    (t->mech >= SPF_REDIRECT))
		abort();
	if ((t->mech == SPF_IP4 && (t->net.family != AF_INET ||
	    addr_cut(&net, t->len4))) || (t->mech == SPF_IP6 &&
	    (t->net.family != AF_INET6 || addr_cut(&net, t->len6))))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct spf_record r;
	const char *s = (const char *)data, *why = NULL;
	size_t i, at = 0;

	spf_domain_ok(s, size);
	if (spf_parse(s, size, &r, &why, &at) != 0) {
		if (why == NULL || (at > 0 && at >= size))
			abort();
		return 0;
	}
	if (!spf_is_record(s, size) || r.n > SPF_TERMS_MAX)
		abort();
	for (i = 0; i < r.n; i++)
		check_term(&r.term[i], s, size);
	if (r.redirect && (r.redirect < r.term || r.redirect >= r.term + r.n ||
	    r.redirect->mech != SPF_REDIRECT))
		abort();
	return 0;
}
