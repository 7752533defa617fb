"""Scenario 3: allowlisted clients are greeted at once and deliver.

Loopback has all of 127.0.0.0/8, so one server tells clients apart by
their source address: 127.0.0.1, 127.0.0.2 and 127.0.0.3.
"""

import os
import re
import threading

from e2elib import (TcpServer, assert_delayed, assert_prompt, check_message,
                    compile_tcprules, make_message, smtp_deliver,
                    swaks_message)


def deliver_from(sources, port, tag):
    """Deliver one message from each source address, all at once."""
    results, errors, sent = {}, [], {}

    def client(n, src):
        try:
            raw, headers, body = make_message(tag, n)
            sent[src] = (headers, body)
            results[src] = smtp_deliver("127.0.0.1", port, raw,
                                        "al@client.sendwrap.test",
                                        headers["To"], source=src)
        except Exception as e:
            errors.append((src, e))

    threads = [threading.Thread(target=client, args=(n, src))
               for n, src in enumerate(sources)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results, sent


def test_tcprules_greetdelay_and_relayclient(wd, mx, sw):
    rules = compile_tcprules(wd, "\n".join([
        '# test rules: no delay for .1, relay client .3, a typo for .4',
        '127.0.0.1:allow,GREETDELAY="0"',
        '127.0.0.3:allow,RELAYCLIENT=""',
        '127.0.0.4:allow,GREETDELAY="soon"',
        ':allow',
        '']))
    srv = TcpServer(wd, sw("-d", "4", mta=mx.argv()), rules=rules,
                    host="127.0.0.1")
    # the server listens on 127.0.0.1; clients come from four addresses,
    # all at once
    results, errors = {}, []

    def client(src):
        try:
            _, greet, _, headers, body = swaks_message(
                wd, "127.0.0.1", srv.port, "rules", int(src[-1]), source=src)
            results[src] = (greet, headers, body)
        except Exception as e:
            errors.append((src, e))

    threads = [threading.Thread(target=client, args=("127.0.0.%d" % i,))
               for i in (1, 2, 3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not errors, errors
    assert_prompt(results["127.0.0.1"][0])
    assert_prompt(results["127.0.0.3"][0])
    assert_delayed(results["127.0.0.2"][0], 4.0)   # no rule: the -d delay
    assert_delayed(results["127.0.0.4"][0], 4.0)   # bad value: ignored

    msgs = {m.header("X-E2E-Tag"): m for m in mx.messages()}
    assert sorted(msgs) == ["rules-1", "rules-2", "rules-3", "rules-4"]
    for src, (_, headers, body) in results.items():
        check_message(msgs[headers["X-E2E-Tag"]], headers, body)

    log = srv.wait_lines(r"^(allow|pass) ", count=4)
    by_ip = {re.search(r"ip=(\S+)", l).group(1): l for l in log}
    assert re.match(r"^allow ip=127\.0\.0\.1 port=\d+ reason=GREETDELAY$",
                    by_ip["127.0.0.1"]), log
    assert re.match(r"^allow ip=127\.0\.0\.3 port=\d+ reason=RELAYCLIENT$",
                    by_ip["127.0.0.3"]), log
    for ip in ("127.0.0.2", "127.0.0.4"):
        assert re.match(r"^pass ip=%s port=\d+ delay=4\.000 waited=[\d.]+$"
                        % re.escape(ip), by_ip[ip]), log
    bad = [l for l in srv.sendwrap_lines()
           if l.startswith("error ") and "soon" in l]
    assert len(bad) == 1, srv.log()


def test_allowlist_file_with_cidr_and_per_entry_delay(wd, mx, sw):
    path = os.path.join(wd, "allowlist")
    with open(path, "w") as f:
        f.write("# e2e allowlist\n"
                "\n"
                "127.0.0.2            # our relay: no delay\n"
                "127.0.0.3/32 1.5     # a slow partner: a shorter delay\n"
                "127.0.0.4/33         # a bad line, skipped and logged\n"
                "::1/128\n")
    srv = TcpServer(wd, sw("-d", "6", "-a", path, mta=mx.argv()))
    results, sent = deliver_from(["127.0.0.1", "127.0.0.2", "127.0.0.3"],
                                 srv.port, "alfile")
    assert_prompt(results["127.0.0.2"])
    assert_delayed(results["127.0.0.3"], 1.5)
    assert_delayed(results["127.0.0.1"], 6.0)
    assert results["127.0.0.3"] < results["127.0.0.1"]

    msgs = {m.header("X-E2E-Tag"): m for m in mx.messages()}
    assert len(msgs) == 3, mx.queue_listing()
    for headers, body in sent.values():
        check_message(msgs[headers["X-E2E-Tag"]], headers, body)

    log = srv.wait_lines(r"^(allow|pass) ", count=3)
    by_ip = {re.search(r"ip=(\S+)", l).group(1): l for l in log}
    assert re.match(r"^allow ip=127\.0\.0\.2 port=\d+ reason=allowlist "
                    r"rule=127\.0\.0\.2(/32)?$", by_ip["127.0.0.2"]), log
    assert re.match(r"^pass ip=127\.0\.0\.3 port=\d+ delay=1\.500 "
                    r"waited=\d+\.\d+ rule=127\.0\.0\.3/32$",
                    by_ip["127.0.0.3"]), log
    assert re.match(r"^pass ip=127\.0\.0\.1 port=\d+ delay=6\.000 "
                    r"waited=\d+\.\d+$", by_ip["127.0.0.1"]), log
    # the bad line is reported, with file and line, on each connection
    errors = [l for l in srv.sendwrap_lines()
              if l.startswith("error ") and (path + ":5:") in l]
    assert len(errors) == 3, srv.log()
