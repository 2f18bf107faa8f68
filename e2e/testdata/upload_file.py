"""HTTP File Upload (XEP-0363) with slixmpp's own plugin: finds the upload
service through the server's disco#items, uploads a file through a slot,
fetches it back by the GET URL and compares the bytes and the headers; then
asks for a slot over the size limit and expects not-acceptable with the
limit."""

import asyncio
import os
import ssl
import sys
import tempfile

import aiohttp

import xmpp_common as xc

NS = "urn:xmpp:http:upload:0"


async def main(args):
    # slixmpp uploads with an aiohttp session of its own, which trusts the
    # system's roots: make the server's self-signed certificate the only one.
    os.environ["SSL_CERT_FILE"] = args.ca
    c = xc.Client(args, args.jid, args.password)
    c.xmpp.register_plugin("xep_0363")
    await c.start(presence=False)
    x = c.xmpp
    server = x.boundjid.domain

    items = await x["xep_0030"].get_items(jid=server, local=False, timeout=10)
    services = [i[0] for i in items["disco_items"]["items"]]
    print("disco#items: %s" % services, flush=True)
    xc.check(args.service in services, "disco#items lacks %s" % args.service)

    # The plugin's own discovery (find_upload_service) passes coroutines to
    # asyncio.wait, which Python 3.11 refuses; do what it does, one item at
    # a time, and hand the plugin the result as it would have kept it.
    info, limit = None, None
    for jid in services:
        i = await x["xep_0030"].get_info(jid=jid, local=False, cached=False, timeout=10)
        di = i["disco_info"]
        if ("store", "file") in [(c, t) for c, t, _, _ in di["identities"]] and NS in di["features"]:
            info = i
            for form in di.iterables:
                values = form["values"]
                if values.get("FORM_TYPE") == [NS]:
                    limit = int(values["max-file-size"])
    xc.check(info is not None, "no upload service found")
    xc.check(str(info["from"]) == args.service, "upload service %s, want %s" % (info["from"], args.service))
    xc.check(limit == args.max, "max-file-size %r, want %d" % (limit, args.max))
    x["xep_0363"].upload_service = info["from"]
    x["xep_0363"].max_file_size = limit

    data = os.urandom(args.size)
    with tempfile.NamedTemporaryFile(suffix=".bin") as f:
        f.write(data)
        f.flush()
        url = await x["xep_0363"].upload_file(f.name, domain=server, timeout=10)
    print("uploaded %d bytes to %s" % (len(data), url), flush=True)

    ctx = ssl.create_default_context(cafile=args.ca)
    async with aiohttp.ClientSession() as s:
        async with s.get(url, ssl=ctx) as r:
            body = await r.read()
            xc.check(r.status == 200, "GET %s: %d" % (url, r.status))
            xc.check(body == data, "GET returned %d bytes, not the %d uploaded" % (len(body), len(data)))
            h = r.headers
            print("GET headers: %s" % dict(h), flush=True)
            xc.check(h.get("Content-Type") == "application/octet-stream", "Content-Type %r" % h.get("Content-Type"))
            xc.check(h.get("Content-Length") == str(len(data)), "Content-Length %r" % h.get("Content-Length"))
            xc.check(h.get("X-Content-Type-Options") == "nosniff", "no nosniff")
            xc.check("default-src 'none'" in h.get("Content-Security-Policy", ""), "no Content-Security-Policy")
            xc.check(h.get("Content-Disposition", "").startswith("attachment"), "Content-Disposition %r" % h.get("Content-Disposition"))
        print("fetched back %d identical bytes" % len(body), flush=True)
        # The same slot cannot be used again.
        async with s.put(url, data=b"x" * len(data), ssl=ctx) as r:
            xc.check(r.status in (401, 403, 409), "second PUT without the slot's header: %d" % r.status)

    try:
        await x["xep_0363"].request_slot(info["from"], "big.bin", args.max + 1, timeout=10)
        raise xc.CheckFailed("a slot over the limit was granted")
    except xc.slixmpp.exceptions.IqError as e:
        cond = e.iq["error"]["condition"]
        limit = e.iq.xml.find("{jabber:client}error/{%s}file-too-large/{%s}max-file-size" % (NS, NS))
        print("over the limit: %s, max-file-size %s" % (cond, None if limit is None else limit.text), flush=True)
        xc.check(cond == "not-acceptable", "condition %s, want not-acceptable" % cond)
        xc.check(limit is not None and limit.text == str(args.max), "no file-too-large with max-file-size %d" % args.max)
    await c.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--service", required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--max", type=int, required=True)
    args = p.parse_args()
    xc.run(main, args)
