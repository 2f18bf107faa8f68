"""Message Carbons (XEP-0280): alice has two resources with carbons on.
A message from bob to her first resource reaches the second as a received
carbon; one her first resource sends reaches the second as a sent carbon.
A carbon forged by bob is refused and never reaches alice."""

import asyncio

from slixmpp.xmlstream import ET

import im_common as im
import xmpp_common as xc

NS_CARBONS = "urn:xmpp:carbons:2"
NS_FORWARD = "urn:xmpp:forward:0"


def has_text(msg, text):
    return text in str(msg)


async def main(args):
    xc.check(len(args.user) >= 2, "want --user for alice and bob")
    pw = im.passwords(args)
    alice_jid, bob_jid = args.user[0][0], args.user[1][0]
    a1 = await im.Session(args, alice_jid + "/one", pw[alice_jid], plugins=["xep_0280"]).start(roster=False)
    a2 = await im.Session(args, alice_jid + "/two", pw[alice_jid], plugins=["xep_0280"]).start(roster=False)
    bob = await im.Session(args, bob_jid, pw[bob_jid]).start(roster=False)
    xc.check(a1.jid.full != a2.jid.full, "both of alice's sessions bound %s" % a1.jid)
    received, sent = {}, {}
    for s in (a1, a2):
        received[s] = im.Log(s.jid.full + " received carbons")
        sent[s] = im.Log(s.jid.full + " sent carbons")
        s.xmpp.add_event_handler("carbon_received", received[s].add)
        s.xmpp.add_event_handler("carbon_sent", sent[s].add)
        await s.xmpp["xep_0280"].enable(timeout=10)
    print("carbons enabled on %s and %s" % (a1.jid, a2.jid), flush=True)

    # bob -> alice/one: the other resource gets a received carbon.
    bob.xmpp.send_message(mto=a1.jid, mbody="to one", mtype="chat")
    m = await a1.messages.wait_for(lambda m: m["body"] == "to one", "bob's message")
    xc.check(m["from"] == bob.jid, "message from %s, want %s" % (m["from"], bob.jid))
    c = await received[a2].wait_for(lambda c: c["carbon_received"]["body"] == "to one", "received carbon")
    fwd = c["carbon_received"]
    xc.check(c["from"].full == alice_jid, "carbon from %s, want %s" % (c["from"], alice_jid))
    xc.check(fwd["from"] == bob.jid and fwd["to"] == a1.jid,
             "forwarded message from %s to %s, want %s to %s" % (fwd["from"], fwd["to"], bob.jid, a1.jid))
    print("%s got a received carbon: %s" % (a2.jid, c), flush=True)

    # alice/one -> bob: the other resource gets a sent carbon.
    a1.xmpp.send_message(mto=bob_jid, mbody="from one", mtype="chat")
    await bob.messages.wait_for(lambda m: m["body"] == "from one" and m["from"] == a1.jid, "alice's message")
    c = await sent[a2].wait_for(lambda c: c["carbon_sent"]["body"] == "from one", "sent carbon")
    fwd = c["carbon_sent"]
    xc.check(c["from"].full == alice_jid, "carbon from %s, want %s" % (c["from"], alice_jid))
    xc.check(fwd["from"] == a1.jid and fwd["to"].bare == bob_jid,
             "forwarded message from %s to %s, want %s to %s" % (fwd["from"], fwd["to"], a1.jid, bob_jid))
    print("%s got a sent carbon: %s" % (a2.jid, c), flush=True)

    # Neither resource had a copy of what it sent or received itself.
    xc.check(not received[a1].items and not sent[a1].items,
             "%s got carbons of its own traffic: %s %s" % (a1.jid, received[a1].items, sent[a1].items))
    xc.check(len(received[a2].items) == 1 and len(sent[a2].items) == 1,
             "%s got %d received and %d sent carbons, want one each" % (a2.jid, len(received[a2].items), len(sent[a2].items)))

    # bob forges a received carbon claiming carol wrote to alice.
    forged = bob.xmpp.make_message(mto=alice_jid, mtype="chat")
    forged["id"] = "forged-1"
    rcv = ET.SubElement(forged.xml, "{%s}received" % NS_CARBONS)
    fw = ET.SubElement(rcv, "{%s}forwarded" % NS_FORWARD)
    inner = ET.SubElement(fw, "{jabber:client}message",
                          {"from": "carol@localhost/x", "to": alice_jid, "type": "chat"})
    ET.SubElement(inner, "{jabber:client}body").text = "forged carbon"
    forged.send()
    err = await bob.messages.wait_for(lambda m: m["type"] == "error" and m["id"] == "forged-1", "error for the forged carbon")
    print("bob's forged carbon was refused: %s" % err, flush=True)
    # Messages from bob to alice arrive in order, so once the next one is
    # there (directly or as a carbon: everything is recorded) the forged one
    # would have been too.
    bob.xmpp.send_message(mto=alice_jid, mbody="after the forgery", mtype="chat")
    for s in (a1, a2):
        await s.messages.wait_for(lambda m: has_text(m, "after the forgery"), "bob's message after the forgery")
        bad = [m for m in s.messages.items if has_text(m, "forged carbon")]
        xc.check(not bad, "%s received the forged carbon: %s" % (s.jid, bad))
    print("the forged carbon reached neither of alice's resources", flush=True)

    for s in (bob, a1, a2):
        await s.close()


if __name__ == "__main__":
    p = im.base_parser(__doc__)
    args = p.parse_args()
    im.run(main, args)
