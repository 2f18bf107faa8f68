"""Queries the server itself: XEP-0199 ping, XEP-0030 disco#info and
disco#items, XEP-0092 software version."""

import xmpp_common as xc

WANT_FEATURES = ("urn:xmpp:ping", "jabber:iq:version", "http://jabber.org/protocol/disco#info")


async def main(args):
    c = await xc.Client(args, args.jid, args.password).start(presence=False)
    x = c.xmpp
    server = x.boundjid.domain

    await x["xep_0199"].send_ping(server, timeout=10)
    print("ping answered", flush=True)

    # local/cached False: ask the server over the wire, never slixmpp's own data.
    info = await x["xep_0030"].get_info(jid=server, local=False, cached=False, timeout=10)
    features = set(info["disco_info"]["features"])
    print("disco#info features: %s" % sorted(features), flush=True)
    missing = [f for f in WANT_FEATURES if f not in features]
    xc.check(not missing, "disco#info lacks %s" % missing)
    identities = info["disco_info"]["identities"]
    print("disco#info identities: %s" % sorted(identities), flush=True)
    xc.check(any(i[0] == "server" for i in identities), "no identity of category 'server'")

    items = await x["xep_0030"].get_items(jid=server, local=False, timeout=10)
    print("disco#items: %s" % items["disco_items"]["items"], flush=True)

    version = await x["xep_0092"].get_version(server, timeout=10)
    sv = version["software_version"]
    print("version: name=%r version=%r os=%r" % (sv["name"], sv["version"], sv["os"]), flush=True)
    xc.check(sv["name"] == "Ambrosia", "software name %r, want 'Ambrosia'" % sv["name"])
    xc.check(sv["version"] != "", "empty software version")
    await c.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    args = p.parse_args()
    xc.run(main, args)
