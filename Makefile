# sendwrap - see README.md.  `make` builds ./sendwrap, `make check` tests it.
#
#   make STATIC=1      a static binary (smaller per-connection cost)
#   make SANITIZE=1    ASan + UBSan build, for `make check SANITIZE=1`
#   make deb           the Debian package, build/deb/sendwrap_VERSION_ARCH.deb
#
# Each variant builds in its own directory under build/, and ./sendwrap
# is a copy of the variant built last.

PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
DESTDIR ?=
PYTHON ?= /usr/bin/python3
CLANG ?= clang
# make fuzz: FUZZ_TOTAL_SECONDS shared among the fuzz targets, at least
# FUZZ_MIN_SECONDS each, so that the suite takes the same time however
# many there are; FUZZ_SECONDS=N gives each N instead.
FUZZ_TOTAL_SECONDS ?= 300
FUZZ_MIN_SECONDS = 10
FUZZ_SECONDS ?= $(shell n=$(words $(FUZZ_SRCS)); s=$$(($(FUZZ_TOTAL_SECONDS) / n)); \
	echo $$((s < $(FUZZ_MIN_SECONDS) ? $(FUZZ_MIN_SECONDS) : s)))

# The version has one home, debian/changelog's first line ("sendwrap
# (1.0.0) ..."): the Debian package takes it from there, and so does
# --version, so the two cannot disagree.
VERSION := $(shell awk 'NR == 1 { gsub(/[()]/, "", $$2); print $$2 }' \
	debian/changelog)
ifeq ($(VERSION),)
$(error no version on debian/changelog's first line)
endif

CC ?= cc
CFLAGS ?= -O2 -g
WARN = -std=c99 -Wall -Wextra
HARDEN_CFLAGS = -fstack-protector-strong -fPIE -D_FORTIFY_SOURCE=2
HARDEN_LDFLAGS = -pie -Wl,-z,relro,-z,now
ALL_CPPFLAGS = -D_DEFAULT_SOURCE -I. $(CPPFLAGS)
# The pass cache and the compiled allowlist (LMDB), Redis (hiredis: only
# its reply reader, read.o, is used), resolver (c-ares) and gzip (zlib,
# for --report on rotated logs) libraries are linked in statically:
# sendwrap must need nothing but libc at run time (LMDB's pthread calls
# are in libc since glibc 2.34).
LIBS = -l:liblmdb.a -l:libhiredis.a -l:libcares.a -l:libz.a

ifeq ($(SANITIZE),1)
VARIANT = sanitize
HARDEN_CFLAGS = -fPIE
SAN = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else ifeq ($(STATIC),1)
VARIANT = static
HARDEN_CFLAGS = -fstack-protector-strong -D_FORTIFY_SOURCE=2
HARDEN_LDFLAGS = -static -Wl,-z,relro,-z,now
# Stand-ins for the NSS service lookups c-ares references (static/nss.c).
STATIC_OBJS = $(B)/static-nss.o
else
VARIANT = default
endif

B = build/$(VARIANT)
MODULES = addr intervals allowdb guard safefile textfile whitelist duration names \
	peer proxy conn log smtpline decoy dialog greytrap slots cache redis redisloop store dnsl spf waiters \
	options admin core listen ucspi handover timers ipcount children fairq \
	relay listener report tally reportfmt
OBJS = $(MODULES:%=$(B)/%.o)
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(B)/%)
FUZZ_SRCS = $(wildcard tests/fuzz/fuzz_*.c)
COMPILE = $(CC) $(WARN) $(ALL_CPPFLAGS) $(CFLAGS) $(HARDEN_CFLAGS) $(SAN)
LINK = $(CC) $(CFLAGS) $(SAN) $(HARDEN_LDFLAGS) $(LDFLAGS)

export SENDWRAP = $(CURDIR)/$(B)/sendwrap

.PHONY: all check check-unit check-integration check-docs check-e2e check-load \
	check-valgrind check-sanitize fuzz demo bench bench-cache bench-dnsl \
	bench-redis bench-stress bench-report bench-listener bench-scenarios \
	bench-greylist bench-soak bench-relay bench-peers bench-relay-haproxy \
	install deb clean

all: sendwrap

# Through a rename: a running copy keeps its file.
sendwrap: $(B)/sendwrap
	cp $(B)/sendwrap $@.tmp && mv -f $@.tmp $@

$(B)/sendwrap: $(B)/sendwrap.o $(OBJS) $(STATIC_OBJS)
	$(LINK) -o $@ $^ $(LIBS)

$(B)/static-nss.o: static/nss.c Makefile | $(B)
	$(COMPILE) -c -o $@ $<

$(B)/%.o: %.c $(wildcard *.h) Makefile | $(B)
	$(COMPILE) -c -o $@ $<

# admin.c prints the version (--version).
$(B)/admin.o build/fuzz/obj/admin.o: debian/changelog
$(B)/admin.o build/fuzz/obj/admin.o: \
	ALL_CPPFLAGS += -DSENDWRAP_VERSION='"$(VERSION)"'

$(B):
	mkdir -p $@

# TEST_DATA: the files the suites read (tests/unit/data), wherever they run.
$(B)/test_%: tests/unit/test_%.c tests/unit/testlib.c tests/unit/testlib.h $(OBJS)
	$(COMPILE) -Itests/unit -DTEST_DATA='"$(CURDIR)/tests/unit/data"' \
	    -o $@ $< tests/unit/testlib.c $(OBJS) $(LIBS) -lcmocka

# Everything CI runs, each suite reported on its own, then one summary line.
CHECKS = check-unit check-integration check-docs check-e2e check-load \
	check-sanitize check-valgrind fuzz

