"""xinetd (Debian's, unpacked in build/xinetd) -> sendwrap -> exim or
sendmail, from examples/xinetd.smtp.

The example's service is used as it stands, adjusted only in where it
listens (type = UNLISTED and a free port instead of port 25; bound to the
loopback address: with flags = IPv6 that is ::ffff:127.0.0.1, so IPv4
clients arrive as mapped addresses) and in paths (sendwrap, the
allowlist, the MTA with its test configuration).  xinetd runs in the
foreground in a private mount namespace whose /dev/log is the test's: the
example says sendwrap logs to syslog under xinetd, and it must.
"""

import os
import re

from e2elib import (SENDWRAP, Xinetd, adapt, deliver_patiently,
                    greeted_at_once, read_example, refuse_bot)

LOG_MAIL = 2            # syslog facility "mail"
ALLOWED_IP = "127.0.0.3"


def xinetd_config(wd, mta):
    """examples/xinetd.smtp for mta, as a function of the port."""
    allowlist = os.path.join(wd, "allowlist")
    with open(allowlist, "w") as f:
        f.write("%s/32   # greeted at once\n" % ALLOWED_IP)
    text = adapt(read_example("xinetd.smtp"), {
        "/usr/local/sbin/sendwrap": SENDWRAP,
        "/etc/sendwrap/allowlist": allowlist,
        "/usr/sbin/exim4 -bs -odq": " ".join(mta.argv()),
    })
    assert "\tuser\t\t= root\n" in text and "flags\t\t= IPv6" in text, text
    head, _, tail = text.rpartition("}")
    return lambda port: head + (
        "\ttype\t\t= UNLISTED\n"
        "\tport\t\t= %d\n"
        "\tbind\t\t= ::ffff:127.0.0.1\n"
        "}" % port) + tail


def test_xinetd_example(wd, mta):
    xinetd = Xinetd(wd, xinetd_config(wd, mta), ns=mta.ns)

    # the example's -d 5: swaks and a sending exim wait, then deliver
    deliver_patiently(wd, "127.0.0.1", xinetd.port, mta, "xinetd", 5.0)
    refuse_bot("127.0.0.1", xinetd.port, tag="xinetd-bot")

    # allowlisted (the example's -a): greeted at once; the stream holds
    # SMTP replies only, no log text
    greeted_at_once("127.0.0.1", xinetd.port, mta, source=ALLOWED_IP)

    # swaks, exim and the allowlisted client ran the MTA; the bot did not
    assert mta.connections() == 3

    # sendwrap logged to syslog, facility mail, one line per connection;
    # the mapped clients are logged as IPv4
    recs = xinetd.syslog.wait_lines(r"^(pass|early|allow) ", count=4)
    assert sorted(r[4].split()[0] for r in recs) == \
        ["allow", "early", "pass", "pass"], xinetd.syslog.records
    assert all(r[0] == LOG_MAIL for r in recs), recs
    allow = [r[4] for r in recs if r[4].startswith("allow ")]
    assert re.match(r"^allow ip=127\.0\.0\.3 port=\d+ reason=allowlist "
                    r"rule=127\.0\.0\.3/32$", allow[0]), allow
    for r in recs:
        assert re.search(r" ip=127\.0\.0\.[13] ", r[4]), r
    # xinetd itself ran and logged there too
    assert xinetd.syslog.tagged("xinetd"), xinetd.syslog.records
