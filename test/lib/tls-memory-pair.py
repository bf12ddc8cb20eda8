#!/usr/bin/env python3
# A real OpenSSL TLS connection between a client and a server in memory (ssl.MemoryBIO), for the key log tests:
# prints JSON with both directions' raw TLS bytes, the flights in the order they crossed ([direction, hex]: 'c' the
# client's, 's' the server's) and the client's key log (SSLKEYLOGFILE format).
# usage: [PAIR_NO_ETM=1] tls-memory-pair.py CERT KEY VERSION(1.0|1.1|1.2|1.3) CIPHER|-
# (a TLS 1.2 cipher by OpenSSL's name; TLS 1.3's suite is chosen with an OPENSSL_CONF naming its Ciphersuites, as Python
# has no call for it)
import json, os, ssl, sys, tempfile, warnings

# (TLSVersion.TLSv1 and TLSv1_1 are deprecated names; the tests ask for them on purpose)
warnings.simplefilter('ignore', DeprecationWarning)

cert, key, version, cipher = sys.argv[1:5]
keylog = tempfile.NamedTemporaryFile(delete=False, suffix='.keys').name
# (TLS 1.0 and 1.1: OpenSSL 3 allows them at security level 0 only, which the cipher list then names)
tls = {'1.3': ssl.TLSVersion.TLSv1_3, '1.2': ssl.TLSVersion.TLSv1_2, '1.1': ssl.TLSVersion.TLSv1_1, '1.0': ssl.TLSVersion.TLSv1}[version]

sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
sctx.load_cert_chain(cert, key)
cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
cctx.check_hostname = False
cctx.verify_mode = ssl.CERT_NONE
cctx.keylog_filename = keylog
for ctx in (sctx, cctx):
    ctx.minimum_version = tls
    ctx.maximum_version = tls
if cipher != '-':
    sctx.set_ciphers(cipher)
    cctx.set_ciphers(cipher)
if os.environ.get('PAIR_NO_ETM') == '1':
    # (OpenSSL's SSL_OP_NO_ENCRYPT_THEN_MAC: a CBC suite's records MAC-then-encrypt, as before RFC 7366)
    for ctx in (sctx, cctx):
        ctx.options |= 0x80000

cin, cout, sin, sout = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
client = cctx.wrap_bio(cin, cout, server_side=False, server_hostname='keylog.test')
server = sctx.wrap_bio(sin, sout, server_side=True)
c2s, s2c = bytearray(), bytearray()
flights = []

def pump():
    moved = True
    while moved:
        moved = False
        b = cout.read()
        if b:
            c2s.extend(b); sin.write(b); moved = True; flights.append(['c', b.hex()])
        b = sout.read()
        if b:
            s2c.extend(b); cin.write(b); moved = True; flights.append(['s', b.hex()])

def step(obj):
    try:
        obj.do_handshake()
        return True
    except ssl.SSLWantReadError:
        return False

done_c = done_s = False
while not (done_c and done_s):
    if not done_c: done_c = step(client)
    pump()
    if not done_s: done_s = step(server)
    pump()

def read_all(obj, n):
    out = b''
    while len(out) < n:
        try:
            out += obj.read(n - len(out))
        except ssl.SSLWantReadError:
            pump()
    return out

requests = [b'GET /first HTTP/1.1\r\nHost: keylog.test\r\n\r\n', b'GET /second HTTP/1.1\r\nHost: keylog.test\r\n\r\n']
answers = []
for i, req in enumerate(requests):
    client.write(req); pump()
    got = read_all(server, len(req))
    body = b'answer %d' % i
    resp = b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n' % len(body) + body
    if i == len(requests) - 1 and os.environ.get('PAIR_CLOSE_DELIMITED') == '1':
        # (the last answer's body runs to the connection's close, as HTTP/1.0 servers and some proxies send it)
        resp = b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n' + body
    server.write(resp); pump()
    answers.append(read_all(client, len(resp)).decode())
print(json.dumps({
    'c2s': c2s.hex(), 's2c': s2c.hex(), 'flights': flights, 'keylog': open(keylog).read(),
    'version': client.version(), 'cipher': client.cipher()[0], 'answers': answers,
}))
os.unlink(keylog)
