"""Asks the server, with slixmpp, for the disco#info features of its
domain, of the user's own account (bare JID) and of every service its
disco#items lists, and prints them as one JSON object:
{"server": [...], "account": [...], "items": {"jid": [...]}}."""

import json

import xmpp_common as xc


async def main(args):
    c = await xc.Client(args, args.jid, args.password).start(presence=False)
    disco = c.xmpp["xep_0030"]
    domain = c.xmpp.boundjid.domain

    async def features(jid):
        info = await disco.get_info(jid=jid, timeout=10)
        return sorted(info["disco_info"]["features"])

    out = {"server": await features(domain), "account": await features(c.xmpp.boundjid.bare), "items": {}}
    items = await disco.get_items(jid=domain, timeout=10)
    for item in items["disco_items"]["items"]:
        out["items"][item[0]] = await features(item[0])
    print("FEATURES " + json.dumps(out), flush=True)
    await c.close()


if __name__ == "__main__":
    p = xc.base_parser(__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    xc.run(main, p.parse_args())
