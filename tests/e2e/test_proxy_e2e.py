"""tcpserver -> sendwrap --proxy-from -> exim -bs, a client behind a load
balancer: the balancer's PROXY header (version 2, as HAProxy's
send-proxy-v2 writes it; built here from the spec) comes first, then the
client's SMTP.  sendwrap finds the balancer in tcpserver's TCPREMOTEIP,
judges and logs the client inside, and hands exim every byte after the
header; exim -bs, which takes the client's address from the socket,
records the balancer (README: which MTAs hear of the client)."""

import os
import re
import socket
import struct
import time

from e2elib import (REJECT_554, SLACK, LineReader, TcpServer, bot_payload,
                    check_message, connect, make_message)

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
CLIENT, CLIENT_PORT = "192.0.2.7", 50000


def proxy_v2(src, sport, dst, dport):
    body = socket.inet_pton(socket.AF_INET, src) + \
        socket.inet_pton(socket.AF_INET, dst) + \
        struct.pack("!HH", sport, dport)
    return SIGNATURE + b"\x21\x11" + struct.pack("!H", len(body)) + body


HEADER = proxy_v2(CLIENT, CLIENT_PORT, "198.51.100.25", 25)


def expect(reader, code, deadline):
    reply = reader.read_reply(deadline)
    assert reply and reply[-1].startswith(code), reply
    return reply


def deliver_behind_balancer(port, raw, mail_from, rcpt, timeout=30):
    """The header, then a whole SMTP transaction in lock step; the seconds
    from the connection to the greeting."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    s = connect("127.0.0.1", port)
    r = LineReader(s)
    try:
        s.sendall(HEADER)
        expect(r, b"220 ", deadline)
        greet = time.monotonic() - t0
        for line, code in [(b"EHLO client.sendwrap.test", b"250 "),
                           (b"MAIL FROM:<%s>" % mail_from.encode(), b"250 "),
                           (b"RCPT TO:<%s>" % rcpt.encode(), b"250 "),
                           (b"DATA", b"354 ")]:
            s.sendall(line + b"\r\n")
            expect(r, code, deadline)
        stuffed = re.sub(rb"(?m)^\.", b"..", raw)
        s.sendall(stuffed + b".\r\n")
        expect(r, b"250 ", deadline)
        s.sendall(b"QUIT\r\n")
        expect(r, b"221 ", deadline)
    finally:
        s.close()
    return greet


def host_address(mx, message):
    """The client address exim recorded for a message (its -H file)."""
    path = os.path.join(mx.spool, "input", message.id + "-H")
    with open(path, "rb") as f:
        m = re.search(rb"^-host_address (\S+)$", f.read(), re.M)
    return m.group(1).decode() if m else None


def test_a_client_behind_the_balancer_waits_and_delivers(wd, mx, sw):
    srv = TcpServer(wd, sw("-d", "1", "--proxy-from", "127.0.0.1",
                           mta=mx.argv()))
    raw, headers, body = make_message("proxied", 1)
    greet = deliver_behind_balancer(srv.port, raw,
                                    "sender1@client.sendwrap.test",
                                    headers["To"])
    assert 1.0 <= greet < 1.0 + 5 + SLACK
    [msg] = mx.messages()
    check_message(msg, headers, body)
    line = srv.wait_lines(r"^pass ")
    assert line and re.fullmatch(r"pass ip=192\.0\.2\.7 port=50000 "
                                 r"delay=1\.000 waited=\d+\.\d+",
                                 line[0]), srv.log()
    # exim -bs asks the socket: it hears of the balancer only.
    assert host_address(mx, msg).startswith("[127.0.0.1]:"), msg.id


def test_a_bot_behind_the_balancer_is_refused_by_its_address(wd, mx, sw):
    """Header and bot in one write: an early talker, judged and logged by
    the address inside; exim never runs."""
    srv = TcpServer(wd, sw("-d", "2", "--proxy-from", "127.0.0.1",
                           mta=mx.argv()))
    s = connect("127.0.0.1", srv.port)
    r = LineReader(s)
    s.sendall(HEADER + bot_payload("behind", body_kib=1))
    got = r.read_to_eof(time.monotonic() + 10 + SLACK)
    s.close()
    assert got == REJECT_554, got
    line = srv.wait_lines(r"^early ")
    assert line and re.match(r'early ip=192\.0\.2\.7 port=50000 after=\S+ '
                             r'bytes=\d+ first="EHLO bot\.invalid\\r\\n',
                             line[0]), srv.log()
    assert mx.messages() == [] and mx.connections() == 0
