"""Roster versioning (RFC 6121 §2.6): a roster request carrying the version
a previous login received is answered with an empty result; after a change
the old version gets the whole roster with a new version.

slixmpp 1.8.3 puts 'ver' in its roster request when the server announced
urn:xmpp:features:rosterver and the client roster holds a version; a client
keeps that version between logins, so the script hands it over the same way
before calling get_roster()."""

import asyncio

from slixmpp.xmlstream import ET

import im_common as im
import xmpp_common as xc


async def versioned_get(s, ver):
    """slixmpp's own get_roster() with the version kept from before; returns
    the answer and the 'ver' the request carried."""
    x = s.xmpp
    xc.check("rosterver" in x.features, "the server did not announce roster versioning: %s" % x.features)
    x.client_roster.version = ver
    sent = []
    # Look at the request as it leaves, to be sure the version is in it.

    def watch(st):
        if st.name == "iq" and st["type"] == "get" and st.xml.find("{%s}query" % im.NS_ROSTER) is not None:
            sent.append(st["roster"]["ver"])
        return st

    x.add_filter("out", watch)
    # slixmpp adds an empty <query/> to the answer as soon as anything reads
    # iq["roster"], so the answer is also kept as it arrived.
    arrived = {}

    def keep(st):
        if st.name == "iq" and st["type"] in ("result", "error"):
            arrived[st["id"]] = ET.fromstring(ET.tostring(st.xml))
        return st

    x.add_filter("in", keep)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    x.get_roster(callback=lambda iq: done.done() or done.set_result(iq), timeout=10,
                 timeout_callback=lambda iq: done.done() or done.set_exception(xc.CheckFailed("roster request timed out")))
    res = await asyncio.wait_for(done, 15)
    x.del_filter("out", watch)
    x.del_filter("in", keep)
    xc.check(sent == [ver], "roster request carried ver %s, want [%r]" % (sent, ver))
    xc.check(res["id"] in arrived, "the answer %s was not seen arriving" % res["id"])
    return res, arrived[res["id"]]


async def main(args):
    xc.check(len(args.user) >= 3, "want --user for alice, bob and carol")
    pw = im.passwords(args)
    alice_jid, bob_jid, carol_jid = args.user[0][0], args.user[1][0], args.user[2][0]

    # First login: no version yet, the whole roster comes with one.
    s = await im.Session(args, alice_jid, pw[alice_jid]).start(presence=False, roster=False)
    res, _ = await versioned_get(s, "")
    ver0 = res["roster"]["ver"]
    xc.check(ver0 != "", "first answer has no version: %s" % res)
    q = s.xmpp.make_iq_set()
    q["roster"]["items"] = {bob_jid: {"name": "Bob", "subscription": "none", "groups": ["Friends"]}}
    await q.send(timeout=10)
    push = await s.pushes.wait_count(1, "push after adding bob")
    ver1 = push[0].ver
    xc.check(ver1 not in ("", ver0), "push version %r after %r" % (ver1, ver0))
    await s.close()
    print("first login: version %s, then %s after adding bob" % (ver0, ver1), flush=True)

    # Second login with the current version: an empty result.
    s = await im.Session(args, alice_jid, pw[alice_jid]).start(presence=False, roster=False)
    res, raw = await versioned_get(s, ver1)
    xc.check(res["type"] == "result", "answer: %s" % res)
    xc.check(len(raw) == 0, "with the current version the answer should be empty, got: %s" % ET.tostring(raw, encoding="unicode"))
    print("second login with version %s: empty result %s" % (ver1, ET.tostring(raw, encoding="unicode")), flush=True)
    # Changes from now on come as pushes, with the next version.
    q = s.xmpp.make_iq_set()
    q["roster"]["items"] = {carol_jid: {"name": "Carol", "subscription": "none"}}
    await q.send(timeout=10)
    push = await s.pushes.wait_count(1, "push after adding carol")
    ver2 = push[0].ver
    xc.check(ver2 not in ("", ver1), "push version %r after %r" % (ver2, ver1))
    await s.close()

    # Third login with the version from before that change: the whole roster.
    s = await im.Session(args, alice_jid, pw[alice_jid]).start(presence=False, roster=False)
    res, _ = await versioned_get(s, ver1)
    items = res["roster"]["items"]
    xc.check(res["roster"]["ver"] == ver2, "answer version %r, want %r" % (res["roster"]["ver"], ver2))
    xc.check(sorted(str(j) for j in items) == sorted([bob_jid, carol_jid]),
             "roster for an old version lists %s, want bob and carol" % sorted(str(j) for j in items))
    xc.check(items[bob_jid]["name"] == "Bob" and list(items[bob_jid]["groups"]) == ["Friends"],
             "bob's item: %s" % items[bob_jid])
    print("third login with old version %s: whole roster at %s" % (ver1, ver2), flush=True)
    await s.close()


if __name__ == "__main__":
    p = im.base_parser(__doc__)
    args = p.parse_args()
    im.run(main, args)
