"""Logs in and pages through the archive (XEP-0313) with raw queries of at
most --max items, forward from the start and backward from the end, and
checks that the bodies are exactly "<body> 0" .. "<body> N-1" in order."""

import slixmpp
from slixmpp.xmlstream import ET
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import xmpp_common as xc

NS_MAM = "urn:xmpp:mam:2"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_FWD = "urn:xmpp:forward:0"
NS_CLIENT = "jabber:client"


async def page(c, results, n, after=None, before=None, with_jid=None):
    """Runs one query; returns (bodies, fin element)."""
    qid = "q%d" % n
    results[qid] = []
    iq = c.xmpp.make_iq_set()
    q = ET.SubElement(iq.xml, "{%s}query" % NS_MAM, queryid=qid)
    if with_jid:
        x = ET.SubElement(q, "{jabber:x:data}x", type="submit")
        f = ET.SubElement(x, "{jabber:x:data}field", var="FORM_TYPE", type="hidden")
        ET.SubElement(f, "{jabber:x:data}value").text = NS_MAM
        f = ET.SubElement(x, "{jabber:x:data}field", var="with")
        ET.SubElement(f, "{jabber:x:data}value").text = with_jid
    s = ET.SubElement(q, "{%s}set" % NS_RSM)
    ET.SubElement(s, "{%s}max" % NS_RSM).text = str(c.args.max)
    if after is not None:
        ET.SubElement(s, "{%s}after" % NS_RSM).text = after
    if before is not None:
        ET.SubElement(s, "{%s}before" % NS_RSM).text = before or None
    resp = await iq.send(timeout=10)
    fin = resp.xml.find("{%s}fin" % NS_MAM)
    xc.check(fin is not None, "no <fin/> in %s" % resp)
    return results.pop(qid), fin


def rsm(fin, name):
    e = fin.find("{%s}set/{%s}%s" % (NS_RSM, NS_RSM, name))
    return e.text if e is not None else None


async def main(args):
    c = await xc.Client(args, args.jid, args.password).start()
    c.args = args
    results = {}

    def on_result(msg):
        r = msg.xml.find("{%s}result" % NS_MAM)
        body = r.find("{%s}forwarded/{%s}message/{%s}body" % (NS_FWD, NS_CLIENT, NS_CLIENT))
        xc.check(body is not None, "result without a forwarded body: %s" % msg)
        xc.check(r.get("queryid") in results, "result for unknown query %s" % r.get("queryid"))
        results[r.get("queryid")].append((r.get("id"), body.text))

    c.xmpp.register_handler(Callback("mam results", MatchXPath("{%s}message/{%s}result" % (NS_CLIENT, NS_MAM)), on_result))
    want = ["%s %d" % (args.body, i) for i in range(args.count)]

    got, n, after = [], 0, None
    while True:
        items, fin = await page(c, results, n, after=after, with_jid=args.with_jid)
        n += 1
        xc.check(len(items) <= args.max, "page of %d items, max %d" % (len(items), args.max))
        xc.check(rsm(fin, "count") == str(args.count), "count %s, want %d" % (rsm(fin, "count"), args.count))
        got += items
        if fin.get("complete") == "true":
            break
        xc.check(items, "empty incomplete page")
        after = rsm(fin, "last")
        xc.check(after == items[-1][0], "rsm last %s is not the last result %s" % (after, items[-1][0]))
    bodies = [b for _, b in got]
    ids = [i for i, _ in got]
    xc.check(len(set(ids)) == len(ids), "duplicate archive ids")
    xc.check(bodies == want, "forward: got %d messages %s" % (len(bodies), bodies[:5]))
    print("forward: %d messages in %d pages" % (len(bodies), n), flush=True)

    back, pages, before = [], 0, ""
    while True:
        items, fin = await page(c, results, n, before=before)
        n += 1
        pages += 1
        back = items + back
        if fin.get("complete") == "true":
            break
        before = rsm(fin, "first")
    xc.check([b for _, b in back] == want, "backward: got %d messages" % len(back))
    print("backward: %d messages in %d pages" % (len(back), pages), flush=True)
    await c.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--body", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--max", type=int, default=50)
    p.add_argument("--with-jid", default=None)
    args = p.parse_args()
    xc.run(main, args)