# On a fresh machine as root tests/deps installs what is missing first
# (otherwise it stops at once with the apt-get line), so no suite fails
# half-way for want of a package.
check:
	@tests/deps check && tests/deps --verify check
	@$(MAKE) --no-print-directory $(B)/sendwrap
	@MAKE='$(MAKE)' tests/run-checks $(CHECKS)

check-unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

# Side by side (tests/integration/conftest.py keeps some apart): the
# suite is mostly waiting for sendwrap's delays.
PYTEST_JOBS ?= 4
check-integration: $(B)/sendwrap
	$(PYTHON) -m pytest -q -n $(PYTEST_JOBS) --dist loadgroup \
	    tests/integration

check-docs: $(B)/sendwrap
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/docs

check-e2e: $(B)/sendwrap
	tests/e2e/run

check-load: $(B)/sendwrap
	tests/e2e/run-load

check-sanitize:
	$(MAKE) SANITIZE=1 check-unit check-integration

# Each test function once, every case only where cases take paths of
# their own (tests/integration/conftest.py): valgrind costs a second or
# more a process.
check-valgrind: $(B)/sendwrap
	SENDWRAP_VALGRIND=1 $(PYTHON) -m pytest -q -n 2 --dist loadgroup \
	    tests/integration

# Each target for FUZZ_SECONDS (see the top).  Inputs up to 2 KiB, but
# whole compiled allowlists (fuzz_allowdb) up to 64 KiB: LMDB's pages are
# 4 KiB, and its smallest file has three.
fuzz: $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
	@set -e; for f in $^; do \
		name=$${f##*/fuzz_}; mkdir -p build/fuzz/corpus-$$name; \
		case $$name in allowdb) len=65536 ;; *) len=2048 ;; esac; \
		echo "== $$f for $(FUZZ_SECONDS) s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -max_len=$$len \
		    build/fuzz/corpus-$$name tests/fuzz/corpus/$$name; \
	done

# The modules are compiled for fuzzing once, and every target links them.
# Any undefined behaviour stops the target, as a crash does.
FUZZ_CC = $(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all $(ALL_CPPFLAGS)
FUZZ_OBJS = $(MODULES:%=build/fuzz/obj/%.o)

build/fuzz/obj/%.o: %.c $(wildcard *.h) Makefile
	@mkdir -p build/fuzz/obj
	$(FUZZ_CC) -c -o $@ $<

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS) $(wildcard tests/fuzz/*.h)
	$(FUZZ_CC) -o $@ $< $(FUZZ_OBJS) $(LIBS)

# The demo brings in its packages (tests/deps demo), so it must not need
# a build first.
demo:
	tests/demo/run

bench:
	bench/run

# The pass cache's cost with 1 000 000 entries (BENCHMARKS.md).
bench-cache:
	bench/cache-bench

# What counting the waiting (--stress) costs at 500 waiting (BENCHMARKS.md).
bench-stress:
	bench/stress.sh

# How fast --report reads 1 000 000 lines (BENCHMARKS.md).
bench-report:
	bench/report.sh
# What asking DNS lists costs (BENCHMARKS.md).
bench-dnsl:
	bench/dnsl-bench

# The pass cache on Redis: a hit through Redis, a local hit with --redis.
bench-redis:
	bench/redis-bench

# The listener mode against one process per connection (BENCHMARKS.md).
bench-listener:
	bench/listener.sh

# What the delay, a DNS list and greylisting each stop (BENCHMARKS.md).
bench-scenarios:
	bench/scenarios.sh

# sendwrap's listener against Postfix postscreen and Exim's connect-ACL
# delay, on the same work (BENCHMARKS.md)
bench-peers:
	bench/peers

# What a greylisted client costs, against its references (BENCHMARKS.md).
bench-greylist:
	bench/greylist.sh

# The listener over 200 000 mixed connections: it must not grow (BENCHMARKS.md).
bench-soak:
	bench/soak
# What relaying a client to the MTA costs (--forward; BENCHMARKS.md).
bench-relay: $(B)/relay-bench
	$(B)/relay-bench 50 7 && $(B)/relay-bench --memory 2000

$(B)/relay-bench: bench/relay-bench.c $(OBJS)
	$(COMPILE) -o $@ $< $(OBJS) $(LIBS)

# The relay against HAProxy in TCP mode, on the same traffic (BENCHMARKS.md).
bench-relay-haproxy:
	bench/relay-vs-haproxy

install: sendwrap
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8
	install -m 0755 sendwrap $(DESTDIR)$(SBINDIR)/sendwrap
	install -m 0644 sendwrap.8 $(DESTDIR)$(MANDIR)/man8/sendwrap.8

# The Debian package (debian/), built by dpkg-buildpackage from a copy of
# the tree in build/deb/sendwrap-VERSION, so that what it writes beside
# its tree (the .deb, .changes, .buildinfo) stays in build/deb/; then
# checked by lintian.  tests/deps brings in debhelper and lintian.  The
# package's build never gets this make's SANITIZE or STATIC (nor its
# MAKEFLAGS): it is always the default build.
DEB_SRC = build/deb/sendwrap-$(VERSION)
deb:
	@tests/deps deb
	rm -rf build/deb
	mkdir -p $(DEB_SRC)
	tar -cf - --exclude=./build --exclude=./.git --exclude=./sendwrap \
	    --exclude=__pycache__ --exclude=.pytest_cache . | tar -xf - -C $(DEB_SRC)
	cd $(DEB_SRC) && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u SANITIZE \
	    -u STATIC dpkg-buildpackage -b -us -uc
	lintian --info --display-info --pedantic \
	    --fail-on error,warning,info,pedantic \
	    build/deb/sendwrap_$(VERSION)_*.changes
	@ls build/deb/*.deb

clean:
	rm -rf build sendwrap
